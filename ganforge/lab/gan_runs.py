"""Experiments that train a whole GAN through the project's one trainer (``ganforge.api.train``).

- ``gaussian-1d``: a GAN learns N(2, 0.5^2) from z ~ N(0, 1) (lecture 001/002's 1D example;
  Goodfellow et al. 2014, Fig. 1). The ideal generator is the inverse-CDF map
  G*(z) = F^-1(Phi(z)) = mu + sigma z (or its mirror mu - sigma z, which gives the same
  distribution); the learned G(z) and its samples are compared with it.
- ``mode-collapse``: GANs on the 8-Gaussian ring (PacGAN protocol) with several objectives and
  the unrolled GAN, snapshots of the samples over training and the modes they cover (lecture 003,
  "Mode collapse"; Metz et al. 2017, Fig. 1).

Each run goes into a temporary run directory; only the figure and the numbers are kept.
"""

from __future__ import annotations

import json
import math
import pathlib
import tempfile
import time

import numpy as np
import torch

from ganforge.lab.common import figure, finish, lab


def _train(config: dict, run_dir: pathlib.Path):
    import ganforge.components  # noqa: F401  (fill the registries the trainer builds from)
    from ganforge.api import train

    return train(config, out=run_dir)


def _metrics(run_dir: pathlib.Path) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def w1_to_density(samples: np.ndarray, cdf, lo: float, hi: float, n: int = 20_001) -> float:
    """integral |F_n(x) - F(x)| dx on a fine grid: W1 between samples and a 1D density."""
    x = np.linspace(lo, hi, n)
    s = np.sort(samples)
    fn = np.searchsorted(s, x, side="right") / s.size
    return float(np.trapezoid(np.abs(fn - cdf(x)), x))


@lab("gaussian-1d")
def run_gaussian_1d(*, out: pathlib.Path, quick: bool, seed: int = 0) -> dict:
    """A GAN trained on N(2, 0.5^2) beside the ideal inverse-CDF generator mu + sigma z."""
    from ganforge.api import load_game
    from ganforge.lab.common import gauss

    t0 = time.perf_counter()
    mu, sigma = 2.0, 0.5
    steps = 300 if quick else 4000
    config = {
        "name": "lab-gaussian-1d",
        "data": {"name": "gaussian-1d", "mean": mu, "std": sigma, "seed": seed},
        "game": {"name": "gan", "z_dim": 1},
        "objective": {"name": "ns"},
        "nets": {"g": {"name": "mlp", "hidden": 32, "depth": 2, "activation": "leaky_relu"},
                 "d": {"name": "mlp", "hidden": 64, "depth": 2, "activation": "leaky_relu"}},
        "optim": {"g": {"name": "adam", "lr": 1e-3, "betas": [0.5, 0.999]},
                  "d": {"name": "adam", "lr": 1e-3, "betas": [0.5, 0.999]}},
        "train": {"steps": steps, "batch_size": 256, "seed": seed, "threads": 1, "log_every": 100,
                  "ema": 0.95 if quick else 0.999},  # an EMA needs ~1/(1-decay) steps to catch up
        "eval": {"every": max(steps // 10, 1), "n": 5000, "samples": False},
        "checkpoint": {"every": 0, "keep": 1},
    }
    target = gauss(mu, sigma)
    cdf = lambda x: target.cdf(torch.from_numpy(x)).numpy()  # noqa: E731
    with tempfile.TemporaryDirectory(prefix="ganforge-lab-") as tmp:
        run = _train(config, pathlib.Path(tmp) / "run")
        history = _metrics(run.run_dir)
        game, _, _ = load_game(run.run_dir)
        gen = torch.Generator().manual_seed(seed + 1)
        n = 20_000
        x = game.sample(n, generator=gen).reshape(-1).double().numpy()
        z = torch.linspace(-2.5, 2.5, 201)[:, None]
        with torch.no_grad():
            gz = game.nets["g"](z).reshape(-1).double().numpy()
    zz = z.reshape(-1).double().numpy()
    ideal_up, ideal_down = mu + sigma * zz, mu - sigma * zz
    central = np.abs(zz) <= 2.0
    err_up = float(np.max(np.abs(gz - ideal_up)[central]))
    err_down = float(np.max(np.abs(gz - ideal_down)[central]))
    ref = mu + sigma * torch.randn(n, generator=torch.Generator().manual_seed(seed + 2), dtype=torch.float64).numpy()
    lo, hi = mu - 12 * sigma, mu + 12 * sigma
    result = {
        "target": [mu, sigma], "steps": steps, "history": history, "final_metrics": run.metrics,
        "sample_mean": float(x.mean()), "sample_std": float(x.std(ddof=1)),
        "map_direction": "increasing (inverse CDF)" if err_up <= err_down else "decreasing (mirrored inverse CDF)",
        "max_map_err_central": min(err_up, err_down),
        "w1_gan_samples": w1_to_density(x, cdf, lo, hi),
        "w1_ideal_samples_same_n": w1_to_density(ref, cdf, lo, hi),
    }

    fig, axes = figure(3, width=3.8)
    grid = np.linspace(lo / 2 + mu / 2, hi / 2 + mu / 2, 400)
    axes[0].hist(x, bins=120, density=True, alpha=0.5, label="GAN samples")
    axes[0].plot(grid, np.exp(-0.5 * ((grid - mu) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi)), "k",
                 label="N(2, 0.5^2)")
    axes[0].legend(fontsize=7)
    axes[0].set_title(f"W1 {result['w1_gan_samples']:.3f} (ideal G, same n: {result['w1_ideal_samples_same_n']:.3f})",
                      fontsize=8)
    axes[1].plot(zz, gz, "r", label="learned G(z)")
    axes[1].plot(zz, ideal_up, "k--", lw=1, label="inverse CDF: mu + sigma z")
    axes[1].plot(zz, ideal_down, "k:", lw=1, label="mirror: mu - sigma z")
    axes[1].set_xlabel("z")
    axes[1].legend(fontsize=7)
    steps_h = [h["step"] for h in history]
    for key in ("js", "kl"):
        if history and key in history[0]:
            axes[2].semilogy(steps_h, [max(h[key], 1e-6) for h in history], "o-", ms=3, label=key)
    axes[2].set_xlabel("generator step")
    axes[2].set_title("trainer's metrics vs the true density", fontsize=9)
    axes[2].legend(fontsize=7)
    return finish(out, "gaussian-1d", fig, result, t0)


#: The mode-collapse runs: name -> (objective, extra game options). "unrolled" is the non-saturating
#: GAN with G's loss through 5 look-ahead critic updates (Metz et al. 2017), same nets and optimizers.
VARIANTS: dict[str, tuple[str, dict]] = {
    "ns": ("ns", {}),
    "minimax": ("minimax", {}),
    "wgan-gp": ("wgan-gp", {}),
    "unrolled": ("ns", {"unrolled_steps": 5, "unrolled_lr": 5e-4}),
}
OBJECTIVES = tuple(VARIANTS)


def toy_config(variant: str, steps: int, every: int, seed: int, *, data: str = "ring", batch_size: int = 256,
               game: dict | None = None) -> dict:
    """The lab's small toy GAN (2x128 MLPs, no batch norm, z_dim 16, Adam lr 5e-4) for one variant."""
    objective, extra = VARIANTS[variant]
    # WGAN-GP as in Gulrajani et al.'s toy experiments: 5 critic steps per generator step, betas (0.5, 0.9)
    wgan = objective.startswith("wgan")
    betas = [0.5, 0.9] if wgan else [0.5, 0.999]
    return {
        "name": f"lab-mode-collapse-{variant}",
        "data": {"name": data, "seed": seed},
        "game": {"name": "gan", "z_dim": 16, **extra, **(game or {})},
        "objective": {"name": objective},
        "nets": {"g": {"name": "mlp", "hidden": 128, "depth": 2, "activation": "relu"},
                 "d": {"name": "mlp", "hidden": 128, "depth": 2, "activation": "leaky_relu"}},
        "optim": {"g": {"name": "adam", "lr": 5e-4, "betas": betas},
                  "d": {"name": "adam", "lr": 5e-4, "betas": betas}},
        "train": {"steps": steps, "batch_size": batch_size, "seed": seed, "threads": 1, "log_every": 100,
                  "d_steps": 5 if wgan else 1},
        "eval": {"every": every, "n": 2500, "samples": False},
        "checkpoint": {"every": every, "keep": 1000},
    }


@lab("mode-collapse")
def run_mode_collapse(*, out: pathlib.Path, quick: bool, seed: int = 0) -> dict:
    """GANs on the 8-mode ring: samples over training and modes covered, per objective and unrolled."""
    from ganforge.api import load_game
    from ganforge.data.toy import ring_means
    from ganforge.metrics.modes import mode_metrics
    from ganforge.training.checkpoint import list_checkpoints

    t0 = time.perf_counter()
    # quick (the test): the same runs, snapshots and figure at a size that checks the plumbing in seconds
    steps, every, batch, n = (30, 10, 64, 1000) if quick else (3000, 500, 256, 2500)
    means, std = ring_means(8, 1.0), 0.01
    runs: dict[str, dict] = {}
    snaps: dict[str, list[tuple[int, np.ndarray]]] = {}
    for obj in OBJECTIVES:
        with tempfile.TemporaryDirectory(prefix="ganforge-lab-") as tmp:
            run = _train(toy_config(obj, steps, every, seed, batch_size=batch), pathlib.Path(tmp) / "run")
            snaps[obj], rows = [], []
            for step, path in list_checkpoints(run.run_dir):
                game, _, _ = load_game(path)
                x = game.sample(n, generator=torch.Generator().manual_seed(seed + 7))
                m = mode_metrics(x, means, std)
                counts = np.bincount(torch.cdist(x.double(), means).argmin(1).numpy()[
                    (torch.cdist(x.double(), means).min(1).values < 3 * std).numpy()], minlength=8)
                m["modes_1pct"] = int((counts >= 0.01 * len(x)).sum())  # modes holding >= 1% of all samples
                rows.append({"step": step, **m})
                snaps[obj].append((step, x.numpy()))
        runs[obj] = {"history": rows, "final": rows[-1]}
    result = {"steps": steps, "objectives": OBJECTIVES, "runs": runs,
              "variants": {k: {"objective": o, "game": g} for k, (o, g) in VARIANTS.items()},
              "final_modes": {k: r["final"]["modes"] for k, r in runs.items()},
              "final_modes_1pct": {k: r["final"]["modes_1pct"] for k, r in runs.items()},
              "final_hq": {k: r["final"]["hq"] for k, r in runs.items()}}

    ncol = min(4, len(snaps[OBJECTIVES[0]]))
    fig, axes = figure(ncol + 1, len(OBJECTIVES), width=2.5, height=2.5)
    axes = axes.reshape(len(OBJECTIVES), ncol + 1)
    for i, obj in enumerate(OBJECTIVES):
        pick = np.linspace(0, len(snaps[obj]) - 1, ncol).round().astype(int)
        for j, k in enumerate(pick):
            step, x = snaps[obj][k]
            ax = axes[i, j]
            ax.scatter(x[:, 0], x[:, 1], s=1, alpha=0.3)
            ax.scatter(means[:, 0], means[:, 1], s=12, c="r", marker="x")
            ax.set_xlim(-1.6, 1.6)
            ax.set_ylim(-1.6, 1.6)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{obj}, step {step}", fontsize=7)
        h = runs[obj]["history"]
        axes[i, -1].plot([r["step"] for r in h], [r["modes_1pct"] for r in h], "o-", ms=3, label=">= 1% of samples")
        axes[i, -1].plot([r["step"] for r in h], [r["modes"] for r in h], "s--", ms=3, label=">= 1 sample")
        axes[i, -1].set_ylim(0, 8.5)
        axes[i, -1].set_title(f"{obj}: modes covered", fontsize=7)
        axes[i, -1].tick_params(labelsize=6)
    axes[0, -1].legend(fontsize=6)
    return finish(out, "mode-collapse", fig, result, t0)
