"""Toy densities (exact log_prob against scipy, moments, seeds), the batch stream, mode metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose
from scipy import integrate, stats
from scipy.special import logsumexp

from ganforge.data.base import BatchStream, MultiStream
from ganforge.data.toy import GaussianMixture
from ganforge.errors import ConfigError
from ganforge.metrics.modes import density_gap_1d, mode_metrics
from ganforge.registry import DATASETS


def _scipy_logpdf(dens: GaussianMixture, x: np.ndarray) -> np.ndarray:
    comps = [stats.multivariate_normal(m, (s**2) * np.eye(dens.dim)).logpdf(x) for m, s in
             zip(dens.means.numpy(), dens.std.numpy(), strict=True)]
    return logsumexp(np.stack(comps, 1) + np.log(dens.weights.numpy()), axis=1)


@pytest.mark.parametrize("name,params", [("ring", {}), ("grid", {}), ("ring", {"n_modes": 5, "radius": 2.0,
                                                                              "std": 0.3}),
                                         ("spiral", {"resolution": 60}), ("swiss-roll", {"resolution": 60})])
def test_log_prob_matches_scipy_2d(name, params):
    data = DATASETS.build(name, n=500, **params)
    dens = data.density
    g = torch.Generator().manual_seed(0)
    x = torch.cat([data.x[:200].double(), torch.randn(100, 2, generator=g, dtype=torch.float64) * 3])
    assert_allclose(dens.log_prob(x).numpy(), _scipy_logpdf(dens, x.numpy()), rtol=1e-10, atol=1e-8)


def test_log_prob_1d_and_unequal_weights():
    dens = DATASETS.build("mixture-1d", means=[-1.0, 0.5, 3.0], std=0.4, weights=[1.0, 2.0, 5.0], n=10).density
    x = np.linspace(-4, 6, 101)
    ref = np.log(sum(w * stats.norm(m, 0.4).pdf(x) for w, m in zip([1 / 8, 2 / 8, 5 / 8], [-1.0, 0.5, 3.0],
                                                                       strict=True)))
    assert_allclose(dens.log_prob(torch.as_tensor(x)).numpy(), ref, rtol=1e-11)
    total, _ = integrate.quad(lambda t: float(dens.prob(torch.tensor([t], dtype=torch.float64))), -10, 12,
                              points=[-1, 0.5, 3], limit=200, epsabs=1e-12)
    assert total == pytest.approx(1.0, abs=1e-9)
    assert_allclose(dens.cdf(torch.as_tensor(x)).numpy(),
                    sum(w * stats.norm(m, 0.4).cdf(x) for w, m in zip([1 / 8, 2 / 8, 5 / 8], [-1.0, 0.5, 3.0],
                                                                       strict=True)), rtol=1e-10, atol=1e-15)
    g = DATASETS.build("gaussian-1d", mean=1.5, std=2.0, n=10).density
    assert_allclose(g.log_prob(torch.as_tensor(x)).numpy(), stats.norm(1.5, 2.0).logpdf(x), rtol=1e-12)


def test_pacgan_geometry():
    ring = DATASETS.build("ring", n=10).density
    ang = np.arange(8) * 2 * np.pi / 8
    assert_allclose(ring.means.numpy(), np.stack([np.cos(ang), np.sin(ang)], 1), atol=1e-15)
    assert_allclose(ring.std.numpy(), 0.01)
    grid = DATASETS.build("grid", n=10).density
    ticks = [-4.0, -2.0, 0.0, 2.0, 4.0]
    assert sorted(map(tuple, grid.means.numpy().tolist())) == sorted((a, b) for a in ticks for b in ticks)
    assert_allclose(grid.std.numpy(), 0.05)


@pytest.mark.parametrize("name,var", [("ring", 0.5 + 0.01**2), ("grid", 8.0 + 0.05**2)])
def test_sample_moments(name, var):
    """Equal-weight mixture: mean 0 and Cov = (mean of mu mu^T) + std^2 I (ring: 1/2 I; grid: 8 I)."""
    n = 200_000
    x = DATASETS.build(name, n=n, seed=3).x.double()
    assert x.dtype == torch.float64 and x.shape == (n, 2)
    cov = torch.cov(x.T).numpy()
    se_mean = math.sqrt(var / n)
    assert_allclose(x.mean(0).numpy(), [0.0, 0.0], atol=5 * se_mean)
    assert_allclose(np.diag(cov), [var, var], rtol=0.02)
    assert abs(cov[0, 1]) < 0.02 * var
    # mode frequencies are uniform: chi-square test at a very lenient level (fixed seed, deterministic)
    dens = DATASETS.build(name, n=10).density
    counts = np.bincount(torch.cdist(x, dens.means).argmin(1).numpy(), minlength=dens.n_modes)
    assert stats.chisquare(counts).pvalue > 1e-4
    # each point lies near its mode: within 5 std
    d = torch.cdist(x, dens.means).min(1).values / dens.std[0]
    assert float((d < 5).double().mean()) > 0.999


def test_seeded_reproducibility():
    a, b = DATASETS.build("grid", n=300, seed=7), DATASETS.build("grid", n=300, seed=7)
    assert torch.equal(a.x, b.x) and a.x.dtype == torch.float32
    assert not torch.equal(a.x, DATASETS.build("grid", n=300, seed=8).x)
    dens = a.density
    s1 = dens.sample(50, generator=torch.Generator().manual_seed(1))
    s2 = dens.sample(50, generator=torch.Generator().manual_seed(1))
    assert torch.equal(s1, s2)


def test_bad_toy_parameters():
    with pytest.raises(ConfigError, match="std must be > 0"):
        DATASETS.build("ring", std=0.0)
    with pytest.raises(ConfigError, match=r"n \(number of training points\) must be >= 1"):
        DATASETS.build("grid", n=0)
    with pytest.raises(ConfigError, match="mixture weights must be 2 non-negative numbers"):
        DATASETS.build("mixture-1d", weights=[1.0, -1.0])


def test_batch_stream_epochs_and_resume():
    data = DATASETS.build("ring", n=100, seed=0)
    s = BatchStream(data, 30, seed=5)
    seen = torch.cat([s.next_indices() for _ in range(3)])  # drop_last: 90 of the 100 per epoch
    assert len(set(seen.tolist())) == 90
    first_epoch = seen
    s2 = BatchStream(data, 30, seed=5)
    for _ in range(4):
        s2.next()
    state = s2.state_dict()
    rest = [s2.next()["x"] for _ in range(7)]  # crosses two epoch boundaries
    s3 = BatchStream(data, 30, seed=999)
    s3.load_state_dict(state)
    for want in rest:
        assert torch.equal(s3.next()["x"], want)
    assert s3.state_dict() == s2.state_dict()
    other = torch.cat([BatchStream(data, 30, seed=6).next_indices() for _ in range(3)])
    assert not torch.equal(other, first_epoch)
    with pytest.raises(ValueError, match="larger than the dataset"):
        BatchStream(data, 101)


def test_multi_stream_resume_and_independence():
    parts = {"a": DATASETS.build("ring", n=64), "b": DATASETS.build("grid", n=64)}
    m = MultiStream(parts, 16, seed=1)
    m.next()
    state = m.state_dict()
    want = [m.next() for _ in range(6)]
    m2 = MultiStream(parts, 16, seed=1)
    m2.load_state_dict(state)
    for w in want:
        got = m2.next()
        assert torch.equal(got["a"]["x"], w["a"]["x"]) and torch.equal(got["b"]["x"], w["b"]["x"])
    ia, ib = m.streams["a"]._perm, m.streams["b"]._perm
    assert not torch.equal(ia, ib)  # the parts are shuffled independently (unpaired)


# ------------------------------------------------------------------------------ mode metrics
def test_mode_metrics_known_answers():
    means = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]], dtype=torch.float64)
    std = 0.5
    pts = [means[0]] * 4 + [means[1] + torch.tensor([2.9 * std, 0.0])] * 2 + [means[2]] * 2  # 8 HQ samples
    pts += [means[3] + torch.tensor([3.1 * std, 0.0])] * 2  # just outside 3 std: not HQ, mode 3 not covered
    pts += [torch.tensor([5.0, 5.0])] * 2  # between modes
    m = mode_metrics(torch.stack(pts), means, std)
    assert m["modes"] == 3
    assert m["hq"] == pytest.approx(8 / 12)
    p = np.array([4, 2, 2]) / 8
    assert m["rkl"] == pytest.approx(float(np.sum(p * np.log(p * 4))), rel=1e-12)


def test_mode_metrics_limits():
    dens = DATASETS.build("ring", n=10).density
    uniform = dens.means.repeat(5, 1)  # every mode hit 5 times, exactly at the centre
    m = mode_metrics(uniform, dens.means, dens.std)
    assert m == {"modes": 8, "hq": 1.0, "rkl": 0.0}
    collapsed = dens.means[:1].repeat(40, 1)
    m = mode_metrics(collapsed, dens.means, dens.std)
    assert m["modes"] == 1 and m["hq"] == 1.0 and m["rkl"] == pytest.approx(math.log(8))
    far = torch.full((10, 2), 50.0)
    m = mode_metrics(far, dens.means, dens.std)
    assert m["modes"] == 0 and m["hq"] == 0.0 and math.isinf(m["rkl"])
    # the true distribution itself: every mode, >= 99% HQ (3 std in 2D holds 98.9% of the mass)
    m = mode_metrics(dens.sample(2500, generator=torch.Generator().manual_seed(0)), dens.means, dens.std)
    assert m["modes"] == 8 and 0.98 < m["hq"] < 1.0 and m["rkl"] < 0.01


def test_density_gap_1d_against_quadrature():
    p = GaussianMixture([[0.0]], 1.0)
    g = torch.Generator().manual_seed(0)
    same = density_gap_1d(torch.randn(400_000, generator=g), p.log_prob, lo=-6, hi=7)
    assert same["kl"] < 2e-3 and same["js"] < 5e-4
    shifted = density_gap_1d(torch.randn(400_000, generator=g) + 1.0, p.log_prob, lo=-6, hi=7)
    P, Q = stats.norm(0, 1), stats.norm(1, 1)
    js_ref = 0.5 * integrate.quad(lambda x: P.pdf(x) * math.log(2 * P.pdf(x) / (P.pdf(x) + Q.pdf(x))), -12, 13)[0] \
        + 0.5 * integrate.quad(lambda x: Q.pdf(x) * math.log(2 * Q.pdf(x) / (P.pdf(x) + Q.pdf(x))), -12, 13)[0]
    assert shifted["kl"] == pytest.approx(0.5, abs=0.03)  # KL(N(0,1) || N(1,1)) = 1/2
    assert shifted["js"] == pytest.approx(js_ref, abs=0.01)
