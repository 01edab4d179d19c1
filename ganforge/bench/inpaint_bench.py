"""``ganforge bench inpaint``: semantic inpainting by latent optimisation and by a learned pix2pix, against
simple fills.

Hides the central 14x14 square (a quarter) of the first ``n_test`` Fashion-MNIST test images and completes
them, the known pixels always kept exactly:

- mean fill: the mean training image in the hole;
- nearest-neighbour fill: the training image (of 60,000) nearest on the known pixels, its hole copied;
- latent optimisation (Yeh et al. 2017, ``ganforge.projection.inpaint``) through a small DCGAN trained
  inside the bench (``config``; one per seed): window-weighted L1 contextual loss + 0.003 x log(1 - D(G(z))),
  ``restarts`` x ``steps`` Adam; pasted, and Poisson-blended; ablations: uniform weights (W = M), and no
  prior (lambda = 0);
- the learned alternative: pix2pix's masked task (``configs/pix2pix/fmnist-masked.yaml``, the same central
  hole), L1 + cGAN and L1 alone, its U-Net's output pasted into the hole. These are the masked runs of
  ``ganforge bench pix2pix`` (which scores them on these images by this protocol): reused from the
  ``pix2pix.json`` beside this bench's output when that table was made from the recipe as it is now (same
  sha256), else trained here the same way (``pix2pix_bench._one``), so nothing is trained twice.

Scores: PSNR (dB, range 2) inside the hole, and the shipped classifier's (``fmnist-cnn``) accuracy on the
completed images (beside the originals). Projection check (issue 15): PSNR of ``projection.project`` on the
unmasked test images against the nearest (in L2) of 10,000 random samples of the same G. Means carry a 95 %
Student-t interval over seeds.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from ganforge.bench.compare import mean_ci
from ganforge.bench.jobs import ci_text, finish, machine_line, partial_path, run_jobs
from ganforge.bench.translation import Judge, test_images, to_model, write
from ganforge.registry import BENCHMARKS

SEEDS = (0, 1, 2)  # each seed trains its own G (and pix2pix runs its own seed)
# Sized for a shared 2-core CPU; the G is the first thing to train longer.
FULL = {"steps": 800, "base": 16, "n_test": 60, "restarts": 3, "opt_steps": 100, "random_samples": 10_000}
QUICK = {"steps": 60, "base": 16, "n_test": 24, "restarts": 2, "opt_steps": 30, "random_samples": 1000}
LAM, LR = 0.003, 0.05
TARGETS = {"accuracy": 0.80}
LATENT = ("latent (paste)", "latent (Poisson)", "latent, uniform weights (paste)", "latent, no prior (paste)")
LEARNED = {"pix2pix L1 + cGAN (paste)": "L1+cGAN", "pix2pix L1 alone (paste)": "L1"}  # row -> pix2pix bench mode
METHODS = ("mean fill", "nearest-neighbour fill", *LATENT, *LEARNED)


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


def learned_jobs(*, quick: bool, seeds: tuple[int, ...], n_test: int,
                 out: str | None) -> tuple[list[dict], list[dict]]:
    """The pix2pix masked runs (modes of ``LEARNED``, ``seeds``) scored by this bench's protocol on the first
    ``n_test`` test images: (runs reused from the ``pix2pix.json`` beside ``out``, where it was made from the
    masked recipe as it is now (same sha256), jobs for the rest (``pix2pix_bench._one``, as that bench trains
    them))."""
    import json
    from pathlib import Path

    from ganforge.bench import pix2pix_bench as pb

    modes, digest = set(LEARNED.values()), pb.recipe_digest("masked")
    wanted = [j for j in pb._jobs(quick, 200 if quick else 1000)
              if j["task"] == "masked" and j["mode"] in modes and j["seed"] in seeds]
    reused: list[dict] = []
    src = Path(out).with_name("pix2pix.json") if out else None
    if src is not None and src.exists() and not quick:
        r = json.loads(src.read_text())
        if not r.get("quick") and r.get("recipe_sha256", {}).get("masked") == digest:
            have = {pb._key(x): x for x in r.get("runs", []) if x.get("inpaint", {}).get("n") == n_test}
            reused = [have[pb._key(j)] for j in wanted if pb._key(j) in have]
    done = {pb._key(x) for x in reused}
    todo = [{**j, "inpaint_n": n_test, "kind": "pix2pix"} for j in wanted if pb._key(j) not in done]
    return reused, todo


def _job(job: dict) -> dict:
    """One job of this bench: a latent seed (``_one``) or a pix2pix masked run (``pix2pix_bench._one``)."""
    if job.get("kind") == "pix2pix":
        from ganforge.bench import pix2pix_bench as pb

        return {**pb._one(job), "kind": "pix2pix"}
    return _one(job)


def _job_key(r: dict) -> tuple:
    return ("pix2pix", r["mode"], r["seed"]) if r.get("kind") == "pix2pix" else ("latent", r["seed"])


def _report(r: dict) -> str:
    if r.get("kind") == "pix2pix":
        return (f"inpaint bench: pix2pix {r['mode']} seed {r['seed']}: PSNR in hole {r['inpaint']['psnr_hole']:.2f} "
                f"dB ({r['cpu_s']:.0f} CPU-s)")
    lat = r["methods"]["latent (paste)"]
    return (f"inpaint bench: seed {r['seed']}: latent PSNR in hole {lat['psnr_hole']:.2f} dB, accuracy "
            f"{lat['accuracy']:.3f} ({r['cpu_train_s'] + r['cpu_eval_s']:.0f} CPU-s)")


@BENCHMARKS.register("inpaint")
def run(*, quick: bool = False, out: str | None = None, workers: int = 2) -> dict[str, Any]:
    """Inpainting: latent optimisation (Yeh et al. 2017) and pix2pix's masked task vs mean and nearest-neighbour
    fill, PSNR in the hole and classifier accuracy; projection check."""
    import json
    from pathlib import Path

    from ganforge.api import make_config
    from ganforge.bench.pix2pix_bench import recipe, recipe_digest

    sizes = QUICK if quick else FULL
    seeds = SEEDS[:1] if quick else SEEDS
    reused, todo = learned_jobs(quick=quick, seeds=seeds, n_test=sizes["n_test"], out=out)
    # the pix2pix runs first: the longest jobs start while the latent seeds fill the other worker
    jobs = [*todo, *({"seed": s, "sizes": sizes} for s in seeds)]
    partial = partial_path(out)
    t0 = time.perf_counter()
    done = run_jobs(jobs, _job, _job_key, partial=partial, workers=workers, report=_report)
    trained = [r for r in done if r.get("kind") == "pix2pix"]
    runs = [r for r in done if r.get("kind") != "pix2pix"]
    if trained and out and not quick:  # hand them to `ganforge bench pix2pix` too: it resumes from this file
        with open(Path(out).with_name("pix2pix.partial.jsonl"), "a") as f:
            for r in trained:
                f.write(json.dumps({k: v for k, v in r.items() if k != "kind"}) + "\n")
    learned = [*reused, *trained]
    for r in runs:
        for row, mode in LEARNED.items():
            lr = next(x for x in learned if x["seed"] == r["seed"] and x["mode"] == mode)
            r["methods"][row] = {k: lr["inpaint"][k] for k in ("psnr_hole", "accuracy")}
    cells = [{"method": m, "psnr_hole": mean_ci([r["methods"][m]["psnr_hole"] for r in runs]),
              "accuracy": mean_ci([r["methods"][m]["accuracy"] for r in runs])} for m in METHODS]
    summary = {k: mean_ci([r[k] for r in runs]) for k in
               ("accuracy_original", "projection_psnr", "nearest_random_psnr", "projection_accuracy",
                "cpu_train_s", "cpu_eval_s")}
    summary["pix2pix_cpu_s"] = {m: mean_ci([x["cpu_s"] for x in learned if x["mode"] == m]) for m in LEARNED.values()}
    source = (f"{len(reused)} reused from `pix2pix.json` (`ganforge bench pix2pix`, same recipe sha256), "
              f"{len(trained)} trained inside this bench (`pix2pix_bench._one`)")
    result = {"benchmark": "inpaint", "quick": quick, "machine": f"{machine_line(1)} (2-core CPU, shared with other "
              f"jobs); {workers} run(s) at a time, 1 thread each", "threads": 1, "sizes": sizes, "seeds": list(seeds),
              "lambda": LAM, "lr": LR, "config": config(sizes["steps"], 0, sizes["base"]), "targets": TARGETS,
              "pix2pix": {"recipe": "configs/pix2pix/fmnist-masked.yaml", "recipe_sha256": recipe_digest("masked"),
                          "test_dropout": make_config(str(recipe("masked")))["game"]["test_dropout"],
                          "source": source, "steps": sorted({x["steps"] for x in learned}), "runs": learned},
              "wall_seconds": time.perf_counter() - t0, "cells": cells, "summary": summary, "runs": runs}
    write(result, out, markdown(result))
    if out:
        finish(partial)
    return result


def targets_met(result: dict[str, Any]) -> dict[str, dict[str, bool]]:
    """Per completing method: PSNR in the hole above both simple fills, and accuracy >= the target (means)."""
    by = {c["method"]: c for c in result["cells"]}
    bar = max(by[m]["psnr_hole"]["mean"] for m in ("mean fill", "nearest-neighbour fill"))
    return {m: {"psnr": by[m]["psnr_hole"]["mean"] > bar, "accuracy": by[m]["accuracy"]["mean"] >= TARGETS["accuracy"]}
            for m in METHODS[2:]}


def markdown(result: dict[str, Any]) -> list[str]:
    """The markdown table of an ``inpaint`` result."""
    p, s, px = result["sizes"], result["summary"], result["pix2pix"]
    cmd = "ganforge bench inpaint" + (" --quick" if result["quick"] else "")
    cpu_px = ", ".join(f"{m} {ci_text(v, fmt='{:.0f}')}" for m, v in s["pix2pix_cpu_s"].items())
    lines = [f"# Inpainting on Fashion-MNIST: latent optimisation and pix2pix{' (quick)' if result['quick'] else ''}",
             "", f"Made by `{cmd}`. Machine: {result['machine']}. Test: the first {p['n_test']} fmnist test images "
             "with the central 14x14 square hidden (a quarter of the image); every method keeps the known pixels "
             "exactly. PSNR in dB (range 2) over the hole, the mean of per-image values; accuracy = the shipped "
             "classifier (fmnist-cnn) on the completed images (untouched test images: "
             f"{ci_text(s['accuracy_original'])}). Mean ± half-width of the 95 % Student-t interval over seeds "
             f"{result['seeds']}.", "",
             f"- Latent rows: G and D a DCGAN (base {p['base']}, z 32, ns loss) trained {p['steps']} steps at batch 64 "
             f"inside the bench, one per seed; Yeh et al. 2017, window-7 weighted L1 contextual loss + "
             f"{result['lambda']} x log(1 - D(G(z))), {p['restarts']} restarts x {p['opt_steps']} Adam steps (lr "
             f"{result['lr']}), the best per image. CPU-s per seed: training "
             f"{ci_text(s['cpu_train_s'], fmt='{:.0f}')}, completion and scoring "
             f"{ci_text(s['cpu_eval_s'], fmt='{:.0f}')}.",
             f"- pix2pix rows: `{px['recipe']}` (central 14x14 hole, {', '.join(map(str, px['steps']))} steps) as "
             "committed, one run per seed; L1 + cGAN is the recipe, L1 alone adds `--game.adversarial=0`; G(a) "
             f"(test-time dropout {'on, seed 0' if px.get('test_dropout') else 'off'}) pasted into the hole. Runs "
             f"{px['source']}; training CPU-s per run: {cpu_px}.", "",
             "| method | PSNR in the hole (dB) | classifier accuracy | PSNR above both fills | accuracy >= "
             f"{TARGETS['accuracy']} |", "|---|---|---|---|---|"]
    met = targets_met(result)
    yes = {True: "yes", False: "**no**"}
    for c in result["cells"]:
        m = met.get(c["method"])
        lines.append(f"| {c['method']} | {ci_text(c['psnr_hole'], fmt='{:.2f}')} | {ci_text(c['accuracy'])} | "
                     f"{yes[m['psnr']] if m else '-'} | {yes[m['accuracy']] if m else '-'} |")
    both = [k for k, v in met.items() if v["psnr"] and v["accuracy"]]
    lines += ["", f"Projection (no mask, same optimiser, latent G): PSNR of G(z*) to the test image "
              f"{ci_text(s['projection_psnr'], fmt='{:.2f}')} dB, against the nearest (L2) of "
              f"{p['random_samples']:,} random samples of the same G {ci_text(s['nearest_random_psnr'], fmt='{:.2f}')} "
              f"dB; classifier accuracy on G(z*) {ci_text(s['projection_accuracy'])}.", "",
              f"Targets (issue 15, means): PSNR in the hole above mean fill and nearest-neighbour fill, and classifier "
              f"accuracy >= {TARGETS['accuracy']} on the completions: met by "
              f"{', '.join(both) if both else 'no method'}; not met by "
              f"{', '.join(k for k in met if k not in both) or 'none'}. Projection above the nearest random sample: "
              f"{'met' if s['projection_psnr']['mean'] > s['nearest_random_psnr']['mean'] else 'not met'}."]
    return lines
