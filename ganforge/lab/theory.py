"""Quadrature-only experiments: ``divergences`` and ``js-identity``.

- ``divergences``: KL, reverse KL, JS, TV and W1 between p and a shifted copy q_theta
  (lecture 004, "Wasserstein GAN: beyond f-divergences"; Arjovsky et al. 2017, Example 1):
  for disjoint supports every f-divergence saturates (JS = log 2, KL = inf) while
  W1 = |theta| keeps a gradient.
- ``js-identity``: the value of the game at the optimal discriminator,
  V(D*, G) = E_p[log D*] + E_q[log(1 - D*)] = 2 JS(p||q) - log 4
  (Goodfellow et al. 2014, Theorem 1; lecture 003, "Optimal discriminator loss and
  relation to Jensen-Shannon divergence", where the loss E(D*, G) = -V = 2 log 2 - 2 JS).
"""

from __future__ import annotations

import math
import pathlib
import time

import numpy as np

from ganforge.lab.common import figure, finish, gauss, lab
from ganforge.lab.divergences import f_divergence, gan_value_at_optimum, js, wasserstein1


def _uniform(lo: float, width: float):
    from scipy.stats import uniform

    return uniform(loc=lo, scale=width)


def _sweep(make_q, p, thetas: np.ndarray) -> dict[str, list[float]]:
    rows: dict[str, list[float]] = {k: [] for k in ("kl", "rkl", "js", "tv", "w1")}
    for t in thetas:
        q = make_q(float(t))
        rows["kl"].append(f_divergence(p, q, "kl"))
        rows["rkl"].append(f_divergence(p, q, "rkl"))
        rows["js"].append(js(p, q))
        rows["tv"].append(f_divergence(p, q, "tv"))
        rows["w1"].append(wasserstein1(p, q))
    return rows


@lab("divergences")
def run_divergences(*, out: pathlib.Path, quick: bool, seed: int = 0) -> dict:
    """KL, reverse KL, JS, TV and W1 against a shift theta: Gaussians and disjoint uniforms."""
    t0 = time.perf_counter()
    n = 13 if quick else 61
    thetas = np.linspace(-3.0, 3.0, n)
    gauss_rows = _sweep(lambda t: gauss(t, 1.0), gauss(0.0, 1.0), thetas)
    width = 0.2  # narrow uniforms: the lecture's point masses, with densities
    uni_rows = _sweep(lambda t: _uniform(t, width), _uniform(0.0, width), thetas)

    apart = np.abs(thetas) >= width
    js_u, w1_u = np.array(uni_rows["js"]), np.array(uni_rows["w1"])
    w1_g = np.array(gauss_rows["w1"])
    kl_g = np.array(gauss_rows["kl"])
    result = {
        "thetas": thetas, "gaussians": gauss_rows, "uniforms": uni_rows, "uniform_width": width,
        "max_err_js_disjoint_vs_log2": float(np.max(np.abs(js_u[apart] - math.log(2)))),
        "max_err_w1_uniform_vs_abs_theta": float(np.max(np.abs(w1_u - np.abs(thetas)))),
        "max_err_w1_gauss_vs_abs_theta": float(np.max(np.abs(w1_g - np.abs(thetas)))),
        "max_err_kl_gauss_vs_theta2_over_2": float(np.max(np.abs(kl_g - thetas**2 / 2))),
        "kl_uniform_infinite_when_shifted": bool(np.all(np.isinf(np.array(uni_rows["kl"])[thetas != 0]))),
    }

    fig, axes = figure(2)
    styles = {"kl": "KL(p||q)", "rkl": "KL(q||p)", "js": "JS", "tv": "TV", "w1": "W1"}
    for ax, rows, title in ((axes[0], gauss_rows, "p = N(0,1), q = N(theta,1)"),
                            (axes[1], uni_rows, f"p = U[0,{width}], q = U[theta, theta+{width}]")):
        for key, label in styles.items():
            vals = np.array(rows[key], dtype=float)
            vals[~np.isfinite(vals)] = np.nan  # KL = inf is not drawn
            ax.plot(thetas, vals, label=label)
        ax.axhline(math.log(2), color="gray", ls=":", lw=0.8)
        ax.set_ylim(-0.1, 3.2)
        ax.set_xlabel("theta")
        ax.set_title(title, fontsize=9)
    axes[1].text(0.3, math.log(2) + 0.08, "log 2", color="gray", fontsize=8)
    axes[1].text(-2.9, 2.9, "KL = inf for theta != 0", fontsize=8, va="top")
    axes[0].legend(fontsize=8)
    return finish(out, "divergences", fig, result, t0)


@lab("js-identity")
def run_js_identity(*, out: pathlib.Path, quick: bool, seed: int = 0) -> dict:
    """The game's value at D* against 2 JS - log 4 for shifted and rescaled Gaussians p_g."""
    t0 = time.perf_counter()
    n = 9 if quick else 41
    p = gauss(0.0, 1.0)
    shifts = np.linspace(0.0, 8.0, n)
    scales = np.exp(np.linspace(math.log(0.2), math.log(5.0), n))
    fams = {"shift": [gauss(float(s), 1.0) for s in shifts], "scale": [gauss(0.0, float(s)) for s in scales]}
    value, rhs = {}, {}
    for fam, qs in fams.items():
        value[fam] = np.array([gan_value_at_optimum(p, q) for q in qs])
        rhs[fam] = np.array([2 * js(p, q) - math.log(4) for q in qs])
    err = max(float(np.max(np.abs(value[f] - rhs[f]))) for f in fams)
    result = {
        "shifts": shifts, "scales": scales,
        "value_at_D_star": value, "two_js_minus_log4": rhs, "max_abs_error": err,
        "value_at_p_eq_q": float(value["shift"][0]), "minus_log4": -math.log(4),
        "value_far_apart": float(value["shift"][-1]),
    }
    fig, axes = figure(3, width=3.6)
    for ax, fam, x, xl in ((axes[0], "shift", shifts, "shift of p_g = N(mu, 1)"),
                           (axes[1], "scale", scales, "scale of p_g = N(0, s^2)")):
        ax.plot(x, value[fam], "o", ms=3, label="V(D*, G) by quadrature")
        ax.plot(x, rhs[fam], "-", label="2 JS - log 4")
        ax.axhline(-math.log(4), color="gray", ls=":", lw=0.8)
        ax.axhline(0.0, color="gray", ls=":", lw=0.8)
        ax.set_xlabel(xl)
        if fam == "scale":
            ax.set_xscale("log")
    axes[0].legend(fontsize=7)
    for fam in ("shift", "scale"):
        axes[2].semilogy(np.arange(n), np.abs(value[fam] - rhs[fam]) + 1e-18, ".", label=fam)
    axes[2].set_title(f"|difference|, max {err:.1e}", fontsize=9)
    axes[2].set_xlabel("family member")
    axes[2].legend(fontsize=7)
    return finish(out, "js-identity", fig, result, t0)
