"""Fashion-MNIST (Xiao et al. 2017) from its IDX files, offline first (C10).

Where the four files are looked for, in order:

1. the ``root`` argument;
2. the environment variable ``GANFORGE_FMNIST``;
3. the cache ``~/.cache/ganforge/fmnist`` (where ``download=True`` writes);
4. the Debian package location ``/usr/share/datasets/fashion-mnist``
   (``apt-get install dataset-fashion-mnist``).

Each file may be gzipped (``.gz``) or raw. The decoded uint8 arrays are cached
as ``.npy`` in the cache directory (key: split, resolution, resize mode and the
source file's size and mtime), so a second load costs a memory map, not a gunzip.
``$GANFORGE_CACHE`` moves the cache directory (to ``$GANFORGE_CACHE/fmnist``);
``cache=False`` (``--data.cache=false``) neither reads nor writes the arrays; a
damaged cached array (unreadable, wrong dtype or shape) is rebuilt with a warning.

Resolution: 28 is native. ``resize`` says how another resolution is reached:
``bilinear`` (the default) is a Pillow bilinear resize of each image, so at 32
the garment fills the 32x32 frame; ``pad`` keeps the 28x28 pixels untouched and
adds a border of background (uint8 0, i.e. -1 in the model's [-1, 1] range),
(R - 28) // 2 pixels on the top/left and the rest on the bottom/right: 32 px
is the 28x28 image with a 2 px border, as in the DCGAN/WGAN-era 32 px MNIST
setups. ``pad`` needs R >= 28.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import tempfile
import urllib.request
from pathlib import Path

import numpy as np
import torch

from ganforge.data.base import Dataset
from ganforge.data.cache import cache_root
from ganforge.data.npy import read_npy
from ganforge.errors import ConfigError
from ganforge.registry import DATASETS

CLASS_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
ALL_FILES = [f + ".gz" for pair in FILES.values() for f in pair]
URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
log = logging.getLogger("ganforge")

# IDX type codes (third byte of the magic number) -> numpy dtype (big-endian).
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def cache_dir() -> Path:
    """Where downloads and decoded ``.npy`` arrays go (``$GANFORGE_CACHE/fmnist`` or ``~/.cache/ganforge/fmnist``)."""
    return cache_root() / "fmnist"


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (LeCun's MNIST format), gzipped or raw, into a numpy array.

    Layout: magic = 0x00 0x00 <type code> <ndim>, then ndim big-endian uint32
    sizes, then the data. A wrong magic number or a short file is a ConfigError
    naming the file, since the usual cause is a truncated download.
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(2)
        opener = gzip.open if head == b"\x1f\x8b" else open
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as e:
        raise ConfigError(f"cannot read IDX file {path}: {e}. Delete it and fetch it again.") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES or raw[3] == 0:
        raise ConfigError(
            f"{path} is not an IDX file (bad magic number {raw[:4].hex() or 'empty'}; expected 0000 + type code "
            f"+ ndim, e.g. 00000803 for images, 00000801 for labels). The file is corrupt: fetch it again."
        )
    dtype, ndim = np.dtype(_IDX_DTYPES[raw[2]]), raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise ConfigError(f"{path} is truncated (header cut short). Fetch it again.")
    shape = tuple(int(s) for s in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    need = int(np.prod(shape)) * dtype.itemsize
    body = len(raw) - 4 - 4 * ndim
    if body != need:
        raise ConfigError(
            f"{path} is truncated or corrupt: header says shape {shape} ({need} bytes) but it holds {body} bytes. "
            "Fetch it again."
        )
    arr = np.frombuffer(raw, dtype=dtype, offset=4 + 4 * ndim).reshape(shape)
    return arr.astype(dtype.newbyteorder("="))


def _find(base: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        if (base / name).is_file():
            return base / name
    return None


def _candidate_dirs(root: str | None) -> list[Path]:
    if root is not None:
        if Path(root).expanduser().is_file():
            raise ConfigError(f"Fashion-MNIST root {root} is a file; set --data.root to the folder that holds the "
                              f"IDX files ({', '.join(ALL_FILES[:2])}, ...)")
        return [Path(root).expanduser()]  # an explicit root is the only place looked at
    dirs = []
    if os.environ.get("GANFORGE_FMNIST"):
        dirs.append(Path(os.environ["GANFORGE_FMNIST"]).expanduser())
    return dirs + [cache_dir(), DEBIAN_DIR]


def download(dest: Path | None = None) -> Path:
    """Fetch the four gzipped IDX files from the official mirror into ``dest`` (atomic writes)."""
    dest = dest or cache_dir()
    dest.mkdir(parents=True, exist_ok=True)
    for name in ALL_FILES:
        if (dest / name).is_file():
            continue
        fd, tmp = tempfile.mkstemp(dir=dest, prefix=name + ".", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(URL + name, timeout=60) as r:
                out.write(r.read())
            read_idx(tmp)  # never publish a broken file under the real name
            os.replace(tmp, dest / name)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return dest


def locate(split: str, root: str | None = None, download_missing: bool = False) -> tuple[Path, Path]:
    """The (images, labels) files of ``split``; a ConfigError saying what to put where if absent."""
    img_stem, lab_stem = FILES[split]
    dirs = _candidate_dirs(root)
    for d in dirs:
        img, lab = _find(d, img_stem), _find(d, lab_stem)
        if img and lab:
            return img, lab
    if download_missing:
        d = download(Path(root).expanduser() if root else cache_dir())
        return d / (img_stem + ".gz"), d / (lab_stem + ".gz")
    where = "\n".join(f"  - {d}" for d in dirs)
    raise ConfigError(
        f"Fashion-MNIST {split!r} split not found. Looked in:\n{where}\n"
        f"Put these 4 files (gzipped or not) in one of those folders, e.g. {cache_dir()}:\n  "
        + "\n  ".join(ALL_FILES)
        + "\nor run `apt-get install dataset-fashion-mnist` (Debian/Ubuntu, installs them in "
        f"{DEBIAN_DIR}), or set GANFORGE_FMNIST=/folder/with/files, or pass download=True when online."
    )


def _resize(x: np.ndarray, res: int) -> np.ndarray:
    from PIL import Image

    out = np.empty((x.shape[0], res, res), dtype=np.uint8)
    for i, im in enumerate(x):
        out[i] = np.asarray(Image.fromarray(im).resize((res, res), Image.BILINEAR))
    return out


def _pad(x: np.ndarray, res: int) -> np.ndarray:
    """(N, 28, 28) -> (N, res, res) with a zero (background) border; the odd pixel goes bottom/right."""
    lo = (res - x.shape[1]) // 2
    hi = res - x.shape[1] - lo
    return np.pad(x, ((0, 0), (lo, hi), (lo, hi)), mode="constant", constant_values=0)


RESIZE_MODES = {"bilinear": _resize, "pad": _pad}


def _read_cached(x_path: Path, y_path: Path, resolution: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The cached arrays, or None (with a warning when they exist but are damaged: they get rebuilt)."""
    if not (x_path.is_file() and y_path.is_file()):
        return None
    try:
        x, y = read_npy(x_path), read_npy(y_path)
        if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != (resolution, resolution):
            why = f"images {x.dtype} {x.shape}, expected uint8 (N, {resolution}, {resolution})"
        elif y.dtype != np.int64 or y.shape != (len(x),) or (len(y) and (y.min() < 0 or y.max() > 9)):
            why = f"labels {y.dtype} {y.shape}, expected {len(x)} int64 labels in 0..9"
        else:
            return x, y
    except (OSError, ValueError, EOFError) as e:
        why = f"{type(e).__name__}: {str(e)[:120]}"
    log.warning("the decoded Fashion-MNIST cache %s is damaged (%s); rebuilding it from the IDX files "
                "(--data.cache=false skips the cache)", x_path.parent, why)
    return None


def load_arrays(split: str = "train", resolution: int = 28, root: str | None = None, download: bool = False,
                cache: bool = True, resize: str = "bilinear"):
    """Decoded ``(images uint8 (N, R, R), labels int64 (N,))``, through the ``.npy`` cache unless ``cache=False``.

    ``resize`` (``bilinear`` or ``pad``) says how a resolution other than 28 is reached (module docstring).
    """
    _check_resize(resize, resolution)
    img_path, lab_path = locate(split, root, download)
    st = img_path.stat()
    key = hashlib.sha256(f"{img_path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:12]
    cdir = cache_dir()
    mode = "" if resize == "bilinear" or resolution == 28 else f"{resize}-"  # bilinear keeps the old file names
    x_cache, y_cache = cdir / f"{split}-{resolution}-{mode}{key}-x.npy", cdir / f"{split}-{key}-y.npy"
    hit = _read_cached(x_cache, y_cache, resolution) if cache else None
    if hit is not None:
        return hit
    x, y = read_idx(img_path), read_idx(lab_path).astype(np.int64)
    if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
        raise ConfigError(f"{img_path} / {lab_path}: expected images (N, 28, 28) and labels (N,), "
                          f"got {x.shape}, {y.shape}")
    if resolution != x.shape[1]:
        x = RESIZE_MODES[resize](x, resolution)
    if cache:
        _write_cache(cdir, ((x_cache, x), (y_cache, y)))
    return x, y


def _check_resize(resize: str, resolution: int) -> None:
    if resize not in RESIZE_MODES:
        raise ConfigError(f"fmnist resize must be one of {sorted(RESIZE_MODES)}, got {resize!r}")
    if resize == "pad" and resolution < 28:
        raise ConfigError(f"fmnist resize: pad adds a border to the 28x28 images, so it needs resolution >= 28, "
                          f"got {resolution} (use resize: bilinear to shrink)")


def _write_cache(cdir: Path, items) -> None:
    """Atomic writes; the cache is an optimisation, so a read-only or full disk only logs a warning."""
    tmp = None
    try:
        cdir.mkdir(parents=True, exist_ok=True)
        for path, arr in items:
            fd, tmp = tempfile.mkstemp(dir=cdir, suffix=".npy.part")
            with os.fdopen(fd, "wb") as fh:
                np.save(fh, arr)
            os.replace(tmp, path)
            tmp = None
    except OSError as e:
        log.warning("could not write the Fashion-MNIST cache in %s (%s); continuing without it", cdir,
                    e.strerror or e)
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


@DATASETS.register("fmnist")
def fmnist(
    *,
    split: str = "train",
    resolution: int = 28,
    root: str | None = None,
    download: bool = False,
    limit: int | None = None,
    cache: bool = True,
    resize: str = "bilinear",
) -> Dataset:
    """Fashion-MNIST, 10 classes of 28x28 grey garments (60k train / 10k test); IDX files, offline first.

    cache: false neither reads nor writes the decoded-array cache. resize: how a resolution other than 28
    is reached, ``bilinear`` (resize) or ``pad`` (a background border around the untouched 28x28 pixels).
    """
    if split not in FILES:
        raise ConfigError(f"fmnist split must be one of {sorted(FILES)}, got {split!r}")
    if not isinstance(resolution, int) or not 4 <= resolution <= 1024:
        raise ConfigError(f"fmnist resolution must be an int in [4, 1024] (28 is native), got {resolution!r}")
    if limit is not None and limit < 1:
        raise ConfigError(f"fmnist limit must be >= 1 or None, got {limit}")
    _check_resize(resize, resolution)
    x, y = load_arrays(split, resolution, root, download, cache, resize)
    if limit is not None:
        x, y = x[:limit], y[:limit]
    return Dataset(
        name="fmnist",
        x=torch.from_numpy(np.ascontiguousarray(x)).unsqueeze(1),
        y=torch.from_numpy(np.ascontiguousarray(y)),
        n_classes=10,
        class_names=list(CLASS_NAMES),
        info={"split": split, "resolution": resolution, "resize": resize, "source": str(locate(split, root)[0].parent)},
    )
