"""``transport``: the earth mover's plan between two 2D point clouds, and a WGAN-GP critic's W1.

Lecture 004 Fig. 28 (Arjovsky et al. 2017, Sec. 2): W1(P, Q) = inf over couplings gamma of
E_gamma |x - y|. Between two clouds of n points with uniform weights the optimal coupling is a
permutation (Birkhoff-von Neumann), so POT's exact network-simplex solver ``ot.emd`` must give
the same cost as the assignment problem (scipy's ``linear_sum_assignment``); the plan is drawn
as the lines it moves mass along. By Kantorovich-Rubinstein duality
W1 = sup_{|f|_L <= 1} E_P f - E_Q f, which a WGAN-GP critic (Gulrajani et al. 2017: the
``wgan`` objective + the ``gp`` penalty, weight 10) estimates after training on the same clouds;
the gradient penalty only softly enforces the constraint, so the estimate can land on either
side of the exact value; divided by the critic's Lipschitz constant on the points it becomes a
certified lower bound. POT is a development dependency, imported only here.
"""

from __future__ import annotations

import math
import pathlib
import time

import numpy as np
import torch

from ganforge.lab.common import figure, finish, lab, mlp, one_thread, seed_all


def _ot():
    try:
        import ot
    except ImportError:
        raise ImportError("the 'transport' lab needs POT (Python Optimal Transport): pip install pot "
                          "(it is in ganforge's dev dependencies)") from None
    return ot


def clouds(n: int, gen: torch.Generator) -> tuple[np.ndarray, np.ndarray]:
    """P: a noisy arc around the origin; Q: a Gaussian blob to its right (n points each, float64)."""
    t = torch.rand(n, generator=gen) * math.pi + math.pi / 2
    p = torch.stack([1.5 * torch.cos(t), 1.5 * torch.sin(t)], 1) + 0.1 * torch.randn(n, 2, generator=gen)
    q = torch.randn(n, 2, generator=gen) * 0.4 + torch.tensor([2.0, 0.5])
    return p.double().numpy(), q.double().numpy()


def emd_w1(p: np.ndarray, q: np.ndarray) -> tuple[float, np.ndarray]:
    """Exact W1 and plan (n, m) between uniform clouds by POT's ``ot.emd``."""
    ot = _ot()
    cost = ot.dist(p, q, metric="euclidean")
    plan = ot.emd(np.full(len(p), 1 / len(p)), np.full(len(q), 1 / len(q)), cost)
    return float((plan * cost).sum()), plan


def assignment_w1(p: np.ndarray, q: np.ndarray) -> float:
    """W1 between equal-size uniform clouds as an assignment problem (scipy)."""
    from scipy.optimize import linear_sum_assignment
    from scipy.spatial.distance import cdist

    cost = cdist(p, q)
    rows, cols = linear_sum_assignment(cost)
    return float(cost[rows, cols].mean())


def critic_w1(p: np.ndarray, q: np.ndarray, *, steps: int, weight: float = 10.0) -> tuple[torch.nn.Module, list]:
    """Train a WGAN-GP critic on the full clouds; returns it and E_P f - E_Q f per step."""
    from ganforge import objectives, penalties  # noqa: F401  (penalties registers 'gp')
    from ganforge.registry import PENALTIES

    obj, gp = objectives.get("wgan", clip=None), PENALTIES.get("gp")()
    f = mlp(64, 2, d_in=2)
    opt = torch.optim.Adam(f.parameters(), lr=1e-3, betas=(0.5, 0.9))
    real, fake = torch.from_numpy(p).float(), torch.from_numpy(q).float()
    est = []
    for _ in range(steps):
        loss = obj.d_loss(real=f(real), fake=f(fake))
        est.append(-float(loss.detach()))
        opt.zero_grad(set_to_none=True)
        (loss + weight * gp(f, real=real, fake=fake[torch.randperm(len(fake))])).backward()
        opt.step()
    with torch.no_grad():
        est.append(float(f(real).mean() - f(fake).mean()))
    return f, est


def empirical_lipschitz(f: torch.nn.Module, p: np.ndarray, q: np.ndarray) -> float:
    """max |f(a) - f(b)| / |a - b| over all pairs of the union of the clouds.

    f / L is 1-Lipschitz on these points, and a 1-Lipschitz function on a finite set extends to the
    plane (McShane 1934), so E_P f / L - E_Q f / L <= W1 exactly: a certified lower bound.
    """
    from scipy.spatial.distance import pdist

    x = np.concatenate([p, q])
    with torch.no_grad():
        v = f(torch.from_numpy(x).float()).double().numpy()
    return float(np.max(pdist(v) / np.maximum(pdist(x), 1e-12)))


@lab("transport")
def run(*, out: pathlib.Path, quick: bool, seed: int = 0) -> dict:
    """The earth mover's plan between 2D point clouds (POT) and a WGAN-GP critic's estimate of W1."""
    t0 = time.perf_counter()
    gen = seed_all(seed)
    n = 48 if quick else 128
    steps = 800 if quick else 2000
    p, q = clouds(n, gen)
    w1, plan = emd_w1(p, q)
    w1_lsa = assignment_w1(p, q)
    with one_thread():
        f, est = critic_w1(p, q, steps=steps)
    tail = est[-max(steps // 10, 1):]
    lip = empirical_lipschitz(f, p, q)
    pairs = np.argwhere(plan > 1e-12)
    result = {
        "n": n, "w1_emd": w1, "w1_assignment": w1_lsa, "abs_diff_emd_vs_assignment": abs(w1 - w1_lsa),
        "plan_is_a_permutation": bool(len(pairs) == n and np.allclose(plan[plan > 1e-12], 1 / n)),
        "critic_steps": steps, "critic_estimate_final": est[-1],
        "critic_estimate_mean_last_10pct": float(np.mean(tail)),
        "critic_rel_error": float(np.mean(tail) / w1 - 1), "critic_estimate_curve": est,
        "critic_lipschitz_on_clouds": lip, "critic_estimate_over_lipschitz": est[-1] / lip,
        "lipschitz_normalised_rel_error": est[-1] / lip / w1 - 1,
    }

    fig, axes = figure(2, width=4.4, height=3.8)
    lo, hi = np.minimum(p.min(0), q.min(0)) - 0.5, np.maximum(p.max(0), q.max(0)) + 0.5
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], 80), np.linspace(lo[1], hi[1], 80))
    with torch.no_grad():
        fz = f(torch.from_numpy(np.stack([gx.ravel(), gy.ravel()], 1)).float()).reshape(gx.shape).numpy()
    axes[0].contourf(gx, gy, fz, levels=20, cmap="coolwarm", alpha=0.35)
    for i, j in pairs:
        axes[0].plot([p[i, 0], q[j, 0]], [p[i, 1], q[j, 1]], color="0.4", lw=0.5)
    axes[0].scatter(*p.T, s=8, c="tab:blue", label="P", zorder=3)
    axes[0].scatter(*q.T, s=8, c="tab:red", label="Q", zorder=3)
    axes[0].set_aspect("equal")
    axes[0].set_title(f"earth mover's plan (POT), W1 = {w1:.3f}; shading: critic f", fontsize=8)
    axes[0].legend(fontsize=7)
    axes[1].plot(est, label="WGAN-GP critic: E_P f - E_Q f")
    axes[1].axhline(w1, color="k", ls=":", label=f"exact W1 = {w1:.3f}")
    axes[1].set_xlabel("critic step")
    axes[1].axhline(est[-1] / lip, color="tab:green", ls="--", label=f"final / Lipschitz const. {lip:.2f}")
    axes[1].set_title(f"critic estimate (last 10%: {np.mean(tail):.3f})", fontsize=8)
    axes[1].legend(fontsize=7)
    return finish(out, "transport", fig, result, t0)
