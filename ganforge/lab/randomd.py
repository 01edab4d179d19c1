"""``random-d``: the constant discriminator D = 1/2 is a stationary point for G, at any G.

Goodfellow et al. 2014, Sec. 4: at the global optimum p_g = p_data and D* = 1/2 with
V = -log 4. The converse fails: if D ignores its input and says 1/2 everywhere, then
V(D, G) = E log 1/2 + E log 1/2 = -log 4 for *every* G, and G's gradient through D is exactly
zero, so G is stationary wherever it is. The point is not an equilibrium of the game: D's own
gradient is not zero. For a logistic D(x) = sigmoid(w x + b) at w = b = 0,
dV/db = E_p[1 - D] - E_q[D] = 0 but dV/dw = (E_p[x] - E_q[x]) / 2, so D moves as soon as the
means differ (the first step of D re-creates G's gradient). And a random, frozen D gives G a
gradient that points nowhere in particular: G trained against it drifts to wherever that D is
largest, not to the data. Part 3 shows that with a 1D GAN (data N(2, 0.5^2), G(z) = a z + b).
"""

from __future__ import annotations

import math
import pathlib
import time

import numpy as np
import torch

from ganforge.lab.common import figure, finish, gauss, lab, mlp, one_thread, seed_all

DATA_MEAN, DATA_STD = 2.0, 0.5


def constant_d_point(shift: float, *, n: int, gen: torch.Generator) -> dict:
    """V, |dV/dG| and (dV/dw, dV/db) at D(x) = sigmoid(w x + b), w = b = 0, for G(z) = z + shift."""
    from ganforge import objectives

    obj = objectives.get("minimax")  # its d_loss is -V(D, G) on logits
    w = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    s = torch.tensor(float(shift), requires_grad=True)
    real = gauss(DATA_MEAN, DATA_STD).sample(n, generator=gen).double()
    fake = torch.randn(n, 1, generator=gen, dtype=torch.float64) + s
    v_real, v_fake = w * real + b, w * fake + b
    value = -obj.d_loss(real=v_real, fake=v_fake)  # V(D, G) = E_p log D + E_q log(1 - D)
    g_w, g_b, g_s = torch.autograd.grad(value, (w, b, s))
    return {"V": float(value.detach()), "dV_dG": float(g_s), "dV_dw": float(g_w), "dV_db": float(g_b),
            "half_mean_gap": float(0.5 * (real.mean() - fake.detach().mean()))}


def g_against(d: torch.nn.Module | None, *, steps: int, gen: torch.Generator, train_d: bool) -> list[float]:
    """G(z) = a z + b from N(0, 1) (starts at a = 1, b = 0) trained with the 'ns' loss against ``d``
    (frozen when ``train_d`` is False); returns G's mean (b) after every step."""
    from ganforge import objectives

    obj = objectives.get("ns")
    data = gauss(DATA_MEAN, DATA_STD)
    g = torch.nn.Linear(1, 1)
    with torch.no_grad():
        g.weight.fill_(1.0)
        g.bias.fill_(0.0)
    opt_g = torch.optim.Adam(g.parameters(), lr=1e-2, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=1e-3, betas=(0.5, 0.999)) if train_d else None
    for p in d.parameters():
        p.requires_grad_(train_d)
    means = []
    for _ in range(steps):
        if opt_d is not None:
            fake = g(torch.randn(128, 1, generator=gen)).detach()
            opt_d.zero_grad(set_to_none=True)
            obj.d_loss(real=d(data.sample(128, generator=gen)), fake=d(fake)).backward()
            opt_d.step()
        opt_g.zero_grad(set_to_none=True)
        obj.g_loss(fake=d(g(torch.randn(128, 1, generator=gen)))).backward()
        opt_g.step()
        means.append(float(g.bias.detach()))
    return means


@lab("random-d")
def run(*, out: pathlib.Path, quick: bool, seed: int = 0) -> dict:
    """A constant D = 1/2 gives V = -log 4 and zero G gradient for any G; D's gradient is not zero."""
    t0 = time.perf_counter()
    gen = seed_all(seed)
    shifts = np.linspace(-3, 6, 19)
    pts = [constant_d_point(float(s), n=4096, gen=gen) for s in shifts]
    from ganforge.lab.divergences import gan_value_at_optimum

    v_opt = [gan_value_at_optimum(gauss(DATA_MEAN, DATA_STD), gauss(float(s), 1.0)) for s in shifts]
    steps, n_random = (300, 3) if quick else (800, 6)
    with one_thread():
        random_runs = [g_against(mlp(32, 2), steps=steps, gen=gen, train_d=False) for _ in range(n_random)]
        trained = g_against(mlp(32, 2), steps=steps, gen=gen, train_d=True)
    result = {
        "shifts": shifts, "V_constant_D": [p["V"] for p in pts], "minus_log4": -math.log(4),
        "max_abs_V_plus_log4": max(abs(p["V"] + math.log(4)) for p in pts),
        "max_abs_dV_dG": max(abs(p["dV_dG"]) for p in pts),
        "max_abs_dV_db": max(abs(p["dV_db"]) for p in pts),
        "max_err_dV_dw_vs_half_mean_gap": max(abs(p["dV_dw"] - p["half_mean_gap"]) for p in pts),
        "dV_dw": [p["dV_dw"] for p in pts], "V_at_optimal_D_sigma1": v_opt,
        "steps": steps, "data_mean": DATA_MEAN,
        "g_mean_final_random_frozen_d": [r[-1] for r in random_runs],
        "g_mean_final_trained_d": trained[-1],
        "median_abs_gap_random_frozen_d": float(np.median([abs(r[-1] - DATA_MEAN) for r in random_runs])),
        "abs_gap_trained_d": abs(trained[-1] - DATA_MEAN),
    }

    fig, axes = figure(3, width=3.9, height=3.3)
    axes[0].plot(shifts, result["V_constant_D"], "o-", ms=3, label="V(D = 1/2, G) (samples)")
    axes[0].plot(shifts, v_opt, label="V(D*, G) = 2 JS - log 4")
    axes[0].axhline(-math.log(4), color="k", ls=":", label="-log 4")
    axes[0].set_xlabel("mean of p_g = N(shift, 1); data N(2, 0.5^2)")
    axes[0].set_title("value of the game", fontsize=9)
    axes[0].legend(fontsize=6)
    axes[1].plot(shifts, [p["dV_dG"] for p in pts], "o-", ms=3, label="dV/d shift (G): exactly 0")
    axes[1].plot(shifts, result["dV_dw"], "s-", ms=3, label="dV/dw (D's slope)")
    axes[1].plot(shifts, [p["half_mean_gap"] for p in pts], "k:", label="(E_p x - E_q x) / 2")
    axes[1].set_xlabel("shift")
    axes[1].set_title("gradients at D(x) = sigmoid(0 x + 0)", fontsize=9)
    axes[1].legend(fontsize=6)
    for i, r in enumerate(random_runs):
        axes[2].plot(r, color="0.6", lw=0.8, label="frozen random D" if i == 0 else None)
    axes[2].plot(trained, "tab:red", label="D trained alongside")
    axes[2].axhline(DATA_MEAN, color="k", ls=":", label="data mean")
    axes[2].set_xlabel("G step")
    axes[2].set_ylabel("mean of G")
    axes[2].set_title("G against a random D goes nowhere useful", fontsize=9)
    axes[2].legend(fontsize=6)
    return finish(out, "random-d", fig, result, t0)
