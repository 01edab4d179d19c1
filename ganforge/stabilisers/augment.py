"""Differentiable augmentation for the critic (DiffAugment; Zhao et al. 2020).

The same random family of transforms is applied to real and to fake images
before the critic, in both the critic's and the generator's phase; each
transform is differentiable with respect to its input, so G learns through it.
Images are (N, C, H, W) in [-1, 1]; parameters are drawn per sample.

- color: brightness + U(-0.5, 0.5); saturation (x - channel mean) * U(0, 2) + mean;
  contrast (x - image mean) * U(0.5, 1.5) + mean.
- translation: an integer shift of up to 1/8 of the size per axis, zero padded.
- cutout: a square of half the size, at a random place, set to 0.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from ganforge.errors import ConfigError


def _u(n: int, lo: float, hi: float, x: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
    r = torch.rand(n, 1, 1, 1, generator=gen, device="cpu" if gen is not None else x.device)
    return (lo + (hi - lo) * r).to(device=x.device, dtype=x.dtype)


def _randint(lo: int, hi: int, n: int, x: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
    """Integers in [lo, hi] inclusive, shape (n,)."""
    r = torch.randint(lo, hi + 1, (n,), generator=gen, device="cpu" if gen is not None else x.device)
    return r.to(x.device)


def color(x: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
    n = x.shape[0]
    x = x + _u(n, -0.5, 0.5, x, gen)
    mean_c = x.mean(dim=1, keepdim=True)
    x = (x - mean_c) * _u(n, 0.0, 2.0, x, gen) + mean_c
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * _u(n, 0.5, 1.5, x, gen) + mean


def translation(x: torch.Tensor, gen: torch.Generator | None = None, ratio: float = 0.125) -> torch.Tensor:
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy, dx = _randint(-sh, sh, n, x, gen), _randint(-sw, sw, n, x, gen)
    padded = F.pad(x, (sw, sw, sh, sh))
    # out[i, :, r, c] = x[i, :, r - dy_i, c - dx_i] (0 outside): a gather from the padded image
    rows = (torch.arange(h, device=x.device)[None, :] - dy[:, None] + sh)   # (N, H)
    cols = (torch.arange(w, device=x.device)[None, :] - dx[:, None] + sw)   # (N, W)
    idx = torch.arange(n, device=x.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[idx, rows[:, :, None], cols[:, None, :]]  # (N, H, W, C)
    return out.permute(0, 3, 1, 2)


def cutout(x: torch.Tensor, gen: torch.Generator | None = None, ratio: float = 0.5) -> torch.Tensor:
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    top, left = _randint(0, h - ch, n, x, gen), _randint(0, w - cw, n, x, gen)
    r = torch.arange(h, device=x.device)[None, :]
    c = torch.arange(w, device=x.device)[None, :]
    in_r = (r >= top[:, None]) & (r < top[:, None] + ch)      # (N, H)
    in_c = (c >= left[:, None]) & (c < left[:, None] + cw)    # (N, W)
    keep = ~(in_r[:, :, None] & in_c[:, None, :])
    return x * keep[:, None].to(x.dtype)


AUGMENTS: dict[str, Callable[..., torch.Tensor]] = {"color": color, "translation": translation, "cutout": cutout}


def parse_policy(policy: str) -> tuple[str, ...]:
    """'translation,cutout,color' -> ('translation', 'cutout', 'color'); '' -> ()."""
    names = tuple(p.strip() for p in policy.split(",") if p.strip())
    for p in names:
        if p not in AUGMENTS:
            raise ConfigError(f"unknown augmentation {p!r} in {policy!r}. Valid: a comma-separated list of "
                              f"{', '.join(AUGMENTS)} (or '' for none)")
    return names


def diff_augment(x: torch.Tensor, policy: str | tuple[str, ...], gen: torch.Generator | None = None) -> torch.Tensor:
    """Apply the policy's transforms in order (new random parameters per sample and call)."""
    names = parse_policy(policy) if isinstance(policy, str) else policy
    if names and x.dim() != 4:
        raise ConfigError(f"augmentation works on images (N, C, H, W); got a tensor of shape {tuple(x.shape)}")
    for p in names:
        x = AUGMENTS[p](x, gen)
    return x
