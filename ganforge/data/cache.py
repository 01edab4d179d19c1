"""The decoded-data cache: uint8 arrays decoded once from a slow source, kept as ``.npz`` files.

Where: ``$GANFORGE_CACHE/<source>/`` or ``~/.cache/ganforge/<source>/`` (Fashion-MNIST's ``.npy``
arrays live in its ``fmnist`` subfolder). The key is chosen by the caller: the source path, its files'
sizes and mtimes, every option that changes the pixels. The cache is an optimisation and never a
failure: a file that cannot be read (not a zip, truncated, a pickled array, a header claiming more
bytes than the file holds) or holds arrays of the wrong kind is rebuilt with one warning; a read-only
or full disk costs a warning and the rebuild. ``cache=False`` (``--data.cache=false``) neither reads
nor writes it.
"""

from __future__ import annotations

import logging
import os
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ganforge.data.npy import read_npz

log = logging.getLogger("ganforge")


def cache_root() -> Path:
    """``$GANFORGE_CACHE`` or ``~/.cache/ganforge``: decoded arrays of every source, a subfolder per source."""
    env = os.environ.get("GANFORGE_CACHE")
    return Path(env).expanduser() if env else Path(os.path.expanduser("~")) / ".cache" / "ganforge"


def cached(source: str, key: str, build: Callable[[], dict[str, np.ndarray]], *,
           check: Callable[[dict[str, np.ndarray]], str | None] | None = None,
           enabled: bool = True) -> dict[str, np.ndarray]:
    """The arrays ``build()`` returns, decoded once and kept in ``<cache_root()>/<source>/<key>.npz``.

    Read back with ``allow_pickle=False``. A file that cannot be read (not a zip, truncated, pickled
    arrays) or that ``check`` rejects (it returns why: wrong dtype, shape) is rebuilt with a warning;
    a read-only cache only costs the rebuild. ``enabled=False`` neither reads nor writes the file.
    """
    if not enabled:
        return build()
    path = cache_root() / source / f"{key}.npz"
    if path.is_file():
        try:
            arrays = read_npz(path)
            why = check(arrays) if check is not None else None
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as e:
            why = f"{type(e).__name__}: {str(e)[:120]}"
        if why is None:
            return arrays
        log.warning("the decoded-data cache %s is damaged (%s); rebuilding it from the source "
                    "(--data.cache=false skips the cache)", path, why)
    arrays = build()
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.part")
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, path)
        tmp = None
    except OSError as e:  # a full or read-only disk: train from memory, say so once
        log.warning("could not write the decoded-data cache %s (%s); continuing without it", path, e.strerror or e)
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
    return arrays


def image_check(resolution: int, channels: int | None = None) -> Callable[[dict[str, np.ndarray]], str | None]:
    """A ``cached(check=...)`` for image arrays: x uint8 (N, C, R, R), y (N,) integer labels within names."""

    def check(a: dict[str, np.ndarray]) -> str | None:
        x, y, names = a.get("x"), a.get("y"), a.get("names")
        want_c = (channels,) if channels else (1, 3)
        if x is None or x.dtype != np.uint8 or x.ndim != 4 or len(x) == 0 or x.shape[1] not in want_c \
                or x.shape[2:] != (resolution, resolution):
            got = "no x" if x is None else f"x {x.dtype} {x.shape}"
            return f"{got}, expected uint8 (N, {'/'.join(map(str, want_c))}, {resolution}, {resolution})"
        if names is not None and (names.ndim != 1 or names.dtype.kind != "U"):
            return f"names {names.dtype} {names.shape}, expected a list of strings"
        if y is not None:
            if y.ndim != 1 or len(y) != len(x) or y.dtype.kind not in "iu":
                return f"y {y.dtype} {y.shape}, expected {len(x)} integer labels"
            k = len(names) if names is not None else 0
            if k and (y.min() < 0 or y.max() >= k):
                return f"labels outside 0..{k - 1}"
        return None

    return check
