"""Plain vs unrolled GAN (Metz et al. 2017; k = 5, 10 look-ahead critic steps) on the 2D ring and grid.

Every run is the lab's small toy GAN (``ganforge.lab.gan_runs.toy_config``: 2x128 MLPs without
batch norm, z_dim 16, non-saturating loss, Adam lr 5e-4), a setting in which the plain
GAN collapses on the ring; the unrolled runs differ only in ``game.unrolled_steps`` (look-ahead
Adam steps with the critic's learning rate). The final generator's 2,500 samples are scored with
the PacGAN/VEEGAN protocol (``ganforge.metrics.modes``): modes captured, high-quality share, reverse
KL of the mode histogram, and each run's wall time. Runs go two at a time, one thread each; a
``.partial.jsonl`` beside the output keeps finished runs so that an interrupted benchmark resumes
(``ganforge.bench.jobs``).

    ganforge bench unrolled [--quick] [--out benchmarks/results/unrolled.json]
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from ganforge.bench.jobs import finish, machine_line, partial_path, run_jobs, seed_cells
from ganforge.bench.toy_modes import PUBLISHED, _ms
from ganforge.registry import BENCHMARKS

VARIANTS = {"plain": 0, "unrolled-5": 5, "unrolled-10": 10}
DATASETS = ("ring", "grid")
SEEDS = (0, 1, 2)
#: Chosen to fit ~30 min of wall time on a 2-core CPU shared with other jobs (18 runs, 2 at a time).
FULL = {"steps": 600, "batch_size": 128}
QUICK = {"steps": 100, "batch_size": 128, "datasets": ("ring",), "seeds": (0,), "variants": ("plain", "unrolled-5")}


def _one(job: dict) -> dict:
    """Train one run (in a worker process); its final metrics and wall time."""
    torch.set_num_threads(1)
    import ganforge.components  # noqa: F401
    from ganforge import api
    from ganforge.lab.gan_runs import toy_config

    cfg = toy_config("ns", job["steps"], 0, job["seed"], data=job["dataset"], batch_size=job["batch_size"],
                     game={"unrolled_steps": job["k"], "unrolled_lr": 5e-4})
    cfg["name"] = f"bench-unrolled-{job['variant']}"
    cfg["checkpoint"] = {"every": 0, "keep": 1}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ganforge-unrolled-") as d:
        res = api.train(cfg, out=d, quiet=True)
    return {**{k: job[k] for k in ("variant", "k", "dataset", "seed")}, **res.metrics,
            "seconds": time.perf_counter() - t0}


def _jobs(quick: bool) -> list[dict]:
    spec = QUICK if quick else FULL
    steps, batch = spec["steps"], spec["batch_size"]
    datasets = QUICK["datasets"] if quick else DATASETS
    seeds = QUICK["seeds"] if quick else SEEDS
    variants = QUICK["variants"] if quick else tuple(VARIANTS)
    return [{"variant": v, "k": VARIANTS[v], "dataset": ds, "seed": s, "steps": steps, "batch_size": batch}
            for ds in datasets for s in seeds for v in variants]


def _key(r: dict) -> tuple:
    return (r["variant"], r["dataset"], r["seed"])


@BENCHMARKS.register("unrolled")
def run(*, quick: bool = False, out: str | None = None, workers: int = 2) -> dict[str, Any]:
    """Modes / HQ / rKL / seconds of the plain and unrolled (k = 5, 10) GAN on the ring and grid."""
    jobs = _jobs(quick)
    partial = partial_path(out)
    t0 = time.perf_counter()
    runs = run_jobs(jobs, _one, _key, partial=partial, workers=workers,
                    report=lambda r: f"unrolled: {r['dataset']:<5} {r['variant']:<12} seed {r['seed']}: "
                                     f"modes {r.get('modes')} hq {r.get('hq')} ({r['seconds']:.0f}s)")
    cells = seed_cells(jobs, runs, ("dataset", "variant"))
    for cell in cells:
        rs = [r for r in runs if r["dataset"] == cell["dataset"] and r["variant"] == cell["variant"]]
        cell.update(k=VARIANTS[cell["variant"]], rkl_finite=sum(r.get("rkl") is not None for r in rs))
    result = {
        "benchmark": "unrolled",
        "quick": quick,
        "machine": machine_line(1) + f"; {workers} runs at a time, 1 thread each",
        "threads": 1,
        "setup": {"steps": jobs[0]["steps"], "batch_size": jobs[0]["batch_size"], "objective": "ns",
                  "nets": "G, D: MLP 2x128 (ReLU / LeakyReLU 0.2), no batch norm; z_dim 16",
                  "optim": "Adam lr 5e-4, betas (0.5, 0.999), 1 critic step per generator step",
                  "unrolling": "fresh differentiable Adam, lr 5e-4, gradients through the unrolled steps",
                  "eval": "2,500 samples of the final generator, PacGAN/VEEGAN protocol"},
        "wall_seconds": time.perf_counter() - t0,
        "cells": cells,
        "runs": runs,
    }
    if out:
        write(result, out)
        finish(partial)
    return result


def write(result: dict[str, Any], out: str) -> None:
    """JSON to ``out`` and a markdown table beside it (.md)."""
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    st = result["setup"]
    n_modes = {"ring": 8, "grid": 25}
    lines = [f"# Plain vs unrolled GAN on 2D mixtures ({'quick' if result['quick'] else 'full'})", "",
             f"Machine: {result['machine']}. Each run: {st['steps']} generator steps, batch {st['batch_size']}, "
             f"objective `{st['objective']}`; {st['nets']}; {st['optim']}. Unrolling: {st['unrolling']}. "
             f"Scored on {st['eval']}; mean ± std over seeds (rKL over the runs with at least one HQ sample). "
             f"Wall time of the whole benchmark {result['wall_seconds'] / 60:.1f} min.", "",
             "Seconds per run depend on the load that other jobs put on the shared machine: compare them within "
             "a table. At this budget HQ stays low for every model (few samples lie within 3 std of a mode, "
             "0.03 on the ring); the published rows train 400 epochs of larger nets.", ""]
    for ds in dict.fromkeys(c["dataset"] for c in result["cells"]):
        lines += [f"## {ds} ({n_modes.get(ds, '?')} modes)", "",
                  "| model | seeds | modes | HQ % | rKL (runs) | seconds/run |", "|---|---|---|---|---|---|"]
        for c in result["cells"]:
            if c["dataset"] != ds:
                continue
            hq = (c["hq"][0] * 100, c["hq"][1] * 100)
            name = "GAN (plain)" if c["k"] == 0 else f"Unrolled GAN, {c['k']} steps"
            lines.append(f"| {name} | {c['seeds']} | {_ms(c['modes'], '{:.1f}')} | {_ms(hq, '{:.1f}')} | "
                         f"{_ms(c['rkl'])} ({c['rkl_finite']}) | {_ms(c['seconds'], '{:.0f}')} |")
        col = 0 if ds == "ring" else 1
        lines += ["", "Published (../shared/BENCHMARKS.md; PacGAN protocol: 400 epochs of 100,000 points, larger "
                  "nets, 10 trials):", "", "| model | modes | HQ % | rKL |", "|---|---|---|---|"]
        for name, *vals in PUBLISHED:
            m, hq, rkl = vals[col]
            lines.append(f"| {name} | {m} | {hq} | {'-' if rkl is None else rkl} |")
        lines.append("")
    path.with_suffix(".md").write_text("\n".join(lines) + "\n")
