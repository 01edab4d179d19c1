"""Weight-normalised MLP classifier-discriminator with Gaussian noise (Salimans et al. 2016, MNIST model).

The semi-supervised GAN of "Improved techniques for training GANs" (section 5)
classifies MNIST with D = 784-1000-500-250-250-250-10, every layer weight-
normalised (Salimans & Kingma 2016: w = g v / ||v||, one g per output unit),
ReLU, and Gaussian noise of std 0.3 on the input and 0.5 on the output of
every hidden layer (training mode only). ``features(x)`` is the last hidden
layer before its noise (``feature_layer`` picks another): what feature matching
compares. ``input_dropout`` / ``layer_dropout`` add dropout at the same places
(the paper's CIFAR-10 model uses dropout instead of noise).

The noise scale is that of the net's input; ganforge images are in [-1, 1],
twice the paper's [0, 1] range, so the paper's input noise 0.3 is 0.6 here.

``data_init: true`` asks for weight normalisation's data-dependent initialisation
(Salimans & Kingma 2016, section 3; the paper's code does it): the game calls
``init_from_data(x)`` once with a batch of real images before training, and
each layer's g and b are set so that its pre-activations on that batch have
mean 0 and std 1 per unit, layer by layer (noise included, as in training).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.errors import ConfigError
from ganforge.nets.common import numel
from ganforge.nets.encoders import GaussianNoise
from ganforge.registry import NETS


class WNLinear(nn.Module):
    """y = x (g v / ||v||_row)^T + b (weight normalisation; ``gain`` is g's initial value)."""

    def __init__(self, n_in: int, n_out: int, gain: float = 1.0) -> None:
        super().__init__()
        self.v = nn.Parameter(torch.randn(n_out, n_in) * 0.05)
        self.g = nn.Parameter(torch.full((n_out,), float(gain)))
        self.b = nn.Parameter(torch.zeros(n_out))

    def weight(self) -> torch.Tensor:
        return self.v * (self.g / self.v.norm(dim=1).clamp_min(1e-12)).unsqueeze(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight(), self.b)


def _noise(std: float, p: float) -> nn.Module:
    """Gaussian noise of ``std``, then dropout with probability ``p`` when p > 0 (training mode only)."""
    return nn.Sequential(GaussianNoise(std), nn.Dropout(p)) if p else GaussianNoise(std)


class WNMLP(nn.Module):
    """x (N, *in_shape) -> (N, *out_shape); ``features(x)`` -> (N, feature_dim), hidden layer ``feature_layer``."""

    def __init__(self, *, in_shape, out_shape, n_classes: int = 0, widths: tuple[int, ...] = (1000, 500, 250, 250, 250),
                 input_noise: float = 0.6, layer_noise: float = 0.5, data_init: bool = False,
                 input_dropout: float = 0.0, layer_dropout: float = 0.0, feature_layer: int = -1) -> None:
        super().__init__()
        widths = tuple(int(w) for w in widths)
        if n_classes:
            raise ConfigError("wn-mlp takes no class conditioning (it is a K-way classifier-discriminator)")
        if not widths or min(widths) < 1 or input_noise < 0 or layer_noise < 0:
            raise ConfigError(f"wn-mlp needs widths >= 1 (at least one), input_noise >= 0, layer_noise >= 0; got "
                              f"{widths}, {input_noise}, {layer_noise}")
        if not (0 <= input_dropout < 1 and 0 <= layer_dropout < 1):
            raise ConfigError(f"wn-mlp needs 0 <= input_dropout < 1 and 0 <= layer_dropout < 1; got {input_dropout}, "
                              f"{layer_dropout}")
        if not -len(widths) <= feature_layer < len(widths):
            raise ConfigError(f"wn-mlp feature_layer must index one of the {len(widths)} hidden layers "
                              f"({-len(widths)}..{len(widths) - 1}), got {feature_layer}")
        self.in_shape, self.out_shape, self.n_classes = tuple(in_shape), tuple(out_shape), 0
        self.data_init = bool(data_init)
        # dropout (Salimans et al.'s CIFAR-10 model) after the Gaussian noise (their MNIST model), only where asked
        # for, so that a net without it keeps its module indices (and its checkpoints' keys)
        self.input_noise = _noise(input_noise, input_dropout)
        layers: list[nn.Module] = []
        width = numel(in_shape)
        for i, w in enumerate(widths):
            if i:  # noise on every hidden layer's output; the last one's comes after features()
                layers.append(_noise(layer_noise, layer_dropout))
            # gain sqrt(2) after the first layer keeps the pre-activation scale through the ReLUs (He et al. 2015)
            layers += [WNLinear(width, w, 1.0 if i == 0 else math.sqrt(2.0)), nn.ReLU()]
            width = w
        self.body = nn.Sequential(*layers)
        k = feature_layer % len(widths)
        self._feature_end = 3 * k + 2  # body = [lin, relu] + [noise, lin, relu] * (n - 1): layer k's ReLU, inclusive
        self.feature_dim = widths[k]
        self.head = nn.Sequential(_noise(layer_noise, layer_dropout), WNLinear(width, numel(out_shape), math.sqrt(2.0)))

    @torch.no_grad()
    def init_from_data(self, x: torch.Tensor) -> None:
        """Data-dependent init (Salimans & Kingma 2016, sec. 3): per unit g = 1 / std(t), b = -mean(t) / std(t),
        t = v.h / ||v|| the pre-activation on the batch ``x`` (N, *in_shape); a no-op unless ``data_init``."""
        if not self.data_init:
            return
        h = self.input_noise(x.reshape(x.shape[0], -1))
        for m in [*self.body, *self.head]:
            if isinstance(m, WNLinear):
                t = F.linear(h, m.v / m.v.norm(dim=1, keepdim=True).clamp_min(1e-12))
                std = t.std(0).clamp_min(1e-6)
                m.g.copy_(1.0 / std)
                m.b.copy_(-t.mean(0) / std)
            h = m(h)

    def features(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """Hidden layer ``feature_layer`` (default the last) after its ReLU, before its noise: (N, feature_dim)."""
        return self.body[:self._feature_end](self.input_noise(x.reshape(x.shape[0], -1)))

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.body(self.input_noise(x.reshape(x.shape[0], -1)))).reshape(x.shape[0], *self.out_shape)


NETS.add("wn-mlp", WNMLP, help="Weight-normalised MLP with Gaussian input/layer noise (Salimans et al. 2016's "
                               "semi-supervised D): widths, input_noise, layer_noise, input_dropout, layer_dropout, "
                               "data_init, feature_layer")
