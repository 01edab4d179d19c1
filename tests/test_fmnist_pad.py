"""Fashion-MNIST at 32 px by padding (issue 16): the 28x28 pixels untouched, a 2 px border of background."""

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
from ganforge.training.eval_metrics import reference_for


def _write(root: Path, n: int = 6) -> np.ndarray:
    """IDX fixtures whose every pixel is non-zero, so a border of zeros can only come from the padding."""
    x = np.random.default_rng(1).integers(1, 256, size=(n, 28, 28), dtype=np.uint8)
    y = (np.arange(n) % 10).astype(np.uint8)
    root.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        for stem, arr in zip(F.FILES[split], (x, y), strict=True):
            head = struct.pack(">BBBB", 0, 0, 0x08, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
            (root / f"{stem}.gz").write_bytes(gzip.compress(head + arr.tobytes()))
    return x


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("GANFORGE_CACHE", raising=False)
    monkeypatch.delenv("GANFORGE_FMNIST", raising=False)


def test_pad_keeps_pixels_and_border_is_minus_one(tmp_path) -> None:
    x = _write(tmp_path / "data")
    d = DATASETS.build("fmnist", root=str(tmp_path / "data"), resolution=32, resize="pad")
    assert d.x.shape == (6, 1, 32, 32) and d.info["resize"] == "pad"
    np.testing.assert_array_equal(d.x[:, 0, 2:30, 2:30].numpy(), x)  # the garment, bit for bit
    m = d.to_model(d.x)
    border = torch.ones(32, 32, dtype=torch.bool)
    border[2:30, 2:30] = False
    assert int(border.sum()) == 32 * 32 - 28 * 28
    torch.testing.assert_close(m[:, 0][:, border], torch.full((6, int(border.sum())), -1.0))
    assert bool((m[:, 0, 2:30, 2:30] > -1).all())  # fixture pixels are >= 1, so only the border is -1


def test_pad_odd_difference_and_cache_separate_from_bilinear(tmp_path) -> None:
    x = _write(tmp_path / "data")
    root = str(tmp_path / "data")
    p = F.fmnist(root=root, resolution=31, resize="pad").x[:, 0].numpy()
    np.testing.assert_array_equal(p[:, 1:29, 1:29], x)  # 3 extra pixels: 1 top/left, 2 bottom/right
    assert (p[:, :1].sum(), p[:, 29:].sum(), p[:, :, :1].sum(), p[:, :, 29:].sum()) == (0, 0, 0, 0)
    bil = F.fmnist(root=root, resolution=32).x
    pad = F.fmnist(root=root, resolution=32, resize="pad").x
    assert not torch.equal(bil, pad)  # the two modes do not share a cache entry
    assert torch.equal(F.fmnist(root=root, resolution=32, resize="pad").x, pad)  # and a cache hit matches
    assert F.fmnist(root=root, resolution=32).info["resize"] == "bilinear"  # the default is unchanged
    assert torch.equal(F.fmnist(root=root, resize="pad").x[:, 0], torch.from_numpy(x))  # 28: nothing to do


def test_eval_reference_uses_the_training_resize(tmp_path) -> None:
    _write(tmp_path / "data")
    d = F.fmnist(root=str(tmp_path / "data"), resolution=32, resize="pad")
    ref, params, _ = reference_for(d)
    assert ref == "fmnist-test" and params["resize"] == "pad" and params["resolution"] == 32


def test_bad_resize_is_rejected(tmp_path) -> None:
    _write(tmp_path / "data")
    with pytest.raises(ConfigError, match=r"fmnist resize must be one of \['bilinear', 'pad'\], got 'crop'"):
        F.fmnist(root=str(tmp_path / "data"), resolution=32, resize="crop")
    with pytest.raises(ConfigError, match="pad .* needs resolution >= 28, got 16"):
        F.fmnist(root=str(tmp_path / "data"), resolution=16, resize="pad")
