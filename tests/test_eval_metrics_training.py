"""Image metrics logged by the trainer (eval.metrics): config checks, a tiny run, cached reference features."""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose

from ganforge import api
from ganforge.config import load_config
from ganforge.data.base import Dataset
from ganforge.errors import ConfigError
from ganforge.metrics.evaluate import VALID_METRICS, evaluate
from ganforge.training import eval_metrics
from ganforge.training.eval_metrics import PROTOCOL_FILE, image_metrics, reference_for
from ganforge.training.evaluation import EVALUATORS


def _raw(data: dict, **eval_cfg) -> dict:
    return {"name": "t", "data": data, "game": {"name": "gan", "z_dim": 8},
            "nets": {"g": {"name": "mlp", "hidden": 32, "depth": 1, "out_activation": "tanh"},
                     "d": {"name": "mlp", "hidden": 32, "depth": 1}},
            "train": {"steps": 4, "batch_size": 16, "threads": 1, "device": "cpu", "ema": 0.9},
            "eval": {"every": 2, "n": 150, "samples": False, **eval_cfg}, "checkpoint": {"every": 0}}


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def fmnist_ok() -> None:
    from ganforge.data.fmnist import locate

    try:
        locate("test")
    except ConfigError as e:
        pytest.skip(f"Fashion-MNIST not installed: {e}".splitlines()[0])


def test_config_fields_are_checked() -> None:
    cfg = load_config(None, [], base=_raw({"name": "ring"}))
    assert cfg.eval.metrics == [] and cfg.eval.extractor == "fmnist-cnn" and cfg.eval.ref is None
    every = load_config(None, [f"--eval.metrics=[{','.join(VALID_METRICS)}]"], base=_raw({"name": "ring"}))
    assert every.eval.metrics == list(VALID_METRICS)  # the config accepts exactly evaluate()'s names
    with pytest.raises(ConfigError, match=r"eval.metrics must be a list drawn from fid, kid, pr, dc, is, classes, "
                                          r"got \['fid', 'lpips'\]"):
        load_config(None, ["--eval.metrics=[fid,lpips]"], base=_raw({"name": "ring"}))
    with pytest.raises(ConfigError, match="eval.extractor must be a registered feature extractor other than "
                                          "'module'"):
        load_config(None, ["--eval.extractor=module"], base=_raw({"name": "ring"}))


def test_tiny_run_logs_metrics_and_their_protocol(tmp_path, fmnist_ok) -> None:
    raw = _raw({"name": "fmnist", "limit": 300}, metrics=["fid", "kid", "is", "classes"])
    res = api.train(raw, out=tmp_path / "run")
    recs = [json.loads(ln) for ln in (res.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in recs] == [2, 4]
    for r in recs:
        assert {"fid", "kid", "kid_std", "is", "is_std", "classes_covered", "class_kl"} <= set(r)
        assert math.isfinite(r["fid"]) and r["fid"] > 0 and 1.0 <= r["is"] <= 10.0
    p = json.loads((res.run_dir / PROTOCOL_FILE).read_text())
    assert p["step"] == 4
    p = p["protocol"]
    assert p["reference"] == "fmnist/test" and p["n_real"] == p["n_fake"] == 150 and p["seed"] == 1234
    assert p["extractor"]["name"] == "fmnist-cnn" and p["reference_params"]["resolution"] == 28
    # The logged score is evaluate() on the trainer's own evaluation samples (EMA generator, eval.seed).
    game, _, _ = api.load_game(res.run_dir)
    x = game.sample(150, generator=torch.Generator().manual_seed(1234))
    again = evaluate(x, ref="fmnist-test", ref_params={"resolution": 28}, metrics=("fid", "kid"), n=150, seed=1234)
    assert_allclose([again["fid"], again["kid"]], [recs[-1]["fid"], recs[-1]["kid"]], rtol=1e-10)


def test_reference_features_are_computed_once(monkeypatch, fmnist_ok) -> None:
    """Each evaluation after the first extracts the fake side only."""
    from ganforge.data.fmnist import fmnist
    from ganforge.metrics import extractors

    data = fmnist(limit=64)
    ecfg = load_config(None, ["--eval.metrics=[fid]", "--eval.n=64"], base=_raw({"name": "ring"})).eval
    calls = []
    real_extract = extractors.FeatureExtractor.extract
    monkeypatch.setattr(extractors.FeatureExtractor, "extract",
                        lambda self, images, **kw: calls.append(len(images)) or real_extract(self, images, **kw))
    monkeypatch.setattr(sys.modules["ganforge.metrics.evaluate"], "_MEMO", {})  # the package exports a function
    x = torch.rand(64, 1, 28, 28) * 2 - 1
    first, second = image_metrics(data, x, ecfg), image_metrics(data, x, ecfg)
    assert calls == [64, 64, 64]  # fake, reference, fake
    assert first == second and set(first) == {"fid"}


def test_reference_choice(tmp_path) -> None:
    fm = Dataset("fmnist", torch.zeros(4, 1, 32, 32, dtype=torch.uint8), info={"resolution": 32, "source": "/d"})
    assert reference_for(fm) == ("fmnist-test", {"resolution": 32, "root": "/d"}, "fmnist-test")
    assert reference_for(fm, "fmnist-train")[:2] == ("fmnist-train", {"resolution": 32, "root": "/d"})
    np.save(tmp_path / "real.npy", np.zeros((3, 8, 8, 3), np.uint8))
    ref, params, desc = reference_for(fm, str(tmp_path / "real.npy"))
    assert ref.shape == (3, 3, 8, 8) and params is None and desc == f"images from {tmp_path / 'real.npy'}"
    custom = Dataset("my-folder", torch.zeros(4, 3, 8, 8, dtype=torch.uint8))  # no train/test splits
    ref, params, desc = reference_for(custom)
    assert ref is custom.x and params is None and desc == "training data (my-folder)"


def test_no_metrics_nan_samples_and_vector_data(tmp_path) -> None:
    data = Dataset("custom", torch.zeros(10, 1, 8, 8, dtype=torch.uint8))
    none = load_config(None, [], base=_raw({"name": "ring"})).eval
    assert image_metrics(data, torch.zeros(10, 1, 8, 8), none) == {}
    ecfg = load_config(None, ["--eval.metrics=[fid,pr]"], base=_raw({"name": "ring"})).eval
    out = image_metrics(data, torch.full((10, 1, 8, 8), float("nan")), ecfg)
    assert set(out) == {"fid", "precision", "recall"} and all(np.isnan(v) for v in out.values())
    with pytest.raises(ConfigError, match="eval.metrics \\['fid'\\] score images, but 'ring' holds vectors"):
        api.train(_raw({"name": "ring", "n": 256}, metrics=["fid"]), out=tmp_path / "ring")
    assert eval_metrics.image_metrics in [m for _, m, _ in EVALUATORS]


def test_reference_cache_key_ignores_location_and_defaults(tmp_path, fmnist_ok) -> None:
    """resolution=28 (the default) and root share one cache file; resolution=32 is other images."""
    fake = torch.rand(50, 1, 32, 32) * 2 - 1
    evaluate(fake[:, :, 2:30, 2:30], n=50, metrics=("fid",))
    out28 = evaluate(fake[:, :, 2:30, 2:30], n=50, metrics=("fid",),
                     ref_params={"resolution": 28, "root": "/usr/share/datasets/fashion-mnist"})
    assert len(list((tmp_path / "cache" / "stats").glob("fmnist-test-*n50-*.npz"))) == 1
    out32 = evaluate(fake, n=50, metrics=("fid",), ref_params={"resolution": 32})
    assert len(list((tmp_path / "cache" / "stats").glob("fmnist-test-*n50-*.npz"))) == 2
    assert out32["protocol"]["conversion_real"]["resize"] == {"from": [32, 32], "to": [28, 28], "mode": "bilinear",
                                                             "align_corners": False, "antialias": True}
    assert out28["protocol"]["reference_params"]["resolution"] == 28
