"""Paired image-to-image data (pix2pix): every target image B comes with its input A.

A paired dataset stores the targets as ``x`` (uint8 (N, C_b, H, W)) and the aligned inputs as
``info["paired"]["a"]`` (uint8 (N, C_a, H, W)), so a batch is ``{"x": B, "a": A, "y": labels}``
(``BatchStream`` carries every ``paired`` array). ``info["heldout"]`` is a second paired set of
inputs the model never trains on: the game translates those when it samples, and evaluation
compares the translations with their targets.

- ``fmnist-paired``: Fashion-MNIST tasks with exact ground truth, each a deterministic map of the
  garment (B = the garment, A = a function of it):

  - ``edges``: A = the Sobel gradient magnitude of the garment (on [0, 1]) thresholded at
    ``edge_threshold``: a binary outline, as pix2pix's edges -> photo (HED edges in the paper);
  - ``masked``: A = the garment with a ``hole`` x ``hole`` square (default 14: a quarter of the
    28x28 image) filled with mid-grey 128, at a position drawn once per image (seeded by split, so
    the same image always has the same hole; ``info["mask"]`` marks it), or at the centre;
  - ``colorize``: A = the grey garment, B = the garment tinted with its class's colour
    (``CLASS_TINTS``: white -> that colour, v -> v * colour), so G must recognise the class to
    colour it (1 -> 3 channels).

  ``pad`` (2) adds a black border after the map, 28 -> 32 px, so that the U-Net can halve the image
  down to 1x1; ``info["pad"]`` lets scores crop it back off. Held out: the first ``heldout`` test images.
- ``paired-folder``: pix2pix's own format (facades, maps, edges2shoes, ...): every image file holds
  A and B side by side (width = 2 x height; left half A, right half B, or the other way round
  with ``direction: BtoA``). Each half is resized to ``resolution`` (Pillow bilinear). Held out:
  the images of ``test_root`` (the dataset's ``val``/``test`` folder), else the last ``holdout``
  fraction of the files in sorted order. A file of odd width or that does not decode is an error
  naming it: a paired set with one bad pair is not silently trained on.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ganforge.data.base import Dataset
from ganforge.errors import ConfigError
from ganforge.registry import DATASETS

TASKS = ("edges", "masked", "colorize")
HOLE_FILL = 128
# White under each class's tint (RGB), far apart in hue so that the colour names the class.
CLASS_TINTS = ((255, 64, 64), (64, 255, 64), (64, 96, 255), (255, 255, 64), (255, 64, 255),
               (64, 255, 255), (255, 160, 32), (160, 64, 255), (128, 255, 160), (255, 160, 200))


def paired(name: str, a: torch.Tensor, b: torch.Tensor, y: torch.Tensor | None = None, class_names=None,
           info: dict | None = None) -> Dataset:
    """A paired dataset: targets ``b`` as x, inputs ``a`` in ``info["paired"]["a"]`` (same N, H, W)."""
    if len(a) != len(b) or a.shape[2:] != b.shape[2:]:
        raise ValueError(f"paired data needs inputs and targets of one count and size, got {tuple(a.shape)} and "
                         f"{tuple(b.shape)}")
    return Dataset(name, b, y, len(class_names) if y is not None and class_names else 0, class_names=class_names,
                   info={"paired": {"a": a}, **(info or {})})


# ------------------------------------------------------------------------------------------ Fashion-MNIST
def sobel_edges(x: torch.Tensor, threshold: float) -> torch.Tensor:
    """uint8 (N, 1, H, W) -> uint8 edge map {0, 255}: Sobel gradient magnitude (image on [0, 1], zero
    padding) above ``threshold``. The kernels are [1 2 1]^T [-1 0 1] and its transpose (magnitude <= 4 sqrt 2)."""
    u = x.float() / 255.0
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    k = torch.stack([kx, kx.t()])[:, None]
    g = torch.nn.functional.conv2d(u, k, padding=1)
    mag = g.pow(2).sum(1, keepdim=True).sqrt()
    return ((mag > threshold).to(torch.uint8) * 255)


def hole_masks(n: int, size: int, hole: int, position: str, seed: int) -> torch.Tensor:
    """(n, 1, size, size) bool: a hole x hole square per image, at the centre or uniformly placed (seeded)."""
    if position == "center":
        top = left = torch.full((n,), (size - hole) // 2)
    else:
        g = torch.Generator().manual_seed(seed)
        top, left = torch.randint(size - hole + 1, (2, n), generator=g)
    r = torch.arange(size)
    rows = (r[None] >= top[:, None]) & (r[None] < top[:, None] + hole)
    cols = (r[None] >= left[:, None]) & (r[None] < left[:, None] + hole)
    return (rows[:, :, None] & cols[:, None, :])[:, None]


def tint_by_class(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """uint8 grey (N, 1, H, W) -> uint8 RGB: v -> v * CLASS_TINTS[y] / 255, rounded."""
    t = torch.tensor(CLASS_TINTS, dtype=torch.float64)[y][:, :, None, None] / 255.0
    return (x.double() * t).round().clamp(0, 255).to(torch.uint8)


def fmnist_task(x: torch.Tensor, y: torch.Tensor, task: str, *, split: str, edge_threshold: float, hole: int,
                hole_position: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Garments uint8 (N, 1, 28, 28) -> (A, B, hole mask or None) for ``task``."""
    if task == "edges":
        return sobel_edges(x, edge_threshold), x, None
    if task == "masked":
        full = {"train": 60000, "test": 10000}[split]  # drawn for the whole split: a limit keeps each image's hole
        mask = hole_masks(max(full, len(x)), x.shape[-1], hole, hole_position, seed={"train": 0, "test": 1}[split])
        mask = mask[:len(x)]
        return x.masked_fill(mask, HOLE_FILL), x, mask
    return x, tint_by_class(x, y), None


def _pad(t: torch.Tensor | None, pad: int) -> torch.Tensor | None:
    return None if t is None or pad == 0 else torch.nn.functional.pad(t, (pad,) * 4)


def crop(x: torch.Tensor, pad: int) -> torch.Tensor:
    """Undo ``pad``: (N, C, H, W) -> (N, C, H - 2 pad, W - 2 pad)."""
    return x if pad == 0 else x[..., pad:-pad, pad:-pad]


def _fmnist_split(task: str, split: str, limit: int | None, pad: int, cache: bool, **kw) -> Dataset:
    src = DATASETS.build("fmnist", split=split, limit=limit, cache=cache)
    a, b, mask = fmnist_task(src.x, src.y, task, split=split, **kw)
    y = src.y
    if pad:
        a, b = _pad(a, pad), _pad(b, pad)
        mask = None if mask is None else _pad(mask, pad)
    info = {"task": task, "split": split, "pad": pad, **({"mask": mask} if mask is not None else {})}
    return paired(f"fmnist-paired[{task}]", a.contiguous(), b.contiguous(), y, src.class_names, info)


@DATASETS.register("fmnist-paired")
def fmnist_paired(*, task: str = "edges", split: str = "train", limit: int | None = None, heldout: int = 1000,
                  pad: int = 2, edge_threshold: float = 1.0, hole: int = 14, hole_position: str = "random",
                  cache: bool = True) -> Dataset:
    """Paired Fashion-MNIST tasks with exact truth: edges -> garment, masked -> garment, grey -> class-tinted."""
    checks = [
        (task not in TASKS, f"fmnist-paired task must be one of {', '.join(TASKS)}, got {task!r}"),
        (split not in ("train", "test"), f"fmnist-paired split must be train or test, got {split!r}"),
        (limit is not None and limit < 1, f"fmnist-paired limit must be >= 1 or null, got {limit}"),
        (heldout < 0, f"fmnist-paired heldout must be >= 0 (0: none), got {heldout}"),
        (not 0 <= pad <= 16, f"fmnist-paired pad must be in [0, 16] pixels, got {pad}"),
        (not 0 < edge_threshold, f"fmnist-paired edge_threshold must be > 0, got {edge_threshold}"),
        (not 1 <= hole <= 28, f"fmnist-paired hole must be in [1, 28] pixels, got {hole}"),
        (hole_position not in ("random", "center"), f"fmnist-paired hole_position must be random or center, got "
                                                    f"{hole_position!r}"),
    ]
    for bad, msg in checks:
        if bad:
            raise ConfigError(msg)
    kw = {"edge_threshold": edge_threshold, "hole": hole, "hole_position": hole_position}
    data = _fmnist_split(task, split, limit, pad, cache, **kw)
    if heldout and split == "train":
        data.info["heldout"] = _fmnist_split(task, "test", heldout, pad, cache, **kw)
    return data


# ------------------------------------------------------------------------------------------ A|B folders
def split_pair(arr: np.ndarray, direction: str, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """An (H, W[, C]) array holding A|B side by side -> (input, target) halves by ``direction``."""
    w = arr.shape[1]
    if w % 2:
        raise ConfigError(f"{path}: width {w} is odd, so it cannot hold two halves A|B side by side (pix2pix's "
                          f"format: each file is an A image and its B image joined left to right)")
    left, right = arr[:, : w // 2], arr[:, w // 2:]
    return (left, right) if direction == "AtoB" else (right, left)


def _decode_pairs(files: list[Path], resolution: int, channels: int, direction: str) -> dict[str, np.ndarray]:
    from PIL import Image

    from ganforge.data.images import _why, bad_image_errors, open_image

    mode = "L" if channels == 1 else "RGB"
    ins, outs = [], []
    for f in files:
        try:
            with open_image(f) as im:
                arr = np.asarray(im.convert(mode))
        except bad_image_errors() as e:
            raise ConfigError(f"{f} is not a readable image ({_why(f, e)}); a paired folder must hold only A|B "
                              "images (remove or fix the file)") from None
        halves = []
        for half in split_pair(arr, direction, f):
            im = Image.fromarray(half)
            if im.size != (resolution, resolution):
                im = im.resize((resolution, resolution), Image.BILINEAR)
            a = np.asarray(im)
            halves.append(a[None] if a.ndim == 2 else a.transpose(2, 0, 1))
        ins.append(halves[0])
        outs.append(halves[1])
    return {"a": np.stack(ins), "b": np.stack(outs)}


def _pair_folder(root: str, what: str, resolution: int, channels: int, direction: str, cache: bool):
    from ganforge.data.cache import cached
    from ganforge.data.images import IMAGE_SUFFIXES, _key

    base = Path(root).expanduser()
    if not base.is_dir():
        raise ConfigError(f"paired-folder {what} {base} is not a folder (give the folder of A|B images, e.g. "
                          "facades/train)")
    files = sorted(p for p in base.rglob("*") if p.is_file() and not p.name.startswith("."))
    others = [p for p in files if p.suffix.lower() not in IMAGE_SUFFIXES]
    if others:
        raise ConfigError(f"paired-folder {what} {base} holds {len(others)} file(s) that are not images, e.g. "
                          f"{others[0].name}; image files end in {', '.join(IMAGE_SUFFIXES)}")
    if not files:
        raise ConfigError(f"paired-folder {what} {base} holds no images")
    stamp = [(str(f.relative_to(base)), f.stat().st_size, f.stat().st_mtime_ns) for f in files]
    key = _key(base.resolve(), stamp, resolution, channels, direction, "pairs")
    arrays = cached("paired-folder", key, lambda: _decode_pairs(files, resolution, channels, direction),
                    enabled=cache)
    return torch.from_numpy(np.ascontiguousarray(arrays["a"])), torch.from_numpy(np.ascontiguousarray(arrays["b"]))


@DATASETS.register("paired-folder")
def paired_folder(*, root: str = "", test_root: str | None = None, direction: str = "AtoB", resolution: int = 256,
                  channels: int = 3, holdout: float = 0.1, limit: int | None = None, cache: bool = True) -> Dataset:
    """pix2pix's A|B folders: each image is input and target side by side (left A, right B)."""
    checks = [
        (not root, "paired-folder needs root: a folder of A|B images, e.g. data: {name: paired-folder, "
                   "root: facades/train, test_root: facades/val}"),
        (direction not in ("AtoB", "BtoA"), f"paired-folder direction must be AtoB or BtoA, got {direction!r}"),
        (not isinstance(resolution, int) or not 4 <= resolution <= 1024,
         f"paired-folder resolution must be an int in [4, 1024], got {resolution!r}"),
        (channels not in (1, 3), f"paired-folder channels must be 1 or 3, got {channels!r}"),
        (not 0.0 <= holdout < 1.0, f"paired-folder holdout must lie in [0, 1), got {holdout}"),
        (limit is not None and limit < 1, f"paired-folder limit must be >= 1 or null, got {limit}"),
    ]
    for bad, msg in checks:
        if bad:
            raise ConfigError(msg)
    a, b = _pair_folder(root, "root", resolution, channels, direction, cache)
    test = None
    if test_root:
        test = _pair_folder(test_root, "test_root", resolution, channels, direction, cache)
    elif holdout > 0 and len(a) > 1:
        k = min(len(a) - 1, max(1, round(holdout * len(a))))
        test, a, b = (a[-k:], b[-k:]), a[:-k], b[:-k]
    if limit is not None:
        a, b = a[:limit], b[:limit]
    name = f"paired-folder({Path(root).name})"
    data = paired(name, a, b, info={"direction": direction, "root": root, "pad": 0})
    if test is not None:
        data.info["heldout"] = paired(name + "-heldout", *test, info={"direction": direction, "pad": 0})
    return data
