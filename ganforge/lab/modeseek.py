"""``mode-seeking``: one Gaussian fitted to a two-mode mixture under different divergences.

Lecture 004, "alpha-divergence: mode covering vs mode seeking" (and Minka 2005,
"Divergence measures and message passing"): minimising KL(p||q) over q = N(mu, sigma^2)
matches moments and covers both modes; KL(q||p) locks onto one mode; JS sits between.
With the table's generator, D_alpha(P||Q) = (int p^a q^(1-a) - 1) / (a (a - 1)) tends to
KL(p||q) as a -> 1 and to KL(q||p) as a -> 0: large alpha covers, small or negative alpha seeks.
Every objective is computed by quadrature and minimised with scipy.optimize (Nelder-Mead).
"""

from __future__ import annotations

import math
import pathlib
import time

import numpy as np

from ganforge.lab.common import figure, finish, gauss, lab, log_density
from ganforge.lab.divergences import f_divergence


def target():
    """p: equal mixture of N(-2, 0.5^2) and N(2, 0.5^2) (the ``mixture-1d`` dataset's default)."""
    from ganforge.data.toy import GaussianMixture

    return GaussianMixture([[-2.0], [2.0]], 0.5)


def fit(objective: str, *, alpha: float = 0.5, starts: tuple[tuple[float, float], ...] = ((0.7, 1.0), (0.0, 2.0)),
        tol: float = 1e-7) -> dict:
    """argmin over (mu, sigma) of D(p, N(mu, sigma^2)); ``objective`` in kl, rkl, js, alpha."""
    from scipy.optimize import minimize

    p = target()
    name, kw = {"kl": ("kl", {}), "rkl": ("rkl", {}), "js": ("wjs", {"pi": 0.5}),
                "alpha": ("alpha", {"alpha": alpha})}[objective]

    def loss(theta: np.ndarray) -> float:
        mu, log_sigma = float(theta[0]), float(theta[1])
        if not -3.0 < log_sigma < 3.0:
            return math.inf
        val = f_divergence(p, gauss(mu, math.exp(log_sigma)), name, **kw)
        return val if math.isfinite(val) else math.inf

    best = None
    for mu0, s0 in starts:
        res = minimize(loss, np.array([mu0, math.log(s0)]), method="Nelder-Mead",
                       options={"xatol": tol, "fatol": 1e-12, "maxiter": 2000})
        if best is None or res.fun < best.fun:
            best = res
    return {"mu": float(best.x[0]), "sigma": math.exp(float(best.x[1])), "value": float(best.fun),
            "evaluations": int(best.nfev)}


@lab("mode-seeking")
def run(*, out: pathlib.Path, quick: bool, seed: int = 0) -> dict:
    """A Gaussian fitted to a two-mode mixture under KL, reverse KL, JS and alpha-divergences."""
    t0 = time.perf_counter()
    alphas = (-1.0,) if quick else (-1.0, -0.5, 0.1, 0.25, 0.5, 0.75, 1.5, 2.0, 3.0)
    kw = {"starts": ((0.7, 1.0),), "tol": 1e-4} if quick else {}
    fits = {"KL(p||q)": fit("kl", **kw), "KL(q||p)": fit("rkl", **kw), "JS": fit("js", **kw)}
    for a in alphas:
        fits[f"alpha={a:g}"] = fit("alpha", alpha=a, **kw)
    p = target()
    moments = {"mu": 0.0, "sigma": math.sqrt(4.0 + 0.25)}  # mean and std of p
    result = {
        "target": "0.5 N(-2, 0.5^2) + 0.5 N(2, 0.5^2)", "fits": fits, "alphas": alphas,
        "moment_match": moments,
        "kl_fit_err": max(abs(fits["KL(p||q)"]["mu"]), abs(fits["KL(p||q)"]["sigma"] - moments["sigma"])),
        "rkl_fit": [abs(fits["KL(q||p)"]["mu"]), fits["KL(q||p)"]["sigma"]],
    }

    fig, axes = figure(2, width=4.6)
    x = np.linspace(-6, 6, 1201)
    axes[0].fill_between(x, np.exp(log_density(p, x)), color="gray", alpha=0.3, label="p (data)")
    show = ["KL(p||q)", "KL(q||p)", "JS", f"alpha={alphas[0]:g}", f"alpha={alphas[-1]:g}"]
    for k in show:
        f = fits[k]
        label = f"{k}: mu={f['mu']:.2f}, s={f['sigma']:.2f}"
        axes[0].plot(x, np.exp(log_density(gauss(f["mu"], f["sigma"]), x)), label=label)
    axes[0].legend(fontsize=6)
    axes[0].set_title("best single Gaussian q under each divergence", fontsize=9)
    sig = [fits[f"alpha={a:g}"]["sigma"] for a in alphas]
    mus = [abs(fits[f"alpha={a:g}"]["mu"]) for a in alphas]
    axes[1].plot(alphas, sig, "o-", label="sigma of the fit")
    axes[1].plot(alphas, mus, "s-", label="|mu| of the fit")
    axes[1].axhline(moments["sigma"], color="gray", ls=":", lw=0.8)
    axes[1].axhline(0.5, color="gray", ls="--", lw=0.8)
    axes[1].set_xlabel("alpha  (-> 0: KL(q||p), seeks;  -> 1: KL(p||q), covers)")
    axes[1].set_title("alpha-divergence fits", fontsize=9)
    axes[1].legend(fontsize=7)
    return finish(out, "mode-seeking", fig, result, t0)
