"""The issue-15 labs in --quick mode: each writes NAME.png and NAME.json and its headline holds."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import ganforge.lab  # noqa: F401  (registers the experiments)
from ganforge.registry import LABS


def run(name: str, tmp_path) -> dict:
    result = LABS.get(name)(out=tmp_path, quick=True, seed=0)
    assert (tmp_path / f"{name}.png").stat().st_size > 5_000
    saved = json.loads((tmp_path / f"{name}.json").read_text())
    assert saved["experiment"] == name and saved["seconds"] > 0
    return result


def test_bilinear_gda_spirals_out_at_the_exact_rate_and_extragradient_converges():
    from ganforge.lab.dynamics import bilinear

    eta, steps = 0.1, 100
    d = {m: np.hypot(*bilinear(m, steps=steps, eta=eta).T) for m in
         ("simultaneous", "alternating", "extragradient", "optimistic")}
    # simultaneous GDA multiplies |z| by sqrt(1 + eta^2) every step, exactly
    np.testing.assert_allclose(d["simultaneous"], math.sqrt(2) * (1 + eta**2) ** (np.arange(steps + 1) / 2),
                               rtol=1e-12)
    # extragradient multiplies it by sqrt((1 - eta^2)^2 + eta^2) < 1
    np.testing.assert_allclose(d["extragradient"][-1],
                               math.sqrt(2) * ((1 - eta**2) ** 2 + eta**2) ** (steps / 2), rtol=1e-12)
    assert 0.8 * math.sqrt(2) < d["alternating"].min() and d["alternating"].max() <= math.sqrt(2) * 1.0001
    assert d["optimistic"][-1] < 0.7 * math.sqrt(2)


def test_dynamics(tmp_path):
    r = run("dynamics", tmp_path)
    start = r["bilinear_start_distance"]
    fin = r["bilinear_final_distance"]
    assert fin["simultaneous"] > 2 * start  # GDA spirals out
    assert fin["extragradient"] < 0.5 * start and fin["optimistic"] < 0.5 * start
    assert 0.8 * start < r["bilinear_min_distance_last_half"]["alternating"]  # orbits, does not converge
    assert r["bilinear_max_distance"]["alternating"] < 1.01 * start
    assert r["simultaneous_growth_per_step"] == pytest.approx(r["simultaneous_growth_theory"], rel=1e-12)
    dirac = r["dirac_min_distance_last_10pct"]
    assert dirac["GAN (ns) + R1 (gamma=1), simultaneous"] < 1e-6  # R1 reaches the equilibrium
    assert dirac["GAN (minimax) + R1 (gamma=1), alternating"] < 1e-6
    assert dirac["GAN (minimax), simultaneous"] > 1.5 * start  # spirals out
    assert dirac["GAN (minimax), alternating"] > 0.9 * start  # orbits
    assert dirac["GAN (ns), simultaneous"] > 0.1  # stalls, far from (0, 0)
    assert dirac["WGAN-GP (lambda=1), simultaneous"] > 0.5  # stops off the equilibrium


def test_goodfellow_fig1(tmp_path):
    r = run("goodfellow-fig1", tmp_path)
    assert r["js_initial"] > 0.4  # p_g starts far from p_data (JS <= log 2)
    assert r["js_final"] < 0.15 * r["js_initial"]  # JS shrinks
    assert r["js_kde_floor"] < r["js_final"]  # ... to near what a KDE of real data scores
    assert r["d_gap_initial"] > 0.3  # D tells p_g from p_data at first
    assert r["d_gap_final"] < 0.08  # D(x) -> 1/2 on the data's support (Fig. 1d)
    assert r["g_mean_final"] == pytest.approx(2.0, abs=0.2)


def test_wgan_fig2(tmp_path):
    r = run("wgan-fig2", tmp_path)
    rel = r["slope_at_fakes_over_max_slope"]
    assert rel["gan"] < 0.01  # the near-optimal D saturates where the fakes are
    assert r["gan_D_mean_at_fakes"] < 0.01
    assert r["d_star_mean_abs_slope_at_fakes"] < 1e-10  # so does the exact D*
    assert rel["wgan"] > 0.1 and rel["wgan-gp"] > 0.5  # critics keep a slope there
    assert min(r["ratio_critic_over_gan_relative_slope"].values()) > 30
    assert r["mean_abs_slope_at_fakes"]["wgan-gp"] == pytest.approx(1.0, abs=0.4)  # GP: |grad| ~ 1


def test_kl_js_landscape(tmp_path):
    r = run("kl-js-landscape", tmp_path)
    assert r["grid_vs_quadrature_max_abs_err"] < 1e-6
    # forward KL's minimum is moment matching: mu = E_P[x] = 0, sigma = Std_P = sqrt(0.25 + 4)
    np.testing.assert_allclose(r["forward_kl_argmin_minus_moments"], [0.0, 0.0], atol=1e-4)
    assert r["moments_of_p"][1] == pytest.approx(math.sqrt(4.25), rel=1e-12)
    # reverse KL picks one mode, with KL ~ log 2
    assert r["reverse_kl_argmin_abs_mu"] == pytest.approx(2.0, abs=0.02)
    assert r["minima"]["reverse KL(Q||P)"]["sigma"] == pytest.approx(0.5, abs=0.02)
    assert r["reverse_kl_min_value"] == pytest.approx(math.log(2), abs=1e-3)
    # JS: a local minimum on each mode at the one-component value, the global one covers both here
    assert r["js_local_minimum_on_a_mode"]["value"] == pytest.approx(r["js_one_component_theory"], abs=2e-3)
    assert r["minima"]["JS(P, Q)"]["value"] < r["js_local_minimum_on_a_mode"]["value"] < math.log(2)
    # the plotted JS integrand integrates to the quadrature's JS
    assert r["js_integrand_integral"] == pytest.approx(r["js_of_pair_quadrature"], rel=1e-4)


def test_random_d(tmp_path):
    r = run("random-d", tmp_path)
    assert r["max_abs_V_plus_log4"] == pytest.approx(0.0, abs=1e-12)  # V = -log 4 for every G
    assert r["max_abs_dV_dG"] == 0.0  # G gets exactly no gradient through a constant D
    assert r["max_abs_dV_db"] == pytest.approx(0.0, abs=1e-12)
    assert r["max_err_dV_dw_vs_half_mean_gap"] == pytest.approx(0.0, abs=1e-12)  # but D's slope moves
    assert max(abs(g) for g in r["dV_dw"]) > 1.0
    assert max(abs(m - 2.0) for m in r["g_mean_final_random_frozen_d"]) > 1.0  # a random D misleads G
    assert r["abs_gap_trained_d"] < 0.5


def test_transport_plan_matches_the_assignment_problem():
    import torch

    from ganforge.lab.transport import assignment_w1, clouds, emd_w1

    for n in (5, 17, 40):
        p, q = clouds(n, torch.Generator().manual_seed(n))
        w1, plan = emd_w1(p, q)
        assert w1 == pytest.approx(assignment_w1(p, q), rel=1e-12)
        np.testing.assert_allclose(plan.sum(0), 1 / n, rtol=1e-12)
        np.testing.assert_allclose(plan.sum(1), 1 / n, rtol=1e-12)
    # one point each: W1 is their distance
    assert emd_w1(np.zeros((1, 2)), np.array([[3.0, 4.0]]))[0] == pytest.approx(5.0, rel=1e-15)


def test_transport(tmp_path):
    r = run("transport", tmp_path)
    assert r["abs_diff_emd_vs_assignment"] == pytest.approx(0.0, abs=1e-12)
    assert r["plan_is_a_permutation"]
    assert r["critic_rel_error"] == pytest.approx(0.0, abs=0.3)  # the GP critic estimates W1
    # divided by its Lipschitz constant on the points it is a certified lower bound, and a close one
    assert -0.15 < r["lipschitz_normalised_rel_error"] <= 1e-6


def test_blend_log_density_is_within_log_100_of_its_good_component():
    from ganforge.lab.likelihood import Blend, Kde, ring_centres

    rng = np.random.default_rng(0)
    good = Kde(ring_centres(), 0.1)
    blend = Blend(good, Kde(np.zeros((1, 2)), 1.5), 0.01)
    x = rng.normal(size=(500, 2)) * 2
    gap = good.logpdf(x) - blend.logpdf(x)
    assert gap.max() <= math.log(100) + 1e-12  # Theis et al. 2016, Sec. 3.2
    # the KDE's density integrates to 1 (grid sum over a box holding all the mass)
    g = np.linspace(-4, 4, 401)
    xx = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    assert np.exp(good.logpdf(xx)).sum() * (g[1] - g[0]) ** 2 == pytest.approx(1.0, rel=1e-6)


def test_likelihood_vs_quality(tmp_path):
    r = run("likelihood-vs-quality", tmp_path)
    m, k = r["models"], r["keys"]
    truth, mem, blur, sharp = m["truth"], m[k["memorising"]], m[k["blur"]], m[k["sharp"]]
    # memorising: training likelihood above the truth's, test likelihood the worst, samples = training points
    assert mem["train_ll"] > truth["train_ll"] + 2
    assert r["test_ll_ranking"][-1] == k["memorising"]
    assert mem["hq"] > 0.9 and mem["median_dist_to_nearest_train"] < 0.01
    # good likelihood, poor samples: the blur loses under log 100 nats yet few samples are good
    assert 0 < r["blur_ll_loss_vs_truth"] < r["log100"]
    assert blur["hq"] < 0.2
    # poor likelihood, great samples
    assert sharp["hq"] == 1.0 and sharp["modes"] == 8
    assert sharp["test_ll"] < blur["test_ll"] - 10
    assert r["test_ll_ranking"][0] == "truth"


def test_bad_input_messages(monkeypatch):
    import sys

    from ganforge.lab.dynamics import bilinear
    from ganforge.lab.transport import emd_w1

    with pytest.raises(ValueError, match="unknown method 'gda'; valid: simultaneous, alternating"):
        bilinear("gda", steps=3)
    monkeypatch.setitem(sys.modules, "ot", None)  # as if POT were not installed
    with pytest.raises(ImportError, match="needs POT .*pip install pot"):
        emd_w1(np.zeros((2, 2)), np.ones((2, 2)))
