"""Critics trained on samples of two fixed 1D densities, checked against their exact optimum.

- ``optimal-d``: a discriminator trained with the logistic loss approaches
  D*(x) = p_data / (p_data + p_g) (Goodfellow et al. 2014, Prop. 1; lecture 003,
  "Optimal discriminator loss").
- ``fgan-bounds``: for each f-divergence, a critic maximising the variational bound
  E_P[g_f(V)] - E_Q[f*(g_f(V))] <= D_f(P||Q) (Nowozin et al. 2016, eq. 6; lecture 004,
  "f-GAN: variational divergence minimization"). The bound of the learned critic is
  computed exactly, by quadrature on a grid, so the curve has no sampling noise.
- ``wgan-critic``: a WGAN-GP critic (Gulrajani et al. 2017) whose E_P[D] - E_Q[D]
  estimates W1 (Kantorovich-Rubinstein duality), against W1 from the CDFs.
"""

from __future__ import annotations

import pathlib
import time
from collections.abc import Callable

import numpy as np
import torch

from ganforge.lab.common import figure, finish, gauss, lab, log_density, mlp, one_thread, seed_all

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (v_real, v_fake) -> loss


def train_critic(critic: torch.nn.Module, loss: Loss, p, q, *, steps: int, batch: int = 512,
                 lr: float = 1e-3, gen: torch.Generator, every: int = 0,
                 probe: Callable[[int], None] | None = None) -> None:
    """Adam on fresh samples of p and q each step; ``probe(step)`` every ``every`` steps."""
    opt = torch.optim.Adam(critic.parameters(), lr=lr, betas=(0.5, 0.999))
    with one_thread():
        for step in range(steps):
            real, fake = p.sample(batch, generator=gen), q.sample(batch, generator=gen)
            opt.zero_grad(set_to_none=True)
            loss(real, fake).backward()
            opt.step()
            if probe is not None and every and (step + 1) % every == 0:
                probe(step + 1)


def _grid(lo: float, hi: float, n: int) -> tuple[np.ndarray, torch.Tensor]:
    x = np.linspace(lo, hi, n)
    return x, torch.from_numpy(x).float()[:, None]


@lab("optimal-d")
def run_optimal_d(*, out: pathlib.Path, quick: bool, seed: int = 0) -> dict:
    """A discriminator trained on samples beside the optimal D* = p_data / (p_data + p_g)."""
    from ganforge import objectives

    t0 = time.perf_counter()
    gen = seed_all(seed)
    from ganforge.data.toy import GaussianMixture

    p_data = GaussianMixture([[-2.0], [2.0]], 0.6)
    p_g = gauss(0.5, 1.5)
    obj = objectives.get("ns")
    d = mlp(64, 2)
    steps = 400 if quick else 3000
    train_critic(d, lambda r, f: obj.d_loss(real=d(r), fake=d(f)), p_data, p_g, steps=steps, gen=gen, lr=2e-3)

    x, xt = _grid(-5.0, 5.0, 1001)
    lp, lq = log_density(p_data, x), log_density(p_g, x)
    d_star = 1 / (1 + np.exp(lq - lp))
    with torch.no_grad():
        d_learned = torch.sigmoid(d(xt)).squeeze(1).double().numpy()
    mix = 0.5 * (np.exp(lp) + np.exp(lq))
    cdf = np.cumsum(mix) / mix.sum()
    bulk = (cdf > 0.01) & (cdf < 0.99)  # the central 98% of the mass of (p_data + p_g) / 2
    gap = np.abs(d_learned - d_star)
    result = {"steps": steps, "max_gap_bulk": float(gap[bulk].max()),
              "mean_gap_weighted": float((gap * mix).sum() / mix.sum()),
              "bulk_interval": [float(x[bulk][0]), float(x[bulk][-1])]}

    fig, axes = figure(2)
    axes[0].plot(x, np.exp(lp), label="p_data")
    axes[0].plot(x, np.exp(lq), label="p_g")
    axes[0].legend(fontsize=8)
    axes[0].set_title("densities", fontsize=9)
    axes[1].plot(x, d_star, "k-", label="D* = p_data / (p_data + p_g)")
    axes[1].plot(x, d_learned, "r--", label=f"learned D ({steps} steps)")
    axes[1].axvspan(*result["bulk_interval"], color="gray", alpha=0.1, label="central 98% of mass")
    axes[1].set_title(f"max |D - D*| over the bulk: {result['max_gap_bulk']:.3f}", fontsize=9)
    axes[1].legend(fontsize=7)
    return finish(out, "optimal-d", fig, result, t0)


def _exact_bound(row, v: torch.Tensor, p_x: np.ndarray, q_x: np.ndarray, x: np.ndarray) -> float:
    """integral p g_f(V) - q f*(g_f(V)) dx on the grid (trapezoid): the learned critic's true bound."""
    vd = v.double()
    integrand = p_x * row.activation(vd).numpy() - q_x * row.fstar_act(vd).numpy()
    return float(np.trapezoid(integrand, x))


FGAN_ROWS = (("tv", {}), ("kl", {}), ("rkl", {}), ("pearson", {}), ("neyman", {}), ("hellinger", {}),
             ("jeffrey", {}), ("js", {}), ("wjs", {"pi": 0.3}), ("gan", {}), ("alpha", {"alpha": 2.0}),
             ("alpha", {"alpha": 0.5}))


@lab("fgan-bounds")
def run_fgan_bounds(*, out: pathlib.Path, quick: bool, seed: int = 0) -> dict:
    """For every f-divergence: a trained critic's variational bound against the true D_f."""
    from ganforge.lab.divergences import bound_at_optimum, f_divergence
    from ganforge.objectives.fgan import FGAN

    t0 = time.perf_counter()
    p, q = gauss(0.0, 1.0), gauss(1.0, 1.0)
    x, xt = _grid(-12.0, 13.0, 5001)
    p_x, q_x = np.exp(log_density(p, x)), np.exp(log_density(q, x))
    steps, every = (150, 25) if quick else (1500, 50)
    rows: dict[str, dict] = {}
    for k, (name, kw) in enumerate(FGAN_ROWS):
        label = name + "".join(f" {a}={b:g}" for a, b in kw.items())
        gen = seed_all(seed + k)
        obj = FGAN(name, **kw)
        critic = mlp(64, 2)
        curve: list[tuple[int, float]] = []

        def probe(step: int, critic=critic, obj=obj, curve=curve) -> None:
            with torch.no_grad():
                curve.append((step, _exact_bound(obj.row, critic(xt).squeeze(1), p_x, q_x, x)))

        train_critic(critic, lambda r, f, c=critic, o=obj: o.d_loss(real=c(r), fake=c(f)), p, q,
                     steps=steps, gen=gen, lr=1e-3, every=every, probe=probe)
        true = f_divergence(p, q, name, **kw)
        final = curve[-1][1]
        rows[label] = {"true": true, "bound_at_T_star": bound_at_optimum(p, q, name, **kw),
                       "final_bound": final, "rel_gap": (true - final) / abs(true), "curve": curve}

    fig, axes = figure(4, 3, width=3.0, height=2.4)
    for ax, (label, r) in zip(axes, rows.items(), strict=False):
        s, b = zip(*r["curve"], strict=True)
        ax.plot(s, b, label="bound of learned critic")
        ax.axhline(r["true"], color="k", ls="--", lw=1, label="true D_f")
        ax.axhline(r["bound_at_T_star"], color="g", ls=":", lw=1.5, label="bound at T*")
        ax.set_title(f"{label}: gap {100 * r['rel_gap']:.1f}%", fontsize=8)
        ax.tick_params(labelsize=7)
        lo = min(r["true"], min(b)) - 0.1 * abs(r["true"])
        ax.set_ylim(max(lo, r["true"] - 1.5 * abs(r["true"])), r["true"] + 0.3 * abs(r["true"]))
    axes[0].legend(fontsize=6)
    gaps = {k: r["rel_gap"] for k, r in rows.items()}
    result = {"p": [0.0, 1.0], "q": [1.0, 1.0], "steps": steps, "rows": rows, "rel_gap": gaps,
              "max_abs_rel_gap": max(abs(g) for g in gaps.values()),
              "max_err_bound_at_T_star": max(abs(r["bound_at_T_star"] - r["true"]) / abs(r["true"])
                                             for r in rows.values())}
    return finish(out, "fgan-bounds", fig, result, t0)


@lab("wgan-critic")
def run_wgan_critic(*, out: pathlib.Path, quick: bool, seed: int = 0) -> dict:
    """A WGAN-GP critic's estimate E_P[D] - E_Q[D] against the true W1 from the CDFs."""
    from ganforge import objectives
    from ganforge.data.toy import GaussianMixture
    from ganforge.lab.divergences import as_density, wasserstein1
    from ganforge.penalties import GradientPenalty

    t0 = time.perf_counter()
    p, q = GaussianMixture([[-2.0], [2.0]], 0.5), gauss(1.0, 1.0)
    obj = objectives.get("wgan-gp")
    x, xt = _grid(-8.0, 9.0, 4001)
    p_x, q_x = np.exp(log_density(p, x)), np.exp(log_density(q, x))
    steps = 300 if quick else 3000
    w1 = wasserstein1(p, q)
    variants: dict[str, dict] = {}
    for label, one_sided in (("two-sided GP (Gulrajani et al.)", False), ("one-sided GP (Petzka et al.)", True)):
        gen = seed_all(seed)
        critic, gp = mlp(64, 2), GradientPenalty(one_sided=one_sided)
        curve: list[tuple[int, float]] = []

        def values(c=critic) -> np.ndarray:
            with torch.no_grad():
                return c(xt).squeeze(1).double().numpy()

        def probe(step: int, curve=curve, values=values) -> None:
            curve.append((step, float(np.trapezoid((p_x - q_x) * values(), x))))

        def loss(real: torch.Tensor, fake: torch.Tensor, c=critic, gp=gp) -> torch.Tensor:
            return obj.d_loss(real=c(real), fake=c(fake)) + 10.0 * gp(c, real=real, fake=fake)

        train_critic(critic, loss, p, q, steps=steps, gen=gen, lr=1e-3, every=max(steps // 60, 1), probe=probe)
        n = 100_000
        with torch.no_grad():
            est = float(critic(p.sample(n, generator=gen)).mean() - critic(q.sample(n, generator=gen)).mean())
        variants[label] = {"estimate_exact": curve[-1][1], "estimate_samples": est,
                           "rel_gap": (w1 - curve[-1][1]) / w1, "curve": curve, "critic": values()}
    two, one = variants.values()
    result = {"steps": steps, "w1_true": w1, "rel_gap_two_sided": two["rel_gap"], "rel_gap_one_sided": one["rel_gap"],
              "estimate_samples_two_sided": two["estimate_samples"],
              "estimate_exact_two_sided": two["estimate_exact"],
              "variants": {k: {kk: vv for kk, vv in v.items() if kk != "critic"} for k, v in variants.items()}}

    P, Q = as_density(p), as_density(q)
    fig, axes = figure(3, width=3.8)
    axes[0].plot(x, p_x, label="P")
    axes[0].plot(x, q_x, label="Q")
    axes[0].set_xlim(-6, 7)
    axes[0].legend(fontsize=7)
    axes[0].set_title("P = two modes, Q = N(1, 1)", fontsize=9)
    axes[1].plot(x, -np.sign(P.cdf(x) - Q.cdf(x)), "k--", lw=1, label="optimal slope -sign(F_P - F_Q)")
    for (label, v), c in zip(variants.items(), ("r", "b"), strict=True):
        axes[1].plot(x, np.gradient(v["critic"], x), c, lw=1, label=f"D'(x), {label.split(' (')[0]}")
        s, e = zip(*v["curve"], strict=True)
        axes[2].plot(s, e, c, label=f"{label.split(' (')[0]}: gap {100 * v['rel_gap']:+.1f}%")
    axes[1].set_xlim(-5, 5)
    axes[1].set_title("critic slope", fontsize=9)
    axes[1].legend(fontsize=6)
    axes[2].axhline(w1, color="k", ls="--", label=f"W1 from CDFs = {w1:.4f}")
    axes[2].set_title("E_P[D] - E_Q[D] (exact, on a grid)", fontsize=9)
    axes[2].set_xlabel("critic step")
    axes[2].legend(fontsize=6)
    return finish(out, "wgan-critic", fig, result, t0)
