"""Streaming statistics: batch-size independence, exact merge, the n - 1 convention; the reference cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose

from ganforge.metrics import math as M
from ganforge.metrics.stats import RunningStats, load_reference, reference_key, save_reference


def _data(n: int = 1000, d: int = 12, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) + 100.0  # large offset: tests cancellation


@pytest.mark.parametrize("batch", [1, 7, 128, 1000])
def test_batch_size_independence(batch: int) -> None:
    x = _data()
    s = RunningStats()
    for i in range(0, len(x), batch):
        s.update(x[i : i + batch])
    assert s.n == len(x)
    assert_allclose(s.mean, x.mean(0), rtol=1e-12)
    assert_allclose(s.cov, np.cov(x, rowvar=False), rtol=1e-9, atol=1e-9)


def test_covariance_divides_by_n_minus_1() -> None:
    x = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 8.0]])
    s = RunningStats().update(x[:1]).update(x[1:])
    xc = x - x.mean(0)
    assert_allclose(s.cov, xc.T @ xc / 2, rtol=1e-12)


def test_merge_equals_single_stream() -> None:
    x = _data(seed=1)
    a, b, c = RunningStats().update(x[:300]), RunningStats().update(x[300:650]), RunningStats().update(x[650:])
    merged = a.merge(b).merge(c).merge(RunningStats())
    whole = RunningStats().update(x)
    assert_allclose(merged.mean, whole.mean, rtol=1e-12)
    assert_allclose(merged.cov, whole.cov, rtol=1e-9, atol=1e-9)


def test_stats_feed_fid_like_the_batch_formula() -> None:
    x, y = _data(seed=2), _data(seed=3)
    sx, sy = RunningStats(), RunningStats()
    for i in range(0, 1000, 64):
        sx.update(torch.from_numpy(x[i : i + 64]).float())  # torch batches are accepted too
        sy.update(y[i : i + 64])
    expected = M.fid_from_stats(*M.mean_cov(x.astype(np.float32)), *M.mean_cov(y))
    assert_allclose(M.fid_from_stats(sx.mean, sx.cov, sy.mean, sy.cov), expected, rtol=1e-6)


def test_state_dict_round_trip() -> None:
    s = RunningStats().update(_data(50, 3))
    t = RunningStats()
    t.load_state_dict(s.state_dict())
    assert t.n == 50
    assert_allclose(t.cov, s.cov, rtol=0, atol=0)


def test_errors() -> None:
    s = RunningStats()
    with pytest.raises(ValueError, match="at least 2"):
        _ = s.cov
    s.update(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="does not match"):
        s.update(np.zeros((3, 5)))


def test_reference_cache_round_trip(tmp_path) -> None:
    conv = {"resize": None, "range": [-1, 1]}
    key = reference_key(dataset="fmnist", split="test", extractor="fmnist-cnn", weights_sha256="ab", n=10,
                        conversion=conv)
    other = reference_key(dataset="fmnist", split="test", extractor="fmnist-cnn", weights_sha256="cd", n=10,
                          conversion=conv)
    assert key != other  # new weights, new key
    assert load_reference(key, tmp_path) is None
    f = np.arange(20, dtype=np.float32).reshape(10, 2)
    save_reference(key, {"features": f}, {"n": 10}, tmp_path)
    arrays, meta = load_reference(key, tmp_path)
    assert_allclose(arrays["features"], f, rtol=0, atol=0)
    assert meta == {"n": 10}
