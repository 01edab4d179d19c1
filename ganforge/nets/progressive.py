"""Progressive growing of GANs (Karras, Aila, Laine & Lehtinen 2018, ICLR), generator and critic.

Both networks start at 4x4 and grow by doubling the resolution up to the data's
size (square, a power of two, 16 px and up); levels l = 0, 1, ..., L work at
4 * 2^l pixels. The schedule is a function of the training step (section 3):
with P = ``phase_steps``, phase p = step // P is

- p = 0: level 0, stable;
- p odd: fade in level (p + 1) / 2 with alpha = (step mod P) / P, from 0 up;
- p even, p > 0: level p / 2, stable (alpha = 1);
- p >= 2L: level L, stable, for the rest of the run.

The fade-in (their Figure 2): G's output is
``(1 - alpha) * up2(toRGB_{l-1}(h_{l-1})) + alpha * toRGB_l(block_l(h_{l-1}))``,
and D, symmetrically, blends ``fromRGB_{l-1}(pool2(x_l))`` with
``block_l(fromRGB_l(x_l))`` before its lower blocks. ``phase_steps: 0`` turns
growing off (always the full resolution).

Full-size images everywhere else: at a level below L the generator's output is
upsampled (nearest neighbour) to the data size, and the critic average-pools
every input (real, fake, penalty interpolates) down to its level's resolution
(repeated 2x2 means), so games, penalties, metrics and sample grids see the
data's shape at every step.

The schedule state rides with the weights: buffers ``step``, ``level`` and
``alpha`` are in the state dict (so checkpoints, EMA copies and deep copies for
sampling carry them, and a resume continues the fade exactly); the trainer sets
them before every training step through ``set_step`` (its generic schedule-by-
step hook).

The paper's other parts (section 4): equalized learning rate (weights drawn
from N(0, 1) and scaled at run time by He's constant gain / sqrt(fan_in);
``nets.common.EqualConv2d`` / ``EqualLinear``, shared with the stylegan net),
pixelwise feature normalisation after every convolution of G and on the latent
z, LeakyReLU(0.2), minibatch standard deviation (one extra feature map, over
groups of ``mbstd_group`` samples) before D's last block, linear outputs (no
tanh; samples are clamped to [-1, 1] where they become images). Channels:
``base`` at the full resolution, doubling per halving, capped at
``max_channels`` (the paper: 512 up to 32 px, then halving).

Conditioning (c: (N,) int or (N, K) soft labels): G concatenates a learned
label embedding (``embed_dim``) to the normalised z; D adds the projection term
<V y, phi(x)> (Miyato & Koyama 2018). Critic contract: ``features(x, c)`` is
the last hidden layer (N, F), ``head(h, c)`` the scores, ``forward = head o
features``.
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
    minibatch_stddev,
    numel,
    one_hot,
    pixel_norm,
    square_side,
)
from ganforge.registry import NETS

HE = math.sqrt(2.0)  # He et al. 2015's gain for (Leaky)ReLU layers


def schedule(step: int, phase_steps: int, top: int) -> tuple[int, float]:
    """(level, alpha) at ``step`` for levels 0..top, ``phase_steps`` steps per stabilise or fade phase."""
    if phase_steps <= 0:
        return top, 1.0
    p = step // phase_steps
    if p >= 2 * top:
        return top, 1.0
    if p % 2 == 0:
        return p // 2, 1.0
    return (p + 1) // 2, (step % phase_steps) / phase_steps


def levels_for(shape) -> int:
    """The top level L of data (C, R, R): R = 4 * 2^L, R a power of two >= 16."""
    return int(math.log2(square_side(shape, "progressive"))) - 2


def widths(top: int, base: int, max_channels: int) -> list[int]:
    """Channels per level, level 0 (4x4) first: base at the top level, doubling per halving, capped."""
    if base < 1 or max_channels < 1:
        raise ConfigError(f"progressive needs base >= 1 and max_channels >= 1, got {base}, {max_channels}")
    return [min(base * 2 ** (top - lv), max_channels) for lv in range(top + 1)]


def _he_conv(cin: int, cout: int, k: int, padding: int | None = None) -> EqualConv2d:
    """An equalised conv followed by a leaky ReLU: He's gain sqrt(2) in its run-time scale (Sec. 4.1)."""
    return EqualConv2d(cin, cout, k, gain=HE, padding=padding)


def downsample(x: torch.Tensor, times: int) -> torch.Tensor:
    """``times`` 2x2 average poolings (repeated, so pool(downsample(x, k)) == downsample(x, k + 1) exactly)."""
    for _ in range(times):
        x = F.avg_pool2d(x, 2)
    return x


def upsample(x: torch.Tensor, factor: int) -> torch.Tensor:
    return x if factor == 1 else F.interpolate(x, scale_factor=factor, mode="nearest")


class _Growing(nn.Module):
    """The schedule state shared by G and D: buffers step/level/alpha, set by ``set_step``."""

    def _init_schedule(self, top: int, phase_steps: int) -> None:
        if phase_steps < 0:
            raise ConfigError(f"progressive phase_steps must be >= 0 (0: no growing), got {phase_steps}")
        self.top, self.phase_steps = top, phase_steps
        level, alpha = schedule(0, phase_steps, top)
        self.register_buffer("step", torch.zeros((), dtype=torch.long))
        self.register_buffer("level", torch.tensor(level, dtype=torch.long))
        self.register_buffer("alpha", torch.tensor(alpha, dtype=torch.float32))

    @torch.no_grad()
    def set_step(self, step: int) -> None:
        """Move the schedule to training step ``step`` (called by the trainer before every step)."""
        level, alpha = schedule(int(step), self.phase_steps, self.top)
        self.step.fill_(int(step))
        self.level.fill_(level)
        self.alpha.fill_(alpha)

    def state(self) -> tuple[int, float]:
        """(level, alpha) now, as Python numbers."""
        return int(self.level), float(self.alpha)


class ProgressiveGenerator(_Growing):
    """z (N, z_dim) [, c] -> images (N, C, R, R); below the top level the output is upsampled (nearest) to R."""

    def __init__(self, *, in_shape, out_shape, n_classes: int = 0, base: int = 16, max_channels: int = 512,
                 phase_steps: int = 0, embed_dim: int = 32) -> None:
        super().__init__()
        self.in_shape, self.out_shape, self.n_classes = tuple(in_shape), tuple(out_shape), n_classes
        top = levels_for(self.out_shape)
        self._init_schedule(top, phase_steps)
        ch = widths(top, base, max_channels)
        self.embed = EqualLinear(n_classes, embed_dim, bias=False) if n_classes else None
        z_in = numel(in_shape) + (embed_dim if n_classes else 0)
        self.dense = EqualLinear(z_in, ch[0] * 16, gain=HE)
        self.blocks = nn.ModuleList([nn.Sequential(_he_conv(ch[0], ch[0], 3))])  # level 0: after the dense
        self.blocks.extend(nn.Sequential(_he_conv(ch[lv - 1], ch[lv], 3), _he_conv(ch[lv], ch[lv], 3))
                           for lv in range(1, top + 1))
        self.to_rgb = nn.ModuleList(EqualConv2d(c, self.out_shape[0], 1) for c in ch)

    def _block(self, lv: int, h: torch.Tensor) -> torch.Tensor:
        if lv > 0:
            h = upsample(h, 2)
        for conv in self.blocks[lv]:
            h = pixel_norm(F.leaky_relu(conv(h), 0.2))
        return h

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        level, alpha = self.state()
        h = pixel_norm(z.reshape(z.shape[0], -1))
        oh = one_hot(c, self.n_classes, z.shape[0], z.device)
        if oh is not None:
            h = torch.cat([h, self.embed(oh.to(h.dtype))], dim=1)
        h = pixel_norm(F.leaky_relu(self.dense(h), 0.2).reshape(h.shape[0], -1, 4, 4))
        for lv in range(level):  # h becomes h_{level-1}, the input of the newest block
            h = self._block(lv, h)
        out = self.to_rgb[level](self._block(level, h))
        if level > 0 and alpha < 1.0:  # fade-in: blend with the previous level's image, upsampled
            out = torch.lerp(upsample(self.to_rgb[level - 1](h), 2), out, alpha)
        return upsample(out, 2 ** (self.top - level))


class ProgressiveDiscriminator(ProjectionHead, _Growing):
    """images (N, C, R, R) [, c] -> scores (N, k); inputs are average-pooled to the current level's resolution."""

    def __init__(self, *, in_shape, out_shape, n_classes: int = 0, base: int = 16, max_channels: int = 512,
                 phase_steps: int = 0, mbstd_group: int = 4) -> None:
        super().__init__()
        if mbstd_group < 0:
            raise ConfigError(f"progressive mbstd_group must be >= 0 (0: off), got {mbstd_group}")
        self.in_shape, self.out_shape, self.n_classes = tuple(in_shape), tuple(out_shape), n_classes
        top = levels_for(self.in_shape)
        self._init_schedule(top, phase_steps)
        ch = widths(top, base, max_channels)
        self.mbstd_group = mbstd_group
        self.from_rgb = nn.ModuleList(_he_conv(self.in_shape[0], c, 1) for c in ch)
        self.blocks = nn.ModuleList([nn.Sequential(_he_conv(ch[0] + (mbstd_group > 0), ch[0], 3),
                                                   _he_conv(ch[0], ch[0], 4, padding=0))])
        self.blocks.extend(nn.Sequential(_he_conv(ch[lv], ch[lv], 3), _he_conv(ch[lv], ch[lv - 1], 3))
                           for lv in range(1, top + 1))
        self.n_features = ch[0]
        k = numel(self.out_shape)
        self.out = EqualLinear(self.n_features, k)
        self.project = EqualLinear(n_classes, self.n_features * k, bias=False) if n_classes else None

    def _block(self, lv: int, h: torch.Tensor) -> torch.Tensor:
        if lv == 0 and self.mbstd_group:
            h = minibatch_stddev(h, self.mbstd_group)
        for conv in self.blocks[lv]:
            h = F.leaky_relu(conv(h), 0.2)
        return F.avg_pool2d(h, 2) if lv > 0 else h

    def features(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """The last hidden layer (after the 4x4 convolution), flattened: (N, F). ``c`` is used by ``head``."""
        level, alpha = self.state()
        x = downsample(x, self.top - level)
        h = self._block(level, F.leaky_relu(self.from_rgb[level](x), 0.2))
        if level > 0 and alpha < 1.0:
            low = F.leaky_relu(self.from_rgb[level - 1](F.avg_pool2d(x, 2)), 0.2)
            h = torch.lerp(low, h, alpha)
        for lv in range(level - 1, -1, -1):
            h = self._block(lv, h)
        return h.flatten(1)



def progressive(*, in_shape, out_shape, n_classes: int = 0, base: int = 16, max_channels: int = 512,
                phase_steps: int = 0, mbstd_group: int = 4, embed_dim: int = 32) -> nn.Module:
    """Progressive GAN net: (z_dim,) -> image builds G; image -> (k,) builds D.

    base: channels at the full resolution (doubling per halving, capped at
    max_channels); phase_steps: training steps per stabilise or fade phase (give
    G and D the same; 0: no growing); mbstd_group: D's minibatch-stddev group
    size (0: off); embed_dim: G's label embedding (conditional).
    """
    in_shape, out_shape = tuple(in_shape), tuple(out_shape)
    if len(in_shape) == 1 and len(out_shape) == 3:
        return ProgressiveGenerator(in_shape=in_shape, out_shape=out_shape, n_classes=n_classes, base=base,
                                    max_channels=max_channels, phase_steps=phase_steps, embed_dim=embed_dim)
    if len(in_shape) == 3:
        return ProgressiveDiscriminator(in_shape=in_shape, out_shape=out_shape, n_classes=n_classes, base=base,
                                        max_channels=max_channels, phase_steps=phase_steps, mbstd_group=mbstd_group)
    raise ConfigError(f"progressive maps a latent vector to an image (generator) or an image to scores "
                      f"(discriminator); got in_shape {in_shape} -> out_shape {out_shape}")


NETS.add("progressive", progressive,
         help="Progressive growing (Karras et al. 2018): base, max_channels, phase_steps, mbstd_group")
