"""DCGAN generator and discriminator (Radford, Metz & Chintala 2016), any resolution, conditional.

The architecture guidelines of the paper, section 3:

- no pooling: the discriminator downsamples with strided convolutions
  (kernel 4, stride 2), the generator upsamples with transposed convolutions;
- batch norm in both networks except at the generator's output and the
  discriminator's input layer (``norm`` picks another layer by name from
  ``nets.common.NORMS``; ``"none"`` for WGAN-GP critics, whose penalty is per
  sample);
- ReLU in the generator with tanh on its output; LeakyReLU(0.2) in the
  discriminator;
- no hidden fully connected layers: G's first layer projects z to a (C, s, s)
  map with a transposed convolution from 1x1 (a matrix multiplication, as in
  the paper), D's last layer maps the flattened last feature map to the k
  outputs;
- weights initialised from N(0, 0.02) (batch-norm scales from N(1, 0.02)).

Resolution: a data shape (C, H, W) is reached from a start map (h0, w0) by
``n`` doublings, n as large as possible with h0, w0 >= 4 (28 -> 7x7 and 2
doublings; 32 -> 4x4 and 3; 64 -> 4; 128 -> 5). H and W must be multiples of
4 and at least 16. Channels: ``base`` at the largest feature map, doubling
per halving of the resolution, capped at ``max_channels``.

Conditioning (c: (N,) int labels or (N, K) soft labels):
- generator: a learned label embedding (a bias-free linear map of the one-hot
  label, ``embed_dim`` wide) concatenated to z;
- discriminator: a *projection discriminator* (Miyato & Koyama 2018) by
  default, D(x, c) = psi(phi(x)) + <V y, phi(x)> with phi = ``features``;
  ``conditioning="concat"`` instead appends the one-hot label as K constant
  input channels (Mirza & Osindero 2014).

Critic contract (stabilisers build on it): ``features(x, c)`` is the last
hidden layer, flattened, (N, F); ``head(h, c)`` maps it to the (N, k) scores,
and ``forward(x, c) == head(features(x, c), c)``.
"""

from __future__ import annotations

import torch
from torch import nn

from ganforge.errors import ConfigError
from ganforge.nets.common import ProjectionHead, maybe_sn, minibatch_stddev, norm_layer, numel, one_hot
from ganforge.registry import NETS

CONDITIONING = ("projection", "concat")


def plan(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """(h0, w0, n): the start map and the number of stride-2 doublings that reach (H, W)."""
    if len(shape) != 3:
        raise ConfigError(f"dcgan works on images (C, H, W); got data shape {tuple(shape)}. Use the mlp net for "
                          "vectors")
    _, h, w = (int(s) for s in shape)
    if h < 16 or w < 16 or h % 4 or w % 4:
        raise ConfigError(f"dcgan needs image height and width that are multiples of 4 and >= 16; got {h}x{w}. "
                          "Set the data's resolution, e.g. --data.resolution=32")
    n = 0
    while h % 2 == 0 and w % 2 == 0 and min(h, w) // 2 >= 4:
        h, w, n = h // 2, w // 2, n + 1
    return h, w, n


def _widths(n: int, base: int, max_channels: int) -> list[int]:
    """Channels of the n feature maps from the smallest (start map) to the largest."""
    if base < 1 or max_channels < 1:
        raise ConfigError(f"dcgan needs base >= 1 and max_channels >= 1, got {base}, {max_channels}")
    return [min(base * 2 ** (n - 1 - i), max_channels) for i in range(n)]


def dcgan_init(module: nn.Module) -> None:
    """N(0, 0.02) for conv/linear weights, N(1, 0.02) for norm scales, zero biases (DCGAN section 4)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            w = m.parametrizations.weight.original if hasattr(m, "parametrizations") else m.weight
            nn.init.normal_(w, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm, nn.InstanceNorm2d)) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def _check(norm: str, conditioning: str | None = None, mbstd_group: int = 0) -> None:
    norm_layer(norm, 1, 2)  # validates the name with a message listing the valid ones
    if not isinstance(mbstd_group, int) or isinstance(mbstd_group, bool) or mbstd_group < 0:
        raise ConfigError(f"dcgan mbstd_group must be an integer >= 0 (0: off; e.g. 4: the std over groups of 4 "
                          f"samples), got {mbstd_group!r}")
    if conditioning is not None and conditioning not in CONDITIONING:
        raise ConfigError(f"dcgan conditioning must be one of {', '.join(CONDITIONING)}, got {conditioning!r}")


class DCGANGenerator(nn.Module):
    """z (N, z_dim) [, c] -> images (N, C, H, W) in [-1, 1]."""

    def __init__(self, *, in_shape, out_shape, n_classes: int = 0, base: int = 64, max_channels: int = 512,
                 norm: str = "batch", spectral_norm: bool = False, embed_dim: int = 32) -> None:
        super().__init__()
        _check(norm)
        self.in_shape, self.out_shape, self.n_classes = tuple(in_shape), tuple(out_shape), n_classes
        h0, w0, n = plan(self.out_shape)
        widths = _widths(n, base, max_channels)
        self.embed = nn.Linear(n_classes, embed_dim, bias=False) if n_classes else None
        z_in = numel(in_shape) + (embed_dim if n_classes else 0)
        layers: list[nn.Module] = [maybe_sn(nn.ConvTranspose2d(z_in, widths[0], (h0, w0), bias=False), spectral_norm),
                                   norm_layer(norm, widths[0], 2), nn.ReLU()]
        for cin, cout in zip(widths[:-1], widths[1:], strict=True):
            layers += [maybe_sn(nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), spectral_norm),
                       norm_layer(norm, cout, 2), nn.ReLU()]
        layers += [maybe_sn(nn.ConvTranspose2d(widths[-1], self.out_shape[0], 4, 2, 1), spectral_norm), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        dcgan_init(self)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        h = z.reshape(z.shape[0], -1)
        oh = one_hot(c, self.n_classes, z.shape[0], z.device)
        if oh is not None:
            h = torch.cat([h, self.embed(oh.to(h.dtype))], dim=1)
        return self.net(h[:, :, None, None])


class DCGANDiscriminator(ProjectionHead, nn.Module):
    """images (N, C, H, W) [, c] -> scores (N, k); ``features``/``head`` split off the output layer."""

    def __init__(self, *, in_shape, out_shape, n_classes: int = 0, base: int = 64, max_channels: int = 512,
                 norm: str = "batch", spectral_norm: bool = False, conditioning: str = "projection",
                 mbstd_group: int = 0) -> None:
        super().__init__()
        _check(norm, conditioning, mbstd_group)
        self.in_shape, self.out_shape, self.n_classes = tuple(in_shape), tuple(out_shape), n_classes
        self.conditioning, self.mbstd_group = conditioning, mbstd_group
        h0, w0, n = plan(self.in_shape)
        widths = _widths(n, base, max_channels)[::-1]  # largest map first
        extra = n_classes if (n_classes and conditioning == "concat") else 0
        cin = self.in_shape[0] + extra
        layers: list[nn.Module] = []
        for i, cout in enumerate(widths):  # no norm on the input layer
            layers += [maybe_sn(nn.Conv2d(cin, cout, 4, 2, 1, bias=i == 0 or norm == "none"), spectral_norm),
                       norm_layer(norm, cout, 2) if i else nn.Identity(), nn.LeakyReLU(0.2)]
            cin = cout
        self.body = nn.Sequential(*layers)
        self.n_features = (widths[-1] + (mbstd_group > 0)) * h0 * w0
        k = numel(self.out_shape)
        self.out = maybe_sn(nn.Linear(self.n_features, k), spectral_norm)
        self.project = None
        if n_classes and conditioning == "projection":
            self.project = maybe_sn(nn.Linear(n_classes, self.n_features * k, bias=False), spectral_norm)
        dcgan_init(self)

    def features(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """The last hidden layer, flattened: (N, F)."""
        oh = one_hot(c, self.n_classes, x.shape[0], x.device)
        if oh is not None and self.conditioning == "concat":
            maps = oh.to(x.dtype)[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])
            x = torch.cat([x, maps], dim=1)
        h = self.body(x)
        if self.mbstd_group:
            h = minibatch_stddev(h, self.mbstd_group)
        return h.flatten(1)



def dcgan(*, in_shape, out_shape, n_classes: int = 0, base: int = 64, max_channels: int = 512, norm: str = "batch",
          spectral_norm: bool = False, embed_dim: int = 32, conditioning: str = "projection",
          mbstd_group: int = 0) -> nn.Module:
    """DCGAN net: (z_dim,) -> image builds the generator; image -> (k,) builds the discriminator.

    base: channels of the largest feature map; max_channels caps the deepest;
    norm: a name from nets.common.NORMS ("batch" as in the paper);
    embed_dim: width of G's label embedding (conditional); conditioning: D's
    label input, "projection" (Miyato & Koyama 2018) or "concat" (one-hot maps);
    mbstd_group: the discriminator appends the minibatch standard deviation over groups of this many samples
    (Karras et al. 2018) to its last feature map as one more channel (0: off; discriminators only).
    """
    in_shape, out_shape = tuple(in_shape), tuple(out_shape)
    if len(in_shape) == 1 and len(out_shape) == 3:
        _check(norm, conditioning)
        if mbstd_group:
            raise ConfigError(f"dcgan mbstd_group is a discriminator option (its last feature map gets the "
                              f"minibatch std); the generator got mbstd_group={mbstd_group!r}: set it under nets.d")
        return DCGANGenerator(in_shape=in_shape, out_shape=out_shape, n_classes=n_classes, base=base,
                              max_channels=max_channels, norm=norm, spectral_norm=spectral_norm, embed_dim=embed_dim)
    if len(in_shape) == 3:
        return DCGANDiscriminator(in_shape=in_shape, out_shape=out_shape, n_classes=n_classes, base=base,
                                  max_channels=max_channels, norm=norm, spectral_norm=spectral_norm,
                                  conditioning=conditioning, mbstd_group=mbstd_group)
    raise ConfigError(f"dcgan maps a latent vector to an image (generator) or an image to scores (discriminator); "
                      f"got in_shape {in_shape} -> out_shape {out_shape}")


NETS.add("dcgan", dcgan, help="DCGAN (Radford et al. 2016): base, max_channels, norm, spectral_norm, conditioning, "
          "mbstd_group")
