"""Fashion-MNIST loading: the IDX reader on fixtures written here, search order, resizing, error messages."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from ganforge.data import fmnist as F
from ganforge.errors import ConfigError
from ganforge.registry import DATASETS


def _idx_bytes(arr: np.ndarray) -> bytes:
    code = {np.uint8: 0x08, np.int32: 0x0C}[arr.dtype.type]
    head = struct.pack(">BBBB", 0, 0, code, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return head + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def _write_fixture(root: Path, n: int = 12, gz: bool = True) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    y = (np.arange(n) % 10).astype(np.uint8)
    root.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        for stem, arr in zip(F.FILES[split], (x, y), strict=True):
            data = _idx_bytes(arr)
            if gz:
                (root / f"{stem}.gz").write_bytes(gzip.compress(data))
            else:
                (root / stem).write_bytes(data)
    return x, y


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # the .npy cache goes to ~/.cache/ganforge/fmnist
    monkeypatch.delenv("GANFORGE_FMNIST", raising=False)


@pytest.mark.parametrize("gz", [True, False])
def test_read_idx(tmp_path, gz: bool) -> None:
    x, y = _write_fixture(tmp_path, gz=gz)
    suffix = ".gz" if gz else ""
    np.testing.assert_array_equal(F.read_idx(tmp_path / f"train-images-idx3-ubyte{suffix}"), x)
    np.testing.assert_array_equal(F.read_idx(tmp_path / f"t10k-labels-idx1-ubyte{suffix}"), y)
    ints = np.arange(6, dtype=np.int32).reshape(2, 3) - 3
    (tmp_path / "ints").write_bytes(_idx_bytes(ints))
    np.testing.assert_array_equal(F.read_idx(tmp_path / "ints"), ints)


def test_read_idx_rejects_corrupt_files(tmp_path) -> None:
    (tmp_path / "bad").write_bytes(b"\x1f\x00\x08\x03garbage")
    with pytest.raises(ConfigError, match="bad is not an IDX file.*bad magic number 1f000803"):
        F.read_idx(tmp_path / "bad")
    good = _idx_bytes(np.zeros((4, 28, 28), np.uint8))
    (tmp_path / "short").write_bytes(good[:-10])
    with pytest.raises(ConfigError, match=r"truncated or corrupt: header says shape \(4, 28, 28\)"):
        F.read_idx(tmp_path / "short")
    (tmp_path / "cut.gz").write_bytes(gzip.compress(good)[:40])
    with pytest.raises(ConfigError, match="cannot read IDX file"):
        F.read_idx(tmp_path / "cut.gz")


def test_dataset_from_root(tmp_path) -> None:
    x, y = _write_fixture(tmp_path / "data")
    d = DATASETS.build("fmnist", split="test", root=str(tmp_path / "data"))
    assert d.name == "fmnist" and d.x.shape == (12, 1, 28, 28) and d.x.dtype == torch.uint8
    assert d.y.dtype == torch.int64 and d.n_classes == 10 and d.class_names[9] == "Ankle boot"
    np.testing.assert_array_equal(d.x[:, 0].numpy(), x)
    np.testing.assert_array_equal(d.y.numpy(), y)
    assert len(DATASETS.build("fmnist", root=str(tmp_path / "data"), limit=5)) == 5
    assert list((tmp_path / "home" / ".cache" / "ganforge" / "fmnist").glob("test-28-*-x.npy"))
    again = F.fmnist(split="test", root=str(tmp_path / "data"))  # served from the .npy cache
    assert torch.equal(again.x, d.x)


def test_resize_is_bilinear(tmp_path) -> None:
    from PIL import Image

    x, _ = _write_fixture(tmp_path / "data", n=3)
    d = F.fmnist(split="train", root=str(tmp_path / "data"), resolution=32)
    assert d.x.shape == (3, 1, 32, 32)
    expected = np.asarray(Image.fromarray(x[1]).resize((32, 32), Image.BILINEAR))
    np.testing.assert_array_equal(d.x[1, 0].numpy(), expected)


def test_env_var_comes_before_the_system_copy(tmp_path, monkeypatch) -> None:
    _write_fixture(tmp_path / "env", n=4)
    monkeypatch.setenv("GANFORGE_FMNIST", str(tmp_path / "env"))
    d = F.fmnist(split="train")
    assert len(d) == 4 and d.info["source"] == str(tmp_path / "env")


def test_missing_data_message(tmp_path) -> None:
    with pytest.raises(ConfigError) as err:
        F.fmnist(split="train", root=str(tmp_path / "empty"))
    msg = str(err.value)
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                 "t10k-labels-idx1-ubyte.gz", "apt-get install dataset-fashion-mnist", "GANFORGE_FMNIST",
                 "download=True", str(tmp_path / "empty")):
        assert name in msg


def test_bad_parameters(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"split must be one of \['test', 'train'\], got 'val'"):
        F.fmnist(split="val")
    with pytest.raises(ConfigError, match="resolution must be an int"):
        F.fmnist(resolution=2)


def test_real_fashion_mnist_if_installed() -> None:
    if not (F.DEBIAN_DIR / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip("Debian package dataset-fashion-mnist not installed")
    d = F.fmnist(split="test", root=str(F.DEBIAN_DIR))
    assert d.x.shape == (10000, 1, 28, 28)
    assert torch.equal(torch.bincount(d.y), torch.full((10,), 1000))
