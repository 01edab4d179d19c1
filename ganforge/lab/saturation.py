"""``saturation``: the minimax generator loss log(1 - D) vs the non-saturating -log D.

Goodfellow et al. 2014, Sec. 3 and Goodfellow 2016 (NIPS tutorial, Fig. 16; lecture 003,
Figure 15 "the generator cost w.r.t. discriminator classification"): with D = sigmoid(v),
d/dv log(1 - D) = -D -> 0 as D(G(z)) -> 0, exactly when G is bad and D confident, while
d/dv [-log D] = -(1 - D) -> -1. Part 1 evaluates both through the objectives' ``g_loss``
with autograd; part 2 trains a tiny 1D GAN from a bad start with each loss (same seed,
same D, SGD for G) and records the generator's gradient norm per step.
"""

from __future__ import annotations

import pathlib
import time

import numpy as np
import torch

from ganforge.lab.common import figure, finish, gauss, lab, mlp, one_thread, seed_all


def logit_gradients(d_values: np.ndarray) -> dict[str, np.ndarray]:
    """|d g_loss / d v| and the loss itself at v = logit(D), for 'minimax' and 'ns' (batch of one)."""
    from ganforge import objectives

    out: dict[str, np.ndarray] = {}
    v0 = torch.logit(torch.from_numpy(d_values))
    for name in ("minimax", "ns"):
        obj = objectives.get(name)
        grads, losses = [], []
        for vi in v0:
            v = vi.clone().reshape(1).requires_grad_(True)
            loss = obj.g_loss(fake=v)
            (g,) = torch.autograd.grad(loss, v)
            grads.append(abs(float(g)))
            losses.append(float(loss.detach()))
        out[f"{name}_grad"], out[f"{name}_loss"] = np.array(grads), np.array(losses)
    return out


def tiny_gan(g_loss_name: str, *, steps: int, seed: int, d_warmup: int = 500) -> dict[str, list[float]]:
    """1D GAN: data N(4, 0.5^2), G(z) = a z + b from N(0, 1); D pre-trained ``d_warmup`` steps."""
    from ganforge import objectives

    gen = seed_all(seed)
    data = gauss(4.0, 0.5)
    d_obj, g_obj = objectives.get("ns"), objectives.get(g_loss_name)
    d = mlp(32, 2)
    g = torch.nn.Linear(1, 1)
    with torch.no_grad():
        g.weight.fill_(1.0)
        g.bias.fill_(0.0)
    opt_d = torch.optim.Adam(d.parameters(), lr=1e-3, betas=(0.5, 0.999))
    opt_g = torch.optim.SGD(g.parameters(), lr=0.05)
    hist: dict[str, list[float]] = {"grad_norm": [], "mean_D_fake": [], "g_mean": []}

    def d_step() -> None:
        real = data.sample(256, generator=gen)
        fake = g(torch.randn(256, 1, generator=gen)).detach()
        opt_d.zero_grad(set_to_none=True)
        d_obj.d_loss(real=d(real), fake=d(fake)).backward()
        opt_d.step()

    with one_thread():
        for _ in range(d_warmup):
            d_step()
        for _ in range(steps):
            d_step()
            opt_g.zero_grad(set_to_none=True)
            v = d(g(torch.randn(256, 1, generator=gen)))
            g_obj.g_loss(fake=v).backward()
            hist["grad_norm"].append(float(torch.cat([p.grad.reshape(-1) for p in g.parameters()]).norm()))
            hist["mean_D_fake"].append(float(torch.sigmoid(v.detach()).mean()))
            opt_g.step()
            hist["g_mean"].append(float(g.bias.detach()))
    return hist


def _first(mask: np.ndarray) -> int | None:
    """1-based index of the first True (None if none)."""
    return int(np.argmax(mask)) + 1 if mask.any() else None


@lab("saturation")
def run(*, out: pathlib.Path, quick: bool, seed: int = 0) -> dict:
    """Generator gradients of log(1 - D) vs -log D, analytically and in a tiny 1D GAN."""
    t0 = time.perf_counter()
    dv = np.logspace(-6, np.log10(0.999), 200)
    an = logit_gradients(dv)
    steps = 150 if quick else 600
    runs = {name: tiny_gan(name, steps=steps, seed=seed) for name in ("minimax", "ns")}
    early = 50
    early_norm = {k: float(np.mean(r["grad_norm"][:early])) for k, r in runs.items()}
    result = {
        "d_values": dv, "analytic": an,
        "analytic_max_err_minimax": float(np.max(np.abs(an["minimax_grad"] - dv))),
        "analytic_max_err_ns": float(np.max(np.abs(an["ns_grad"] - (1 - dv)))),
        "steps": steps, "runs": runs, "early_steps": early, "early_grad_norm": early_norm,
        "early_ratio_ns_over_minimax": early_norm["ns"] / early_norm["minimax"],
        "final_g_mean": {k: r["g_mean"][-1] for k, r in runs.items()}, "data_mean": 4.0,
        "initial_mean_D_fake": {k: r["mean_D_fake"][0] for k, r in runs.items()},
        "steps_to_halfway": {k: _first(np.array(r["g_mean"]) >= 2.0) for k, r in runs.items()},
    }

    fig, axes = figure(3, width=3.8)
    axes[0].plot(dv, an["minimax_loss"], label="minimax: log(1 - D)")
    axes[0].plot(dv, an["ns_loss"], label="non-saturating: -log D")
    axes[0].set_xlabel("D(G(z))")
    axes[0].set_title("generator cost", fontsize=9)
    axes[0].legend(fontsize=7)
    axes[1].loglog(dv, an["minimax_grad"], label="|d log(1-D) / dv| = D")
    axes[1].loglog(dv, an["ns_grad"], label="|d (-log D) / dv| = 1 - D")
    axes[1].set_xlabel("D(G(z))")
    axes[1].set_title("gradient w.r.t. the logit v", fontsize=9)
    axes[1].legend(fontsize=7)
    for name, r in runs.items():
        axes[2].semilogy(r["grad_norm"], label=f"{name} (G mean ends at {r['g_mean'][-1]:.2f})")
    axes[2].set_xlabel("generator step")
    axes[2].set_title("tiny 1D GAN: ||grad_G L_G||, data N(4, 0.5^2)", fontsize=9)
    axes[2].legend(fontsize=7)
    return finish(out, "saturation", fig, result, t0)
