"""Bad inputs end in one sentence: what was wrong and what is valid; exit 2 from the CLI, no traceback, and no
user file changed. One test per kind of bad input (config, data folders and caches, eval arrays, exports,
extractor weights); the CLI runs in-process (``ganforge.cli.main``) to keep each test well under a second.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import ganforge.components  # noqa: F401  (fills the registries)
from ganforge.errors import CheckpointError, ConfigError


# ------------------------------------------------------------------------------------------ helpers
def cli(capsys, *argv) -> tuple[int, str]:
    """Run the CLI in-process: (exit code, stderr)."""
    from ganforge.cli import main

    capsys.readouterr()
    rc = main([str(a) for a in argv])
    return rc, capsys.readouterr().err


def refused(capsys, *argv, match: str) -> str:
    """The CLI exits 2 with one line 'ganforge: error: ...' that contains ``match``, and no traceback."""
    rc, err = cli(capsys, *argv)
    assert rc == 2, err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("ganforge: error:")]
    assert len(lines) == 1, err
    assert match in err, err
    return err


def snapshot(*roots: Path) -> dict[str, str]:
    """sha256 of every file under ``roots`` (or of ``roots`` that are files): what 'no user file changed' compares."""
    out = {}
    for root in roots:
        for p in [Path(root)] if Path(root).is_file() else sorted(Path(root).rglob("*")):
            if p.is_file():
                out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    """Every cache (decoded data, reference features) goes to a temporary folder, never ~/.cache."""
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def _png(path: Path, size: int = 12, value: int = 100) -> Path:
    Image.fromarray(np.full((size, size), value, dtype=np.uint8)).save(path)
    return path


def _png_header(path: Path, w: int, h: int) -> Path:
    """A tiny PNG file whose header claims w x h pixels (a decompression bomb needs no more to hurt)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    body = chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)
    return path


def _yaml(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# ------------------------------------------------------------------------------------------ config
RECIPE = "data: {name: ring, n: 64}\ntrain: {steps: 2, batch_size: 16, threads: 1}\n"


def test_config_base_cycle_between_two_files_is_named(tmp_path, capsys) -> None:
    a = _yaml(tmp_path / "a.yaml", "base: b.yaml\n" + RECIPE)
    _yaml(tmp_path / "b.yaml", "base: a.yaml\n")
    before = snapshot(tmp_path)
    err = refused(capsys, "train", a, "--dry-run", match="cycle through base")
    assert "a.yaml -> " in err and "b.yaml -> " in err
    assert snapshot(tmp_path) == before


def test_config_base_including_itself_is_a_cycle(tmp_path, capsys) -> None:
    a = _yaml(tmp_path / "a.yaml", "base: a.yaml\n" + RECIPE)
    err = refused(capsys, "train", a, "--dry-run", match="cycle through base")
    assert err.count("a.yaml") >= 2


def test_config_base_must_be_a_path(tmp_path, capsys) -> None:
    a = _yaml(tmp_path / "a.yaml", "base: [1, 2]\n" + RECIPE)
    refused(capsys, "train", a, "--dry-run", match="base must be the path of another YAML file, got [1, 2]")


def test_config_missing_base_names_the_including_file(tmp_path, capsys) -> None:
    a = _yaml(tmp_path / "a.yaml", "base: nope.yaml\n" + RECIPE)
    refused(capsys, "train", a, "--dry-run", match="nope.yaml (the base of")


def test_config_yaml_python_tag_is_refused(tmp_path, capsys) -> None:
    a = _yaml(tmp_path / "a.yaml", "name: !!python/object/apply:os.system ['true']\n")
    refused(capsys, "train", a, "--dry-run", match="is not valid YAML")


@pytest.mark.parametrize("override, message", [
    ("--optim.g.lr=nan", "optim.g.lr must be a finite number, got nan"),
    ("--optim.d.lr=inf", "optim.d.lr must be a finite number, got inf"),
    ("--train.grad_clip=-inf", "train.grad_clip must be a finite number, got -inf"),
    ("--train.ema=nan", "train.ema must be a finite number, got nan"),
    ("--penalties.gp=nan", "penalties.gp.weight must be a finite number, got nan"),
])
def test_config_non_finite_floats_are_refused(tmp_path, capsys, override, message) -> None:
    a = _yaml(tmp_path / "a.yaml", RECIPE)
    refused(capsys, "train", a, "--dry-run", override, match=message)


@pytest.mark.parametrize("override, message", [
    ("--optim.g.lr=-0.001", "optim.g: learning rate must be > 0, got -0.001"),
    ("--optim.d.lr=0", "optim.d: learning rate must be > 0, got 0.0"),
    ("--optim.g.betas=[0.5,1.0]", "optim.g: adam betas must be two numbers in [0, 1), got [0.5, 1.0]"),
    ("--optim.g.betas=[-0.1,0.9]", "adam betas must be two numbers in [0, 1)"),
    ("--optim.d.eps=-1", "optim.d: torch.optim refuses these settings: Invalid epsilon value: -1.0"),
    ("--optim.g.weight_decay=-0.5", "optim.g: torch.optim refuses these settings"),
])
def test_config_optimizer_settings_are_checked_at_resolution(tmp_path, capsys, override, message) -> None:
    a = _yaml(tmp_path / "a.yaml", RECIPE)
    refused(capsys, "train", a, "--dry-run", override, match=message)


@pytest.mark.parametrize("override, message", [
    ("--train.steps=-1", "train.steps must be >= 0, got -1"),
    ("--train.batch_size=0", "train.batch_size must be >= 1, got 0"),
    ("--train.d_steps=0", "train.d_steps must be >= 1, got 0"),
    ("--train.seed=-3", "train.seed must be >= 0, got -3"),
    ("--train.ema=1.0", "train.ema must be in (0, 1) or null, got 1.0"),
    ("--train.log_every=0", "train.log_every must be >= 1, got 0"),
    ("--eval.n=0", "eval.n must be >= 1, got 0"),
    ("--eval.seed=-1", "eval.seed must be >= 0, got -1"),
    ("--checkpoint.keep=0", "checkpoint.keep must be >= 1, got 0"),
    ("--game.z_dim=0", "game: z_dim must be >= 1, got 0"),
    ("--train.batch_size=2.5", "train.batch_size must be an integer, got 2.5"),
])
def test_config_numeric_ranges_are_one_table(tmp_path, capsys, override, message) -> None:
    a = _yaml(tmp_path / "a.yaml", RECIPE)
    refused(capsys, "train", a, "--dry-run", override, match=message)


def test_config_unknown_dataset_lists_the_valid_ones(tmp_path, capsys) -> None:
    a = _yaml(tmp_path / "a.yaml", RECIPE)
    refused(capsys, "train", a, "--dry-run", "--data.name=imagenet",
            match="data.name: unknown dataset 'imagenet'. Valid datasets: adaptation, cifar10")


# ------------------------------------------------------------------------------------------ data
def test_batch_larger_than_the_dataset_names_both_sizes(tmp_path, capsys) -> None:
    a = _yaml(tmp_path / "a.yaml", RECIPE)
    before = snapshot(tmp_path)
    refused(capsys, "train", a, "--data.n=16", "--train.batch_size=32", "--out", tmp_path / "run", "--quiet",
            match="train.batch_size 32 is larger than the dataset 'ring' (16 samples); set --train.batch_size to "
                  "at most 16")
    assert snapshot(tmp_path / "a.yaml") == {k: v for k, v in before.items() if k.endswith("a.yaml")}


def test_data_root_pointing_at_a_file(tmp_path, capsys) -> None:
    a = _yaml(tmp_path / "a.yaml", RECIPE)
    f = tmp_path / "notes.txt"
    f.write_text("mine")
    before = snapshot(f)
    refused(capsys, "train", a, "--data.name=folder", f"--data.root={f}", "--out", tmp_path / "run", "--quiet",
            match=f"image folder {f} does not exist or is not a folder (set --data.root=DIR): it is a file")
    assert snapshot(f) == before


def test_unsupported_resolution_of_a_named_reference(tmp_path, capsys) -> None:
    np.save(tmp_path / "fake.npy", np.zeros((4, 1, 8, 8), np.uint8))
    refused(capsys, "eval", tmp_path / "fake.npy", "--ref", "digits-test", "--ref-resolution", 3,
            "--extractor", "pixels", "--metrics", "kid", match="digits resolution must be an int in [4, 1024], got 3")


BAD_IMAGES = {
    "zero-byte": lambda p: p.write_bytes(b""),
    "not-an-image": lambda p: p.write_text("hello, I am text"),
    "truncated": lambda p: p.write_bytes(_png(p, 32, 7).read_bytes()[:60]),
    "bomb-over-ganforge-limit": lambda p: _png_header(p, 9000, 9000),
    "bomb-over-pillow-limit": lambda p: _png_header(p, 20000, 20000),
}


@pytest.mark.parametrize("kind", sorted(BAD_IMAGES))
def test_a_bad_image_in_a_folder_is_skipped_with_a_warning(tmp_path, caplog, kind) -> None:
    from ganforge.registry import DATASETS

    root = tmp_path / "imgs"
    root.mkdir()
    _png(root / "a.png", value=10)
    _png(root / "b.png", value=20)
    BAD_IMAGES[kind](root / "c.png")
    before = snapshot(root)
    with caplog.at_level(logging.WARNING, logger="ganforge"):
        d = DATASETS.build("folder", root=str(root), resolution=8)
    assert len(d) == 2 and d.x.shape == (2, 1, 8, 8)
    warnings = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(warnings) == 1 and "skipped 1 of 3 image files" in warnings[0] and "c.png" in warnings[0]
    if kind.startswith("bomb"):
        assert "decompression bomb" in warnings[0] or "exceeds limit" in warnings[0]
    assert snapshot(root) == before


def test_many_bad_images_give_one_warning_with_the_count(tmp_path, caplog) -> None:
    from ganforge.registry import DATASETS

    root = tmp_path / "imgs"
    root.mkdir()
    _png(root / "good.png")
    for i, make in enumerate(BAD_IMAGES.values()):
        make(root / f"bad{i}.png")
    with caplog.at_level(logging.WARNING, logger="ganforge"):
        d = DATASETS.build("folder", root=str(root), resolution=8, cache=False)
    assert len(d) == 1
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and warnings[0].startswith(f"skipped {len(BAD_IMAGES)} of {len(BAD_IMAGES) + 1}")


def test_a_folder_of_only_bad_images_is_an_error(tmp_path, capsys) -> None:
    root = tmp_path / "imgs"
    root.mkdir()
    for i, make in enumerate(BAD_IMAGES.values()):
        make(root / f"bad{i}.png")
    before = snapshot(root)
    a = _yaml(tmp_path / "a.yaml", RECIPE)
    refused(capsys, "train", a, "--data.name=folder", f"--data.root={root}", "--out", tmp_path / "run", "--quiet",
            match=f"no readable images under {root}: all {len(BAD_IMAGES)} files with image suffixes failed")
    assert snapshot(root) == before


# ------------------------------------------------------------------------------------------ caches
def _digits_cache(tmp_path) -> Path:
    files = list((tmp_path / "cache" / "digits").glob("*.npz"))
    assert len(files) == 1
    return files[0]


CORRUPTIONS = {
    "garbage": lambda p: p.write_bytes(b"this is not a zip file at all"),
    "truncated": lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]),
    "wrong-dtype": lambda p: np.savez(p, x=np.zeros((5, 1, 8, 8), np.float32), y=np.zeros(5, np.int64),
                                      names=np.array([str(i) for i in range(10)])),
    "wrong-shape": lambda p: np.savez(p, x=np.zeros((5, 1, 9, 9), np.uint8), y=np.zeros(5, np.int64),
                                      names=np.array([str(i) for i in range(10)])),
    "labels-out-of-range": lambda p: np.savez(p, x=np.zeros((5, 1, 8, 8), np.uint8), y=np.full(5, 99, np.int64),
                                              names=np.array([str(i) for i in range(10)])),
    "pickled": lambda p: np.savez(p, x=np.array([{"a": 1}], dtype=object), allow_pickle=True),
    "huge-header": lambda p: p.write_bytes(_npz_claiming(p, (10**6, 10**6))),
}


def _npz_claiming(p: Path, shape) -> bytes:
    """A .npz whose x.npy header claims ``shape`` (terabytes) but holds a few bytes."""
    import io
    import zipfile

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "|u1", "fortran_order": False, "shape": shape})
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("x.npy", buf.getvalue() + b"\0" * 16)
    return out.getvalue()


@pytest.mark.parametrize("kind", sorted(CORRUPTIONS))
def test_a_damaged_data_cache_is_rebuilt_with_a_warning(tmp_path, caplog, kind) -> None:
    from ganforge.registry import DATASETS

    fresh = DATASETS.build("digits", resolution=8)
    path = _digits_cache(tmp_path)
    CORRUPTIONS[kind](path)
    with caplog.at_level(logging.WARNING, logger="ganforge"):
        again = DATASETS.build("digits", resolution=8)
    assert torch.equal(again.x, fresh.x) and torch.equal(again.y, fresh.y)
    msgs = [r.getMessage() for r in caplog.records if "cache" in r.getMessage()]
    assert len(msgs) == 1 and "is damaged" in msgs[0] and "rebuilding it" in msgs[0] and str(path) in msgs[0]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="ganforge"):
        DATASETS.build("digits", resolution=8)  # the rebuilt file is good again
    assert not caplog.records


def test_cache_false_neither_reads_nor_writes_the_cache(tmp_path, caplog) -> None:
    from ganforge.registry import DATASETS

    DATASETS.build("digits", resolution=8, cache=False)
    assert not (tmp_path / "cache" / "digits").exists()
    fresh = DATASETS.build("digits", resolution=8)
    path = _digits_cache(tmp_path)
    path.write_bytes(b"damaged")
    with caplog.at_level(logging.WARNING, logger="ganforge"):
        d = DATASETS.build("digits", resolution=8, cache=False)
    assert torch.equal(d.x, fresh.x) and not caplog.records  # never looked at the damaged file
    assert path.read_bytes() == b"damaged"


def test_data_cache_is_a_config_key(tmp_path, capsys) -> None:
    a = _yaml(tmp_path / "a.yaml", RECIPE)
    rc, _ = cli(capsys, "train", a, "--dry-run", "--data.name=digits", "--data.cache=false")
    out = capsys.readouterr()
    assert rc == 0
    refused(capsys, "train", a, "--dry-run", "--data.name=digits", "--data.cache=maybe",
            match="data.cache must be true or false, got 'maybe'")
    del out


def test_damaged_fmnist_npy_cache_is_rebuilt(tmp_path, caplog) -> None:
    from ganforge.data import fmnist as F

    try:
        x0, y0 = F.load_arrays("test", 28)
    except ConfigError:
        pytest.skip("Fashion-MNIST is not installed")
    cached = sorted((tmp_path / "cache" / "fmnist").glob("test-28-*-x.npy"))
    assert len(cached) == 1
    np.save(cached[0], np.zeros((3, 5), np.float64))  # a valid .npy of the wrong kind
    with caplog.at_level(logging.WARNING, logger="ganforge"):
        x1, y1 = F.load_arrays("test", 28)
    assert np.array_equal(x0, x1) and np.array_equal(y0, y1)
    assert any("Fashion-MNIST cache" in r.getMessage() and "rebuilding" in r.getMessage() for r in caplog.records)


# ------------------------------------------------------------------------------------------ eval inputs
def _npy(tmp_path: Path, name: str, a: np.ndarray, **kw) -> Path:
    p = tmp_path / name
    np.save(p, a, **kw)
    return p


def _eval(capsys, src, *more, match: str) -> str:
    return refused(capsys, "eval", src, "--extractor", "pixels", "--metrics", "kid", *more, match=match)


def test_eval_nan_images(tmp_path, capsys) -> None:
    a = np.zeros((4, 1, 8, 8), np.float32)
    a[1, 0, 2, 2] = np.nan
    p = _npy(tmp_path, "fake.npy", a)
    before = snapshot(tmp_path)
    _eval(capsys, p, match="hold 1 NaN or infinite values")
    assert snapshot(tmp_path) == before


def test_eval_infinite_images(tmp_path, capsys) -> None:
    a = np.zeros((4, 1, 8, 8), np.float32)
    a[0] = np.inf
    _eval(capsys, _npy(tmp_path, "fake.npy", a), match="hold 64 NaN or infinite values")


def test_eval_pickled_object_array_is_refused(tmp_path, capsys) -> None:
    p = _npy(tmp_path, "fake.npy", np.array([{"x": 1}, None], dtype=object), allow_pickle=True)
    _eval(capsys, p, match="pickled arrays are refused (allow_pickle stays False)")


def test_eval_truncated_npy(tmp_path, capsys) -> None:
    p = _npy(tmp_path, "fake.npy", np.zeros((4, 1, 8, 8), np.uint8))
    p.write_bytes(p.read_bytes()[:-10])
    _eval(capsys, p, match="it is truncated: its header says shape (4, 1, 8, 8) of uint8 (256 bytes) but only 246")


def test_eval_npy_header_claiming_terabytes_allocates_nothing(tmp_path, capsys) -> None:
    import io

    buf = io.BytesIO()
    header = {"descr": "<f4", "fortran_order": False, "shape": (10**6, 3, 10**3, 10**3)}
    np.lib.format.write_array_header_1_0(buf, header)
    p = tmp_path / "fake.npy"
    p.write_bytes(buf.getvalue() + b"\0" * 64)
    t0 = time.process_time()
    _eval(capsys, p, match="it is truncated")
    assert time.process_time() - t0 < 2


def test_eval_garbage_npy(tmp_path, capsys) -> None:
    p = tmp_path / "fake.npy"
    p.write_bytes(b"PK\x03\x04 definitely not numpy")
    _eval(capsys, p, match="cannot be read as images: not a .npy array")


@pytest.mark.parametrize("shape", [(16,), (2, 3, 1, 8, 8)])
def test_eval_wrong_ndim(tmp_path, capsys, shape) -> None:
    p = _npy(tmp_path, "fake.npy", np.zeros(shape, np.uint8))
    _eval(capsys, p, match=f"expected images (N, C, H, W) or (N, H, W, C), got shape {shape}")


def test_eval_empty_array(tmp_path, capsys) -> None:
    p = _npy(tmp_path, "fake.npy", np.zeros((0, 1, 8, 8), np.uint8))
    _eval(capsys, p, match="holds no images (shape (0, 1, 8, 8)); it needs at least 2")


def test_eval_integer_dtype_other_than_uint8(tmp_path, capsys) -> None:
    p = _npy(tmp_path, "fake.npy", np.zeros((4, 1, 8, 8), np.int64))
    _eval(capsys, p, match="have dtype int64; images are uint8 (0..255) or float")


def test_eval_empty_reference(tmp_path, capsys) -> None:
    fake = _npy(tmp_path, "fake.npy", np.zeros((4, 1, 8, 8), np.uint8))
    ref = _npy(tmp_path, "ref.npy", np.zeros((0, 8, 8), np.uint8))
    _eval(capsys, fake, "--ref", ref, match="ref.npy holds no images")


def test_eval_reference_of_one_image(tmp_path, capsys) -> None:
    fake = _npy(tmp_path, "fake.npy", np.zeros((4, 1, 8, 8), np.uint8))
    ref = _npy(tmp_path, "ref.npy", np.zeros((1, 1, 8, 8), np.uint8))
    _eval(capsys, fake, "--ref", ref, match="need at least 2 reference images, got 1")


def test_eval_folder_without_images(tmp_path, capsys) -> None:
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "readme.txt").write_text("no images here")
    _eval(capsys, tmp_path / "imgs", match="no .png/.jpg images in")


def test_eval_folder_of_unreadable_images(tmp_path, capsys) -> None:
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "a.png").write_bytes(b"")
    _png_header(tmp_path / "imgs" / "b.png", 20000, 20000)
    _eval(capsys, tmp_path / "imgs", match="no readable images in")


def test_eval_sizes_whose_features_cannot_be_compared(tmp_path, capsys) -> None:
    fake = _npy(tmp_path, "fake.npy", np.zeros((4, 1, 8, 8), np.uint8))
    ref = _npy(tmp_path, "ref.npy", np.zeros((4, 1, 6, 6), np.uint8))
    _eval(capsys, fake, "--ref", ref, match="fake images are 8x8 (1 channel) and the reference 6x6 (1 channel)")


def test_eval_sizes_that_differ_are_scored_with_a_warning(tmp_path, capsys, caplog) -> None:
    g = np.random.default_rng(0)
    fake = _npy(tmp_path, "fake.npy", g.integers(0, 256, (12, 1, 28, 28), dtype=np.uint8))
    ref = _npy(tmp_path, "ref.npy", g.integers(0, 256, (12, 1, 16, 16), dtype=np.uint8))
    out = tmp_path / "scores.json"
    with caplog.at_level(logging.WARNING, logger="ganforge"):
        rc, err = cli(capsys, "eval", fake, "--ref", ref, "--metrics", "kid", "--out", out)
    assert rc == 0, err
    note = "fake images are 28x28 (1 channel) but the reference images are 16x16 (1 channel)"
    assert any(note in r.getMessage() for r in caplog.records)
    assert note in json.loads(out.read_text())["protocol"]["warnings"][0]


def test_eval_out_is_a_folder(tmp_path, capsys) -> None:
    fake = _npy(tmp_path, "fake.npy", np.zeros((4, 1, 8, 8), np.uint8))
    _eval(capsys, fake, "--out", tmp_path, match="is a folder; give the path of a .json file")


def test_eval_out_cannot_be_written(tmp_path, capsys) -> None:
    g = np.random.default_rng(0)
    fake = _npy(tmp_path, "fake.npy", g.integers(0, 256, (6, 1, 8, 8), dtype=np.uint8))
    ref = _npy(tmp_path, "ref.npy", g.integers(0, 256, (6, 1, 8, 8), dtype=np.uint8))
    blocker = tmp_path / "file"
    blocker.write_text("mine")
    err = _eval(capsys, fake, "--ref", ref, "--out", blocker / "sub" / "s.json", match="cannot write the scores to")
    assert "KID" in err and blocker.read_text() == "mine"  # the scores are not lost


def test_eval_too_few_images_for_the_neighbour_metrics(tmp_path, capsys) -> None:
    fake = _npy(tmp_path, "fake.npy", np.zeros((3, 1, 8, 8), np.uint8))
    refused(capsys, "eval", fake, "--ref", fake, "--extractor", "pixels", "--metrics", "pr",
            match="metric pr needs at least 4 images on each side (k = 3 neighbours); got 3 real and 3 fake")


# ------------------------------------------------------------------------------------------ exports
@pytest.fixture(scope="module")
def export_dir(tmp_path_factory) -> Path:
    """A tiny ring GAN, trained 2 steps and exported (shared; tests tamper with copies)."""
    from ganforge import api
    from ganforge.export import export

    base = tmp_path_factory.mktemp("export")
    cfg = {"name": "tiny", "data": {"name": "ring", "n": 256}, "game": {"name": "gan", "z_dim": 4},
           "nets": {"g": {"name": "mlp", "hidden": 8, "depth": 1}, "d": {"name": "mlp", "hidden": 8, "depth": 1}},
           "train": {"steps": 2, "batch_size": 32, "threads": 1, "device": "cpu", "tensorboard": False},
           "eval": {"every": 0, "n": 64, "samples": False}, "checkpoint": {"every": 0, "keep": 1}}
    res = api.train(cfg, out=str(base / "run"), quiet=True)
    return export(res.run_dir, base / "exp")


def _copy(export_dir: Path, tmp_path: Path, *, manifest=None, tensors=None, fix_sha: bool = True) -> Path:
    """A copy of the export with its manifest and/or tensors edited (the SHA-256 updated unless fix_sha=False)."""
    from safetensors.torch import load_file, save_file

    from ganforge.export import _sha256

    out = tmp_path / "exp"
    shutil.copytree(export_dir, out)
    m = json.loads((out / "manifest.json").read_text())
    if tensors is not None:
        t = load_file(str(out / "model.safetensors"))
        tensors(t)
        save_file(t, str(out / "model.safetensors"))
        if fix_sha:
            m["weights"]["sha256"] = _sha256(out / "model.safetensors")
    if manifest is not None:
        manifest(m)
    (out / "manifest.json").write_text(json.dumps(m))
    return out


def _load_refused(folder: Path, match: str) -> None:
    import ganforge

    before = snapshot(folder)
    t0 = time.process_time()
    with pytest.raises(CheckpointError) as e:
        ganforge.load(folder)
    assert match in str(e.value), str(e.value)
    assert time.process_time() - t0 < 5
    assert snapshot(folder) == before


def test_export_manifest_not_json(export_dir, tmp_path) -> None:
    out = _copy(export_dir, tmp_path)
    (out / "manifest.json").write_text("{not json")
    _load_refused(out, "cannot read")


@pytest.mark.parametrize("edit, message", [
    (lambda m: m.update(roles=["g"]), "roles must be a mapping of role -> net"),
    (lambda m: m.update(step="12"), "step must be an integer >= 0, got '12'"),
    (lambda m: m.update(ema="yes"), "ema must be true or false"),
    (lambda m: m.update(game=["gan"]), "game must be a mapping with a name"),
    (lambda m: m.update(version="1"), "version must be an integer"),
    (lambda m: m["roles"]["g"].update(in_shape="4"), "roles.g.in_shape must be a list of 1 to 4 sizes"),
    (lambda m: m["roles"]["g"].update(n_classes=-1), "roles.g.n_classes must be an integer in 0..65,536"),
    (lambda m: m["data"].update(shape=[2, 0]), "data.shape must be a list of 1 to 4 sizes"),
    (lambda m: m["weights"].update(sha256=5), "weights.sha256 must be 64 hex digits"),
    (lambda m: m.pop("roles"), "lacks roles; re-export"),
])
def test_export_manifest_wrong_types(export_dir, tmp_path, edit, message) -> None:
    _load_refused(_copy(export_dir, tmp_path, manifest=edit), message)


def test_export_manifest_unknown_role(export_dir, tmp_path) -> None:
    out = _copy(export_dir, tmp_path, manifest=lambda m: m["roles"].update(e=m["roles"]["g"]))
    _load_refused(out, "unknown role 'e' for game 'gan'. Valid roles: g, d")


def test_export_manifest_unknown_game_and_net(export_dir, tmp_path) -> None:
    _load_refused(_copy(export_dir, tmp_path, manifest=lambda m: m["game"].update(name="gan2")), "gan2")
    shutil.rmtree(tmp_path / "exp")
    _load_refused(_copy(export_dir, tmp_path, manifest=lambda m: m["roles"]["g"]["net"].update(name="unet9")),
                  "roles.g.net.name")


def test_export_absurd_z_dim_is_refused_before_allocating(export_dir, tmp_path) -> None:
    def huge(m):
        m["game"]["z_dim"] = 10**9
        m["roles"]["g"]["in_shape"] = [10**9]

    _load_refused(_copy(export_dir, tmp_path, manifest=huge), "game.z_dim must be at most 65,536")


def test_export_absurd_width_is_refused_by_its_parameter_count(export_dir, tmp_path) -> None:
    # two hidden layers of 60,000 units: 3.6e9 values (14 GB) counted on the meta device, never allocated
    out = _copy(export_dir, tmp_path, manifest=lambda m: m["roles"]["g"]["net"].update(hidden=60000, depth=2))
    _load_refused(out, "over the limit of 250,000,000; refusing to build them")


def test_export_z_dim_disagreeing_with_the_generator_input(export_dir, tmp_path) -> None:
    out = _copy(export_dir, tmp_path, manifest=lambda m: m["game"].update(z_dim=7))
    _load_refused(out, "game.z_dim is 7 but roles.g.in_shape is [4]")


def test_export_int8_weights_are_refused(export_dir, tmp_path) -> None:
    def to_int8(t):
        k = next(k for k in t if k.startswith("nets.g.") and k.endswith("weight"))
        t[k] = t[k].to(torch.int8)

    _load_refused(_copy(export_dir, tmp_path, tensors=to_int8), "is int8, but the network expects float32")


def test_export_wrong_shape_weight_names_tensor_and_shapes(export_dir, tmp_path) -> None:
    key = {}

    def widen(t):
        key["k"] = k = next(k for k in t if k.startswith("nets.g.") and k.endswith("weight"))
        key["shape"] = tuple(t[k].shape)
        t[k] = torch.zeros(t[k].shape[0] + 1, *t[k].shape[1:])

    out = _copy(export_dir, tmp_path, tensors=widen)
    want = (key["shape"][0] + 1, *key["shape"][1:])
    _load_refused(out, f"tensor {key['k']!r} has shape {want}, but the network expects {key['shape']}")


def test_export_wrong_shape_buffer_is_refused(export_dir, tmp_path) -> None:
    out = _copy(export_dir, tmp_path, tensors=lambda t: t.update(class_freq=torch.ones(3)))
    _load_refused(out, "tensor 'class_freq' has shape (3,), but the network expects (1,)")


def test_export_unknown_or_missing_tensors(export_dir, tmp_path) -> None:
    _load_refused(_copy(export_dir, tmp_path, tensors=lambda t: t.update(extra=torch.zeros(2))),
                  "holds 1 tensors the networks do not have, e.g. 'extra'")
    shutil.rmtree(tmp_path / "exp")

    def drop(t):
        del t[next(k for k in t if k.startswith("nets.g."))]

    _load_refused(_copy(export_dir, tmp_path, tensors=drop), "lacks 1 tensors the networks need")


def test_export_nan_weights_are_refused(export_dir, tmp_path) -> None:
    def poison(t):
        k = next(k for k in t if k.startswith("nets.g.") and k.endswith("weight"))
        t[k][0, 0] = float("nan")

    _load_refused(_copy(export_dir, tmp_path, tensors=poison), "holds 1 NaN or infinite values")


def test_export_sha256_mismatch(export_dir, tmp_path) -> None:
    def nudge(t):
        k = next(k for k in t if k.startswith("nets.g.") and k.endswith("weight"))
        t[k][0, 0] += 1.0

    _load_refused(_copy(export_dir, tmp_path, tensors=nudge, fix_sha=False), "does not match the SHA-256")


def test_export_config_yaml_damaged(export_dir, tmp_path) -> None:
    out = _copy(export_dir, tmp_path)
    (out / "config.yaml").write_text("a: [unclosed\n")
    _load_refused(out, "cannot read")
    (out / "config.yaml").write_text("- a list\n")
    _load_refused(out, "must hold the run's config (a mapping)")


def test_export_weights_outside_the_folder(export_dir, tmp_path) -> None:
    out = _copy(export_dir, tmp_path, manifest=lambda m: m["weights"].update(file="../model.safetensors"))
    _load_refused(out, "points outside its folder")


def test_export_untouched_copy_still_loads(export_dir, tmp_path) -> None:
    """The checks refuse only what is wrong: an intact export loads and samples finite values."""
    import ganforge

    x = ganforge.load(_copy(export_dir, tmp_path)).sample(8, seed=0)
    assert x.shape == (8, 2) and torch.isfinite(x).all()


# ------------------------------------------------------------------------------------------ extractor weights
def _fmnist_cnn_state() -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    from ganforge.metrics.extractors import WEIGHTS_DIR

    return load_file(str(WEIGHTS_DIR / "fmnist_cnn.safetensors"))


def test_extractor_weights_wrong_shape_names_tensor_and_shapes(tmp_path, capsys) -> None:
    from safetensors.torch import save_file

    state = _fmnist_cnn_state()
    k = next(k for k in state if state[k].dim() == 4)
    shape = tuple(state[k].shape)
    state[k] = torch.zeros(shape[0] + 2, *shape[1:])
    save_file(state, str(tmp_path / "w.safetensors"))
    fake = _npy(tmp_path, "fake.npy", np.zeros((4, 1, 28, 28), np.uint8))
    refused(capsys, "eval", fake, "--ref", fake, "--metrics", "kid", "--weights", tmp_path / "w.safetensors",
            match=f"tensor {k!r} has shape {(shape[0] + 2, *shape[1:])}, but an fmnist-cnn state dict")


def test_extractor_weights_of_integer_dtype(tmp_path, capsys) -> None:
    from safetensors.torch import save_file

    state = _fmnist_cnn_state()
    k = next(k for k in state if state[k].dim() == 4)
    state[k] = state[k].to(torch.int8)
    save_file(state, str(tmp_path / "w.safetensors"))
    fake = _npy(tmp_path, "fake.npy", np.zeros((4, 1, 28, 28), np.uint8))
    refused(capsys, "eval", fake, "--ref", fake, "--metrics", "kid", "--weights", tmp_path / "w.safetensors",
            match="is int8, but an fmnist-cnn state dict")


class _Payload:
    def __reduce__(self):
        return (shutil.rmtree, ("/nonexistent-ganforge-test",))


def test_extractor_weights_pickle_that_imports_code_is_refused(tmp_path, capsys) -> None:
    path = tmp_path / "w.pth"
    torch.save({"w": _Payload()}, path)
    fake = _npy(tmp_path, "fake.npy", np.zeros((4, 1, 28, 28), np.uint8))
    refused(capsys, "eval", fake, "--ref", fake, "--metrics", "kid", "--weights", path,
            match="was refused: it is a pickle that imports a callable (shutil.rmtree)")


def test_extractor_weights_not_a_weights_file(tmp_path, capsys) -> None:
    path = tmp_path / "w.safetensors"
    path.write_bytes(b"\x00" * 5)
    fake = _npy(tmp_path, "fake.npy", np.zeros((4, 1, 28, 28), np.uint8))
    refused(capsys, "eval", fake, "--ref", fake, "--metrics", "kid", "--weights", path, match="cannot be read")


def test_export_into_a_folder_of_user_files_is_refused(export_dir, tmp_path, capsys) -> None:
    run = export_dir.parent / "run"
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "config.yaml").write_text("my own notes\n")
    before = snapshot(mine)
    refused(capsys, "export", run, "--out", mine,
            match=f"--out {mine} already holds files that are not a ganforge export (config.yaml)")
    assert snapshot(mine) == before
    (tmp_path / "file").write_text("x")
    refused(capsys, "export", run, "--out", tmp_path / "file", match="is a file; give a new folder")


def test_export_again_into_an_earlier_export_replaces_it(export_dir, tmp_path, capsys) -> None:
    run = export_dir.parent / "run"
    out = _copy(export_dir, tmp_path)
    rc, err = cli(capsys, "export", run, "--out", out)
    assert rc == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["config.yaml", "manifest.json", "model.safetensors"]


def test_sample_grid_to_an_unwritable_path(tmp_path) -> None:
    from ganforge.imaging import save_grid

    blocker = tmp_path / "file"
    blocker.write_text("mine")
    with pytest.raises(ConfigError, match=r"cannot write the grid to .*file/sub/g.png: Not a directory"):
        save_grid(torch.zeros(4, 1, 8, 8), blocker / "sub" / "g.png")
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(ConfigError, match="is a folder; give the path of a .png file"):
        save_grid(torch.zeros(4, 1, 8, 8), tmp_path / "dir.png")
    assert blocker.read_text() == "mine" and not list(tmp_path.glob(".*.part"))


def test_config_file_that_is_not_text(tmp_path, capsys) -> None:
    a = tmp_path / "a.yaml"
    a.write_bytes(b"\xff\xfe\x00\x81 binary")
    refused(capsys, "train", a, "--dry-run", match="is not a text file (not UTF-8); give a YAML recipe")


@pytest.mark.parametrize("text", ["-inf,inf", "0,nan"])
def test_eval_range_must_be_finite(tmp_path, capsys, text) -> None:
    fake = _npy(tmp_path, "fake.npy", np.zeros((4, 1, 8, 8), np.float32))
    _eval(capsys, fake, f"--range={text}", match="--range needs lo < hi, both finite numbers")


def test_fmnist_root_pointing_at_a_file(tmp_path, capsys) -> None:
    f = tmp_path / "train-images-idx3-ubyte.gz"
    f.write_bytes(b"not really")
    before = snapshot(f)
    a = _yaml(tmp_path / "a.yaml", RECIPE)
    refused(capsys, "train", a, "--data.name=fmnist", f"--data.root={f}", "--out", tmp_path / "run", "--quiet",
            match=f"Fashion-MNIST root {f} is a file; set --data.root to the folder")
    assert snapshot(f) == before


@pytest.mark.parametrize("name, params, message", [
    ("digits", {"split": "val"}, "digits split must be one of all, train, test; got 'val'"),
    ("digits", {"limit": 0}, "digits limit must be >= 1 or null, got 0"),
    ("folder", {}, "dataset folder needs its path: add --data.root=/path/to/images"),
    ("folder", {"root": "/nonexistent-ganforge", "channels": 2}, "folder channels must be 1, 3 or null"),
    ("folder", {"root": "/nonexistent-ganforge", "crop": "left"}, "folder crop must be one of center, none"),
    ("folder", {"root": "/nonexistent-ganforge"}, "does not exist or is not a folder (set --data.root=DIR): nothing"),
    ("cifar10", {"root": "/nonexistent-ganforge"}, "CIFAR-10 'train' split not found. Looked in:"),
    ("fmnist", {"split": "val"}, "fmnist split must be one of ['test', 'train'], got 'val'"),
    ("fmnist", {"resolution": 2048}, "fmnist resolution must be an int in [4, 1024]"),
    ("ring", {"n": 0}, "n (number of training points) must be >= 1, got 0"),
    ("fmnist-domains", {"transforms": ["invert", "invert"]}, "needs at least 2 distinct transforms"),
    ("fmnist-sr", {"scale": 3}, "scale must be 2, 4 or 8, got 3"),
])
def test_dataset_parameters_out_of_range(name, params, message) -> None:
    from ganforge.registry import DATASETS

    with pytest.raises(ConfigError) as e:
        DATASETS.build(name, **params)
    assert message in str(e.value)
    assert "\n" not in str(e.value) or name == "cifar10"  # one sentence (CIFAR lists the folders it looked in)


@pytest.mark.parametrize("args, message", [
    (("--metrics", "fid,lpips"), "unknown metric(s) lpips in --metrics 'fid,lpips'. Valid metrics: fid, kid"),
    (("--extractor", "resnet"), "Valid"),
    (("--extractor", "module"), "extractor 'module' wraps a Python nn.Module; use the Python API"),
    (("--extractor", "pixels", "--weights", "w.pth"), "extractor 'pixels' takes no weights file"),
    (("--n", "1"), "--n must be >= 2 and --batch-size >= 1, got 1 and 500"),
    (("--batch-size", "0"), "--n must be >= 2 and --batch-size >= 1, got 10000 and 0"),
    (("--range", "0"), "--range must be 'lo,hi' (e.g. -1,1 or 0,1 or 0,255), got '0'"),
    (("--ref", "fmnist-val"), "ref must be '<dataset>-<split>' with split train or test"),
    (("--ref", "ring-test"), "dataset 'ring' has no train/test splits"),
])
def test_eval_arguments_out_of_range(tmp_path, capsys, args, message) -> None:
    fake = _npy(tmp_path, "fake.npy", np.zeros((4, 1, 8, 8), np.uint8))
    before = snapshot(tmp_path)
    refused(capsys, "eval", fake, *args, match=message)
    assert snapshot(tmp_path) == before


def test_eval_source_that_does_not_exist(tmp_path, capsys) -> None:
    refused(capsys, "eval", tmp_path / "nope.npy", match="nope.npy not found. Give a run directory")


def test_eval_never_writes_through_a_link_in_the_run_folder(tmp_path, capsys) -> None:
    """RUN_DIR/eval.json as a symlink to a user's file: refused before scoring; the file is untouched."""
    from ganforge import api

    dcgan = {"name": "dcgan", "base": 4}
    cfg = {"name": "tinyimg", "data": {"name": "digits", "resolution": 16, "limit": 64},
           "game": {"name": "gan", "z_dim": 4}, "nets": {"g": dcgan, "d": dcgan},
           "train": {"steps": 1, "batch_size": 16, "threads": 1, "device": "cpu", "tensorboard": False},
           "eval": {"every": 0, "n": 16, "samples": False}, "checkpoint": {"every": 0, "keep": 1}}
    run = api.train(cfg, out=str(tmp_path / "run"), quiet=True).run_dir
    mine = tmp_path / "mine.txt"
    mine.write_text("my notes")
    (Path(run) / "eval.json").symlink_to(mine)
    refused(capsys, "eval", run, "--n", 20, "--metrics", "kid", "--extractor", "pixels",
            match="it is a symbolic link")
    assert mine.read_text() == "my notes" and (Path(run) / "eval.json").is_symlink()


def test_export_truncated_weights(export_dir, tmp_path) -> None:
    from ganforge.export import _sha256

    out = _copy(export_dir, tmp_path)
    w = out / "model.safetensors"
    w.write_bytes(w.read_bytes()[:-40])
    m = json.loads((out / "manifest.json").read_text())
    m["weights"]["sha256"] = _sha256(w)  # a consistent manifest: the file itself must be caught
    (out / "manifest.json").write_text(json.dumps(m))
    _load_refused(out, "cannot read")


def test_config_eval_n_too_small_for_a_metric(tmp_path, capsys) -> None:
    a = _yaml(tmp_path / "a.yaml", RECIPE)
    refused(capsys, "train", a, "--dry-run", "--data.name=digits", "--eval.metrics=[fid,dc]", "--eval.n=4",
            match="eval.n must be >= 6 for eval.metrics dc (k = 5 neighbours), got 4")
