"""The Fashion-MNIST classifier that ships with ganforge as the offline feature extractor.

A small VGG-style network (Simonyan & Zisserman 2015): three blocks of
3x3 convolutions with batch norm and ReLU, each followed by 2x2 max pooling,
then a 128-d fully connected layer (the *features* used by FID/KID/PR/DC) and
a 10-way linear head (the *logits* used by the Inception Score and class
histograms). Input: (N, 1, 28, 28) float in [-1, 1]. Trained by
``scripts/train_fmnist_cnn.py``; weights in ``ganforge/weights/fmnist_cnn.safetensors``.
"""

from __future__ import annotations

import torch
from torch import nn

FEATURE_DIM = 128


def _block(c_in: int, c_out: int, n_conv: int) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for i in range(n_conv):
        layers += [nn.Conv2d(c_in if i == 0 else c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                   nn.ReLU(inplace=True)]
    return layers + [nn.MaxPool2d(2)]


class FmnistCNN(nn.Module):
    """(N, 1, 28, 28) in [-1, 1] -> features (N, 128) and logits (N, 10)."""

    def __init__(self, widths: tuple[int, int, int] = (32, 64, 128), feature_dim: int = FEATURE_DIM,
                 n_classes: int = 10, dropout: float = 0.3) -> None:
        super().__init__()
        w1, w2, w3 = widths
        # 28 -> 14 -> 7 -> 3 spatial; the last block has one conv because 7x7 is already small.
        self.body = nn.Sequential(*_block(1, w1, 2), *_block(w1, w2, 2), *_block(w2, w3, 1))
        self.embed = nn.Sequential(
            nn.Flatten(), nn.Dropout(dropout), nn.Linear(w3 * 3 * 3, feature_dim, bias=False),
            nn.BatchNorm1d(feature_dim), nn.ReLU(inplace=True),
        )
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(feature_dim, n_classes))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate activations (N, feature_dim): what FID/KID/PR/DC compare."""
        return self.embed(self.body(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits (N, n_classes)."""
        return self.head(self.features(x))

    def features_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.features(x)
        return f, self.head(f)
