"""``kl-js-landscape``: KL(P||Q), KL(Q||P) and JS over the (mu, sigma) of a Gaussian Q fitted to a
bimodal P, and the JS integrand of one pair (lecture 003 Fig. 14; Goodfellow 2016, Fig. 14;
Theis et al. 2016, Fig. 1).

P = 1/2 N(-2, 0.5^2) + 1/2 N(2, 0.5^2), as in ``mode-seeking``, which finds the optima; this lab
maps the whole landscape around them. On a (mu, sigma) grid each divergence is a trapezoid
sum over a fixed x grid (vectorised over mu); a few grid points are checked against the
adaptive quadrature of ``ganforge.lab.divergences`` and each grid minimum is refined by
Nelder-Mead on that quadrature. What theory says, and the JSON checks:

- forward KL(P||Q) = -H(P) - E_P[log q] is minimised by moment matching: mu = E_P[x] = 0,
  sigma = Std_P = sqrt(0.5^2 + 2^2) (a Gaussian's cross-entropy depends on P only through its
  first two moments): Q covers both modes and puts its peak where P has no mass;
- reverse KL(Q||P) is mode-seeking: its minima sit on one mode (mu ~ +-2, sigma ~ 0.5) with value
  ~ log 2 (Q = one component sees p = q / 2 on its support);
- JS (<= log 2) lies in between: for this P its global minimum covers both modes, like forward
  KL but narrower, and each mode holds a local minimum; at Q = one component
  JS = 1/2 [1/2 log(2/3) + 1/2 log 2 + log(4/3)] (= 0.2158, the modes' overlap neglected), so
  JS alone does not explain mode dropping (Theis et al. 2016, Fig. 1; Huszar 2015).
"""

from __future__ import annotations

import math
import pathlib
import time

import numpy as np

from ganforge.lab.common import figure, finish, gauss, lab

MODES, MODE_STD = (-2.0, 2.0), 0.5
NAMES = ("forward KL(P||Q)", "reverse KL(Q||P)", "JS(P, Q)")


def _log_p(x: np.ndarray) -> np.ndarray:
    z = (x[None, :] - np.array(MODES)[:, None]) / MODE_STD
    return np.logaddexp(*(-0.5 * z * z)) - math.log(2 * MODE_STD * math.sqrt(2 * math.pi))


def grid_divergences(mus: np.ndarray, sigmas: np.ndarray, x: np.ndarray) -> np.ndarray:
    """(3, len(sigmas), len(mus)) array of forward KL, reverse KL and JS by the trapezoid rule."""
    lp = _log_p(x)
    p = np.exp(lp)
    out = np.empty((3, sigmas.size, mus.size))
    for i, s in enumerate(sigmas):
        lq = -0.5 * ((x[None, :] - mus[:, None]) / s) ** 2 - math.log(s * math.sqrt(2 * math.pi))
        q = np.exp(lq)
        lm = np.logaddexp(lp, lq) - math.log(2)
        out[0, i] = np.trapezoid(p * (lp - lq), x, axis=1)
        out[1, i] = np.trapezoid(q * (lq - lp), x, axis=1)
        out[2, i] = 0.5 * np.trapezoid(p * (lp - lm) + q * (lq - lm), x, axis=1)
    return out


def exact(name: str, mu: float, sigma: float) -> float:
    """One divergence by adaptive quadrature (``ganforge.lab.divergences``)."""
    from ganforge.lab.divergences import f_divergence, js
    from ganforge.lab.modeseek import target  # the same P as the ``mode-seeking`` lab

    p, q = target(), gauss(mu, sigma)
    if name == NAMES[0]:
        return f_divergence(p, q, "kl")
    if name == NAMES[1]:
        return f_divergence(p, q, "rkl")
    return js(p, q)


def refine(name: str, mu: float, sigma: float) -> tuple[float, float, float]:
    """Nelder-Mead on (mu, log sigma) from a grid point; returns (mu, sigma, value)."""
    from scipy.optimize import minimize

    res = minimize(lambda v: exact(name, v[0], math.exp(v[1])), [mu, math.log(sigma)], method="Nelder-Mead",
                   options={"xatol": 1e-6, "fatol": 1e-10, "maxiter": 400})
    return float(res.x[0]), float(math.exp(res.x[1])), float(res.fun)


@lab("kl-js-landscape")
def run(*, out: pathlib.Path, quick: bool, seed: int = 0) -> dict:
    """KL(P||Q), KL(Q||P) and JS over (mu, sigma) of a Gaussian fit to a bimodal P, and the JS integrand."""
    t0 = time.perf_counter()
    mus = np.linspace(-4, 4, 41 if quick else 121)
    sigmas = np.geomspace(0.25, 4.0, 31 if quick else 91)
    x = np.linspace(-14, 14, 4001)
    div = grid_divergences(mus, sigmas, x)
    moments = (0.0, math.sqrt(MODE_STD**2 + 4.0))
    checks = [(0.0, 2.0), (2.0, 0.5), (-1.0, 1.0)]
    check_err = max(abs(float(grid_divergences(np.array([m]), np.array([s]), x)[k, 0, 0]) - exact(NAMES[k], m, s))
                    for m, s in checks for k in range(3))
    best: dict[str, dict] = {}
    for k, name in enumerate(NAMES):
        i, j = np.unravel_index(np.argmin(div[k]), div[k].shape)
        m, s, v = refine(name, float(mus[j]), float(sigmas[i]))
        best[name] = {"grid_mu": float(mus[j]), "grid_sigma": float(sigmas[i]), "grid_value": float(div[k, i, j]),
                      "mu": m, "sigma": s, "value": v}
    # the JS integrand for one pair: P and the forward-KL fit (moment matching)
    xs = np.linspace(-10, 10, 2001)
    lp, lq = _log_p(xs), -0.5 * (xs / moments[1]) ** 2 - math.log(moments[1] * math.sqrt(2 * math.pi))
    lm = np.logaddexp(lp, lq) - math.log(2)
    integrand = 0.5 * (np.exp(lp) * (lp - lm) + np.exp(lq) * (lq - lm))
    fwd, rev, jsn = (best[n] for n in NAMES)
    js_local = refine(NAMES[2], MODES[1], MODE_STD)
    result = {
        "p": {"modes": MODES, "std": MODE_STD}, "moments_of_p": moments,
        "minima": best, "grid_vs_quadrature_max_abs_err": check_err,
        "forward_kl_argmin_minus_moments": [fwd["mu"] - moments[0], fwd["sigma"] - moments[1]],
        "reverse_kl_min_value": rev["value"], "log2": math.log(2),
        "reverse_kl_argmin_abs_mu": abs(rev["mu"]), "js_argmin_abs_mu": abs(jsn["mu"]),
        "js_local_minimum_on_a_mode": {"mu": js_local[0], "sigma": js_local[1], "value": js_local[2]},
        "js_one_component_theory": 0.5 * (0.5 * math.log(2 / 3) + 0.5 * math.log(2) + math.log(4 / 3)),
        "js_integrand_pair": {"mu": moments[0], "sigma": moments[1]},
        "js_integrand_integral": float(np.trapezoid(integrand, xs)),
        "js_of_pair_quadrature": exact(NAMES[2], *moments),
        "grid": {"mu": mus, "sigma": sigmas},
    }

    fig, axes = figure(4, width=3.6, height=3.3)
    for k, name in enumerate(NAMES):
        ax = axes[k]
        cs = ax.contourf(mus, sigmas, np.log10(div[k] + 1e-3), levels=24, cmap="viridis")
        fig.colorbar(cs, ax=ax, fraction=0.046, pad=0.03).ax.tick_params(labelsize=6)
        ax.plot(best[name]["mu"], best[name]["sigma"], "r*", ms=10, label="minimum")
        ax.plot(*moments, "wx", ms=7, label="moments of P")
        ax.set_yscale("log")
        ax.set_xlabel("mu of Q")
        ax.set_ylabel("sigma of Q")
        ax.set_title(f"log10 {name}", fontsize=8)
        ax.legend(fontsize=6, loc="upper right")
    ax = axes[3]
    ax.plot(xs, np.exp(lp), "k", label="P (two modes)")
    for name, c, ls in zip(NAMES, ("tab:blue", "tab:orange", "tab:green"), ("--", "-", ":"), strict=True):
        b = best[name]
        ax.plot(xs, np.exp(-0.5 * ((xs - b["mu"]) / b["sigma"]) ** 2) / (b["sigma"] * math.sqrt(2 * math.pi)),
                color=c, ls=ls, lw=1.2, label=f"argmin {name.split('(')[0].strip()}")
    ax.fill_between(xs, 0, integrand, color="tab:red", alpha=0.3,
                    label=f"JS integrand, P vs moment fit (sum {result['js_integrand_integral']:.3f})")
    ax.set_xlim(-6, 6)
    ax.set_title("fits and the JS integrand", fontsize=8)
    ax.legend(fontsize=5.5)
    return finish(out, "kl-js-landscape", fig, result, t0)
