"""Translation data: transforms and their inverses, the Fashion-MNIST domain sets, SR pairs, folder sources."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganforge.data.base import BatchStream, make_stream
from ganforge.data.domains import TRANSFORMS, downsample, get_transform
from ganforge.errors import ConfigError
from ganforge.registry import DATASETS

Image = pytest.importorskip("PIL.Image")


def _images(n=6, c=1, size=12, seed=0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (n, c, size, size), dtype=np.uint8))


@pytest.mark.parametrize("name", [*TRANSFORMS, "invert+rot90", "tint+vflip", "fade+invert"])
def test_inverse_undoes_transform(name: str) -> None:
    t = get_transform(name)
    x = _images()
    y = t(x)
    assert y.dtype == torch.uint8 and y.shape[1] == t.channels(1)
    back = t.inverse(y)
    if "fade" in name:  # 256 grey levels onto 128: uint8 round trips are exact to one level
        assert (back.int() - x.int()).abs().max() <= 1 and not torch.equal(back, x)
    else:
        assert torch.equal(back, x)  # exact on uint8, tint included (least-squares grey, rounded)
    f = x.float() / 127.5 - 1  # the float path ([-1, 1], what generators emit) agrees with the uint8 one
    torch.testing.assert_close(t.inverse(t(f)), f, rtol=0, atol=1e-6)
    torch.testing.assert_close(t(f), y.float() / 127.5 - 1, rtol=0, atol=1 / 127.5)


def test_transform_identities() -> None:
    x = _images()
    assert torch.equal(TRANSFORMS["invert"](x), 255 - x)
    assert torch.equal(TRANSFORMS["rot90"](TRANSFORMS["rot90"](x)), TRANSFORMS["rot180"](x))
    assert torch.equal(get_transform("invert+rot90")(x), TRANSFORMS["rot90"](255 - x))
    rgb = TRANSFORMS["tint"](x)
    assert torch.equal(rgb[:, 0:1], x)  # the red channel carries the grey level (tint red = 255)
    # fade: v -> 0.25 + 0.5 v on [0, 1]; black -> 63.75 -> 64, white -> 191.25 -> 191; floats in [-1, 1] likewise
    ends = torch.tensor([0, 255], dtype=torch.uint8).view(1, 1, 1, 2)
    assert TRANSFORMS["fade"](ends).flatten().tolist() == [64, 191]
    f = torch.tensor([-1.0, 0.0, 1.0]).view(1, 1, 1, 3)
    torch.testing.assert_close(TRANSFORMS["fade"](f).flatten(), torch.tensor([-0.5, 0.0, 0.5]))
    # the inverse clamps what a generator may emit outside the faded range
    torch.testing.assert_close(TRANSFORMS["fade"].inverse(f).flatten(), torch.tensor([-1.0, 0.0, 1.0]))
    with pytest.raises(ConfigError, match="unknown transform 'spin'.*Valid transforms: identity, invert"):
        get_transform("invert+spin")


def _fmnist_or_skip(name: str, **params):
    try:
        return DATASETS.build(name, **params)
    except ConfigError as e:
        if "Fashion-MNIST" in str(e):
            pytest.skip("Fashion-MNIST files not installed")
        raise


def test_fmnist_unpaired_halves_are_disjoint_and_transformed() -> None:
    d = _fmnist_or_skip("fmnist-unpaired", transform="rot90", limit=40)
    src = _fmnist_or_skip("fmnist", limit=40)
    a, b = d.info["parts"]["a"], d.info["parts"]["b"]
    assert torch.equal(a.x, src.x[:20]) and torch.equal(b.x, torch.rot90(src.x[20:], 1, (2, 3)))
    assert torch.equal(b.y, src.y[20:])
    batch = make_stream(d, 4, seed=0).next()
    assert set(batch) == {"a", "b"} and batch["a"]["x"].shape == (4, 1, 28, 28)
    tint = _fmnist_or_skip("fmnist-unpaired", transform="tint", limit=4)
    assert tint.info["parts"]["b"].shape == (3, 28, 28)


def test_fmnist_domains_labels_are_domains() -> None:
    names = ["identity", "invert", "fade"]
    d = _fmnist_or_skip("fmnist-domains", transforms=names, limit=31)
    src = _fmnist_or_skip("fmnist", limit=30)
    assert len(d) == 30 and d.n_classes == 3 and d.class_names == names
    for k, n in enumerate(names):
        sel = d.y == k
        assert torch.equal(d.x[sel], get_transform(n)(src.x[sel])) and torch.equal(d.info["content_y"], src.y)
    with pytest.raises(ConfigError, match="same channel count"):
        DATASETS.build("fmnist-domains", transforms=["identity", "tint"], limit=4)
    with pytest.raises(ConfigError, match="at least 2 distinct transforms"):
        DATASETS.build("fmnist-domains", transforms=["invert"])


def test_fmnist_sr_pairs_ride_in_the_batch() -> None:
    d = _fmnist_or_skip("fmnist-sr", scale=4, limit=16)
    lr = d.info["paired"]["lr"]
    assert lr.shape == (16, 1, 7, 7) and torch.equal(lr, downsample(d.x, 4))
    s = BatchStream(d, 5, seed=3)
    idx = BatchStream(d, 5, seed=3).next_indices()
    batch = s.next()
    torch.testing.assert_close(batch["lr"], lr[idx].float() / 127.5 - 1)
    torch.testing.assert_close(batch["x"], d.x[idx].float() / 127.5 - 1)


def test_downsample_is_pillow_bicubic_and_flat_stays_flat() -> None:
    x = torch.full((2, 1, 8, 8), 77, dtype=torch.uint8)
    assert torch.equal(downsample(x, 2), torch.full((2, 1, 4, 4), 77, dtype=torch.uint8))
    y = _images(1, 1, 8)
    ref = np.array(Image.fromarray(y[0, 0].numpy()).resize((4, 4), Image.BICUBIC))
    assert torch.equal(downsample(y, 2)[0, 0], torch.from_numpy(ref))
    with pytest.raises(ConfigError, match="cannot be downsampled exactly by 4"):
        downsample(_images(1, 1, 10), 4)


def _write(folder, n: int, size: int = 16, mode: str = "RGB", seed: int = 0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        shape = (size, size, 3) if mode == "RGB" else (size, size)
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(folder / f"im{i:02d}.png")


def test_folder_sources(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # the folder source caches decoded arrays under ~/.cache
    _write(tmp_path / "d" / "A", 3)
    _write(tmp_path / "d" / "B", 5, size=20, mode="L")
    d = DATASETS.build("unpaired-folders", a=str(tmp_path / "d" / "A"), b=str(tmp_path / "d" / "B"), resolution=16)
    assert d.info["parts"]["a"].x.shape == (3, 3, 16, 16) and d.info["parts"]["b"].x.shape == (5, 3, 16, 16)
    ref = np.array(Image.open(tmp_path / "d" / "A" / "im01.png")).transpose(2, 0, 1)
    assert torch.equal(d.info["parts"]["a"].x[1], torch.from_numpy(ref))
    assert set(make_stream(d, 2).next()) == {"a", "b"}
    m = DATASETS.build("domain-folders", root=str(tmp_path / "d"), resolution=8, channels=1)
    assert m.class_names == ["A", "B"] and m.y.tolist() == [0] * 3 + [1] * 5 and m.x.shape == (8, 1, 8, 8)
    sr = DATASETS.build("sr-folder", hr=str(tmp_path / "d" / "A"), scale=2, resolution=16)
    assert torch.equal(sr.info["paired"]["lr"], downsample(sr.x, 2))
    _write(tmp_path / "Alr", 3, size=8, seed=1)
    sr2 = DATASETS.build("sr-folder", hr=str(tmp_path / "d" / "A"), lr=str(tmp_path / "Alr"), scale=2,
                         resolution=16)
    lr0 = np.array(Image.open(tmp_path / "Alr" / "im00.png")).transpose(2, 0, 1)
    assert sr2.info["paired"]["lr"].shape == (3, 3, 8, 8) and torch.equal(sr2.info["paired"]["lr"][0],
                                                                         torch.from_numpy(lr0))


def test_folder_errors_name_the_problem(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    with pytest.raises(ConfigError, match="unpaired-folders a: image folder .*nope does not exist"):
        DATASETS.build("unpaired-folders", a=str(tmp_path / "nope"), b=str(tmp_path))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="sr-folder hr: no images under"):
        DATASETS.build("sr-folder", hr=str(tmp_path / "empty"))
    with pytest.raises(ConfigError, match="needs a and b"):
        DATASETS.build("unpaired-folders", a=str(tmp_path))
    _write(tmp_path / "only", 2)
    with pytest.raises(ConfigError, match="at least 2 subfolders"):
        DATASETS.build("domain-folders", root=str(tmp_path / "only"))
    _write(tmp_path / "lr", 1, size=8)
    with pytest.raises(ConfigError, match="must hold the same file names; 1 differ, e.g. im01.png"):
        DATASETS.build("sr-folder", hr=str(tmp_path / "only"), lr=str(tmp_path / "lr"), scale=2, resolution=16)
    with pytest.raises(ConfigError, match="resolution 10 must be divisible by scale 4"):
        DATASETS.build("sr-folder", hr=str(tmp_path / "only"), scale=4, resolution=10)
