"""``ganforge bench inpaint``: semantic inpainting by latent optimisation against simple fills.

Trains a small DCGAN on Fashion-MNIST inside the bench (``config``: nothing to download or keep), then
hides the central 14x14 square (a quarter) of the first ``n_test`` test images and completes them:

- mean fill: the mean training image in the hole;
- nearest-neighbour fill: the training image (of 60,000) nearest on the known pixels, its hole copied;
- latent optimisation (Yeh et al. 2017, ``ganforge.projection.inpaint``): window-weighted L1
  contextual loss + 0.003 x log(1 - D(G(z))), ``restarts`` x ``steps`` Adam; pasted, and Poisson-blended;
  ablations: uniform weights (W = M), and no prior (lambda = 0).

Scores: PSNR (dB, range 2) inside the hole, and the shipped classifier's (``fmnist-cnn``) accuracy on the
completed images (beside the originals and the masked-with-mean images). Projection check (issue 15):
PSNR of ``projection.project`` on the unmasked test images against the nearest (in L2) of 10,000
random samples of the same G. Each seed trains its own G; means carry a 95 % Student-t interval.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from ganforge.bench.compare import mean_ci
from ganforge.bench.jobs import ci_text, machine_line, partial_path, run_jobs
from ganforge.bench.translation import Judge, test_images, to_model, write
from ganforge.registry import BENCHMARKS

SEEDS = (0,)  # one seed: the CPU budget of the bench (each seed trains its own G); add seeds to get intervals
# Sized for a shared 2-core CPU (about a minute of CPU per seed); a longer-trained G is the first thing to raise.
FULL = {"steps": 500, "base": 16, "n_test": 60, "restarts": 2, "opt_steps": 100, "random_samples": 10_000}
QUICK = {"steps": 60, "base": 16, "n_test": 24, "restarts": 2, "opt_steps": 30, "random_samples": 1000}
LAM, LR = 0.003, 0.05
TARGETS = {"accuracy": 0.80}
METHODS = ("mean fill", "nearest-neighbour fill", "latent (paste)", "latent (Poisson)",
           "latent, uniform weights (paste)", "latent, no prior (paste)")


def config(steps: int, seed: int, base: int = 16) -> dict:
    """The bench's DCGAN recipe: fmnist 28x28, z 32, ns loss, DCGAN's Adam, batch 64; ``base`` channels."""
    adam = {"name": "adam", "lr": 2e-4, "betas": [0.5, 0.999]}
    return {"name": "bench-inpaint-dcgan", "data": {"name": "fmnist", "resolution": 28},
            "game": {"name": "gan", "z_dim": 32}, "objective": {"name": "ns"},
            "nets": {"g": {"name": "dcgan", "base": base}, "d": {"name": "dcgan", "base": base}},
            "optim": {"g": dict(adam), "d": dict(adam)},
            "train": {"steps": steps, "batch_size": 64, "seed": seed, "threads": 1, "device": "cpu",
                      "tensorboard": False, "log_every": max(1, steps // 10)},
            "eval": {"every": 0, "n": 64, "samples": False}, "checkpoint": {"every": 0, "keep": 1}}


def simple_fills(x: torch.Tensor, known: torch.Tensor, train: torch.Tensor) -> dict[str, torch.Tensor]:
    """Mean fill and nearest-neighbour fill (nearest training image on the known pixels), known pixels kept."""
    from ganforge.projection import blend

    mean = train.mean(0, keepdim=True).expand_as(x)
    k, xs, ts = known.expand_as(x).flatten(1).double(), x.flatten(1).double(), train.flatten(1).double()
    # sum_p k_ip (t_p - x_ip)^2 = (t^2) . k_i - 2 t . (k_i x_i) + const_i: masks may differ per image
    d = ts.pow(2) @ k.T - 2 * ts @ (k * xs).T  # (N_train, N)
    near = d.argmin(0)
    return {"mean fill": blend(x, mean, known), "nearest-neighbour fill": blend(x, train[near], known)}


def _one(job: dict) -> dict:
    from ganforge.bench.translation import train_game
    from ganforge.data.fmnist import fmnist
    from ganforge.projection import blend, inpaint, make_mask, model_of, project, psnr_in, render

    torch.set_num_threads(1)
    p = job["sizes"]
    game, (_, cpu_train) = train_game(config(p["steps"], job["seed"], p["base"]))
    c0 = time.process_time()
    model = model_of(game)
    xu, y = test_images(p["n_test"])
    x = to_model(xu)
    train = to_model(fmnist(split="train").x)
    known = make_mask("center", tuple(x.shape[1:]), len(x))
    hole = 1 - known
    judge = Judge()
    fills = simple_fills(x, known, train)
    opt = {"restarts": p["restarts"], "steps": p["opt_steps"], "lr": LR, "seed": job["seed"]}
    main = inpaint(model, x, known, lam=LAM, **opt)
    fills["latent (paste)"] = main["completed"]
    fills["latent (Poisson)"] = blend(x, main["x_hat"], known, "poisson")
    fills["latent, uniform weights (paste)"] = inpaint(model, x, known, lam=LAM, weighting="uniform",
                                                       **opt)["completed"]
    fills["latent, no prior (paste)"] = inpaint(model, x, known, lam=0.0, **opt)["completed"]
    rows = {m: {"psnr_hole": float(psnr_in(f, x, hole).mean()), "accuracy": judge.accuracy(f, y)}
            for m, f in fills.items()}
    # projection against the nearest of many random samples
    proj = project(model, x, restarts=p["restarts"], steps=p["opt_steps"], lr=LR, seed=job["seed"])
    gen = torch.Generator().manual_seed(10_000 + job["seed"])
    samples = render(model, model.noise(p["random_samples"], gen)).flatten(1).double()
    d = torch.cdist(x.flatten(1).double(), samples)
    nearest = samples[d.argmin(1)].float().reshape_as(x)
    full = torch.ones_like(known)
    return {"seed": job["seed"], "cpu_train_s": cpu_train, "cpu_eval_s": time.process_time() - c0,
            "methods": rows, "accuracy_original": judge.accuracy(x, y),
            "projection_psnr": float(psnr_in(proj["x_hat"], x, full).mean()),
            "nearest_random_psnr": float(psnr_in(nearest, x, full).mean()),
            "projection_accuracy": judge.accuracy(proj["x_hat"], y)}


@BENCHMARKS.register("inpaint")
def run(*, quick: bool = False, out: str | None = None, workers: int = 1) -> dict[str, Any]:
    """Inpainting by latent optimisation (Yeh et al. 2017) vs mean and nearest-neighbour fill; projection check."""
    sizes = QUICK if quick else FULL
    seeds = SEEDS[:1] if quick else SEEDS
    jobs = [{"seed": s, "sizes": sizes} for s in seeds]
    partial = partial_path(out)
    t0 = time.perf_counter()
    runs = run_jobs(jobs, _one, lambda r: r["seed"], partial=partial, workers=workers,
                    report=lambda r: f"inpaint bench: seed {r['seed']}: latent PSNR in hole "
                                     f"{r['methods']['latent (paste)']['psnr_hole']:.2f} dB, accuracy "
                                     f"{r['methods']['latent (paste)']['accuracy']:.3f} "
                                     f"({r['cpu_train_s'] + r['cpu_eval_s']:.0f} CPU-s)")
    cells = [{"method": m, "psnr_hole": mean_ci([r["methods"][m]["psnr_hole"] for r in runs]),
              "accuracy": mean_ci([r["methods"][m]["accuracy"] for r in runs])} for m in METHODS]
    summary = {k: mean_ci([r[k] for r in runs]) for k in
               ("accuracy_original", "projection_psnr", "nearest_random_psnr", "projection_accuracy",
                "cpu_train_s", "cpu_eval_s")}
    result = {"benchmark": "inpaint", "quick": quick, "machine": f"{machine_line(1)} (2-core CPU, shared with other "
              f"jobs); {workers} run(s) at a time, 1 thread each", "threads": 1, "sizes": sizes, "seeds": list(seeds),
              "lambda": LAM, "lr": LR, "config": config(sizes["steps"], 0, sizes["base"]), "targets": TARGETS,
              "wall_seconds": time.perf_counter() - t0, "cells": cells, "summary": summary, "runs": runs}
    write(result, out, markdown(result))
    if out and partial is not None and partial.exists():
        partial.unlink()
    return result


def markdown(result: dict[str, Any]) -> list[str]:
    """The markdown table of an ``inpaint`` result."""
    p, s = result["sizes"], result["summary"]
    cmd = "ganforge bench inpaint" + (" --quick" if result["quick"] else "")
    lines = [f"# Inpainting by latent optimisation on Fashion-MNIST{' (quick)' if result['quick'] else ''}", "",
             f"Made by `{cmd}`. Machine: {result['machine']}. G and D: DCGAN (base {p['base']}, z 32, ns loss) trained "
             f"{p['steps']} steps at batch 64 inside the bench, one per seed (seeds {result['seeds']}). Test: the "
             f"first {p['n_test']} fmnist test images with the central 14x14 square hidden (a quarter of the "
             f"image). Latent: Yeh et al. 2017, window-7 weighted L1 contextual loss + {result['lambda']} x "
             f"log(1 - D(G(z))), {p['restarts']} restarts x {p['opt_steps']} Adam steps (lr {result['lr']}), the "
             "best per image; known pixels kept exactly. PSNR in dB (range 2) over the hole; accuracy = the "
             f"shipped classifier on the completed images (untouched test images: "
             f"{ci_text(s['accuracy_original'])}). Mean ± half-width of the 95 % Student-t interval over seeds "
             f"(one seed: no interval). CPU-s per seed: training {ci_text(s['cpu_train_s'], fmt='{:.0f}')}, "
             f"completion and scoring {ci_text(s['cpu_eval_s'], fmt='{:.0f}')} (1 thread). Wall time "
             f"{result['wall_seconds'] / 60:.1f} min.", "",
             "| method | PSNR in the hole (dB) | classifier accuracy |", "|---|---|---|"]
    for c in result["cells"]:
        lines.append(f"| {c['method']} | {ci_text(c['psnr_hole'], fmt='{:.2f}')} | {ci_text(c['accuracy'])} |")
    by = {c["method"]: c for c in result["cells"]}
    lat = by["latent (paste)"]
    beats = all(lat["psnr_hole"]["mean"] > by[m]["psnr_hole"]["mean"] for m in ("mean fill", "nearest-neighbour fill"))
    acc_ok = lat["accuracy"]["mean"] >= TARGETS["accuracy"]
    lines += ["", f"Projection (no mask, same optimiser): PSNR of G(z*) to the test image "
              f"{ci_text(s['projection_psnr'], fmt='{:.2f}')} dB, against the nearest (L2) of "
              f"{p['random_samples']:,} random samples of the same G {ci_text(s['nearest_random_psnr'], fmt='{:.2f}')} "
              f"dB; classifier accuracy on G(z*) {ci_text(s['projection_accuracy'])}.", "",
              f"Targets (issue 15, means): latent PSNR in the hole above mean fill and nearest-neighbour fill: "
              f"{'met' if beats else 'not met'}; classifier accuracy >= {TARGETS['accuracy']} on the completions: "
              f"{'met' if acc_ok else 'not met'}; projection above the nearest random sample: "
              f"{'met' if s['projection_psnr']['mean'] > s['nearest_random_psnr']['mean'] else 'not met'}."]
    return lines
