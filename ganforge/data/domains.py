"""Domains for translation games: known invertible transforms of Fashion-MNIST, and the user's folders.

Offline there are no photo sets, so translation is scored on domains built by
a *known* transform T: the true translation T(a) of every test image is known,
and so is the way back T^-1. The recipes ship colour/intensity maps a
convolutional generator can represent (invert, fade, tint); the geometric ones
stay for users, but a ResNet generator did not learn a global rotation or
flip. Every transform and its inverse live in ``TRANSFORMS``; a spec may chain
them with ``+`` ("invert+rot90" = rot90 after invert). Transforms act on uint8 images in [0, 255] or float images in
[-1, 1] (what generators emit), shape (N, C, H, W).

Datasets registered here:

- ``fmnist-unpaired``: A = one half of the split, B = T(the other half) (disjoint, so unpaired);
- ``fmnist-domains``: several transforms as domains, each on its own disjoint slice; label = domain;
- ``fmnist-sr``: paired low/high resolution (bicubic downsampling by 2 or 4); LR rides along as ``batch["lr"]``;
- ``unpaired-folders`` (two folders), ``domain-folders`` (a folder per domain), ``sr-folder`` (HR folder,
  LR folder or bicubic downsampling): the same shapes of data from the user's images (Pillow).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ganforge.data.base import Dataset
from ganforge.errors import ConfigError
from ganforge.registry import DATASETS

TINT = (255, 170, 85)  # RGB of white under the "tint" transform; R = 255 keeps the grey level exactly
TINT_COOL = (85, 170, 255)  # "tint-cool": the same tint mirrored, B = 255 keeps the grey level
FADE = (0.25, 0.5)  # "fade": v -> 0.25 + 0.5 v on [0, 1]: half the contrast, black lifted to a dark grey


def _colour(fn: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[torch.Tensor], torch.Tensor]:
    """Lift a map on [0, 1] floats to uint8 [0, 255] (rounded) and float [-1, 1] images."""

    def apply(x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.uint8:
            return (fn(x.double() / 255.0) * 255.0).round().clamp(0, 255).to(torch.uint8)
        return fn((x + 1) / 2) * 2 - 1

    return apply


def _tinter(name: str, colour: tuple[int, int, int]):
    """(forward, inverse) on [0, 1] floats: grey v -> v * colour / 255, and the least-squares grey level back
    (exact on clean images, robust on generated ones)."""

    def tint(u: torch.Tensor) -> torch.Tensor:
        if u.shape[1] != 1:
            raise ConfigError(f"transform {name!r} colours grey images (1 channel); got {u.shape[1]} channels")
        return u * u.new_tensor(colour).view(1, 3, 1, 1) / 255.0

    def untint(u: torch.Tensor) -> torch.Tensor:
        if u.shape[1] != 3:
            raise ConfigError(f"the inverse of {name!r} takes RGB images (3 channels); got {u.shape[1]} channels")
        t = u.new_tensor(colour).view(1, 3, 1, 1) / 255.0
        return (u * t).sum(1, keepdim=True) / (t * t).sum()

    return tint, untint


_tint, _untint = _tinter("tint", TINT)
_cool, _uncool = _tinter("tint-cool", TINT_COOL)
_rgb, _unrgb = _tinter("rgb", (255, 255, 255))


def _fade(u: torch.Tensor) -> torch.Tensor:
    return FADE[0] + FADE[1] * u


def _unfade(u: torch.Tensor) -> torch.Tensor:
    """Inverse of ``fade``, clamped to [0, 1] (generated images may leave the faded range)."""
    return ((u - FADE[0]) / FADE[1]).clamp(0, 1)


@dataclass(frozen=True)
class Transform:
    """An invertible image transform: forward, inverse, and its effect on the channel count."""

    name: str
    forward: Callable[[torch.Tensor], torch.Tensor]
    inverse: Callable[[torch.Tensor], torch.Tensor]
    channels: Callable[[int], int] = lambda c: c
    help: str = ""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward(x)


TRANSFORMS: dict[str, Transform] = {t.name: t for t in (
    Transform("identity", lambda x: x.clone(), lambda x: x.clone(), help="no change"),
    Transform("invert", _colour(lambda u: 1 - u), _colour(lambda u: 1 - u), help="negative: v -> 1 - v"),
    Transform("rot90", lambda x: torch.rot90(x, 1, (2, 3)), lambda x: torch.rot90(x, -1, (2, 3)),
              help="rotate 90 degrees counter-clockwise"),
    Transform("rot180", lambda x: torch.rot90(x, 2, (2, 3)), lambda x: torch.rot90(x, 2, (2, 3)),
              help="rotate 180 degrees"),
    Transform("vflip", lambda x: x.flip(2), lambda x: x.flip(2), help="upside down"),
    Transform("hflip", lambda x: x.flip(3), lambda x: x.flip(3), help="mirror left-right"),
    Transform("transpose", lambda x: x.transpose(2, 3).contiguous(), lambda x: x.transpose(2, 3).contiguous(),
              help="swap rows and columns"),
    Transform("tint", _colour(_tint), _colour(_untint), channels=lambda c: 3,
              help=f"grey -> RGB with white at {TINT} (1 -> 3 channels)"),
    Transform("tint-cool", _colour(_cool), _colour(_uncool), channels=lambda c: 3,
              help=f"grey -> RGB with white at {TINT_COOL} (1 -> 3 channels)"),
    Transform("rgb", _colour(_rgb), _colour(_unrgb), channels=lambda c: 3,
              help="grey -> RGB, the grey level in all 3 channels (the identity for colour domains)"),
    Transform("fade", _colour(_fade), _colour(_unfade),
              help=f"half the contrast: v -> {FADE[0]} + {FADE[1]} v (uint8: the inverse is exact to 1 level)"),
)}


def get_transform(spec: str) -> Transform:
    """A transform by name, or a chain ``"a+b"`` (b applied after a; inverted in reverse order)."""
    if not isinstance(spec, str) or not spec:
        raise ConfigError(f"a transform is a name or names joined by '+'; valid names: {', '.join(TRANSFORMS)}")
    parts = spec.split("+")
    for p in parts:
        if p not in TRANSFORMS:
            raise ConfigError(f"unknown transform {p!r} in {spec!r}. Valid transforms: {', '.join(TRANSFORMS)} "
                              "(chain them with '+', e.g. invert+rot90)")
    ts = [TRANSFORMS[p] for p in parts]
    if len(ts) == 1:
        return ts[0]

    def fwd(x):
        for t in ts:
            x = t.forward(x)
        return x

    def inv(x):
        for t in reversed(ts):
            x = t.inverse(x)
        return x

    def channels(c):
        for t in ts:
            c = t.channels(c)
        return c

    return Transform(spec, fwd, inv, channels, help=" then ".join(t.help for t in ts))


def _fmnist(split: str, limit: int | None, resolution: int, cache: bool = True) -> Dataset:
    return DATASETS.build("fmnist", split=split, limit=limit, resolution=resolution, cache=cache)


def _check_limit(limit: int | None, need: int, what: str) -> None:
    if limit is not None and limit < need:
        raise ConfigError(f"{what}: limit must be >= {need} (or null for the whole split), got {limit}")


@DATASETS.register("fmnist-unpaired")
def fmnist_unpaired(*, transform: str = "invert", split: str = "train", limit: int | None = None,
                    resolution: int = 28, cache: bool = True) -> Dataset:
    """Unpaired A = Fashion-MNIST (first half), B = T(Fashion-MNIST) (second half) for a known transform T."""
    t = get_transform(transform)
    _check_limit(limit, 2, "fmnist-unpaired")
    src = _fmnist(split, limit, resolution, cache)
    h = len(src) // 2
    a = Dataset("fmnist", src.x[:h], src.y[:h], 10, class_names=src.class_names, info={"split": split})
    b = Dataset(f"T(fmnist)[{transform}]", t(src.x[h:2 * h]), src.y[h:2 * h], 10, class_names=src.class_names,
                info={"split": split, "transform": transform})
    return Dataset(f"fmnist-unpaired[{transform}]", a.x, a.y, 10, class_names=src.class_names,
                   info={"parts": {"a": a, "b": b}, "transform": transform, "split": split})


@DATASETS.register("fmnist-domains")
def fmnist_domains(*, transforms: list[str] = ("identity", "invert", "fade"), split: str = "train",
                   limit: int | None = None, resolution: int = 28, cache: bool = True) -> Dataset:
    """Several transforms of Fashion-MNIST as domains (disjoint slices; label = domain; garment in info)."""
    names = list(transforms)
    if len(names) < 2 or len(set(names)) != len(names):
        raise ConfigError(f"fmnist-domains needs at least 2 distinct transforms, got {names}")
    ts = [get_transform(n) for n in names]
    if len({t.channels(1) for t in ts}) != 1:
        raise ConfigError(f"fmnist-domains: all domains must have the same channel count; got "
                          f"{ {n: t.channels(1) for n, t in zip(names, ts, strict=True)} }")
    _check_limit(limit, len(names), "fmnist-domains")
    src = _fmnist(split, limit, resolution, cache)
    k = len(names)
    n = len(src) // k * k
    dom = torch.arange(n) % k
    x = torch.empty((n, ts[0].channels(1), *src.x.shape[2:]), dtype=torch.uint8)
    for i, t in enumerate(ts):
        x[dom == i] = t(src.x[:n][dom == i])
    return Dataset(f"fmnist-domains[{','.join(names)}]", x, dom, k, class_names=names,
                   info={"domains": names, "content_y": src.y[:n], "split": split})


def downsample(x: torch.Tensor, scale: int) -> torch.Tensor:
    """uint8 (N, C, H, W) -> (N, C, H/scale, W/scale) by Pillow's bicubic resize (antialiased)."""
    from PIL import Image

    n, c, h, w = x.shape
    if h % scale or w % scale:
        raise ConfigError(f"images of {h}x{w} cannot be downsampled exactly by {scale}; pick a resolution "
                          f"divisible by {scale}")
    arr = x.numpy()
    out = np.empty((n, c, h // scale, w // scale), dtype=np.uint8)
    for i in range(n):
        for j in range(c):
            out[i, j] = np.asarray(Image.fromarray(arr[i, j]).resize((w // scale, h // scale), Image.BICUBIC))
    return torch.from_numpy(out)


def upsample_bicubic(x: torch.Tensor, scale: int) -> torch.Tensor:
    """The bicubic baseline: float [-1, 1] (N, C, h, w) -> (N, C, s h, s w), clamped to [-1, 1]."""
    up = torch.nn.functional.interpolate(x.float(), scale_factor=scale, mode="bicubic", align_corners=False)
    return up.clamp(-1, 1)


def _sr_dataset(name: str, hr: torch.Tensor, lr: torch.Tensor, scale: int, y=None, class_names=None,
                info: dict | None = None) -> Dataset:
    return Dataset(name, hr, y, 10 if y is not None else 0, class_names=class_names,
                   info={"paired": {"lr": lr}, "scale": scale, **(info or {})})


def _check_scale(scale: int) -> None:
    if scale not in (2, 4, 8):
        raise ConfigError(f"scale must be 2, 4 or 8, got {scale}")


@DATASETS.register("fmnist-sr")
def fmnist_sr(*, scale: int = 4, split: str = "train", limit: int | None = None, resolution: int = 28,
              cache: bool = True) -> Dataset:
    """Paired super-resolution: HR Fashion-MNIST and its bicubic downsampling by ``scale`` (batch["lr"])."""
    _check_scale(scale)
    src = _fmnist(split, limit, resolution, cache)
    return _sr_dataset(f"fmnist-sr[x{scale}]", src.x, downsample(src.x, scale), scale, src.y, src.class_names,
                       {"split": split})


# ------------------------------------------------------------------------------------------------ folders
# These build on the ``folder`` source (ganforge.data.images): recursive scan, Pillow decoding, centre crop,
# the decoded-array cache. They only arrange folders into the shapes the translation games read.
def _folder(root: str, what: str, *, resolution: int, channels: int | None, labels: bool = False,
            limit: int | None = None, cache: bool = True) -> Dataset:
    if not root:
        raise ConfigError(f"{what} needs a folder path")
    try:
        return DATASETS.build("folder", root=root, resolution=resolution, channels=channels, labels=labels,
                              limit=limit, cache=cache)
    except ConfigError as e:
        raise ConfigError(f"{what}: {e}") from None


@DATASETS.register("unpaired-folders")
def unpaired_folders(*, a: str = "", b: str = "", resolution: int = 64, channels: int | None = 3,
                     limit: int | None = None, cache: bool = True) -> Dataset:
    """Two unpaired image folders (CycleGAN's trainA/trainB): part a from ``a``, part b from ``b``."""
    if not a or not b:
        raise ConfigError("unpaired-folders needs a and b, e.g. data: {name: unpaired-folders, a: photos/trainA, "
                          "b: photos/trainB}")
    da = _folder(a, "unpaired-folders a", resolution=resolution, channels=channels, limit=limit, cache=cache)
    db = _folder(b, "unpaired-folders b", resolution=resolution, channels=channels, limit=limit, cache=cache)
    return Dataset(f"unpaired-folders({Path(a).name},{Path(b).name})", da.x, info={"parts": {"a": da, "b": db}})


@DATASETS.register("domain-folders")
def domain_folders(*, root: str = "", resolution: int = 64, channels: int | None = 3,
                   limit: int | None = None, cache: bool = True) -> Dataset:
    """A folder per domain under ``root`` (StarGAN): label = domain index in sorted subfolder order."""
    d = _folder(root, "domain-folders", resolution=resolution, channels=channels, labels=True, limit=limit,
                cache=cache)
    if d.y is None or d.n_classes < 2:
        raise ConfigError(f"domain-folders: {root} must hold at least 2 subfolders (one per domain) and no images "
                          "directly inside it")
    return Dataset(f"domain-folders({Path(root).name})", d.x, d.y, d.n_classes, class_names=d.class_names,
                   info={"domains": d.class_names, "root": root})


@DATASETS.register("sr-folder")
def sr_folder(*, hr: str = "", lr: str | None = None, scale: int = 4, resolution: int = 64,
              channels: int | None = 3, limit: int | None = None, cache: bool = True) -> Dataset:
    """Paired super-resolution from a folder of HR images; LR from folder ``lr`` (same file names) or bicubic."""
    from ganforge.data.images import scan_folder

    _check_scale(scale)
    if resolution % scale:
        raise ConfigError(f"sr-folder: resolution {resolution} must be divisible by scale {scale}")
    high = _folder(hr, "sr-folder hr", resolution=resolution, channels=channels, limit=limit, cache=cache)
    if lr is None:
        low = downsample(high.x, scale)
    else:
        names = [f.relative_to(Path(hr).expanduser()) for f in scan_folder(Path(hr).expanduser())[0]]
        lr_names = [f.relative_to(Path(lr).expanduser()) for f in scan_folder(Path(lr).expanduser())[0]]
        if names != lr_names:
            missing = sorted(set(names) - set(lr_names)) or sorted(set(lr_names) - set(names))
            raise ConfigError(f"sr-folder: the HR and LR folders must hold the same file names; "
                              f"{len(missing)} differ, e.g. {missing[0] if missing else '(order)'}")
        low = _folder(lr, "sr-folder lr", resolution=resolution // scale, channels=channels, limit=limit,
                      cache=cache).x
        if len(low) != len(high):
            raise ConfigError(f"sr-folder: {len(high)} readable HR images but {len(low)} LR images")
    return _sr_dataset(f"sr-folder({Path(hr).name}, x{scale})", high.x, low, scale, info={"root": hr})
