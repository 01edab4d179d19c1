"""Fully connected nets for vectors (toy data): generators, critics, encoders, auto-encoders.

Every factory takes ``in_shape`` and ``out_shape`` (given by the game: a
generator maps (z_dim,) -> data shape, a critic maps data shape -> (k,)) and
``n_classes`` for conditioning, G(z, c=None) / D(x, c=None); a label is
concatenated to the input as a one-hot vector.
"""

from __future__ import annotations

import torch
from torch import nn

from ganforge.errors import ConfigError
from ganforge.nets.common import activation, maybe_sn, norm_layer, numel, one_hot
from ganforge.registry import NETS


def _stack(n_in: int, n_out: int, hidden: int, depth: int, act: str, norm: str, sn: bool,
           out_act: str | None) -> nn.Sequential:
    if depth < 0 or hidden < 1:
        raise ConfigError(f"mlp needs depth >= 0 and hidden >= 1, got depth={depth}, hidden={hidden}")
    norm_layer(norm, 1, 1)  # validates the name before any layer is built
    layers: list[nn.Module] = []
    width = n_in
    for _ in range(depth):
        layers.append(maybe_sn(nn.Linear(width, hidden), sn))
        layers.append(norm_layer(norm, hidden, 1))
        layers.append(activation(act))
        width = hidden
    layers.append(maybe_sn(nn.Linear(width, n_out), sn))
    layers.append(activation(out_act))
    return nn.Sequential(*layers)


class MLP(nn.Module):
    """x (N, *in_shape) [, c] -> (N, *out_shape). ``features(x, c)`` gives the last hidden layer."""

    def __init__(self, *, in_shape, out_shape, n_classes: int = 0, hidden: int = 256, depth: int = 3,
                 activation: str = "relu", norm: str = "none", spectral_norm: bool = False,
                 out_activation: str | None = None) -> None:
        super().__init__()
        self.in_shape, self.out_shape, self.n_classes = tuple(in_shape), tuple(out_shape), n_classes
        self.net = _stack(numel(in_shape) + n_classes, numel(out_shape), hidden, depth, activation, norm,
                          spectral_norm, out_activation)

    def _input(self, x: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        h = x.reshape(x.shape[0], -1)
        oh = one_hot(c, self.n_classes, x.shape[0], x.device)
        return h if oh is None else torch.cat([h, oh.to(h.dtype)], dim=1)

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(self._input(x, c)).reshape(x.shape[0], *self.out_shape)

    def features(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """Activations before the last linear layer (feature matching uses these)."""
        return self.net[:-2](self._input(x, c))

    def head(self, h: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """The last layer on ``features``: forward(x, c) == head(features(x, c), c)."""
        return self.net[-2:](h).reshape(h.shape[0], *self.out_shape)


NETS.add("mlp", MLP, help="MLP: hidden width, depth, activation, norm (see nets.common.NORMS), spectral_norm")


@NETS.register("ae")
class AutoEncoderCritic(nn.Module):
    """EBGAN's discriminator: an MLP auto-encoder; score = -(mean squared reconstruction error).

    Ignores ``out_shape`` (the score is one number per sample); ``embed`` gives the code.
    """

    def __init__(self, *, in_shape, out_shape=(1,), n_classes: int = 0, hidden: int = 128, depth: int = 2,
                 code: int = 32, activation: str = "relu") -> None:
        super().__init__()
        self.in_shape, self.n_classes = tuple(in_shape), n_classes
        n = numel(in_shape)
        self.enc = _stack(n + n_classes, code, hidden, depth, activation, "none", False, None)
        self.dec = _stack(code, n, hidden, depth, activation, "none", False, None)

    def embed(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        h = x.reshape(x.shape[0], -1)
        oh = one_hot(c, self.n_classes, x.shape[0], x.device)
        return self.enc(h if oh is None else torch.cat([h, oh], 1))

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        h = x.reshape(x.shape[0], -1)
        rec = self.dec(self.embed(x, c))
        return -(rec - h).pow(2).mean(dim=1, keepdim=True)
