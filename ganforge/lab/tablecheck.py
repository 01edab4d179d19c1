"""``table-check``: the f-divergence table of lecture 004 (after Nowozin et al. 2016, Table 1).

For each row, the "D_f(P||Q)" column as the slide writes it is integrated by
quadrature and compared with the quadrature of q f(p/q) from the row's
"generator f(u)" column (u = p/q, the convention of the slide's own definition
D_f(p||q) = E_q[f(p/q)]). A row agrees, differs by a constant factor, or equals
the generator's divergence with P and Q swapped; the verdict is computed, not
typed in, over several Gaussian pairs.
"""

from __future__ import annotations

import math
import pathlib
import time
from collections.abc import Callable

import numpy as np

from ganforge.lab.common import finish, gauss, lab
from ganforge.lab.divergences import f_divergence, integrate_pq

Term = Callable[[np.ndarray, np.ndarray], np.ndarray]
CAP = 300.0


def _r(lp: np.ndarray, lq: np.ndarray) -> np.ndarray:
    return np.clip(lq - lp, -CAP, CAP)  # log(q/p)


def _mix(lp: np.ndarray, lq: np.ndarray, pi: float) -> np.ndarray:
    return np.logaddexp(math.log(pi) + lp, math.log(1 - pi) + lq)  # log(pi p + (1-pi) q)


def slide_columns(pi: float, alpha: float) -> dict[str, tuple[str, Term, float]]:
    """Row -> (the slide's D_f(P||Q) column, its integrand in log p, log q, a constant added)."""
    p, q = np.exp, np.exp
    a = alpha
    return {
        "tv": ("1/2 int |p - q|", lambda lp, lq: 0.5 * np.abs(p(lp) - q(lq)), 0.0),
        "kl": ("int p log(p/q)", lambda lp, lq: p(lp) * (lp - lq), 0.0),
        "rkl": ("int q log(q/p)", lambda lp, lq: q(lq) * (lq - lp), 0.0),
        "pearson": ("int (q - p)^2 / p", lambda lp, lq: p(lp) * np.expm1(_r(lp, lq)) ** 2, 0.0),
        "neyman": ("int (p - q)^2 / q", lambda lp, lq: q(lq) * np.expm1(-_r(lp, lq)) ** 2, 0.0),
        "hellinger": ("int (sqrt p - sqrt q)^2", lambda lp, lq: (p(lp / 2) - q(lq / 2)) ** 2, 0.0),
        "jeffrey": ("int (p - q) log(p/q)", lambda lp, lq: (p(lp) - q(lq)) * (lp - lq), 0.0),
        "js": ("1/2 int p log(2p/(p+q)) + q log(2q/(p+q))",
               lambda lp, lq: 0.5 * (p(lp) * (math.log(2) + lp - np.logaddexp(lp, lq))
                                     + q(lq) * (math.log(2) + lq - np.logaddexp(lp, lq))), 0.0),
        "wjs": ("int pi p log(p/m) + (1-pi) q log(q/m), m = pi p + (1-pi) q",
                lambda lp, lq: pi * p(lp) * (lp - _mix(lp, lq, pi))
                + (1 - pi) * q(lq) * (lq - _mix(lp, lq, pi)), 0.0),
        "gan": ("int p log(2p/(p+q)) + q log(2q/(p+q)) - log 4",
                lambda lp, lq: p(lp) * (math.log(2) + lp - np.logaddexp(lp, lq))
                + q(lq) * (math.log(2) + lq - np.logaddexp(lp, lq)), -math.log(4)),
        "alpha": ("1/(a(a-1)) int p[(q/p)^a - 1] - a(q - p)",
                  lambda lp, lq: (p(lp) * np.expm1(a * _r(lp, lq)) - a * (q(lq) - p(lp))) / (a * (a - 1)), 0.0),
    }


# Gaussian pairs (mean, std) for P and Q; chi^2 in both directions is finite for each.
PAIRS = (((0.0, 1.0), (1.0, 1.0)), ((0.0, 1.0), (0.5, 1.2)), ((0.0, 1.2), (-0.3, 1.0)), ((1.0, 0.8), (0.0, 1.0)))


def _verdict(slide: np.ndarray, gen: np.ndarray, swapped: np.ndarray, rtol: float = 1e-7) -> str:
    def close(x: np.ndarray, y: np.ndarray) -> bool:
        return bool(np.allclose(x, y, rtol=rtol, atol=1e-12))

    if close(slide, gen):
        if close(gen, swapped):
            return "agrees (symmetric here, so a P/Q swap could not show)"
        return "agrees"
    if close(slide, swapped):
        return "P and Q swapped: the slide's formula is the generator's D_f(Q||P)"
    ratio = slide / gen
    if close(ratio, np.full_like(ratio, ratio[0])):
        return f"constant factor: slide = {ratio[0]:.6g} x generator"
    return "differs (no constant factor, not a swap)"


def check_rows(pi: float = 0.3, alphas: tuple[float, ...] = (2.0, 0.5)) -> dict[str, dict]:
    """Slide column vs generator, both by quadrature, for every row and Gaussian pair."""
    rows: dict[str, dict] = {}
    names = [n for n in slide_columns(pi, 2.0) if n != "alpha"] + [f"alpha={a:g}" for a in alphas]
    for label in names:
        name, a = ("alpha", float(label.split("=")[1])) if label.startswith("alpha") else (label, 2.0)
        formula, term, const = slide_columns(pi, a)[name]
        kw = {"pi": pi, "alpha": a}
        slide, gen, swapped = [], [], []
        for (mp, sp), (mq, sq) in PAIRS:
            p, q = gauss(mp, sp), gauss(mq, sq)
            slide.append(integrate_pq(p, q, term) + const)
            gen.append(f_divergence(p, q, name, **kw))
            swapped.append(f_divergence(q, p, name, **kw))
        s, g, w = np.array(slide), np.array(gen), np.array(swapped)
        rows[label] = {"slide_formula": formula, "slide": s, "generator": g, "generator_swapped": w,
                       "max_rel_diff": float(np.max(np.abs(s - g) / np.abs(g))), "verdict": _verdict(s, g, w)}
    return rows


@lab("table-check")
def run(*, out: pathlib.Path, quick: bool, seed: int = 0) -> dict:
    """Lecture 004's f-divergence table: each row's closed form vs the quadrature of its generator."""
    t0 = time.perf_counter()
    pi = 0.3
    rows = check_rows(pi=pi)
    from ganforge.lab.common import figure

    fig, (ax,) = figure(width=7.5, height=3.8)
    labels = list(rows)
    ratios = np.array([rows[k]["slide"] / rows[k]["generator"] for k in labels])
    for j in range(ratios.shape[1]):
        ax.scatter(np.arange(len(labels)) + 0.08 * (j - 1.5), ratios[:, j], s=14, label=f"pair {j}")
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_yscale("log")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_ylabel("slide formula / generator's D_f")
    ax.set_title(f"lecture 004 table vs integral q f(p/q) (wjs at pi={pi})")
    ax.legend(fontsize=7)
    agree = [k for k in labels if rows[k]["verdict"].startswith("agrees")]
    result = {"pairs": [list(map(list, pr)) for pr in PAIRS], "pi": pi, "rows": rows,
              "agree": agree, "disagree": {k: rows[k]["verdict"] for k in labels if k not in agree}}
    result["alpha_next_slide"] = next_slide_alpha()
    return finish(out, "table-check", fig, result, t0)


def next_slide_alpha(a: float = 2.0) -> dict:
    """The slide after the table: D_a(p||q) = 1/(a(1-a)) int a p + (1-a) q + p^a q^(1-a), and D_a(p||q) = D_(1-a)(q||p).

    As written (with '+ p^a q^(1-a)') it integrates to (1 + int p^a q^(1-a)) / (a(1-a)), which is
    not zero at p = q; with '-' it is the generator's alpha-divergence. The symmetry claim is checked too.
    """
    p, q = gauss(0.0, 1.0), gauss(0.5, 1.2)
    aff = integrate_pq(p, q, lambda lp, lq: np.exp(a * lp + (1 - a) * lq))
    as_written = (1 + aff) / (a * (1 - a))
    corrected = (1 - aff) / (a * (1 - a))
    same = integrate_pq(p, p, lambda lp, lq: np.exp(a * lp + (1 - a) * lq))
    return {
        "alpha": a, "as_written": as_written, "with_minus_sign": corrected,
        "generator": f_divergence(p, q, "alpha", alpha=a),
        "as_written_at_p_eq_q": (1 + same) / (a * (1 - a)),
        "symmetry_D_a(p||q)": f_divergence(p, q, "alpha", alpha=a),
        "symmetry_D_1-a(q||p)": f_divergence(q, p, "alpha", alpha=1 - a),
    }
