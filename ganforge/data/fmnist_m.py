"""Fashion-MNIST-M: Fashion-MNIST blended with random colour textures, a target domain for adaptation.

MNIST-M (Ganin et al. 2016) blends each MNIST digit with a random crop of a
BSDS500 photo: ``out = |patch - digit|`` per colour channel. Offline there are
no photos, so the patches here are crops of *procedural* colour textures: a
seeded bank of textures, each coloured noise with a random power-law spectrum
(amplitude ~ 1/f^beta, beta in [0.5, 2]: from grainy to cloudy), random
orientation stretch and random per-channel contrast. A texture (256 px by
default) is much larger than the 28 px crop, as a BSDS500 photo (481 x 321) is
larger than an MNIST-M patch, so a crop holds part of its texture's contrast.
Everything is a function of (split, seed, textures, texture_size, strength),
so the same arguments give the same images on any machine.

The blend is ``out = |strength * patch - image|``. MNIST's digits are thin
strokes on black, so at strength 1 MNIST-M keeps a recognisable digit; a
garment fills most of its image, and at strength 1 the blend inverts whole
garments: a classifier trained on Fashion-MNIST scores chance (0.11) on it and
adversarial adaptation does not recover it (issue 13). At strength 0.4 (the
default) the background is the texture at 0.4 of its contrast and a garment
brighter than the texture keeps its shading, colour-shifted by the subtracted
patch; dark garment parts sink into the texture. A classifier trained on the
source then lands between chance and the target-supervised bound, as on
MNIST -> MNIST-M (benchmarks/results/dann.md, adda.md).

Datasets registered here:

- ``fmnist-m``: the textured images, (N, 3, R, R) uint8 with the Fashion-MNIST labels,
  blend strength 0.4. ``texture=false`` gives the plain images repeated to 3 channels
  (the source domain as DANN feeds MNIST to the same network).
- ``fmnist-m-invert``: the same with strength 1, MNIST-M's own blend (garments inverted).
- ``adaptation``: two parts, ``source`` (labelled) and ``target`` (its labels are
  never read by the adaptation games; they are kept for evaluation), plus an
  optional labelled ``test`` set of the target domain for evaluation.
"""

from __future__ import annotations

import numpy as np
import torch

from ganforge.data.base import Dataset, build_part
from ganforge.data.fmnist import CLASS_NAMES, load_arrays
from ganforge.errors import ConfigError
from ganforge.registry import DATASETS

SPLIT_SEEDS = {"train": 0, "test": 1}
STRENGTH = 0.4  # the default target's blend strength (module docstring)


def texture_bank(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` procedural colour textures, uint8 (n, 3, size, size).

    Each texture: white noise filtered to a power-law amplitude 1/f^beta with an
    anisotropic frequency scale (stretch and angle), one spectrum per texture
    shared by its 3 channels but with independent phases, then each channel
    stretched to a random sub-range of [0, 255].
    """
    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.rfftfreq(size)[None, :]
    out = np.empty((n, 3, size, size), dtype=np.uint8)
    for i in range(n):
        beta = rng.uniform(0.5, 2.0)
        angle, stretch = rng.uniform(0, np.pi), rng.uniform(1.0, 4.0)
        u = fx * np.cos(angle) + fy * np.sin(angle)
        v = -fx * np.sin(angle) + fy * np.cos(angle)
        f = np.sqrt((u * stretch) ** 2 + v**2)
        f[0, 0] = 1.0
        amp = f ** (-beta)
        amp[0, 0] = 0.0
        noise = rng.standard_normal((3, size, size))
        tex = np.fft.irfft2(np.fft.rfft2(noise) * amp, s=(size, size))
        mix = rng.dirichlet(np.ones(3) * 0.7, size=3)  # correlated channels: coloured, not RGB static
        tex = np.einsum("ij,jhw->ihw", mix, tex)
        lo = tex.min(axis=(1, 2), keepdims=True)
        hi = tex.max(axis=(1, 2), keepdims=True)
        tex = (tex - lo) / np.maximum(hi - lo, 1e-8)
        a = rng.uniform(0, 128, size=(3, 1, 1))
        b = rng.uniform(128, 256, size=(3, 1, 1))
        out[i] = np.clip(a + tex * (b - a), 0, 255).astype(np.uint8)
    return out


def crops(n: int, n_textures: int, size: int, resolution: int,
          rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per image: (texture index, crop row, crop column), each (n,) int."""
    return (rng.integers(0, n_textures, size=n), rng.integers(0, size - resolution + 1, size=n),
            rng.integers(0, size - resolution + 1, size=n))


def blend(images: np.ndarray, bank: np.ndarray, which: np.ndarray, oy: np.ndarray, ox: np.ndarray,
          strength: float = 1.0) -> np.ndarray:
    """MNIST-M blending: ``|strength * patch - image|`` per channel, rounded; patch = bank[which] cropped at (oy, ox).

    images: uint8 (N, R, R); bank: uint8 (T, 3, S, S) with S >= R. Returns uint8 (N, 3, R, R).
    ``strength`` 1 is MNIST-M's blend (exact integers).
    """
    r = images.shape[1]
    rows = oy[:, None] + np.arange(r)[None, :]                      # (N, R)
    cols = ox[:, None] + np.arange(r)[None, :]                      # (N, R)
    patch = bank[which[:, None, None, None], np.arange(3)[None, :, None, None],
                 rows[:, None, :, None], cols[:, None, None, :]]    # (N, 3, R, R)
    if strength == 1.0:
        return np.abs(patch.astype(np.int16) - images[:, None].astype(np.int16)).astype(np.uint8)
    out = np.abs(np.float32(strength) * patch.astype(np.float32) - images[:, None].astype(np.float32))
    return np.rint(out).astype(np.uint8)


@DATASETS.register("fmnist-m")
def fmnist_m(*, split: str = "train", seed: int = 0, texture: bool = True, textures: int = 200,
             texture_size: int = 256, strength: float = STRENGTH, start: int = 0, limit: int | None = None,
             resolution: int = 28, root: str | None = None, cache: bool = True) -> Dataset:
    """Fashion-MNIST-M: each garment blended |strength * texture - image| with a seeded colour texture (3x28x28)."""
    return _textured("fmnist-m", split=split, seed=seed, texture=texture, textures=textures,
                     texture_size=texture_size, strength=strength, start=start, limit=limit, resolution=resolution,
                     root=root, cache=cache)


@DATASETS.register("fmnist-m-invert")
def fmnist_m_invert(*, split: str = "train", seed: int = 0, textures: int = 200, texture_size: int = 256,
                    start: int = 0, limit: int | None = None, resolution: int = 28, root: str | None = None,
                    cache: bool = True) -> Dataset:
    """The first Fashion-MNIST-M: MNIST-M's full blend |texture - image|, which inverts whole garments."""
    return _textured("fmnist-m-invert", split=split, seed=seed, texture=True, textures=textures,
                     texture_size=texture_size, strength=1.0, start=start, limit=limit, resolution=resolution,
                     root=root, cache=cache)


def _textured(name: str, *, split: str, seed: int, texture: bool, textures: int, texture_size: int, strength: float,
              start: int, limit: int | None, resolution: int, root: str | None, cache: bool) -> Dataset:
    if split not in SPLIT_SEEDS:
        raise ConfigError(f"{name} split must be one of {sorted(SPLIT_SEEDS)}, got {split!r}")
    if textures < 1:
        raise ConfigError(f"{name} textures must be >= 1, got {textures}")
    if texture_size < resolution:
        raise ConfigError(f"{name} texture_size must be >= resolution ({resolution}), got {texture_size}")
    if start < 0 or (limit is not None and limit < 1):
        raise ConfigError(f"{name} needs start >= 0 and limit >= 1 or null, got start={start}, limit={limit}")
    if not 0 < strength <= 1:
        raise ConfigError(f"{name} strength must be in (0, 1], got {strength}")
    x, y = load_arrays(split, resolution, root, cache=cache)
    full_n = len(x)
    stop = len(x) if limit is None else min(len(x), start + limit)
    if start >= stop:
        raise ConfigError(f"{name} start={start} leaves no images ({len(x)} in the {split} split)")
    x, y = x[start:stop], y[start:stop]
    if texture:
        # The bank and the crops depend on (seed, split) only, not on start/limit: image i of the split
        # always gets the same patch, so disjoint ranges of one split are parts of one dataset.
        rng = np.random.default_rng([seed, SPLIT_SEEDS[split]])
        size = texture_size
        bank = texture_bank(textures, size, rng)
        which, oy, ox = crops(full_n, textures, size, resolution, rng)
        x3 = np.empty((len(x), 3, resolution, resolution), dtype=np.uint8)
        for lo in range(0, len(x), 4096):  # chunks bound the int16 temporaries
            hi = min(lo + 4096, len(x))
            sl = slice(start + lo, start + hi)
            x3[lo:hi] = blend(x[lo:hi], bank, which[sl], oy[sl], ox[sl], strength)
    else:
        x3 = np.repeat(x[:, None], 3, axis=1)
    return Dataset(name=name if texture else "fmnist-rgb", x=torch.from_numpy(np.ascontiguousarray(x3)),
                   y=torch.from_numpy(np.ascontiguousarray(y)), n_classes=10, class_names=list(CLASS_NAMES),
                   info={"split": split, "seed": seed, "texture": texture, "strength": strength,
                         "start": start, "stop": stop})


def _part(spec, label: str) -> Dataset:
    return build_part(spec, label, kind="adaptation data", example="fmnist")


def _match_channels(d: Dataset, channels: int) -> Dataset:
    """A grey image set repeated to ``channels`` (DANN feeds MNIST to the MNIST-M network this way)."""
    if not d.is_image or d.x.shape[1] == channels:
        return d
    if d.x.shape[1] != 1:
        raise ConfigError(f"adaptation: cannot match {d.x.shape[1]}-channel {d.name!r} to {channels} channels")
    return Dataset(name=d.name, x=d.x.repeat(1, channels, 1, 1), y=d.y, n_classes=d.n_classes,
                   class_names=d.class_names, info=dict(d.info))


@DATASETS.register("adaptation")
def adaptation(*, source: dict = None, target: dict = None, test: dict | None = None) -> Dataset:
    """Domain adaptation: labelled source part, target part (labels unused in training), optional target test set."""
    if source is None or target is None:
        raise ConfigError("adaptation data needs source and target, e.g. data: {name: adaptation, "
                          "source: {name: fmnist}, target: {name: fmnist-m}}")
    src, tgt = _part(source, "source"), _part(target, "target")
    tst = _part(test, "test") if test is not None else None
    if src.y is None or src.n_classes < 2:
        raise ConfigError(f"adaptation: the source {src.name!r} must have labels")
    ch = max(d.x.shape[1] for d in (src, tgt, tst) if d is not None and d.is_image) if src.is_image else 0
    if ch:
        src, tgt = _match_channels(src, ch), _match_channels(tgt, ch)
        tst = _match_channels(tst, ch) if tst is not None else None
    if src.shape != tgt.shape or (tst is not None and tst.shape != tgt.shape):
        raise ConfigError(f"adaptation: source, target (and test) must have one shape, got {src.shape}, "
                          f"{tgt.shape}" + (f", {tst.shape}" if tst is not None else ""))
    info = {"parts": {"source": src, "target": tgt}, "test": tst if tst is not None else tgt}
    return Dataset(name=f"adaptation({src.name}->{tgt.name})", x=tgt.x, y=tgt.y, n_classes=src.n_classes,
                   class_names=src.class_names, info=info)
