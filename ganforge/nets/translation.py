"""Image-to-image nets: the CycleGAN/StarGAN ResNet generator, the PatchGAN critic, SRResNet and SRGAN's critic.

Shapes are (C, H, W) and come from the game: ``in_shape`` is what the net
reads, ``out_shape`` what it writes (a critic gets ``(k,)``: k scores per
patch). Conditioning, ``G(x, c)`` / ``D(x, c)``: a one-hot label tiled into
constant feature maps concatenated to the image (StarGAN, Choi et al. 2018,
Sec. 3); the ResNet generator's label maps are zero-padded (see ``ResnetGenerator``).

- ``resnet-gen`` (Johnson et al. 2016 as used by CycleGAN, Zhu et al. 2017, App. 7.2):
  c7s1-ngf, ``n_down`` stride-2 downsamplings, ``n_blocks`` residual blocks,
  ``n_down`` transposed-conv upsamplings, c7s1-C_out, tanh. Reflection padding, instance norm.
- ``patchgan`` (Isola et al. 2017): stride-2 4x4 convs, LeakyReLU 0.2, then a stride-1
  conv and a 1-channel (k-channel) conv: one raw score per overlapping patch.
  ``n_layers=3`` is the 70x70 PatchGAN; small images want 1 or 2.
- ``srresnet`` (Ledig et al. 2017, Fig. 4): 9x9 conv + PReLU, B residual blocks
  (conv-BN-PReLU-conv-BN), a long skip, log2(scale) PixelShuffle x2 stages, 9x9 conv.
- ``srgan-d`` (Ledig et al. 2017, Fig. 4): 3x3 conv blocks with stride 1/2 alternating and
  doubling width, BN, LeakyReLU 0.2, then global pooling and a dense head (1024 -> k).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ganforge.errors import ConfigError
from ganforge.nets.common import maybe_sn, norm_layer, one_hot
from ganforge.registry import NETS


def _image_shape(shape, what: str, net: str) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise ConfigError(f"net {net!r} works on images (C, H, W); its {what} shape is {tuple(shape)}. "
                          "Use net 'mlp' for vector data")
    return tuple(int(s) for s in shape)


def _tile_labels(x: torch.Tensor, c: torch.Tensor | None, n_classes: int) -> torch.Tensor:
    """x (N, C, H, W) and labels -> (N, C + K, H, W) with the one-hot label as constant maps."""
    oh = one_hot(c, n_classes, x.shape[0], x.device)
    if oh is None:
        return x
    maps = oh.to(x.dtype).view(x.shape[0], -1, 1, 1).expand(-1, -1, x.shape[2], x.shape[3])
    return torch.cat([x, maps], dim=1)


class ResBlock(nn.Module):
    """x + conv-norm-ReLU-conv-norm(x), reflection padded (CycleGAN's residual block)."""

    def __init__(self, ch: int, norm: str) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3), norm_layer(norm, ch, 2), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3), norm_layer(norm, ch, 2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


@NETS.register("resnet-gen")
class ResnetGenerator(nn.Module):
    """CycleGAN/StarGAN ResNet generator x (N, C_in, H, W) [, c] -> (N, C_out, H, W); H, W divisible by 2^n_down."""

    def __init__(self, *, in_shape, out_shape, n_classes: int = 0, ngf: int = 64, n_down: int = 2,
                 n_blocks: int = 9, norm: str = "instance", out_activation: str = "tanh",
                 label: str = "channels") -> None:
        super().__init__()
        c_in, h, w = _image_shape(in_shape, "input", "resnet-gen")
        c_out, ho, wo = _image_shape(out_shape, "output", "resnet-gen")
        if (h, w) != (ho, wo):
            raise ConfigError(f"resnet-gen keeps the image size; input {h}x{w} != output {ho}x{wo}")
        if ngf < 1 or n_down < 0 or n_blocks < 0:
            raise ConfigError(f"resnet-gen needs ngf >= 1, n_down >= 0, n_blocks >= 0; got {ngf}, {n_down}, {n_blocks}")
        if h % (2**n_down) or w % (2**n_down):
            raise ConfigError(f"resnet-gen with n_down={n_down} needs H and W divisible by {2**n_down}; got {h}x{w}")
        if out_activation not in ("tanh", "none"):
            raise ConfigError(f"resnet-gen out_activation must be tanh or none, got {out_activation!r}")
        if label not in ("channels", "shift"):
            raise ConfigError(f"resnet-gen label must be 'channels' or 'shift', got {label!r}")
        norm_layer(norm, 1, 2)
        self.n_classes, self.out_shape, self.label = n_classes, (c_out, h, w), label
        # label "channels" (StarGAN, Choi et al. 2018, Sec. 3 and App. Table 4): K tiled one-hot maps
        # concatenated to the input. They are zero-padded (the paper's P3) while the image is reflection-
        # padded: constant maps padded by reflection give a constant conv response that the instance
        # norm right after it removes, so the label would never reach the net. The zero frame makes
        # the response vary in space and survive. label "shift": a learned per-channel shift of the
        # label added after that first normalisation instead.
        extra = n_classes if label == "channels" else 0
        self.pad = nn.ReflectionPad2d(3)
        self.stem = nn.Sequential(nn.Conv2d(c_in + extra, ngf, 7), norm_layer(norm, ngf, 2))
        self.label_shift = nn.Linear(n_classes, ngf) if n_classes and label == "shift" else None
        layers: list[nn.Module] = [nn.ReLU(True)]
        ch = ngf
        for _ in range(n_down):
            layers += [nn.Conv2d(ch, ch * 2, 3, stride=2, padding=1), norm_layer(norm, ch * 2, 2), nn.ReLU(True)]
            ch *= 2
        layers += [ResBlock(ch, norm) for _ in range(n_blocks)]
        for _ in range(n_down):
            layers += [nn.ConvTranspose2d(ch, ch // 2, 3, stride=2, padding=1, output_padding=1),
                       norm_layer(norm, ch // 2, 2), nn.ReLU(True)]
            ch //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ch, c_out, 7)]
        if out_activation == "tanh":
            layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        oh = one_hot(c, self.n_classes, x.shape[0], x.device)
        xp = self.pad(x)
        if oh is not None and self.label_shift is None:
            maps = oh.to(x.dtype)[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])
            xp = torch.cat([xp, nn.functional.pad(maps, (3, 3, 3, 3))], dim=1)
        h = self.stem(xp)
        if oh is not None and self.label_shift is not None:
            h = h + self.label_shift(oh.to(h.dtype))[:, :, None, None]
        return self.net(h)


@NETS.register("patchgan")
class PatchGAN(nn.Module):
    """PatchGAN critic x (N, C, H, W) [, c] -> raw scores (N, k, H', W'), one per receptive-field patch.

    ``features(x, c)`` is the trunk's last feature map (``feature_channels`` wide), for
    extra heads such as StarGAN's domain classifier.
    """

    def __init__(self, *, in_shape, out_shape=(1,), n_classes: int = 0, ndf: int = 64, n_layers: int = 3,
                 norm: str = "instance", spectral_norm: bool = False) -> None:
        super().__init__()
        c, h, w = _image_shape(in_shape, "input", "patchgan")
        if ndf < 1 or n_layers < 0:
            raise ConfigError(f"patchgan needs ndf >= 1 and n_layers >= 0, got {ndf}, {n_layers}")
        if min(h, w) < 2 ** (n_layers + 1):
            raise ConfigError(f"patchgan with n_layers={n_layers} needs images of at least {2 ** (n_layers + 1)} "
                              f"pixels a side, got {h}x{w}; lower n_layers")
        norm_layer(norm, 1, 2)
        k = int(out_shape[0]) if len(out_shape) else 1
        self.n_classes = n_classes
        sn = spectral_norm
        layers: list[nn.Module] = [maybe_sn(nn.Conv2d(c + n_classes, ndf, 4, 2, 1), sn), nn.LeakyReLU(0.2, True)]
        ch = ndf
        for i in range(1, n_layers):  # the first layer has no norm (pix2pix/CycleGAN)
            nxt = ndf * min(2**i, 8)
            layers += [maybe_sn(nn.Conv2d(ch, nxt, 4, 2, 1), sn), norm_layer(norm, nxt, 2), nn.LeakyReLU(0.2, True)]
            ch = nxt
        nxt = ndf * min(2**n_layers, 8)
        layers += [maybe_sn(nn.Conv2d(ch, nxt, 3, 1, 1), sn), norm_layer(norm, nxt, 2), nn.LeakyReLU(0.2, True)]
        self.trunk = nn.Sequential(*layers)
        self.feature_channels = nxt
        self.head = maybe_sn(nn.Conv2d(nxt, k, 3, 1, 1), sn)

    def features(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        return self.trunk(_tile_labels(x, c, self.n_classes))

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.features(x, c))


class _SRBlock(nn.Module):
    def __init__(self, ch: int, norm: str) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(ch, ch, 3, padding=1), norm_layer(norm, ch, 2), nn.PReLU(ch),
                                  nn.Conv2d(ch, ch, 3, padding=1), norm_layer(norm, ch, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


@NETS.register("srresnet")
class SRResNet(nn.Module):
    """SRResNet (Ledig et al. 2017): low-res (N, C, h, w) -> high-res (N, C, s h, s w), s = 2, 4, 8, ...

    ``residual=True`` adds a bicubic upsampling of the input to the output (a global skip,
    as in VDSR), so the net learns only the missing detail; the paper's net has none.
    """

    def __init__(self, *, in_shape, out_shape, n_classes: int = 0, channels: int = 64, n_blocks: int = 16,
                 norm: str = "batch", residual: bool = False, out_activation: str = "none") -> None:
        super().__init__()
        c, h, w = _image_shape(in_shape, "input", "srresnet")
        co, ho, wo = _image_shape(out_shape, "output", "srresnet")
        scale = ho // h
        if co != c or ho != h * scale or wo != w * scale or scale < 2 or scale & (scale - 1):
            raise ConfigError(f"srresnet maps (C, h, w) to (C, s h, s w) with s a power of 2 >= 2; got "
                              f"{tuple(in_shape)} -> {tuple(out_shape)}")
        if n_classes:
            raise ConfigError("srresnet is unconditional (n_classes must be 0)")
        if out_activation not in ("tanh", "none"):
            raise ConfigError(f"srresnet out_activation must be tanh or none, got {out_activation!r}")
        norm_layer(norm, 1, 2)
        self.scale, self.residual = scale, residual
        self.head = nn.Sequential(nn.Conv2d(c, channels, 9, padding=4), nn.PReLU(channels))
        self.blocks = nn.Sequential(*[_SRBlock(channels, norm) for _ in range(n_blocks)],
                                    nn.Conv2d(channels, channels, 3, padding=1), norm_layer(norm, channels, 2))
        ups: list[nn.Module] = []
        for _ in range(int(math.log2(scale))):
            ups += [nn.Conv2d(channels, channels * 4, 3, padding=1), nn.PixelShuffle(2), nn.PReLU(channels)]
        self.up = nn.Sequential(*ups, nn.Conv2d(channels, c, 9, padding=4))
        self.out_act = nn.Tanh() if out_activation == "tanh" else nn.Identity()

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        h = self.head(x)
        y = self.up(h + self.blocks(h))
        if self.residual:
            y = y + nn.functional.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)
        return self.out_act(y)


@NETS.register("srgan-d")
class SRGANCritic(nn.Module):
    """SRGAN's discriminator: x (N, C, H, W) -> (N, k) raw scores (VGG-style, strided convs, global pooling)."""

    def __init__(self, *, in_shape, out_shape=(1,), n_classes: int = 0, ndf: int = 64, n_blocks: int = 4,
                 hidden: int = 1024, spectral_norm: bool = False) -> None:
        super().__init__()
        c, _, _ = _image_shape(in_shape, "input", "srgan-d")
        if ndf < 1 or n_blocks < 1 or hidden < 1:
            raise ConfigError(f"srgan-d needs ndf, n_blocks, hidden >= 1; got {ndf}, {n_blocks}, {hidden}")
        sn, k = spectral_norm, int(out_shape[0]) if len(out_shape) else 1
        self.n_classes = n_classes
        layers: list[nn.Module] = [maybe_sn(nn.Conv2d(c + n_classes, ndf, 3, 1, 1), sn), nn.LeakyReLU(0.2, True)]
        ch = ndf
        for i in range(n_blocks):
            out = ndf * 2 ** ((i + 1) // 2)
            stride = 2 if i % 2 == 0 else 1
            layers += [maybe_sn(nn.Conv2d(ch, out, 3, stride, 1), sn), nn.BatchNorm2d(out), nn.LeakyReLU(0.2, True)]
            ch = out
        self.trunk = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), maybe_sn(nn.Linear(ch, hidden), sn),
                                  nn.LeakyReLU(0.2, True), maybe_sn(nn.Linear(hidden, k), sn))

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.trunk(_tile_labels(x, c, self.n_classes)))
