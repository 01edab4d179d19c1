"""Two training-dynamics figures of the lectures, recomputed: ``goodfellow-fig1`` and ``wgan-fig2``.

``goodfellow-fig1`` (Goodfellow et al. 2014, Fig. 1): a 1D GAN, data N(2, 0.5^2), G(z) = z + MLP(z)
from z ~ U(-1, 1), D an MLP, the 'ns' objective with Adam. Panels across training show D(x)
(blue, dashed), p_data (black) and p_g (green, a Gaussian KDE of G's samples), and underneath the
map z -> x = G(z) as lines from the z axis to the x axis. The JSON records, per snapshot, the
JS divergence between the KDE of p_g and p_data (trapezoid on a grid; the KDE of a data sample
of the same size gives the floor a perfect G would reach) and E_{p_data}|D(x) - 1/2|, which the
paper's panel (d) shows going to 0 (D = 1/2 everywhere once p_g = p_data).

``wgan-fig2`` (Arjovsky et al. 2017, Fig. 2): real N(0, 0.5^2) against fakes N(6, 0.5^2). A
GAN discriminator trained to (near) optimality saturates: D(x) = sigmoid(v(x)) is 0 on the fakes
with no gradient there, like the exact D* = p / (p + q). A WGAN critic (weight clipping, as in
the paper) and a WGAN-GP critic stay close to linear between the modes, so their slope at the
fakes is as large as anywhere. Slopes are compared scale-free: |grad f| at the fakes over the
largest |grad f| on the plotted interval (1 for a line, ~0 for a saturated sigmoid).
"""

from __future__ import annotations

import pathlib
import time

import numpy as np
import torch

from ganforge.lab.common import figure, finish, gauss, lab, mlp, one_thread, seed_all

FIG1_LR, FIG1_STEPS = 1e-3, (1000, 1500)  # longer: p_g narrows again (see docs/lab.md)


def _kde_on_grid(samples: np.ndarray, grid: np.ndarray) -> np.ndarray:
    from scipy.stats import gaussian_kde

    return gaussian_kde(samples)(grid)


def _js_grid(p: np.ndarray, q: np.ndarray, grid: np.ndarray) -> float:
    """JS(p, q) in nats by the trapezoid rule on ``grid`` (both densities renormalised there)."""
    p, q = p / np.trapezoid(p, grid), q / np.trapezoid(q, grid)
    m = 0.5 * (p + q)
    with np.errstate(divide="ignore", invalid="ignore"):
        kp = np.where(p > 0, p * np.log(p / m), 0.0)
        kq = np.where(q > 0, q * np.log(q / m), 0.0)
    return float(0.5 * np.trapezoid(kp + kq, grid))


class _Residual(torch.nn.Module):
    """G(z) = z + net(z): starts close to the identity, so p_g starts as a spread-out U(-1, 1)."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z + self.net(z)


def _snapshot(g, d, grid: np.ndarray, zs: np.ndarray, p_data: np.ndarray, gen: torch.Generator,
              n: int) -> dict:
    with torch.no_grad():
        x = g(torch.rand(n, 1, generator=gen) * 2 - 1).squeeze(1).numpy().astype(np.float64)
        d_grid = torch.sigmoid(d(torch.from_numpy(grid).float()[:, None])).squeeze(1).numpy()
        z_map = g(torch.from_numpy(zs).float()[:, None]).squeeze(1).numpy()
    p_g = _kde_on_grid(x, grid)
    w = p_data / p_data.sum()
    return {"js": _js_grid(p_g, p_data, grid), "d_gap": float((np.abs(d_grid - 0.5) * w).sum()),
            "d": d_grid, "p_g": p_g, "g_of_z": z_map, "g_mean": float(x.mean()), "g_std": float(x.std())}


@lab("goodfellow-fig1")
def goodfellow_fig1(*, out: pathlib.Path, quick: bool, seed: int = 0) -> dict:
    """Goodfellow et al. 2014 Fig. 1: D(x), p_data, p_g and the z -> x map across 1D GAN training."""
    from ganforge import objectives

    t0 = time.perf_counter()
    gen = seed_all(seed)
    data = gauss(2.0, 0.5)
    steps = FIG1_STEPS[0] if quick else FIG1_STEPS[1]
    snaps_at = sorted({0, steps // 15, steps // 5, steps})
    grid = np.linspace(-1.5, 4.5, 601)
    zs = np.linspace(-1, 1, 21)
    p_data = np.exp(data.log_prob(torch.from_numpy(grid)[:, None]).numpy())
    obj = objectives.get("ns")
    g, d = _Residual(mlp(16, 2)), mlp(32, 2)
    opt_g = torch.optim.Adam(g.parameters(), lr=FIG1_LR, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=FIG1_LR, betas=(0.5, 0.999))
    n_eval = 2000
    floor = _js_grid(_kde_on_grid(data.sample(n_eval, generator=gen).squeeze(1).double().numpy(), grid),
                     p_data, grid)

    def d_step() -> None:
        real = data.sample(128, generator=gen)
        with torch.no_grad():
            fake = g(torch.rand(128, 1, generator=gen) * 2 - 1)
        opt_d.zero_grad(set_to_none=True)
        obj.d_loss(real=d(real), fake=d(fake)).backward()
        opt_d.step()

    snaps: dict[int, dict] = {}
    with one_thread():
        for _ in range(100):  # panel (a): D has started to tell p_g from p_data
            d_step()
        for step in range(steps + 1):
            if step in snaps_at:
                snaps[step] = _snapshot(g, d, grid, zs, p_data, gen, n_eval)
            if step == steps:
                break
            d_step()
            opt_g.zero_grad(set_to_none=True)
            obj.g_loss(fake=d(g(torch.rand(128, 1, generator=gen) * 2 - 1))).backward()
            opt_g.step()

    first, last = snaps[snaps_at[0]], snaps[steps]
    result = {
        "steps": steps, "snapshots": snaps_at, "js_kde_floor": floor,
        "js": {s: v["js"] for s, v in snaps.items()},
        "d_gap_mean_abs_D_minus_half_under_p_data": {s: v["d_gap"] for s, v in snaps.items()},
        "js_initial": first["js"], "js_final": last["js"], "js_log2": float(np.log(2)),
        "d_gap_initial": first["d_gap"], "d_gap_final": last["d_gap"],
        "g_mean_final": last["g_mean"], "g_std_final": last["g_std"], "data_mean": 2.0, "data_std": 0.5,
        "curves": {"x": grid, "p_data": p_data, "z": zs, **{f"step_{s}": v for s, v in snaps.items()}},
    }

    fig, axes = figure(len(snaps_at), width=3.3, height=3.3)
    top = p_data.max() / 0.8  # densities drawn with p_data's peak at 0.8
    for ax, (s, v), tag in zip(axes, snaps.items(), "abcdefg", strict=False):
        ax.plot(grid, p_data / top, "k.", ms=1.5, label="p_data")
        ax.plot(grid, np.minimum(v["p_g"] / top, 1.08), "g-", label="p_g (KDE)")
        ax.plot(grid, v["d"], "b--", label="D(x)")
        for zi, xi in zip(zs, v["g_of_z"], strict=True):
            ax.plot([zi, xi], [-0.45, -0.12], color="0.5", lw=0.6)
        ax.axhline(-0.45, color="k", lw=0.8)
        ax.axhline(-0.12, color="k", lw=0.8)
        ax.text(-1.45, -0.42, "z", fontsize=8)
        ax.text(-1.45, -0.09, "x", fontsize=8)
        ax.set_ylim(-0.55, 1.1)
        ax.set_yticks([0, 0.5, 1])
        ax.set_title(f"({tag}) step {s}: JS {v['js']:.3f}, E|D-1/2| {v['d_gap']:.2f}", fontsize=8)
    axes[0].legend(fontsize=6, loc="upper left")
    return finish(out, "goodfellow-fig1", fig, result, t0)


def _train_critic(kind: str, real_d, fake_d, *, steps: int, gen: torch.Generator):
    """A 1D MLP trained on real vs fake samples: 'gan' (ns logits), 'wgan' (clip 0.05), 'wgan-gp'."""
    from ganforge import objectives, penalties  # noqa: F401  (penalties registers 'gp')
    from ganforge.registry import PENALTIES

    f = mlp(64, 2)
    if kind == "gan":
        obj, opt = objectives.get("ns"), torch.optim.Adam(f.parameters(), lr=1e-3)
    else:
        obj = objectives.get("wgan", clip=None)
        opt = torch.optim.RMSprop(f.parameters(), lr=5e-4) if kind == "wgan" else \
            torch.optim.Adam(f.parameters(), lr=1e-3, betas=(0.5, 0.9))
    gp = PENALTIES.get("gp")() if kind == "wgan-gp" else None
    for _ in range(steps):
        real, fake = real_d.sample(256, generator=gen), fake_d.sample(256, generator=gen)
        loss = obj.d_loss(real=f(real), fake=f(fake))
        if gp is not None:
            loss = loss + 10.0 * gp(f, real=real, fake=fake)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if kind == "wgan":
            with torch.no_grad():
                for p in f.parameters():
                    p.clamp_(-0.05, 0.05)
    return f


def _value_and_slope(fn, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    xt = torch.from_numpy(x).float()[:, None].requires_grad_(True)
    y = fn(xt).squeeze(1)
    (g,) = torch.autograd.grad(y.sum(), xt)
    return y.detach().double().numpy(), g.squeeze(1).double().numpy()


@lab("wgan-fig2")
def wgan_fig2(*, out: pathlib.Path, quick: bool, seed: int = 0) -> dict:
    """Arjovsky et al. 2017 Fig. 2: a near-optimal GAN D saturates on far-away fakes, a WGAN critic stays linear."""
    from ganforge.lab.divergences import optimal_discriminator

    t0 = time.perf_counter()
    gen = seed_all(seed)
    real_d, fake_d = gauss(0.0, 0.5), gauss(6.0, 0.5)
    steps = 300 if quick else 2000
    x = np.linspace(-2.0, 8.0, 501)
    fakes = np.linspace(5.0, 7.0, 41)  # the fakes' bulk, mean +- 2 std
    with one_thread():
        nets = {k: _train_critic(k, real_d, fake_d, steps=steps, gen=gen) for k in ("gan", "wgan", "wgan-gp")}
        curves, slope_at_fakes, rel = {}, {}, {}
        for k, f in nets.items():
            fn = (lambda t, f=f: torch.sigmoid(f(t))) if k == "gan" else f
            y, s = _value_and_slope(fn, x)
            _, s_f = _value_and_slope(fn, fakes)
            curves[k], slope_at_fakes[k] = {"value": y, "slope": s}, float(np.abs(s_f).mean())
            rel[k] = slope_at_fakes[k] / float(np.abs(s).max())
    d_star = optimal_discriminator(real_d, fake_d, x)
    h = 1e-4
    ds_slope = (optimal_discriminator(real_d, fake_d, fakes + h) - optimal_discriminator(real_d, fake_d, fakes - h))
    result = {
        "steps": steps, "real": [0.0, 0.5], "fake": [6.0, 0.5],
        "mean_abs_slope_at_fakes": slope_at_fakes, "slope_at_fakes_over_max_slope": rel,
        "d_star_mean_abs_slope_at_fakes": float(np.abs(ds_slope / (2 * h)).mean()),
        "gan_D_mean_at_fakes": float(torch.sigmoid(nets["gan"](torch.from_numpy(fakes).float()[:, None])).mean()
                                     .detach()),
        "ratio_critic_over_gan_relative_slope": {k: rel[k] / max(rel["gan"], 1e-300) for k in ("wgan", "wgan-gp")},
        "curves": {"x": x, "d_star": d_star, **curves},
    }

    fig, axes = figure(2, width=4.6, height=3.5)
    xs = torch.from_numpy(x)[:, None]
    for ax in axes:
        ax.fill_between(x, 0, np.exp(real_d.log_prob(xs).numpy()), color="tab:blue", alpha=0.25, label="real")
        ax.fill_between(x, 0, np.exp(fake_d.log_prob(xs).numpy()), color="tab:green", alpha=0.25, label="fake")
    axes[0].plot(x, curves["gan"]["value"], "r-", label="GAN D(x) (trained)")
    axes[0].plot(x, d_star, "k:", label="D* = p / (p + q)")
    axes[0].set_title(f"GAN discriminator: slope at fakes / max slope = {rel['gan']:.1e}", fontsize=8)
    for k, c in (("wgan", "tab:orange"), ("wgan-gp", "tab:purple")):
        v = curves[k]["value"]
        v = (v - v.min()) / max(np.ptp(v), 1e-12)  # rescaled to [0, 1] to share the axis
        axes[1].plot(x, v, color=c, label=f"{k} critic (rescaled), rel. slope {rel[k]:.2f}")
    axes[1].set_title("WGAN critics stay close to linear", fontsize=8)
    for ax in axes:
        ax.set_xlabel("x")
        ax.legend(fontsize=6)
    return finish(out, "wgan-fig2", fig, result, t0)
