"""Exact divergences between known densities (C7): quadrature and closed forms.

Convention (lecture 004, the f-divergence table; Nowozin et al. 2016, eq. 2):
D_f(P || Q) = integral q(x) f(p(x) / q(x)) dx with P the data and Q the model,
for every generator f of ``ganforge.objectives.fgan``. The integrand is
evaluated from log densities: q f(u) with u = exp(log p - log q) where p <= q,
and p f(u) / u where p > q, so neither branch overflows; where one density is
exactly zero the limits f(0) and f'(inf) = lim f(u)/u are used (``f_limits``).

Densities: anything with ``log_prob`` (``GaussianMixture``), a frozen
scipy.stats distribution (``logpdf``), or a ``Density1D`` built from a callable.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import torch

from ganforge.objectives.fgan import FRow, f_row

LOG_RATIO_CAP = 300.0  # for T* = f'(p/q) only: |log p/q| beyond this only in tails of negligible mass


@dataclass
class Density1D:
    """A 1D density: ``logpdf`` on numpy arrays, integration limits, kinks, optional CDF."""

    logpdf: Callable[[np.ndarray], np.ndarray]
    lim: tuple[float, float]
    breaks: list[float] = field(default_factory=list)
    cdf: Callable[[np.ndarray], np.ndarray] | None = None


def _mixture_logpdf(x: np.ndarray, mu: np.ndarray, sd: np.ndarray, logw: np.ndarray) -> np.ndarray:
    from scipy.special import logsumexp

    z = (x[..., None] - mu) / sd
    return logsumexp(logw - 0.5 * z * z - np.log(sd) - 0.5 * math.log(2 * math.pi), axis=-1)


def as_density(d: Any, *, width: float = 30.0) -> Density1D:
    """Wrap a 1D ``GaussianMixture``, frozen scipy distribution or ``Density1D``.

    Limits cover the mass: mean +- ``width`` std per mixture component (the
    Gaussian tail beyond 30 std is below e^-450), or scipy's ppf at 1e-16.
    """
    if isinstance(d, Density1D):
        return d
    if hasattr(d, "log_prob") and hasattr(d, "means"):
        mu, sd, logw = d.means[:, 0].numpy(), d.std.numpy(), d.weights.log().numpy()
        breaks = sorted({float(m + k * s) for m, s in zip(mu, sd, strict=True) for k in (-6, -3, -1, 0, 1, 3, 6)})
        return Density1D(
            logpdf=lambda x: _mixture_logpdf(np.asarray(x, dtype=np.float64), mu, sd, logw),
            lim=(float((mu - width * sd).min()), float((mu + width * sd).max())),
            breaks=breaks,
            cdf=lambda x: d.cdf(torch.as_tensor(np.asarray(x, dtype=np.float64))).numpy(),
        )
    if hasattr(d, "logpdf"):
        lo, hi = (float(v) for v in d.support())
        lo = lo if math.isfinite(lo) else float(d.ppf(1e-16))
        hi = hi if math.isfinite(hi) else float(d.isf(1e-16))
        mid = [float(v) for v in d.ppf([0.01, 0.5, 0.99])]
        return Density1D(logpdf=d.logpdf, lim=(lo, hi), breaks=[lo, *mid, hi], cdf=d.cdf)
    raise TypeError(f"cannot read a density from {type(d).__name__}: need log_prob, logpdf or Density1D")


def f_limits(name: str, *, pi: float = 0.5, alpha: float = 0.5) -> tuple[float, float]:
    """(f(0), f'(inf)) = (lim_{u->0} f(u), lim_{u->inf} f(u)/u) for a row of the table.

    They give q f(p/q) where p = 0 (q f(0)) and where q = 0 (p f'(inf)).
    """
    inf, ln2 = math.inf, math.log(2.0)
    if name == "alpha":
        f0 = 1 / alpha if alpha > 0 else inf
        return f0, (1 / (1 - alpha) if alpha < 1 else inf)
    table = {
        "tv": (0.5, 0.5), "kl": (0.0, inf), "rkl": (inf, 0.0), "pearson": (1.0, inf),
        "neyman": (inf, 1.0), "hellinger": (1.0, 1.0), "jeffrey": (inf, inf), "js": (ln2, ln2),
        "wjs": (-(1 - pi) * math.log(1 - pi), -pi * math.log(pi)), "gan": (0.0, 0.0),
    }
    return table[name]


@lru_cache(maxsize=64)
def _row(name: str, pi: float, alpha: float) -> FRow:
    return f_row(name, pi=pi, alpha=alpha)


# f^<>(w) = w f(1/w) is again a row of the table: D_f(P||Q) = D_{f^<>}(Q||P).
DUAL = {"tv": "tv", "kl": "rkl", "rkl": "kl", "pearson": "neyman", "neyman": "pearson",
        "hellinger": "hellinger", "jeffrey": "jeffrey", "js": "js", "wjs": "wjs", "gan": "gan", "alpha": "alpha"}
# Rows whose integrand is exact in log space, whatever the ratio: p log(p/q), q log(q/p), (p - q) log(p/q).
LOG_FORMS = {
    "kl": lambda lp, lq: np.exp(lp) * (lp - lq),
    "rkl": lambda lp, lq: np.exp(lq) * (lq - lp),
    "jeffrey": lambda lp, lq: (np.exp(lp) - np.exp(lq)) * (lp - lq),
}
EXP_CAP = 700.0  # exp(+-700) is still a normal float64


def _fterm(lp: np.ndarray, lq: np.ndarray, name: str, pi: float, alpha: float) -> np.ndarray:
    """q f(p/q) pointwise from log densities (float64).

    Where p <= q: q f(u), u = p/q in [0, 1]. Where p > q: p f^<>(w), w = q/p in (0, 1), with
    the dual row f^<>(w) = w f(1/w), so u never overflows; KL, reverse KL and Jeffrey are
    evaluated in log space directly.
    """
    f0, finf = f_limits(name, pi=pi, alpha=alpha)
    lp, lq = np.broadcast_arrays(np.asarray(lp, float), np.asarray(lq, float))
    out = np.zeros(lp.shape)
    fp, fq = np.isfinite(lp), np.isfinite(lq)
    both = fp & fq
    a, b = lp[both], lq[both]
    if name in LOG_FORMS:
        out[both] = LOG_FORMS[name](a, b)
    else:
        row, dual = _row(name, pi, alpha), _row(DUAL[name], 1 - pi, 1 - alpha)
        lr = np.clip(a - b, -EXP_CAP, EXP_CAP)
        lo = lr <= 0
        vals = np.empty(lr.shape)
        vals[lo] = np.exp(b[lo]) * row.f(torch.from_numpy(np.exp(lr[lo]))).numpy()
        vals[~lo] = np.exp(a[~lo]) * dual.f(torch.from_numpy(np.exp(-lr[~lo]))).numpy()
        out[both] = vals
    only_p, only_q = fp & ~fq, fq & ~fp
    with np.errstate(invalid="ignore"):
        out[only_p] = np.exp(lp[only_p]) * finf if finf != math.inf else math.inf
        out[only_q] = np.exp(lq[only_q]) * f0 if f0 != math.inf else math.inf
    return out


def _pieces(p: Density1D, q: Density1D, lim: tuple[float, float] | None) -> np.ndarray:
    a, b = lim if lim is not None else (min(p.lim[0], q.lim[0]), max(p.lim[1], q.lim[1]))
    inner = [x for x in (*p.breaks, *q.breaks) if a < x < b]
    edges = np.unique([a, *inner, b])
    return edges[np.concatenate([[True], np.diff(edges) > 1e-9 * (b - a)])] if edges.size > 2 else edges


def integrate(fn: Callable[[np.ndarray], np.ndarray], edges: np.ndarray, *, rtol: float = 1e-11,
              atol: float = 1e-15, max_rounds: int = 60, max_panels: int = 50_000) -> float:
    """Vectorised adaptive Gauss-Legendre quadrature of ``fn`` over [edges[0], edges[-1]].

    Each panel is integrated with 16 nodes as a whole and as two halves; a panel
    is accepted when the two estimates agree within ``rtol`` of its own value or
    its share of max(``rtol`` times the integral of |fn|, ``atol``), otherwise it is
    split (at most ``max_panels`` open panels, so roundoff noise cannot blow it up).
    ``fn`` is called once per round on all open panels, so it should be vectorised.
    """
    x16, w16 = np.polynomial.legendre.leggauss(16)

    def gl(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mid, half = (a + b) / 2, (b - a) / 2
        vals = np.asarray(fn((mid[:, None] + half[:, None] * x16).ravel()), dtype=np.float64)
        vals = vals.reshape(a.size, 16)
        return (vals * w16).sum(1) * half, (np.abs(vals) * w16).sum(1) * half

    a, b = np.asarray(edges[:-1], float), np.asarray(edges[1:], float)
    whole, _ = gl(a, b)
    length = float(b.sum() - a.sum())
    total, scale = 0.0, None
    for _ in range(max_rounds):
        m = (a + b) / 2
        left, left_abs = gl(a, m)
        right, right_abs = gl(m, b)
        halves = left + right
        if scale is None:
            scale = float(np.sum(left_abs + right_abs))
            if not math.isfinite(scale):
                return math.inf if np.nansum(halves) > 0 else float(np.nansum(halves))
        err = np.abs(halves - whole)
        share = max(rtol * scale, atol) * (b - a) / length
        done = (err <= rtol * np.abs(halves)) | (err <= share) | ~np.isfinite(err)
        if (~done).sum() > max_panels:
            done[:] = True
        total += float(halves[done].sum())
        if done.all():
            return total
        keep = ~done
        a, m, b = a[keep], m[keep], b[keep]
        a, b = np.concatenate([a, m]), np.concatenate([m, b])
        whole = np.concatenate([left[keep], right[keep]])
    return total + float(whole.sum())


def f_divergence(p: Any, q: Any, name: str, *, pi: float = 0.5, alpha: float = 0.5,
                 lim: tuple[float, float] | None = None) -> float:
    """D_f(P||Q) = integral q f(p/q) dx in 1D by adaptive quadrature (the table's generator)."""
    P, Q = as_density(p), as_density(q)
    value = integrate(lambda x: _fterm(P.logpdf(x), Q.logpdf(x), name, pi, alpha), _pieces(P, Q, lim))
    return value


def bound_at_optimum(p: Any, q: Any, name: str, *, pi: float = 0.5, alpha: float = 0.5,
                     lim: tuple[float, float] | None = None) -> float:
    """E_P[T*] - E_Q[f*(T*)] with T* = f'(p/q) (Nowozin et al. 2016, eq. 5), by quadrature."""
    P, Q = as_density(p), as_density(q)
    row = f_row(name, pi=pi, alpha=alpha)

    def term(x: np.ndarray) -> np.ndarray:
        lp, lq = P.logpdf(x), Q.logpdf(x)
        u = torch.from_numpy(np.exp(np.clip(lp - lq, -LOG_RATIO_CAP, LOG_RATIO_CAP)))
        t = row.f_prime(u)
        return np.exp(lp) * t.numpy() - np.exp(lq) * row.conjugate(t).numpy()

    return integrate(term, _pieces(P, Q, lim))


def optimal_discriminator(p: Any, q: Any, x: np.ndarray) -> np.ndarray:
    """D*(x) = p(x) / (p(x) + q(x)) = sigmoid(log p - log q) (Goodfellow et al. 2014, Prop. 1)."""
    from scipy.special import expit

    P, Q = as_density(p), as_density(q)
    return expit(P.logpdf(x) - Q.logpdf(x))


def js(p: Any, q: Any, **kw: Any) -> float:
    """Jensen-Shannon divergence (natural log, in [0, log 2]): the ``wjs`` row at pi = 1/2."""
    return f_divergence(p, q, "wjs", pi=0.5, **kw)


def gan_value_at_optimum(p: Any, q: Any, *, lim: tuple[float, float] | None = None) -> float:
    """V(D*, G) = E_P[log D*] + E_Q[log(1 - D*)] by quadrature (lecture 003: = 2 JS - log 4)."""
    P, Q = as_density(p), as_density(q)

    def term(x: np.ndarray) -> np.ndarray:
        lp, lq = P.logpdf(x), Q.logpdf(x)
        lse = np.logaddexp(lp, lq)
        with np.errstate(invalid="ignore"):
            a = np.where(np.isfinite(lp), np.exp(lp) * (lp - lse), 0.0)
            b = np.where(np.isfinite(lq), np.exp(lq) * (lq - lse), 0.0)
        return a + b

    return integrate(term, _pieces(P, Q, lim))


def wasserstein1(p: Any, q: Any, *, lim: tuple[float, float] | None = None) -> float:
    """W1(P, Q) = integral |F_P(x) - F_Q(x)| dx in 1D (Vallender 1974)."""
    P, Q = as_density(p), as_density(q)
    if P.cdf is None or Q.cdf is None:
        raise ValueError("wasserstein1 needs densities with a CDF")
    return integrate(lambda x: np.abs(P.cdf(x) - Q.cdf(x)), _pieces(P, Q, lim), rtol=1e-10)


def _log_density_2d(d: Any, grid: torch.Tensor) -> np.ndarray:
    if hasattr(d, "log_prob"):
        return np.asarray(d.log_prob(grid), dtype=np.float64)
    fn = d.logpdf if hasattr(d, "logpdf") else d
    if not callable(fn):
        raise TypeError(f"cannot read a 2D density from {type(d).__name__}: need log_prob, logpdf or a callable")
    return np.asarray(fn(grid.numpy()), dtype=np.float64)


def f_divergence_2d(p: Any, q: Any, name: str, *, lim: tuple[tuple[float, float], tuple[float, float]],
                    n: int = 801, pi: float = 0.5, alpha: float = 0.5) -> float:
    """D_f(P||Q) for 2D densities on an n x n grid (Simpson's rule per axis).

    p and q: anything with ``log_prob`` on a (N, 2) torch tensor (``GaussianMixture``),
    with ``logpdf`` on a (N, 2) array (scipy.stats.multivariate_normal), or a callable
    returning log densities of a (N, 2) array. ``lim`` must cover the mass of both; for
    smooth, fast-decaying integrands the rule converges far faster than its nominal h^4.
    """
    from scipy.integrate import simpson

    xs = np.linspace(*lim[0], n)
    ys = np.linspace(*lim[1], n)
    grid = torch.from_numpy(np.stack(np.meshgrid(xs, ys, indexing="ij"), -1).reshape(-1, 2))
    lp, lq = _log_density_2d(p, grid).reshape(n, n), _log_density_2d(q, grid).reshape(n, n)
    vals = _fterm(lp, lq, name, pi, alpha)
    return float(simpson(simpson(vals, x=ys, axis=1), x=xs))


def integrate_pq(p: Any, q: Any, term: Callable[[np.ndarray, np.ndarray], np.ndarray], *,
                 lim: tuple[float, float] | None = None) -> float:
    """integral term(log p(x), log q(x)) dx in 1D, for expressions not in the table."""
    P, Q = as_density(p), as_density(q)
    return integrate(lambda x: term(P.logpdf(x), Q.logpdf(x)), _pieces(P, Q, lim))
