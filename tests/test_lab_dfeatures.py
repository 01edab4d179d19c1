"""The ``d-features`` lab: a linear probe on D's pre-final features vs pixels and a random D."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ganforge.lab import dfeatures


def test_d_features_are_the_input_of_ds_output_layer() -> None:
    from ganforge.nets.dcgan import dcgan

    d = dcgan(in_shape=(1, 16, 16), out_shape=(1,), base=8).eval()
    x = torch.rand(5, 1, 16, 16) * 2 - 1
    f = dfeatures.d_features(d, x)
    assert f.shape == (5, d.n_features) and f.dtype == np.float64
    with torch.no_grad():
        torch.testing.assert_close(d.out(torch.from_numpy(f).float()), d(x))  # pre-final: D = linear head of f


def test_probe_uses_k_labels_per_class_and_separates_separable_features() -> None:
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 40)
    f = rng.normal(size=(120, 3)) * 0.01 + np.eye(3)[y] * 5  # one-hot class code plus tiny noise
    accs = dfeatures.probe_accuracy(f, y, f, y, per_class=2, draws=3, seed=0)
    assert len(accs) == 3 and min(accs) == 1.0
    noise = rng.normal(size=(120, 4))  # no information: near chance (1/3)
    assert np.mean(dfeatures.probe_accuracy(noise, y, noise[::-1], y, per_class=5, draws=4, seed=0)) < 0.6


def test_d_features_lab(tmp_path, monkeypatch) -> None:
    import ganforge.lab  # noqa: F401  (registers the experiments)
    from ganforge.registry import LABS

    monkeypatch.setattr(dfeatures, "QUICK", {"steps": 60, "base": 8, "budgets": (5, 20), "draws": 4})
    r = LABS.get("d-features")(out=tmp_path, quick=True, seed=0)
    saved = json.loads((tmp_path / "d-features.json").read_text())
    assert saved["experiment"] == "d-features" and (tmp_path / "d-features.png").stat().st_size > 5_000
    assert r["feature_dims"] == {"pixels": 256, "random D": 16 * 16, "trained D": 16 * 16}  # 2 * base maps of 4x4
    m = r["test_accuracy_mean"]
    for k in (5, 20):
        # the headline: D's features, random or trained, beat raw pixels for a linear probe with few labels
        assert m["random D"][k] > m["pixels"][k] and m["trained D"][k] > m["pixels"][k]
        assert r["trained_minus_pixels"][k]["mean"] == pytest.approx(m["trained D"][k] - m["pixels"][k], abs=1e-12)
        assert 0.75 < m["pixels"][k] < 0.97  # digits with a handful of labels: a strong but imperfect baseline
    assert m["trained D"][20] > m["trained D"][5]  # more labels help
