"""Deterministic truths of ganforge.lab.divergences / gaussians (quadrature vs closed forms)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats as st
import torch
from numpy.testing import assert_allclose

from ganforge.data.toy import GaussianMixture
from ganforge.lab import divergences as D
from ganforge.lab import gaussians as G
from ganforge.objectives.fgan import F_NAMES, f_row

PAIRS = [((0.0, 1.0), (1.0, 1.0)), ((0.0, 1.0), (0.5, 1.2)), ((-1.0, 0.7), (2.0, 1.5)), ((3.0, 2.0), (2.5, 0.4))]


def g1(mean: float, std: float) -> GaussianMixture:
    return GaussianMixture([[mean]], std)


@pytest.mark.parametrize("pair", PAIRS)
def test_kl_and_hellinger_quadrature_match_closed_forms(pair):
    (m0, s0), (m1, s1) = pair
    p, q = g1(m0, s0), g1(m1, s1)
    assert_allclose(D.f_divergence(p, q, "kl"), G.gaussian_kl(m0, s0**2, m1, s1**2), rtol=1e-6)
    assert_allclose(D.f_divergence(p, q, "rkl"), G.gaussian_kl(m1, s1**2, m0, s0**2), rtol=1e-6)
    assert_allclose(D.f_divergence(p, q, "hellinger"), G.gaussian_hellinger2(m0, s0**2, m1, s1**2), rtol=1e-6)
    bc = D.integrate_pq(p, q, lambda lp, lq: np.exp(0.5 * (lp + lq)))
    assert_allclose(-math.log(bc), G.gaussian_bhattacharyya(m0, s0**2, m1, s1**2), rtol=1e-6)


def test_closed_forms_known_values():
    assert_allclose(G.gaussian_kl(0.0, 1.0, 1.0, 1.0), 0.5, rtol=1e-12)
    assert_allclose(G.gaussian_kl([0.0, 0.0], [1.0, 4.0], [0.0, 0.0], [1.0, 4.0]), 0.0, atol=1e-12)
    # 1D: W2^2 = (m0 - m1)^2 + (s0 - s1)^2
    assert_allclose(G.gaussian_w2(1.0, 4.0, -2.0, 0.25), math.hypot(3.0, 1.5), rtol=1e-10)
    cov = np.array([[2.0, 0.3], [0.3, 1.0]])
    assert_allclose(G.gaussian_w2([0.0, 0.0], cov, [0.0, 0.0], cov), 0.0, atol=1e-7)
    with pytest.raises(ValueError, match="does not match a mean of size 2"):
        G.gaussian_kl([0.0, 0.0], np.eye(3), [0.0, 0.0], 1.0)


def test_2d_grid_matches_closed_forms():
    p = GaussianMixture([[0.0, 0.0]], 1.0)
    q = GaussianMixture([[0.7, -0.4]], 1.3)
    lim = ((-12.0, 12.0), (-12.0, 12.0))
    assert_allclose(D.f_divergence_2d(p, q, "kl", lim=lim, n=401),
                    G.gaussian_kl([0, 0], 1.0, [0.7, -0.4], 1.69), rtol=1e-6)
    assert_allclose(D.f_divergence_2d(p, q, "hellinger", lim=lim, n=401),
                    G.gaussian_hellinger2([0, 0], 1.0, [0.7, -0.4], 1.69), rtol=1e-6)
    # scipy densities (full covariance) and plain callables work the same way
    cov = np.array([[1.0, 0.4], [0.4, 0.8]])
    sp, sq = st.multivariate_normal([0.0, 0.0], cov), st.multivariate_normal([0.5, 0.2], np.eye(2))
    assert_allclose(D.f_divergence_2d(sp, sq.logpdf, "kl", lim=lim, n=401),
                    G.gaussian_kl([0, 0], cov, [0.5, 0.2], np.eye(2)), rtol=1e-6)


@pytest.mark.parametrize("shift", [-2.5, 0.3, 1.0, 4.0])
def test_w1_of_shifted_gaussians_is_the_shift(shift):
    assert_allclose(D.wasserstein1(g1(0.0, 1.0), g1(shift, 1.0)), abs(shift), rtol=1e-8)


def test_w1_mixture_against_scipy_on_a_grid():
    p, q = GaussianMixture([[-2.0], [2.0]], 0.5), g1(1.0, 1.0)
    x = np.linspace(-10, 10, 200_001)
    ref = st.wasserstein_distance(x, x, np.exp(D.as_density(p).logpdf(x)), np.exp(D.as_density(q).logpdf(x)))
    assert_allclose(D.wasserstein1(p, q), ref, rtol=1e-4)


def test_disjoint_uniforms_js_is_log2_and_kl_infinite():
    p, q = st.uniform(0.0, 1.0), st.uniform(2.0, 1.0)
    assert_allclose(D.js(p, q), math.log(2.0), rtol=1e-12)
    assert_allclose(D.f_divergence(p, q, "js"), 2 * math.log(2.0), rtol=1e-12)  # the table's generator: 2 JS
    assert D.f_divergence(p, q, "kl") == math.inf
    assert_allclose(D.f_divergence(p, st.uniform(0.25, 1.0), "tv"), 0.25, rtol=1e-12)
    assert_allclose(D.wasserstein1(p, q), 2.0, rtol=1e-9)


ROWS = [(n, {}) for n in F_NAMES if n not in ("alpha", "wjs")] + [
    ("wjs", {"pi": 0.3}), ("alpha", {"alpha": 0.5}), ("alpha", {"alpha": 2.0})]


@pytest.mark.parametrize("name,kw", ROWS, ids=[n + str(kw) for n, kw in ROWS])
def test_bound_at_optimal_critic_equals_divergence(name, kw):
    """E_P[T*] - E_Q[f*(T*)] with T* = f'(p/q) equals integral q f(p/q) (Nowozin et al. eq. 5)."""
    p, q = g1(0.0, 1.0), g1(0.5, 1.2)
    # the brief asks for 1e-3; quadrature makes the identity hold to roundoff
    assert_allclose(D.bound_at_optimum(p, q, name, **kw), D.f_divergence(p, q, name, **kw), rtol=1e-8)


@pytest.mark.parametrize("name,kw", ROWS, ids=[n + str(kw) for n, kw in ROWS])
def test_activation_lands_in_conjugate_domain(name, kw):
    row = f_row(name, **kw)
    v = torch.linspace(-30.0, 30.0, 20_001, dtype=torch.float64)
    t = row.activation(v)
    lo, hi = row.domain
    lo_ok = t >= lo if row.closed[0] else t > lo
    hi_ok = t <= hi if row.closed[1] else t < hi
    assert bool((lo_ok & hi_ok).all()), f"{name}: activation leaves dom f* = {row.domain}"
    # the stable f*(g_f(v)) against the naive composition, where the naive one has no cancellation
    mid = v.abs() <= 10
    torch.testing.assert_close(row.fstar_act(v[mid]), row.conjugate(t[mid]), rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("name,kw", ROWS, ids=[n + str(kw) for n, kw in ROWS])
def test_f_limits_match_the_generator(name, kw):
    row = f_row(name, **kw)
    f0, finf = D.f_limits(name, **kw)
    small, big = torch.tensor([1e-14], dtype=torch.float64), torch.tensor([1e14], dtype=torch.float64)
    if math.isfinite(f0):
        assert_allclose(float(row.f(small)), f0, rtol=1e-5, atol=1e-6)
    else:
        assert float(row.f(small)) > 20
    if math.isfinite(finf):
        assert_allclose(float(row.f(big) / big), finf, rtol=1e-5, atol=1e-6)
    else:
        assert float(row.f(big) / big) > 20


@pytest.mark.parametrize("pair", PAIRS)
def test_game_value_at_optimal_d_is_2js_minus_log4(pair):
    (m0, s0), (m1, s1) = pair
    p, q = g1(m0, s0), g1(m1, s1)
    assert_allclose(D.gan_value_at_optimum(p, q), 2 * D.js(p, q) - math.log(4), rtol=1e-9)
    assert_allclose(D.f_divergence(p, q, "gan"), 2 * D.js(p, q) - math.log(4), rtol=1e-9)


def test_optimal_discriminator_is_half_where_densities_meet():
    p, q = g1(-1.0, 1.0), g1(1.0, 1.0)
    assert_allclose(D.optimal_discriminator(p, q, np.array([0.0, -50.0])), [0.5, 1.0], rtol=1e-12)


def test_unreadable_density_is_an_error():
    with pytest.raises(TypeError, match="need log_prob, logpdf or Density1D"):
        D.as_density(object())
