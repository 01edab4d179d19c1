"""Convolutional encoders: image (C, H, W) -> vector. BiGAN's E, DANN/ADDA feature extractors, SSGAN's D.

``conv-encoder``: ``depth`` strided 4x4 convolutions (stride 2, each halving
the resolution and doubling the width, as DCGAN's discriminator does), a fully
connected layer of ``hidden`` units (the *features*: feature matching and
linear probes read them), then a linear output layer to ``out_shape``. With
``hidden=0`` the flattened last feature map is the feature vector.

Regularisers of a discriminator-classifier (Salimans et al. 2016, section 5,
add Gaussian noise to the output of every layer of their MNIST discriminator):
``input_noise`` and ``layer_noise`` are the standard deviations of Gaussian
noise added, in training mode only, to the input and to the output of every
hidden layer; ``dropout`` follows each hidden layer.

Conditioning (``n_classes > 0``): the one-hot label is broadcast to K constant
maps and concatenated to the input channels (Mirza & Osindero 2014's input
concatenation, in image form).
"""

from __future__ import annotations

import torch
from torch import nn

from ganforge.errors import ConfigError
from ganforge.nets.common import activation as act_layer
from ganforge.nets.common import maybe_sn, norm_layer, numel, one_hot
from ganforge.registry import NETS


class GaussianNoise(nn.Module):
    """x + std * N(0, 1) in training mode, the identity in eval mode."""

    def __init__(self, std: float) -> None:
        super().__init__()
        self.std = std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.std * torch.randn_like(x) if self.training and self.std else x


class ConvEncoder(nn.Module):
    """x (N, C, H, W) [, c] -> (N, *out_shape); ``features(x, c)`` -> (N, hidden)."""

    def __init__(self, *, in_shape, out_shape, n_classes: int = 0, width: int = 32, depth: int = 2,
                 hidden: int = 256, norm: str = "batch", activation: str = "leaky_relu", dropout: float = 0.0,
                 input_noise: float = 0.0, layer_noise: float = 0.0, spectral_norm: bool = False,
                 out_activation: str | None = None) -> None:
        super().__init__()
        if len(in_shape) != 3:
            raise ConfigError(f"conv-encoder takes images (C, H, W), got in_shape {tuple(in_shape)}; "
                              "use mlp for vectors")
        if depth < 1 or width < 1 or hidden < 0:
            raise ConfigError(f"conv-encoder needs depth >= 1, width >= 1, hidden >= 0; got depth={depth}, "
                              f"width={width}, hidden={hidden}")
        if not 0 <= dropout < 1 or input_noise < 0 or layer_noise < 0:
            raise ConfigError(f"conv-encoder needs 0 <= dropout < 1, input_noise >= 0 and layer_noise >= 0, got "
                              f"{dropout}, {input_noise}, {layer_noise}")
        c, h, w = (int(s) for s in in_shape)
        if min(h, w) < 2**depth:
            raise ConfigError(f"conv-encoder depth={depth} halves {h}x{w} too often; use depth <= "
                              f"{max(1, min(h, w).bit_length() - 1)}")
        norm_layer(norm, 1, 2)  # validate the name first
        self.in_shape, self.out_shape, self.n_classes = (c, h, w), tuple(out_shape), n_classes
        self.input_noise = input_noise
        layers: list[nn.Module] = []
        ch = c + n_classes
        for i in range(depth):
            out = width * 2**i
            conv = nn.Conv2d(ch, out, 4, stride=2, padding=1, bias=norm == "none" or i == 0)
            layers.append(maybe_sn(conv, spectral_norm))
            layers.append(nn.Identity() if i == 0 else norm_layer(norm, out, 2))
            layers.append(act_layer(activation))
            if layer_noise:
                layers.append(GaussianNoise(layer_noise))
            if dropout:
                layers.append(nn.Dropout(dropout))
            ch, h, w = out, h // 2, w // 2
        layers.append(nn.Flatten())
        flat = ch * h * w
        if hidden:
            layers += [maybe_sn(nn.Linear(flat, hidden), spectral_norm), act_layer(activation)]
            if layer_noise:
                layers.append(GaussianNoise(layer_noise))
            if dropout:
                layers.append(nn.Dropout(dropout))
        self.body = nn.Sequential(*layers)
        self.feature_dim = hidden or flat
        self.head = nn.Sequential(maybe_sn(nn.Linear(self.feature_dim, numel(out_shape)), spectral_norm),
                                  act_layer(out_activation))

    def _input(self, x: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        if self.training and self.input_noise:
            x = x + self.input_noise * torch.randn_like(x)
        oh = one_hot(c, self.n_classes, x.shape[0], x.device)
        if oh is None:
            return x
        return torch.cat([x, oh.to(x.dtype)[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])], dim=1)

    def features(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """The ``hidden``-unit layer before the output (N, feature_dim)."""
        return self.body(self._input(x, c))

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.features(x, c)).reshape(x.shape[0], *self.out_shape)


NETS.add("conv-encoder", ConvEncoder,
         help="Conv encoder: strided 4x4 convs (width doubling per level), hidden features, linear output")
