"""Reading ``.npy`` / ``.npz`` files without trusting them.

``np.load`` with ``allow_pickle=False`` already refuses to run code, but a
hostile or damaged file still costs: a header that claims a shape of 10**12
elements allocates before the short read is noticed, and the refusal of an
object array says "Cannot load file containing pickled data" without naming
the file. These readers check the header against the bytes actually present
first and raise ``ValueError`` with a sentence; callers turn that into a
ConfigError (user input) or a cache rebuild (cache files).
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import IO

import numpy as np


def _check_header(fh: IO[bytes], total: int) -> None:
    """Read a .npy header from ``fh`` (``total`` bytes long) and refuse object dtypes and shapes larger than
    the bytes after the header."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(fh)
        read = {(1, 0): fmt.read_array_header_1_0, (2, 0): fmt.read_array_header_2_0}.get(version)
        if read is None:
            raise ValueError(f"unsupported .npy format version {version}")
        shape, _, dtype = read(fh)
    except (ValueError, EOFError, OSError) as e:
        raise ValueError(f"not a .npy array ({str(e)[:120]})") from None
    if dtype.hasobject:
        raise ValueError(f"it holds Python objects (dtype {dtype}), which can only be read by unpickling; "
                         "pickled arrays are refused (allow_pickle stays False)")
    need = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
    available = total - fh.tell()
    if need > available:
        raise ValueError(f"it is truncated: its header says shape {tuple(shape)} of {dtype} ({need:,} bytes) "
                         f"but only {available:,} bytes follow")


def read_npy(path: str | Path) -> np.ndarray:
    """A ``.npy`` file as an array, after checking its header (ValueError with the reason otherwise)."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as fh:
        _check_header(fh, size)
    return np.load(path, allow_pickle=False)


def read_npz(path: str | Path) -> dict[str, np.ndarray]:
    """Every array of a ``.npz`` file, each header checked against its member's size first."""
    try:
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                with z.open(info) as fh:
                    _check_header(fh, info.file_size)
    except zipfile.BadZipFile as e:
        raise ValueError(f"not a .npz (zip) file ({e})") from None
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}
