"""Image sources besides Fashion-MNIST (C10): scikit-learn's digits, CIFAR-10, any image folder.

Each yields a ``Dataset`` like ``fmnist``: ``x`` uint8 (N, C, H, W) at the
configured resolution, ``y`` int64 labels where there are any, class names;
``Dataset.to_model`` maps a batch to [-1, 1]. Decoding happens once: the
uint8 arrays are cached as ``.npz`` in ``~/.cache/ganforge/<source>/``, keyed
by the source path, its files' sizes and mtimes, and every option that changes
the pixels (resolution, channels, crop); see ``ganforge.data.cache`` (where
``$GANFORGE_CACHE`` moves it, ``cache=False`` bypasses it, a damaged file is
rebuilt). Loading never executes code: CIFAR's pickled batches go through an
unpickler that admits only numpy's array reconstruction.

Hostile or broken image files in a folder (zero bytes, truncated, not an
image, a decompression bomb over ``MAX_PIXELS``) are skipped, and one warning
says how many and which; a folder with no readable image is a ConfigError.

Resizing: a centre crop to the target aspect ratio, then a Pillow bilinear
(anti-aliased) resize; ``crop="none"`` stretches instead.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import pickle
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import torch

from ganforge.data.base import Dataset
from ganforge.data.cache import cache_root, cached, image_check
from ganforge.errors import ConfigError
from ganforge.registry import DATASETS

log = logging.getLogger("ganforge")

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm")
CROPS = ("center", "none")
CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
CIFAR_FILES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
# Images with more pixels than this (about 8000 x 8000) are skipped unread: decoding a small file that claims
# a huge size (a decompression bomb) would take gigabytes of memory. Pillow's own limit is 89M (warning) / 179M.
MAX_PIXELS = 64_000_000


# ------------------------------------------------------------------------------ common
def _check_common(source: str, resolution: int, limit: int | None) -> None:
    if not isinstance(resolution, int) or not 4 <= resolution <= 1024:
        raise ConfigError(f"{source} resolution must be an int in [4, 1024], got {resolution!r}")
    if limit is not None and limit < 1:
        raise ConfigError(f"{source} limit must be >= 1 or null, got {limit}")


def resize_images(x: np.ndarray, resolution: int, crop: str = "center") -> np.ndarray:
    """uint8 (N, C, H, W) -> (N, C, R, R): optional centre crop to a square, then bilinear resize."""
    from PIL import Image

    n, c, h, w = x.shape
    if (h, w) == (resolution, resolution):
        return x
    out = np.empty((n, c, resolution, resolution), dtype=np.uint8)
    for i in range(n):
        for j in range(c):
            out[i, j] = np.asarray(_fit(Image.fromarray(x[i, j]), resolution, crop))
    return out


def _fit(im, resolution: int, crop: str):
    """A PIL image -> resolution x resolution (centre crop to a square first unless crop == "none")."""
    from PIL import Image

    if crop == "center" and im.width != im.height:
        s = min(im.width, im.height)
        left, top = (im.width - s) // 2, (im.height - s) // 2
        im = im.crop((left, top, left + s, top + s))
    if im.size != (resolution, resolution):
        im = im.resize((resolution, resolution), Image.BILINEAR)
    return im


def _key(*parts: object) -> str:
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()[:16]


def _dataset(name: str, arrays: dict[str, np.ndarray], limit: int | None, info: dict) -> Dataset:
    x, y = arrays["x"], arrays.get("y")
    names = [str(s) for s in arrays["names"]] if "names" in arrays and len(arrays["names"]) else None
    if limit is not None:
        x = x[:limit]
        y = y[:limit] if y is not None else None
    return Dataset(
        name=name,
        x=torch.from_numpy(np.ascontiguousarray(x)),
        y=torch.from_numpy(np.ascontiguousarray(y)).long() if y is not None else None,
        n_classes=len(names) if names else 0,
        class_names=names,
        info=info,
    )


# ------------------------------------------------------------------------------ digits
@DATASETS.register("digits")
def digits(*, resolution: int = 8, split: str = "all", limit: int | None = None, cache: bool = True) -> Dataset:
    """scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10 classes), no download.

    Pixel values 0..16 are scaled to 0..255. split: "all", or "train" / "test"
    (every 6th image is test: 1,498 / 299). cache: false skips the decoded-array cache.
    """
    _check_common("digits", resolution, limit)
    if split not in ("all", "train", "test"):
        raise ConfigError(f"digits split must be one of all, train, test; got {split!r}")
    from sklearn import datasets as skd

    src = Path(skd.__file__).parent / "data" / "digits.csv.gz"
    stamp = src.stat().st_mtime_ns if src.is_file() else 0

    def build() -> dict[str, np.ndarray]:
        bunch = skd.load_digits()
        x = np.round(bunch.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)[:, None]
        return {"x": resize_images(x, resolution), "y": bunch.target.astype(np.int64),
                "names": np.array([str(i) for i in range(10)])}

    arrays = dict(cached("digits", _key(src, stamp, resolution), build, check=image_check(resolution, 1),
                         enabled=cache))
    if split != "all":
        test = np.arange(len(arrays["x"])) % 6 == 5
        keep = test if split == "test" else ~test
        arrays["x"], arrays["y"] = arrays["x"][keep], arrays["y"][keep]
    return _dataset("digits", arrays, limit, {"split": split, "resolution": resolution, "source": "sklearn"})


# ------------------------------------------------------------------------------ CIFAR-10
class SafeUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays, lists, dicts, strings and numbers; refuses every other global.

    CIFAR-10's python batches are pickles; a plain ``pickle.load`` would run
    whatever callable a tampered file names. Only numpy's array reconstructors
    (and the latin-1 codec that protocol-2 bytes use) are allowed.
    """

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")
        if module == "_codecs":
            import codecs

            return codecs.encode
        if module == "numpy":
            return getattr(np, name)
        import importlib

        sub = module.rsplit(".", 1)[1]  # multiarray / numeric: numpy 2 moved numpy.core to numpy._core
        for base in ("numpy._core", "numpy.core"):
            try:
                return getattr(importlib.import_module(f"{base}.{sub}"), name)
            except (ImportError, AttributeError):
                continue
        raise pickle.UnpicklingError(f"numpy has no {module}.{name}")


def safe_unpickle(path: Path):
    """Load a pickle file with ``SafeUnpickler`` (bytes keys kept as bytes, as CIFAR's Python-2 pickles need)."""
    try:
        data = path.read_bytes()
        return SafeUnpickler(io.BytesIO(data), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as e:
        raise ConfigError(f"{path} is not a CIFAR-10 python batch ({e}). Only plain numpy pickles are read; "
                          f"re-extract it from {CIFAR_URL}") from None


def _get(d: dict, key: str):
    for k in (key.encode(), key):
        if k in d:
            return d[k]
    raise KeyError(key)


def _cifar_dirs(root: str | None) -> list[Path]:
    if root is not None:
        bases = [Path(root).expanduser()]
    else:
        bases = [Path(os.environ["GANFORGE_CIFAR10"]).expanduser()] if os.environ.get("GANFORGE_CIFAR10") else []
        bases.append(cache_root() / "cifar10")
    return [d for b in bases for d in (b, b / "cifar-10-batches-py")]


def locate_cifar10(split: str, root: str | None = None) -> list[Path]:
    """The batch files of ``split``; a ConfigError naming the files and folders when absent."""
    dirs = _cifar_dirs(root)
    for d in dirs:
        files = [d / f for f in CIFAR_FILES[split]]
        if all(f.is_file() for f in files):
            return files
    where = "\n".join(f"  - {d}" for d in dirs)
    raise ConfigError(
        f"CIFAR-10 {split!r} split not found. Looked in:\n{where}\n"
        f"It needs the python batches {', '.join(CIFAR_FILES[split])} (and batches.meta for class names): "
        f"download {CIFAR_URL}, extract it, and pass the folder as --data.root=DIR (or set GANFORGE_CIFAR10=DIR, "
        f"or extract it into {cache_root() / 'cifar10'})."
    )


def _read_cifar(files: list[Path]) -> dict[str, np.ndarray]:
    xs, ys = [], []
    for f in files:
        batch = safe_unpickle(f)
        try:
            data = np.asarray(_get(batch, "data"), dtype=np.uint8)
            labels = np.asarray(_get(batch, "labels"), dtype=np.int64)
        except (KeyError, TypeError, ValueError):
            raise ConfigError(f"{f} is not a CIFAR-10 batch: expected a dict with 'data' (N, 3072) uint8 and "
                              "'labels'") from None
        if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
            raise ConfigError(f"{f}: expected data (N, 3072) and N labels, got {data.shape} and {labels.shape}")
        xs.append(data.reshape(-1, 3, 32, 32))  # rows are R plane, G plane, B plane, each row-major 32x32
        ys.append(labels)
    names = list(CIFAR_CLASSES)
    meta = files[0].parent / "batches.meta"
    if meta.is_file():
        try:
            names = [n.decode() if isinstance(n, bytes) else str(n) for n in _get(safe_unpickle(meta), "label_names")]
        except (KeyError, ConfigError):
            log.warning("%s has no label_names; using the standard CIFAR-10 class names", meta)
    return {"x": np.concatenate(xs), "y": np.concatenate(ys), "names": np.array(names)}


@DATASETS.register("cifar10")
def cifar10(*, root: str | None = None, split: str = "train", resolution: int = 32, crop: str = "center",
            limit: int | None = None, cache: bool = True) -> Dataset:
    """CIFAR-10 (Krizhevsky 2009): 32x32 RGB, 10 classes, from its python batches in a folder (50k / 10k).

    Looked for in ``root``, else ``$GANFORGE_CIFAR10``, else ``~/.cache/ganforge/cifar10`` (each also
    with the archive's ``cifar-10-batches-py`` subfolder). cache: false skips the decoded-array cache.
    """
    _check_common("cifar10", resolution, limit)
    if split not in CIFAR_FILES:
        raise ConfigError(f"cifar10 split must be one of {', '.join(CIFAR_FILES)}; got {split!r}")
    if crop not in CROPS:
        raise ConfigError(f"cifar10 crop must be one of {', '.join(CROPS)}; got {crop!r}")
    files = locate_cifar10(split, root)
    stamp = [(str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns) for f in files]

    def build() -> dict[str, np.ndarray]:
        arrays = _read_cifar(files)
        arrays["x"] = resize_images(arrays["x"], resolution, crop)
        return arrays

    arrays = cached("cifar10", _key(stamp, resolution, crop), build, check=image_check(resolution, 3), enabled=cache)
    return _dataset("cifar10", arrays, limit, {"split": split, "resolution": resolution,
                                               "source": str(files[0].parent)})


# ------------------------------------------------------------------------------ folders
def scan_folder(root: Path) -> tuple[list[Path], list[str] | None]:
    """Every image file under ``root`` (recursively, sorted) and the class names, or None.

    Labels come from the top-level subfolders when every image lies in one
    and there are at least two; otherwise the folder is unlabelled.
    """
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                   and not any(part.startswith(".") for part in p.relative_to(root).parts))
    tops = {p.relative_to(root).parts[0] for p in files if len(p.relative_to(root).parts) > 1}
    in_root = any(len(p.relative_to(root).parts) == 1 for p in files)
    classes = sorted(tops) if len(tops) >= 2 and not in_root else None
    return files, classes


@contextlib.contextmanager
def open_image(path: Path):
    """A decoded PIL image, refused before decoding when it has more than ``MAX_PIXELS`` pixels.

    Raises one of ``bad_image_errors()`` for a file that is not a readable image of sane size.
    """
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)  # Pillow only warns between 89M and 179M
        with Image.open(path) as im:
            if im.width * im.height > MAX_PIXELS:
                raise Image.DecompressionBombError(f"{im.width}x{im.height} pixels, over the limit of "
                                                   f"{MAX_PIXELS:,} (a decompression bomb?)")
            im.load()
            yield im


def read_image(path: Path, resolution: int, crop: str):
    """(RGB PIL image fitted to resolution x resolution, whether the file is greyscale); see ``open_image``."""
    with open_image(path) as im:
        grey = im.mode in ("1", "L", "LA", "I", "I;16", "F")
        return _fit(im.convert("RGB"), resolution, crop), grey


def bad_image_errors() -> tuple[type[BaseException], ...]:
    """What Pillow raises for zero-byte, truncated, corrupt, non-image and oversized files."""
    from PIL import Image, UnidentifiedImageError

    return (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError, struct.error, zlib.error,
            Image.DecompressionBombError, Image.DecompressionBombWarning)


def _why(path: Path, e: BaseException) -> str:
    try:
        if path.stat().st_size == 0:
            return "empty file"
    except OSError:
        pass
    return ((str(e) or type(e).__name__).splitlines() or [""])[0][:100]


def report_skipped(skipped: list[tuple[Path, str]], total: int, root: Path) -> None:
    """One warning for every unreadable file of a folder: how many, and the first few with why."""
    if skipped:
        shown = "; ".join(f"{f.name} ({why})" for f, why in skipped[:3]) + ("; ..." if len(skipped) > 3 else "")
        log.warning("skipped %d of %d image files under %s that are not readable images: %s",
                    len(skipped), total, root, shown)


def _decode_folder(root: Path, files: list[Path], classes: list[str] | None, resolution: int, channels: int | None,
                   crop: str) -> dict[str, np.ndarray]:
    bad = bad_image_errors()
    images, labels, modes, skipped = [], [], [], []
    for f in files:
        try:
            im, grey = read_image(f, resolution, crop)
        except bad as e:
            skipped.append((f, _why(f, e)))
            continue
        images.append(im)
        modes.append(grey)
        if classes is not None:
            labels.append(classes.index(f.relative_to(root).parts[0]))
    if not images:
        raise ConfigError(f"no readable images under {root}: all {len(files)} files with image suffixes failed to "
                          f"decode (e.g. {skipped[0][0].name}: {skipped[0][1]}). Give a folder of PNG/JPEG images")
    report_skipped(skipped, len(files), root)
    c = channels if channels is not None else (1 if all(modes) else 3)
    if c == 1:
        x = np.stack([np.asarray(im.convert("L")) for im in images])[:, None]
    else:
        x = np.stack([np.asarray(im) for im in images]).transpose(0, 3, 1, 2)
    out = {"x": np.ascontiguousarray(x), "names": np.array(classes or [], dtype=str)}
    if classes is not None:
        out["y"] = np.asarray(labels, dtype=np.int64)
    return out


@DATASETS.register("folder")
def folder(*, root: str | None = None, resolution: int = 64, channels: int | None = None, crop: str = "center",
           labels: bool = True, limit: int | None = None, cache: bool = True) -> Dataset:
    """Any folder of images, searched recursively; class subfolders become labels.

    root: the folder (set it with --data.root=DIR). channels: 1 (grey), 3 (RGB)
    or null (grey when every image is grey). crop: "center" (square centre crop,
    then resize) or "none" (stretch). labels: false ignores class subfolders. cache: false skips the
    decoded-array cache. Unreadable files are skipped with one warning.
    """
    _check_common("folder", resolution, limit)
    if root is None:
        raise ConfigError("dataset folder needs its path: add --data.root=/path/to/images (a folder of images, "
                          "searched recursively; one subfolder per class gives labels)")
    if channels not in (None, 1, 3):
        raise ConfigError(f"folder channels must be 1, 3 or null (automatic); got {channels!r}")
    if crop not in CROPS:
        raise ConfigError(f"folder crop must be one of {', '.join(CROPS)}; got {crop!r}")
    base = Path(root).expanduser()
    if not base.is_dir():
        what = "it is a file" if base.exists() else "nothing is there"
        raise ConfigError(f"image folder {base} does not exist or is not a folder (set --data.root=DIR): {what}")
    files, classes = scan_folder(base)
    if not files:
        raise ConfigError(f"no images under {base}. Image files end in {', '.join(IMAGE_SUFFIXES)} "
                          "(searched recursively)")
    if not labels:
        classes = None
    stamp = [(str(f.relative_to(base)), f.stat().st_size, f.stat().st_mtime_ns) for f in files]
    key = _key(base.resolve(), stamp, resolution, channels, crop, classes)
    arrays = cached("folder", key, lambda: _decode_folder(base, files, classes, resolution, channels, crop),
                    check=image_check(resolution, channels), enabled=cache)
    return _dataset("folder", arrays, limit, {"resolution": resolution, "source": str(base)})
