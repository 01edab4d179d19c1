"""Image sources on fixtures written here: digits, CIFAR-10 batches (and a hostile pickle), an image folder."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.data import images as I
from ganforge.errors import ConfigError
from ganforge.registry import DATASETS


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # decoded arrays go to ~/.cache/ganforge/<source>
    monkeypatch.delenv("GANFORGE_CIFAR10", raising=False)


# ------------------------------------------------------------------------------ digits
def test_digits_native_and_resized() -> None:
    from sklearn.datasets import load_digits

    ref = load_digits()
    d = DATASETS.build("digits")
    assert d.x.shape == (1797, 1, 8, 8) and d.x.dtype == torch.uint8 and d.n_classes == 10
    np.testing.assert_array_equal(d.x[:, 0].numpy(), np.round(ref.images * 255 / 16).astype(np.uint8))
    np.testing.assert_array_equal(d.y.numpy(), ref.target)
    x = d.to_model(d.x)
    assert x.min() == -1.0 and x.max() == 1.0
    big = DATASETS.build("digits", resolution=16)
    assert big.x.shape == (1797, 1, 16, 16)
    tr, te = DATASETS.build("digits", split="train"), DATASETS.build("digits", split="test")
    assert len(tr) + len(te) == 1797 and len(te) == 299
    assert len(DATASETS.build("digits", limit=10)) == 10
    with pytest.raises(ConfigError, match="digits split must be one of all, train, test; got 'val'"):
        DATASETS.build("digits", split="val")


# ------------------------------------------------------------------------------ CIFAR-10
def _write_cifar(root: Path, n: int = 6) -> dict[str, np.ndarray]:
    """Batches laid out like the real archive: dicts with bytes keys, data (N, 3072) uint8, labels list."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    out = {}
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        labels = [int(v) for v in (np.arange(n) + i) % 10]
        with open(root / name, "wb") as f:
            pickle.dump({b"batch_label": name.encode(), b"data": data, b"labels": labels}, f, protocol=2)
        out[name] = data
    names = [b"plane", b"car", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
    with open(root / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": names, b"num_vis": 3072}, f, protocol=2)
    return out


def test_cifar10_from_batches(tmp_path) -> None:
    raw = _write_cifar(tmp_path / "dl" / "cifar-10-batches-py")  # the archive's subfolder is found too
    d = DATASETS.build("cifar10", root=str(tmp_path / "dl"))
    assert d.x.shape == (30, 3, 32, 32) and d.x.dtype == torch.uint8 and d.n_classes == 10
    assert d.class_names[:2] == ["plane", "car"]
    # each row is the R plane, then G, then B, each 32x32 row-major
    first = raw["data_batch_1"][0]
    np.testing.assert_array_equal(d.x[0, 1].numpy(), first[1024:2048].reshape(32, 32))
    np.testing.assert_array_equal(d.y[:6].numpy(), np.arange(6))
    t = DATASETS.build("cifar10", root=str(tmp_path / "dl"), split="test", resolution=16)
    assert t.x.shape == (6, 3, 16, 16)
    assert list((tmp_path / "home" / ".cache" / "ganforge" / "cifar10").glob("*.npz"))


class _Exploit:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_cifar10_refuses_code_in_pickles(tmp_path, monkeypatch) -> None:
    _write_cifar(tmp_path / "c")
    with open(tmp_path / "c" / "data_batch_3", "wb") as f:
        pickle.dump({b"data": _Exploit(), b"labels": []}, f, protocol=2)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"data_batch_3 is not a CIFAR-10 python batch \(refusing to load global "
                                          r"(posix|nt|os)\.system\)"):
        DATASETS.build("cifar10", root=str(tmp_path / "c"))
    assert not (tmp_path / "pwned").exists()


def test_cifar10_missing_message(tmp_path) -> None:
    with pytest.raises(ConfigError) as e:
        DATASETS.build("cifar10", root=str(tmp_path / "nothing"))
    msg = str(e.value)
    assert "CIFAR-10 'train' split not found" in msg and str(tmp_path / "nothing") in msg
    assert "data_batch_1, data_batch_2, data_batch_3, data_batch_4, data_batch_5" in msg
    assert "cifar-10-python.tar.gz" in msg and "--data.root=DIR" in msg


# ------------------------------------------------------------------------------ folders
def _write_folder(root: Path) -> None:
    """Two classes (one nested deeper), grey PNGs; a non-image file and a hidden folder to ignore."""
    for cls, value in (("cats", 40), ("dogs", 200)):
        for i in range(3):
            sub = root / cls / ("deep" if i == 2 else "")
            sub.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((20, 20), value + i, np.uint8)).save(sub / f"{i}.png")
    (root / "cats" / "notes.txt").write_text("not an image")
    (root / ".thumbs").mkdir()
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(root / ".thumbs" / "x.png")


def test_folder_recursive_with_class_labels(tmp_path) -> None:
    _write_folder(tmp_path / "imgs")
    d = DATASETS.build("folder", root=str(tmp_path / "imgs"), resolution=16)
    assert d.x.shape == (6, 1, 16, 16) and d.x.dtype == torch.uint8  # all grey -> one channel
    assert d.class_names == ["cats", "dogs"] and d.n_classes == 2
    np.testing.assert_array_equal(d.y.numpy(), [0, 0, 0, 1, 1, 1])
    # sorted paths: cats/0, cats/1, cats/deep/2 ...; constant images stay constant after resizing
    np.testing.assert_array_equal(d.x[:, 0, 5, 5].numpy(), [40, 41, 42, 200, 201, 202])
    rgb = DATASETS.build("folder", root=str(tmp_path / "imgs"), resolution=16, channels=3, labels=False)
    assert rgb.x.shape == (6, 3, 16, 16) and rgb.y is None and rgb.n_classes == 0


def test_folder_rgb_centre_crop_and_flat_folder(tmp_path) -> None:
    root = tmp_path / "flat"
    root.mkdir()
    im = np.zeros((20, 40, 3), np.uint8)  # H=20, W=40: red | green | blue thirds... centre 20x20 is all green
    im[:, :10] = (255, 0, 0)
    im[:, 10:30] = (0, 255, 0)
    im[:, 30:] = (0, 0, 255)
    Image.fromarray(im).save(root / "a.png")
    Image.fromarray(im).save(root / "b.jpg", quality=100)
    d = DATASETS.build("folder", root=str(root), resolution=16)
    assert d.x.shape == (2, 3, 16, 16) and d.y is None  # no class subfolders: unlabelled
    np.testing.assert_array_equal(d.x[0, :, 8, 8].numpy(), [0, 255, 0])
    stretched = DATASETS.build("folder", root=str(root), resolution=16, crop="none")
    np.testing.assert_array_equal(stretched.x[0, :, 8, 0].numpy(), [255, 0, 0])


def test_folder_cache_is_used_and_invalidated(tmp_path, monkeypatch) -> None:
    root = tmp_path / "imgs"
    _write_folder(root)
    first = DATASETS.build("folder", root=str(root), resolution=16)

    def boom(*a, **k):
        raise AssertionError("decoded again")

    with monkeypatch.context() as m:
        m.setattr(I, "_decode_folder", boom)
        again = DATASETS.build("folder", root=str(root), resolution=16)  # served from the cache
    assert torch.equal(again.x, first.x) and torch.equal(again.y, first.y) and again.class_names == ["cats", "dogs"]
    Image.fromarray(np.full((20, 20), 7, np.uint8)).save(root / "cats" / "0.png")
    st = (root / "cats" / "0.png").stat()
    os.utime(root / "cats" / "0.png", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    changed = DATASETS.build("folder", root=str(root), resolution=16)
    assert int(changed.x[0, 0, 5, 5]) == 7


def test_folder_errors(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"dataset folder needs its path: add --data.root=/path/to/images"):
        DATASETS.build("folder")
    with pytest.raises(ConfigError, match=r"does not exist or is not a folder \(set --data.root=DIR\)"):
        DATASETS.build("folder", root=str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "a.txt").write_text("x")
    with pytest.raises(ConfigError, match=r"no images under .*empty. Image files end in .png, .jpg"):
        DATASETS.build("folder", root=str(tmp_path / "empty"))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "a.png").write_bytes(b"not a png")
    with pytest.raises(ConfigError, match="no readable images under"):
        DATASETS.build("folder", root=str(tmp_path / "broken"))
    with pytest.raises(ConfigError, match="folder channels must be 1, 3 or null"):
        DATASETS.build("folder", root=str(tmp_path), channels=2)


def test_trainer_writes_a_sample_grid(tmp_path) -> None:
    """Image data: each evaluation writes a PNG grid of the first 64 evaluation samples (8 per row)."""
    from ganforge import api

    res = api.train({
        "data": {"name": "digits", "resolution": 16, "limit": 256},
        "game": {"name": "gan", "z_dim": 8},
        "nets": {"g": {"name": "dcgan", "base": 8}, "d": {"name": "dcgan", "base": 8}},
        "train": {"steps": 4, "batch_size": 32, "threads": 1, "device": "cpu", "tensorboard": False},
        "eval": {"every": 2, "n": 100},
        "checkpoint": {"every": 0},
    }, out=tmp_path / "run")
    grids = sorted((res.run_dir / "samples").glob("*.png"))
    assert [p.name for p in grids] == ["step_0000002.png", "step_0000004.png"]
    im = Image.open(grids[-1])
    side = (8 * (16 + 2) + 2) * 2  # 8 cells of 16 px, 2 px padding, pixels doubled
    assert im.mode == "L" and im.size == (side, side + 14)  # plus the caption strip
