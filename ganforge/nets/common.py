"""Pieces every net family shares: activations by name, conditioning, init, equalised-learning-rate layers."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.errors import ConfigError

ACTIVATIONS = {
    "relu": lambda: nn.ReLU(),
    "leaky_relu": lambda: nn.LeakyReLU(0.2),
    "elu": lambda: nn.ELU(),
    "tanh": lambda: nn.Tanh(),
    "silu": lambda: nn.SiLU(),
    "sigmoid": lambda: nn.Sigmoid(),
}

#: Arguments a game passes to every net factory; users do not set them in configs.
PROVIDED = ("in_shape", "out_shape", "n_classes")


def activation(name: str | None) -> nn.Module:
    if name is None or name == "none":
        return nn.Identity()
    if name not in ACTIVATIONS:
        raise ConfigError(f"unknown activation {name!r}. Valid: none, {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


def square_side(shape, what: str) -> int:
    """The side R of a square image shape (C, R, R) with R a power of two >= 16; else a ConfigError naming ``what``."""
    if len(shape) != 3:
        raise ConfigError(f"{what} works on images (C, H, W); got data shape {tuple(shape)}. Use the mlp net for "
                          "vectors")
    _, h, w = (int(s) for s in shape)
    if h != w or h < 16 or h & (h - 1):
        raise ConfigError(f"{what} needs square images whose side is a power of two >= 16; got "
                          f"{h}x{w}. Set the data's resolution, e.g. --data.resolution=32")
    return h


def pixel_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Each row's (dim 1) vector divided by its root mean square: Karras et al. 2018's pixelwise feature
    normalisation (eq. 5) on feature maps, and StyleGAN's normalisation of z on (N, D) codes."""
    return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + eps)


def minibatch_stddev(x: torch.Tensor, group: int = 4, eps: float = 1e-8) -> torch.Tensor:
    """x (N, C, H, W) -> (N, C + 1, H, W): appends the mean over (C, H, W) of the per-feature std over a group
    (Karras et al. 2018, Sec. 3).

    Groups are strided as in the paper's code: sample n is in group n mod M (M = N / G); the std is the
    biased one, sqrt(mean_g (x - mean_g x)^2 + eps). G = the largest divisor of N that is <= ``group``.
    """
    n, c, h, w = x.shape
    g = max(d for d in range(1, min(group, n) + 1) if n % d == 0)
    y = x.float().reshape(g, n // g, c, h, w)
    s = ((y - y.mean(dim=0, keepdim=True)).pow(2).mean(dim=0) + eps).sqrt().mean(dim=(1, 2, 3))  # (M,)
    return torch.cat([x, s.to(x.dtype).repeat(g).reshape(n, 1, 1, 1).expand(n, 1, h, w)], dim=1)


class ProjectionHead:
    """The critic contract's head for nets with ``out`` (features -> k scores), ``project`` (a bias-free
    linear map of the one-hot label, or None), ``n_classes`` and ``out_shape``: the projection
    discriminator (Miyato & Koyama 2018) D(x, c) = out(h) + <V y, h>, h = features(x, c), and
    ``forward == head(features)``. Mix in before nn.Module."""

    def head(self, h: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """Features (N, F) -> scores (N, *out_shape); adds the projection term <V y, h> when conditional."""
        out = self.out(h)
        if self.project is not None:
            oh = one_hot(c, self.n_classes, h.shape[0], h.device).to(h.dtype)
            v = self.project(oh).reshape(h.shape[0], -1, h.shape[1])  # (N, k, F)
            out = out + torch.einsum("nkf,nf->nk", v, h)
        return out.reshape(h.shape[0], *self.out_shape)

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.features(x, c), c)


def one_hot(c: torch.Tensor | None, n_classes: int, batch: int, device) -> torch.Tensor | None:
    """Labels (N,) int -> (N, K) one-hot; (N, K) float passes through (soft or multi-hot labels)."""
    if n_classes == 0:
        if c is not None:
            raise ValueError("this network is unconditional but was given c")
        return None
    if c is None:
        raise ValueError(f"this network is conditional ({n_classes} classes): pass c")
    if c.dim() == 1:
        return torch.nn.functional.one_hot(c.long(), n_classes).float()
    return c.float()


def maybe_sn(layer: nn.Module, on: bool) -> nn.Module:
    """Spectral normalisation (Miyato et al. 2018) when ``on``."""
    return nn.utils.parametrizations.spectral_norm(layer) if on else layer


def numel(shape) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n


#: Normalisation layers by name; ``norm_layer(kind, channels, dims)`` builds one for
#: vectors (dims=1, (N, C)) or feature maps (dims=2, (N, C, H, W)).
NORMS = {
    "none": lambda c, dims: nn.Identity(),
    "batch": lambda c, dims: nn.BatchNorm1d(c) if dims == 1 else nn.BatchNorm2d(c),
    "layer": lambda c, dims: nn.LayerNorm(c) if dims == 1 else nn.GroupNorm(1, c),
    "instance": lambda c, dims: nn.Identity() if dims == 1 else nn.InstanceNorm2d(c, affine=True),
    "vbn": lambda c, dims: _vbn(c, dims),  # virtual batch norm (ganforge.stabilisers.vbn)
}


def _vbn(channels: int, dims: int) -> nn.Module:
    from ganforge.stabilisers.vbn import VirtualBatchNorm

    return VirtualBatchNorm(channels, dims)


def norm_layer(kind: str, channels: int, dims: int = 1) -> nn.Module:
    if kind not in NORMS:
        raise ConfigError(f"unknown norm {kind!r}. Valid: {', '.join(NORMS)}")
    return NORMS[kind](channels, dims)


# ----------------------------------------------------------------------------- equalised learning rate
def lrelu_gain(x: torch.Tensor) -> torch.Tensor:
    """Leaky ReLU(0.2) times sqrt(2): StyleGAN's activation, whose gain keeps unit second moments."""
    return F.leaky_relu(x, 0.2) * math.sqrt(2.0)


class EqualLinear(nn.Module):
    """Fully connected layer with the equalised learning rate (Karras et al. 2018, Sec. 4.1).

    The weight is stored as N(0, 1) / lr_mul and multiplied at run time by ``scale`` = gain * lr_mul /
    sqrt(fan_in), the bias stored as bias_init / lr_mul and multiplied by lr_mul: Adam's per-parameter
    step then moves every layer at the same rate whatever its fan-in. gain: He's sqrt(2) where a plain
    leaky ReLU follows (progressive GAN), 1 where ``act`` is on (the activation carries sqrt(2), as in
    StyleGAN) or the layer is linear; lr_mul: StyleGAN's mapping-network multiplier (0.01).
    """

    def __init__(self, cin: int, cout: int, *, gain: float = 1.0, bias: bool = True, bias_init: float = 0.0,
                 lr_mul: float = 1.0, act: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin) / lr_mul)
        self.bias = nn.Parameter(torch.full((cout,), float(bias_init) / lr_mul)) if bias else None
        self.scale, self.lr_mul, self.act = gain * lr_mul / math.sqrt(cin), lr_mul, act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.linear(x, self.weight * self.scale, None if self.bias is None else self.bias * self.lr_mul)
        return lrelu_gain(x) if self.act else x


class EqualConv2d(nn.Module):
    """k x k convolution with the equalised learning rate: weight N(0, 1) times gain / sqrt(cin k^2) at run
    time, bias 0; ``padding`` k // 2 (same size) unless given; ``act``: leaky ReLU times sqrt(2) after."""

    def __init__(self, cin: int, cout: int, k: int, *, gain: float = 1.0, bias: bool = True,
                 padding: int | None = None, act: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, k, k))
        self.bias = nn.Parameter(torch.zeros(cout)) if bias else None
        self.scale, self.act = gain / math.sqrt(cin * k * k), act
        self.padding = k // 2 if padding is None else padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)
        return lrelu_gain(x) if self.act else x
