"""`ganforge eval` on .npy arrays, image folders and run directories: known answers, records, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose

from ganforge.cli import main
from ganforge.errors import ConfigError


@pytest.fixture(scope="module")
def fmnist_test() -> np.ndarray:
    """The first 600 Fashion-MNIST test images, uint8 (600, 28, 28)."""
    from ganforge.data.fmnist import load_arrays

    try:
        return load_arrays("test")[0][:600]
    except ConfigError as e:
        pytest.skip(f"Fashion-MNIST not installed: {e}".splitlines()[0])


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "cache"))


def _eval(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["eval", *[str(a) for a in argv]])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def _scores(path: Path) -> dict:
    return json.loads(path.read_text())["scores"]


def test_reference_against_itself_scores_perfectly(tmp_path, capsys, fmnist_test) -> None:
    np.save(tmp_path / "same.npy", fmnist_test[:300])
    code, out, _ = _eval(capsys, tmp_path / "same.npy", "--n", 300, "--out", tmp_path / "same.json",
                         "--metrics", "fid,pr,dc,is,classes")
    assert code == 0 and "FID" in out and "wrote" in out
    rec = json.loads((tmp_path / "same.json").read_text())
    s, p = rec["scores"], rec["protocol"]
    assert_allclose(s["fid"], 0.0, atol=1e-6)
    assert s["precision"] == s["recall"] == s["coverage"] == 1.0
    # Real = fake: each real k-NN ball holds its centre and k - 1 neighbours (strict <), so the balls hold
    # n * k fakes in all: density exactly 1.
    assert_allclose(s["density"], 1.0, rtol=1e-12)
    # Predicted classes of the fakes vs true labels of the reals: only the classifier's errors separate them.
    assert s["classes_covered"] == 10 and 0.0 <= s["class_kl"] < 0.02
    assert p["reference"] == "fmnist/test" and p["n_real"] == p["n_fake"] == 300 and p["seed"] == 0
    assert p["extractor"]["name"] == "fmnist-cnn" and len(p["extractor"]["weights_sha256"]) == 64
    assert p["conversion_fake"]["input"]["dtype"] == "uint8" and p["ganforge_version"]
    assert rec["source"] == {"kind": "npy", "path": str(tmp_path / "same.npy")}


def test_fid_orders_clean_disjoint_and_noised_sets(tmp_path, capsys, fmnist_test) -> None:
    """Other real images score near the floor; the same images with noise score far worse."""
    clean = fmnist_test[300:600]
    noisy = np.clip(clean / 127.5 - 1 + np.random.default_rng(0).normal(0, 0.4, clean.shape), -1, 1)
    np.save(tmp_path / "clean.npy", clean)
    np.save(tmp_path / "noisy.npy", noisy.astype(np.float32))
    fids = {}
    for name in ("clean", "noisy"):
        code, _, _ = _eval(capsys, tmp_path / f"{name}.npy", "--n", 300, "--metrics", "fid,kid",
                           "--out", tmp_path / f"{name}.json")
        assert code == 0
        fids[name] = _scores(tmp_path / f"{name}.json")["fid"]
    # Measured: clean 0.80 (the small-n bias of FID at n = 300), noisy 21.7.
    assert 0.0 < fids["clean"] < 2.0 and fids["noisy"] > 10 * fids["clean"]
    assert _scores(tmp_path / "noisy.json")["kid"] > _scores(tmp_path / "clean.json")["kid"]


def _small_images(n: int = 100, seed: int = 0) -> np.ndarray:
    """n random uint8 8x8 grey images: 64 pixels < n samples, so pixel covariances are full rank."""
    return np.random.default_rng(seed).integers(0, 256, size=(n, 8, 8), dtype=np.uint8)


def test_image_folder_against_npy_reference(tmp_path, capsys) -> None:
    """PNG round trip is lossless, so a folder of the reference's own images has FID 0 (pixels extractor)."""
    from PIL import Image

    imgs = _small_images()
    (tmp_path / "imgs").mkdir()
    for i, a in enumerate(imgs):
        Image.fromarray(a).save(tmp_path / "imgs" / f"{i:03d}.png")
    np.save(tmp_path / "ref.npy", imgs)
    code, out, _ = _eval(capsys, tmp_path / "imgs", "--ref", tmp_path / "ref.npy", "--extractor", "pixels",
                         "--metrics", "fid,pr,is", "--n", 100, "--out", tmp_path / "r.json")
    assert code == 0 and "skipped: extractor 'pixels' has no logits" in out
    rec = json.loads((tmp_path / "r.json").read_text())
    assert_allclose(rec["scores"]["fid"], 0.0, atol=1e-9)
    assert rec["scores"]["precision"] == rec["scores"]["recall"] == 1.0
    assert rec["protocol"]["reference"] == f"images from {tmp_path / 'ref.npy'}"
    assert rec["source"]["kind"] == "folder" and rec["protocol"]["n_fake"] == 100


def test_float_range_option(tmp_path, capsys) -> None:
    """[0, 1] floats with --range 0,1 give the uint8 answer; without it they are refused, not clamped."""
    imgs = _small_images()
    np.save(tmp_path / "u8.npy", imgs)
    np.save(tmp_path / "f01.npy", imgs / 255.0)
    np.save(tmp_path / "f255.npy", imgs.astype(np.float32))
    args = ("--n", 100, "--metrics", "fid", "--ref", tmp_path / "u8.npy", "--extractor", "pixels")
    assert _eval(capsys, tmp_path / "f01.npy", *args, "--range", "0,1", "--out", tmp_path / "a.json")[0] == 0
    assert_allclose(_scores(tmp_path / "a.json")["fid"], 0.0, atol=1e-9)
    code, _, err = _eval(capsys, tmp_path / "f255.npy", *args)
    assert code == 2 and "far outside --range -1,1" in err and "--range 0,255" in err


def _train(tmp_path: Path, data: dict, **extra) -> Path:
    from ganforge import api

    raw = {"name": "t", "data": data, "game": {"name": "gan", "z_dim": 8},
           "nets": {"g": {"name": "mlp", "hidden": 32, "depth": 1, "out_activation": "tanh"},
                    "d": {"name": "mlp", "hidden": 32, "depth": 1}},
           "train": {"steps": 2, "batch_size": 16, "threads": 1, "device": "cpu", **extra},
           "eval": {"every": 0, "n": 32, "samples": False}, "checkpoint": {"every": 0}}
    return api.train(raw, out=tmp_path / "run").run_dir


def test_run_directory(tmp_path, capsys, fmnist_test) -> None:
    run = _train(tmp_path, {"name": "fmnist", "limit": 200}, ema=0.9)
    code, out, _ = _eval(capsys, run, "--n", 200, "--metrics", "fid,kid,is,classes")
    assert code == 0 and "(step 2, ema generator)" in out
    rec = json.loads((run / "eval.json").read_text())  # a run's default output file
    src, p = rec["source"], rec["protocol"]
    assert src["kind"] == "run" and src["step"] == 2 and src["generator"] == "ema" and src["sample_seed"] == 0
    assert src["checkpoint"].endswith("step_000000002.pt")
    assert p["reference"] == "fmnist/test" and p["reference_params"]["resolution"] == 28
    assert p["conversion_fake"]["input"]["dtype"] == "float32" and p["n_fake"] == 200
    assert np.isfinite(rec["scores"]["fid"]) and rec["scores"]["fid"] > 1.0  # 2 steps: far from the data
    # Same seed, same checkpoint: the same samples and the same score; --no-ema scores the raw generator.
    assert _eval(capsys, run, "--n", 200, "--metrics", "fid", "--out", tmp_path / "again.json")[0] == 0
    assert _scores(tmp_path / "again.json")["fid"] == rec["scores"]["fid"]
    assert _eval(capsys, run, "--n", 200, "--metrics", "fid", "--no-ema", "--out", tmp_path / "raw.json")[0] == 0
    raw = json.loads((tmp_path / "raw.json").read_text())
    assert raw["source"]["generator"] == "raw" and raw["scores"]["fid"] != rec["scores"]["fid"]
    # One checkpoint file works like its run directory.
    ckpt = run / "checkpoints" / "step_000000002.pt"
    assert _eval(capsys, ckpt, "--n", 200, "--metrics", "fid", "--out", tmp_path / "ckpt.json")[0] == 0
    assert _scores(tmp_path / "ckpt.json")["fid"] == rec["scores"]["fid"]


def test_errors(tmp_path, capsys, fmnist_test) -> None:
    np.save(tmp_path / "ok.npy", fmnist_test[:20])
    np.save(tmp_path / "two_channels.npy", np.zeros((20, 2, 28, 28), np.uint8))
    np.save(tmp_path / "vectors.npy", np.zeros((20, 5), np.float32))
    (tmp_path / "run_without_ckpt" / "checkpoints").mkdir(parents=True)
    cases = [
        ((tmp_path / "ok.npy", "--metrics", "fid,lpips"), "unknown metric(s) lpips in --metrics 'fid,lpips'. "
                                                          "Valid metrics: fid, kid, pr, dc, is, classes"),
        ((tmp_path / "missing.npy",), "missing.npy not found. Give a run directory"),
        ((tmp_path / "run_without_ckpt",), "is a run directory without checkpoints"),
        ((tmp_path / "two_channels.npy", "--n", 20), "takes 1-channel images; cannot convert 2 channels"),
        ((tmp_path / "vectors.npy",), "expected images (N, C, H, W) or (N, H, W, C), got shape (20, 5)"),
        ((tmp_path / "ok.npy", "--extractor", "inceptoin"), "Did you mean 'inception-v3'?"),
        ((tmp_path / "ok.npy", "--extractor", "pixels", "--weights", "w.pth"),
         "extractor 'pixels' takes no weights file. Extractors with --weights: fmnist-cnn, inception-v3"),
        ((tmp_path / "ok.npy", "--extractor", "module"), "use the Python API"),
        ((tmp_path / "ok.npy", "--ref", "fmnist-val"), "ref must be '<dataset>-<split>'"),
        ((tmp_path / "ok.npy", "--n", 1), "--n must be >= 2"),
        ((tmp_path / "ok.npy", "--ref", tmp_path / "nope"), "nope not found (a reference is <dataset>-<split>"),
        ((tmp_path / "ok.npy", "--range", "1,-1"), "--range needs lo < hi"),
    ]
    for argv, message in cases:
        code, _, err = _eval(capsys, *argv)
        assert code == 2, (argv, err)
        assert message in err, (argv, err)


def test_vector_run_is_refused(tmp_path, capsys) -> None:
    run = _train(tmp_path, {"name": "ring", "n": 256})
    code, _, err = _eval(capsys, run)
    assert code == 2 and "generates vectors of shape (2,), not images" in err


def test_run_on_a_dataset_without_splits_is_scored_against_its_training_images(tmp_path, capsys) -> None:
    from PIL import Image

    (tmp_path / "imgs").mkdir()
    for i, a in enumerate(_small_images(40)):
        Image.fromarray(a).save(tmp_path / "imgs" / f"{i:03d}.png")
    run = _train(tmp_path, {"name": "folder", "root": str(tmp_path / "imgs"), "resolution": 8, "channels": 1})
    code, out, err = _eval(capsys, run, "--extractor", "pixels", "--metrics", "fid,pr", "--n", 40)
    assert code == 0, err
    p = json.loads((run / "eval.json").read_text())["protocol"]
    assert p["reference"].startswith("training data (") and p["n_real"] == 40 and p["n_fake"] == 40
