"""StyleGAN2 generator and residual discriminator (Karras et al. 2020), any square size from 16 px in powers of two.

Generator (Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN", Fig. 2d and 7):

- mapping network f: z -> w. z is normalised to unit second moment ("pixel norm"), then
  ``mapping_layers`` fully connected layers of width ``w_dim`` with leaky ReLU, trained with the
  learning-rate multiplier ``lr_multiplier`` (0.01 in the paper). With labels, a learned embedding of
  the one-hot label, also normalised, is concatenated to z (as in StyleGAN2-ADA).
- synthesis network: a learned constant 4x4 input; per resolution two 3x3 *modulated, demodulated*
  convolutions (eq. 1-3: w'_ijk = s_i w_ijk, w''_ijk = w'_ijk / sqrt(sum_ik w'_ijk^2 + eps), s = A(w) a
  learned affine map of w), each followed by per-pixel noise times a learned per-channel strength, a
  bias and leaky ReLU; the first convolution of a block works on the ``upsample``d ("bilinear" or
  "nearest"; the paper uses a FIR filter) map. Each resolution has a 1x1 toRGB (modulated, not
  demodulated) whose outputs are upsampled and summed ("skip" generator). The output is linear.
- style inputs: w is broadcast to ``num_ws`` = 2 log2(R) - 2 layers (R the resolution): the 4x4
  convolution takes ws[0], block b >= 1 its convolutions ws[2b-1], ws[2b], toRGB of block b ws[2b+1]
  (a toRGB shares its index with the next block's first convolution, as in the official code).
- style mixing regularisation (Karras et al. 2019, Sec. 3.1): in training mode, with probability
  ``mixing`` per batch, a second z gives w2, and the style inputs from a crossover index L drawn
  uniformly from 1 .. num_ws-1 on are w2's (``mix_styles``).
- truncation (Karras et al. 2019, Sec. 3.1 / Appendix B): ``w_avg`` is an EMA (decay ``w_avg_beta``) of
  the batch mean of w, updated by every training-mode forward. An eval-mode forward maps
  w' = w_avg + psi (w - w_avg) with psi = ``self.truncation`` (1.0: unchanged; ``ganforge sample
  --truncation PSI`` sets it on a loaded generator).
- noise inputs: training draws fresh noise every forward; eval mode uses a fixed noise map per layer
  (a buffer, saved with the weights), so a sample depends only on z and c (``eval_noise``: "const", or
  "none" for no noise at all).
- ``images_and_w(z, c)`` returns the images and the w they were made from (no mixing, no truncation)
  for the path-length penalty (``penalties.PathLength``), whose running mean length a lives here as
  the buffer ``pl_mean`` so that it rides in checkpoints (a penalty object is not a module).

Discriminator (Fig. 7, "residual"): a 1x1 fromRGB at full resolution, then per resolution a 3x3
convolution, 2x average pooling and a second 3x3 convolution, added to a 1x1 convolution of the
pooled input and scaled by 1/sqrt(2); at 4x4 the minibatch standard deviation (Karras et al. 2018,
Sec. 3) over groups of ``mbstd_group`` samples (the largest divisor of the batch up to it; 0: off) as an
extra channel, a 3x3 convolution and two fully connected layers. Critic contract as in nets.dcgan:
``features(x, c)`` (N, F), ``head(h, c)`` with a projection term (Miyato & Koyama 2018) when labelled.

Widths: ``base`` channels at the largest map, doubling per halving, capped at ``max_channels``. Every
weight uses the equalised learning rate (Karras et al. 2018, Sec. 4.1; ``nets.common.EqualLinear`` and
``EqualConv2d``, shared with the progressive net): stored N(0, 1) / lr_mul and scaled by lr_mul / sqrt(fan_in)
at run time. Leaky ReLU(0.2) is followed by a gain of sqrt(2) (``nets.common.lrelu_gain``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.errors import ConfigError
from ganforge.nets.common import (
    EqualConv2d,
    EqualLinear,
    ProjectionHead,
    lrelu_gain,
    minibatch_stddev,
    numel,
    one_hot,
    pixel_norm,
    square_side,
)
from ganforge.registry import NETS

UPSAMPLE = ("bilinear", "nearest")
EVAL_NOISE = ("const", "none")
SQRT2 = math.sqrt(2.0)


def resolution(shape, what: str = "stylegan") -> int:
    """The side R of a square (C, R, R) image shape with R a power of two >= 16."""
    return square_side(shape, what)


def widths(res: int, base: int, max_channels: int) -> dict[int, int]:
    """{resolution: channels} from 4 to ``res``: ``base`` at res, doubling per halving, capped."""
    if base < 1 or max_channels < 1:
        raise ConfigError(f"stylegan needs base >= 1 and max_channels >= 1, got {base}, {max_channels}")
    return {r: min(base * res // r, max_channels) for r in (2 ** i for i in range(2, int(math.log2(res)) + 1))}


def mix_styles(ws1: torch.Tensor, ws2: torch.Tensor, cutoff: int) -> torch.Tensor:
    """Style mixing: ws1's style inputs (N, L, w_dim) before layer ``cutoff``, ws2's from it on."""
    return torch.cat([ws1[:, :cutoff], ws2[:, cutoff:]], dim=1)


# ----------------------------------------------------------------------------- layers
class ModulatedConv2d(nn.Module):
    """StyleGAN2 eq. 1-3: a k x k convolution whose weights are scaled per input channel by the style
    s = A(w) (affine, bias initialised to 1) and, with ``demodulate``, renormalised per output channel."""

    def __init__(self, cin: int, cout: int, k: int, w_dim: int, *, demodulate: bool = True) -> None:
        super().__init__()
        self.affine = EqualLinear(w_dim, cin, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(cout, cin, k, k))
        self.scale, self.demodulate = 1.0 / math.sqrt(cin * k * k), demodulate

    def modulated_weight(self, s: torch.Tensor) -> torch.Tensor:
        """Styles s (N, Cin) -> per-sample weights (N, Cout, Cin, k, k): eq. 1, then eq. 3 if demodulating."""
        w = self.weight[None] * self.scale * s[:, None, :, None, None]
        if self.demodulate:
            w = w * (w.square().sum(dim=(2, 3, 4), keepdim=True) + 1e-8).rsqrt()
        return w

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """x (N, Cin, H, W), w (N, w_dim) -> (N, Cout, H, W).

        The per-sample convolution with ``modulated_weight`` (a grouped convolution) equals scaling
        x's channels by s, one shared convolution, and scaling its output channels by the
        demodulation factors d_j = (sum_i s_i^2 sum_k w_ijk^2 + eps)^(-1/2): the convolution is linear.
        """
        s = self.affine(w)
        weight = self.weight * self.scale
        x = F.conv2d(x * s[:, :, None, None], weight, padding=weight.shape[-1] // 2)
        if self.demodulate:
            d = (s.square() @ weight.square().sum(dim=(2, 3)).t() + 1e-8).rsqrt()  # (N, Cout)
            x = x * d[:, :, None, None]
        return x


class StyleLayer(nn.Module):
    """[upsample] -> modulated 3x3 conv -> + noise * per-channel strength -> + bias -> leaky ReLU."""

    def __init__(self, cin: int, cout: int, w_dim: int, res: int, *, up: str | None) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(cin, cout, 3, w_dim)
        self.up = up
        self.noise_strength = nn.Parameter(torch.zeros(cout))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.register_buffer("noise_const", torch.randn(1, 1, res, res))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise: str) -> torch.Tensor:
        if self.up:
            x = _upsample(x, self.up)
        x = self.conv(x, w)
        if noise == "random":
            x = x + torch.randn(x.shape[0], 1, *x.shape[2:], device=x.device, dtype=x.dtype) * \
                self.noise_strength[None, :, None, None]
        elif noise == "const":
            x = x + self.noise_const.to(x.dtype) * self.noise_strength[None, :, None, None]
        return lrelu_gain(x + self.bias[None, :, None, None])


class ToRGB(nn.Module):
    """Modulated 1x1 convolution, not demodulated, plus bias: features -> image channels."""

    def __init__(self, cin: int, channels: int, w_dim: int) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(cin, channels, 1, w_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return self.conv(x, w) + self.bias[None, :, None, None]


def _upsample(x: torch.Tensor, mode: str) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode=mode, align_corners=False if mode == "bilinear" else None)


# ----------------------------------------------------------------------------- generator
class StyleGANGenerator(nn.Module):
    """z (N, z_dim) [, c] -> images (N, C, R, R); see the module docstring."""

    def __init__(self, *, in_shape, out_shape, n_classes: int = 0, base: int = 64, max_channels: int = 512,
                 w_dim: int = 512, mapping_layers: int = 8, lr_multiplier: float = 0.01, mixing: float = 0.9,
                 w_avg_beta: float = 0.995, upsample: str = "bilinear", eval_noise: str = "const") -> None:
        super().__init__()
        self.in_shape, self.out_shape, self.n_classes = tuple(in_shape), tuple(out_shape), n_classes
        res = resolution(self.out_shape)
        ch = widths(res, base, max_channels)
        self.z_dim, self.w_dim, self.mixing, self.w_avg_beta = numel(in_shape), w_dim, mixing, w_avg_beta
        self.eval_noise = eval_noise
        self.truncation = 1.0  # psi of the eval-mode forward; set at sampling time, not saved
        self.embed = EqualLinear(n_classes, w_dim) if n_classes else None
        dims = [self.z_dim + (w_dim if n_classes else 0)] + [w_dim] * mapping_layers
        self.mapping_net = nn.Sequential(*[EqualLinear(a, b, lr_mul=lr_multiplier, act=True)
                                           for a, b in zip(dims[:-1], dims[1:], strict=True)])
        self.const = nn.Parameter(torch.randn(ch[4], 4, 4))
        self.layers = nn.ModuleList([StyleLayer(ch[4], ch[4], w_dim, 4, up=None)])
        self.to_rgb = nn.ModuleList([ToRGB(ch[4], self.out_shape[0], w_dim)])
        self.upsample = upsample
        prev = ch[4]
        for r, c in ch.items():
            if r == 4:
                continue
            self.layers.extend([StyleLayer(prev, c, w_dim, r, up=upsample), StyleLayer(c, c, w_dim, r, up=None)])
            self.to_rgb.append(ToRGB(c, self.out_shape[0], w_dim))
            prev = c
        self.num_ws = len(self.layers) + 1
        self.register_buffer("w_avg", torch.zeros(w_dim))
        self.register_buffer("pl_mean", torch.zeros(()))  # penalties.PathLength's running length a

    # -- the two networks ---------------------------------------------------------------
    def mapping(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """f(z [, c]) = w: (N, z_dim) -> (N, w_dim)."""
        x = pixel_norm(z.reshape(z.shape[0], -1))
        oh = one_hot(c, self.n_classes, z.shape[0], z.device)
        if oh is not None:
            x = torch.cat([x, pixel_norm(self.embed(oh.to(x.dtype)))], dim=1)
        return self.mapping_net(x)

    def broadcast(self, w: torch.Tensor) -> torch.Tensor:
        """w (N, w_dim) -> style inputs (N, num_ws, w_dim), the same w for every layer."""
        return w[:, None, :].expand(-1, self.num_ws, -1)

    def synthesis(self, ws: torch.Tensor, noise: str = "random") -> torch.Tensor:
        """Style inputs ws (N, num_ws, w_dim) -> images (N, C, R, R); noise: "random", "const" or "none"."""
        x = self.const[None].expand(ws.shape[0], -1, -1, -1)
        x = self.layers[0](x, ws[:, 0], noise)
        img = self.to_rgb[0](x, ws[:, 1])
        for b in range(1, len(self.to_rgb)):
            x = self.layers[2 * b - 1](x, ws[:, 2 * b - 1], noise)
            x = self.layers[2 * b](x, ws[:, 2 * b], noise)
            img = _upsample(img, self.upsample) + self.to_rgb[b](x, ws[:, 2 * b + 1])
        return img

    def truncate(self, w: torch.Tensor, psi: float) -> torch.Tensor:
        """w_avg + psi (w - w_avg); psi = 1 returns w itself."""
        return w if psi == 1 else self.w_avg.to(w.dtype).lerp(w, psi)

    # -- what the games call --------------------------------------------------------------
    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        w = self.mapping(z, c)
        if not self.training:
            return self.synthesis(self.broadcast(self.truncate(w, self.truncation)), self.eval_noise)
        with torch.no_grad():
            self.w_avg.copy_(w.detach().float().mean(0).lerp(self.w_avg, self.w_avg_beta))
        ws = self.broadcast(w)
        if self.mixing > 0 and float(torch.rand(())) < self.mixing:
            cutoff = int(torch.randint(1, self.num_ws, ()))
            ws = mix_styles(ws, self.broadcast(self.mapping(torch.randn_like(z), c)), cutoff)
        return self.synthesis(ws, "random")

    def images_and_w(self, z: torch.Tensor, c: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(images, w): G's images for z and the w (N, w_dim) they were made from, every layer taking w
        (no mixing, no truncation; noise as the mode's forward), for gradients with respect to w."""
        w = self.mapping(z, c)
        return self.synthesis(self.broadcast(w), "random" if self.training else self.eval_noise), w


# ----------------------------------------------------------------------------- discriminator
class DBlock(nn.Module):
    """Residual block: (conv3x3 -> avgpool -> conv3x3 + conv1x1(avgpool(x))) / sqrt(2)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv0, self.conv1 = EqualConv2d(cin, cin, 3, act=True), EqualConv2d(cin, cout, 3, act=True)
        self.skip = EqualConv2d(cin, cout, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.skip(F.avg_pool2d(x, 2))
        x = self.conv1(F.avg_pool2d(self.conv0(x), 2))
        return (x + y) / SQRT2


class StyleGANDiscriminator(ProjectionHead, nn.Module):
    """images (N, C, R, R) [, c] -> scores (N, k); ``features``/``head`` as in nets.dcgan."""

    def __init__(self, *, in_shape, out_shape, n_classes: int = 0, base: int = 64, max_channels: int = 512,
                 mbstd_group: int = 4) -> None:
        super().__init__()
        self.in_shape, self.out_shape, self.n_classes = tuple(in_shape), tuple(out_shape), n_classes
        res = resolution(self.in_shape)
        ch = widths(res, base, max_channels)
        self.from_rgb = EqualConv2d(self.in_shape[0], ch[res], 1, act=True)
        self.blocks = nn.Sequential(*[DBlock(ch[r], ch[r // 2]) for r in sorted(ch, reverse=True) if r > 4])
        self.mbstd_group = mbstd_group
        c4 = ch[4]
        self.conv = EqualConv2d(c4 + (1 if mbstd_group else 0), c4, 3, act=True)
        self.fc = EqualLinear(c4 * 16, c4, act=True)
        self.n_features = c4
        k = numel(self.out_shape)
        self.out = EqualLinear(c4, k)
        self.project = EqualLinear(n_classes, c4 * k, bias=False) if n_classes else None

    def features(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """The last hidden layer: (N, F)."""
        x = self.blocks(self.from_rgb(x))
        if self.mbstd_group:
            x = minibatch_stddev(x, self.mbstd_group)
        return self.fc(self.conv(x).flatten(1))



def stylegan(*, in_shape, out_shape, n_classes: int = 0, base: int = 64, max_channels: int = 512, w_dim: int = 512,
             mapping_layers: int = 8, lr_multiplier: float = 0.01, mixing: float = 0.9, w_avg_beta: float = 0.995,
             upsample: str = "bilinear", eval_noise: str = "const", mbstd_group: int = 4) -> nn.Module:
    """StyleGAN2 net: (z_dim,) -> image builds the generator; image -> (k,) the residual discriminator.

    base, max_channels: widths (both nets); generator: w_dim, mapping_layers, lr_multiplier (mapping
    network), mixing (style-mixing probability), w_avg_beta (decay of w's average for truncation),
    upsample ("bilinear" | "nearest"), eval_noise ("const" | "none"); discriminator: mbstd_group (0: off).
    """
    in_shape, out_shape = tuple(in_shape), tuple(out_shape)
    checks = [
        (w_dim >= 1, f"stylegan w_dim must be >= 1, got {w_dim}"),
        (mapping_layers >= 1, f"stylegan mapping_layers must be >= 1, got {mapping_layers}"),
        (lr_multiplier > 0, f"stylegan lr_multiplier must be > 0, got {lr_multiplier}"),
        (0 <= mixing <= 1, f"stylegan mixing (style-mixing probability) must be in [0, 1], got {mixing}"),
        (0 <= w_avg_beta < 1, f"stylegan w_avg_beta must be in [0, 1), got {w_avg_beta}"),
        (upsample in UPSAMPLE, f"stylegan upsample must be one of {', '.join(UPSAMPLE)}, got {upsample!r}"),
        (eval_noise in EVAL_NOISE, f"stylegan eval_noise must be one of {', '.join(EVAL_NOISE)}, got {eval_noise!r}"),
        (mbstd_group >= 0, f"stylegan mbstd_group must be >= 0 (0: no minibatch stddev), got {mbstd_group}"),
    ]
    for ok, msg in checks:
        if not ok:
            raise ConfigError(msg)
    if len(in_shape) == 1 and len(out_shape) == 3:
        return StyleGANGenerator(in_shape=in_shape, out_shape=out_shape, n_classes=n_classes, base=base,
                                 max_channels=max_channels, w_dim=w_dim, mapping_layers=mapping_layers,
                                 lr_multiplier=lr_multiplier, mixing=mixing, w_avg_beta=w_avg_beta,
                                 upsample=upsample, eval_noise=eval_noise)
    if len(in_shape) == 3:
        return StyleGANDiscriminator(in_shape=in_shape, out_shape=out_shape, n_classes=n_classes, base=base,
                                     max_channels=max_channels, mbstd_group=mbstd_group)
    raise ConfigError(f"stylegan maps a latent vector to an image (generator) or an image to scores "
                      f"(discriminator); got in_shape {in_shape} -> out_shape {out_shape}")


NETS.add("stylegan", stylegan, help="StyleGAN2 (Karras et al. 2020): mapping net, modulated convs, noise, "
                                    "style mixing, truncation; residual D with minibatch stddev")


@torch.no_grad()
def style_mixing_figure(g: StyleGANGenerator, z: torch.Tensor, cols: int, cutoff: int,
                        c: torch.Tensor | None = None) -> torch.Tensor:
    """The style-mixing figure (Karras et al. 2019, Fig. 3) from an eval-mode generator.

    z (cols + rows, z_dim): the first ``cols`` codes are source A (top row), the others source B (left
    column). Cell (r, k) takes B_r's style inputs before layer ``cutoff`` (coarse: pose, shape) and
    A_k's from it on (fine: texture, colour). w is truncated with ``g.truncation``. Returns
    ((rows + 1) * (cols + 1), C, H, W) row by row; the top-left cell is blank (-1).
    """
    if not 1 <= cutoff < g.num_ws:
        raise ConfigError(f"--style-mix takes the layer where A's styles start, 1..{g.num_ws - 1} for this "
                          f"generator ({g.num_ws} style inputs); got {cutoff}")
    ws = g.broadcast(g.truncate(g.mapping(z, c), g.truncation))
    a, b = ws[:cols], ws[cols:]
    images = g.synthesis(ws, g.eval_noise)
    blank = torch.full_like(images[:1], -1.0)
    rows = [torch.cat([blank, images[:cols]])]
    for r in range(len(b)):
        mixed = mix_styles(b[r:r + 1].expand(cols, -1, -1), a, cutoff)
        rows.append(torch.cat([images[cols + r:cols + r + 1], g.synthesis(mixed, g.eval_noise)]))
    return torch.cat(rows)
