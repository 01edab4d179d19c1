"""Sample grids as PNG files with Pillow (no torchvision).

    save_grid(images, "grid.png", nrow=8)     # images: (N, C, H, W) in [-1, 1] or uint8

Layout: cells of H x W pixels in rows of ``nrow``, ``padding`` pixels of
``pad_value`` between and around them (row-major: image i sits in row
i // nrow, column i % nrow). One channel gives a greyscale PNG, three an RGB
one; ``scale`` enlarges every pixel to a scale x scale block so that 28x28
samples stay visible. An optional caption is drawn in a strip above the grid.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch

from ganforge.errors import ConfigError


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] -> uint8 in [0, 255] (clamped, rounded); uint8 input passes through."""
    if x.dtype == torch.uint8:
        return x
    return ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def grid(images: torch.Tensor, nrow: int | None = None, padding: int = 2, pad_value: int = 0) -> np.ndarray:
    """(N, C, H, W) -> a uint8 array (rows, cols) for C = 1 or (rows, cols, 3) for C = 3.

    nrow: images per row (default ceil(sqrt(N))).
    """
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ConfigError(f"a grid needs images (N, C, H, W) with C = 1 or 3; got shape {tuple(images.shape)}")
    n, c, h, w = images.shape
    if n == 0:
        raise ConfigError("a grid needs at least one image")
    nrow = nrow or math.ceil(math.sqrt(n))
    if nrow < 1 or padding < 0:
        raise ConfigError(f"grid needs nrow >= 1 and padding >= 0, got {nrow}, {padding}")
    rows = math.ceil(n / nrow)
    x = to_uint8(images.cpu()).numpy()
    out = np.full((c, rows * (h + padding) + padding, nrow * (w + padding) + padding), pad_value, dtype=np.uint8)
    for i in range(n):
        r, col = divmod(i, nrow)
        top, left = padding + r * (h + padding), padding + col * (w + padding)
        out[:, top:top + h, left:left + w] = x[i]
    return out[0] if c == 1 else out.transpose(1, 2, 0)


def save_grid(images: torch.Tensor, path: str | Path, nrow: int | None = None, padding: int = 2,
              pad_value: int = 0, scale: int = 1, caption: str | None = None) -> Path:
    """Write ``images`` as a PNG grid (see ``grid``); returns the path."""
    from PIL import Image, ImageDraw

    if scale < 1:
        raise ConfigError(f"grid scale must be >= 1, got {scale}")
    arr = grid(images, nrow=nrow, padding=padding, pad_value=pad_value)
    if scale > 1:
        arr = arr.repeat(scale, axis=0).repeat(scale, axis=1)
    im = Image.fromarray(arr)
    if caption:
        strip = 14
        framed = Image.new(im.mode, (im.width, im.height + strip), 255 if im.mode == "L" else (255, 255, 255))
        framed.paste(im, (0, strip))
        ImageDraw.Draw(framed).text((2, 1), caption, fill=0 if im.mode == "L" else (0, 0, 0))
        im = framed
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ConfigError(f"grid files are PNG: give a path ending in .png, got {str(path)!r}")
    if path.is_dir():
        raise ConfigError(f"{path} is a folder; give the path of a .png file to write")
    # A temporary name, then a rename: a full disk leaves no torn PNG, and a symlink is replaced, not followed.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        im.save(tmp, format="PNG")
        os.replace(tmp, path)
    except OSError as e:
        raise ConfigError(f"cannot write the grid to {path}: {e.strerror or e}") from None
    finally:
        if tmp.exists():
            tmp.unlink()
    return path
