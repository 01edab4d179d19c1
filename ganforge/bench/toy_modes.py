"""Mode coverage on the 2D Gaussian mixtures, every objective, several seeds (PacGAN/VEEGAN protocol).

Each cell trains the recipe ``configs/toy/<dataset>-<objective>.yaml`` where
one exists (objectives whose settings differ, e.g. WGAN-GP's 5 critic steps),
else ``configs/toy/<dataset>.yaml`` with ``--objective.name=X``, and scores 2,500 samples
of the final generator: modes captured, high-quality fraction (samples within 3
std of their nearest mode) and reverse KL of the mode histogram
(``ganforge.metrics.modes``). Runs go two at a time, one thread each. Finished
runs are kept in a ``.partial.jsonl`` file (``bench.jobs``), so an
interrupted benchmark continues where it stopped.

    ganforge bench toy-modes [--quick] [--out benchmarks/results/toy-modes.json]
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from ganforge.bench.jobs import partial_path, run_jobs, seed_cells
from ganforge.registry import BENCHMARKS

ROOT = Path(__file__).resolve().parents[2]

OBJECTIVES = ("ns", "minimax", "wgan-gp", "hinge", "lsgan", "kl")
#: Generator steps per run in the full benchmark: fewer than the recipes' 6000 so that
#: 6 objectives x 2 datasets x 3 seeds fit in about half an hour on 2 cores.
FULL_STEPS = 2000
QUICK_STEPS = 300
DATASETS = ("ring", "grid")
SEEDS = (0, 1, 2)



def recipe(dataset: str, objective: str) -> Path:
    """configs/toy/<dataset>-<objective>.yaml when that objective needs its own settings, else <dataset>.yaml."""
    own = ROOT / "configs" / "toy" / f"{dataset}-{objective}.yaml"
    return own if own.exists() else ROOT / "configs" / "toy" / f"{dataset}.yaml"


#: Published rows (../shared/BENCHMARKS.md): modes, HQ %, rKL for ring then grid; None where not reported.
PUBLISHED = [
    ("GAN (VEEGAN Table 1)", (1, 99.3, None), (3.3, 0.5, None)),
    ("Unrolled GAN, 5 steps (VEEGAN Table 1)", (7.6, 35.6, None), (23.6, 16, None)),
    ("VEEGAN (VEEGAN Table 1)", (8, 52.9, None), (24.6, 40, None)),
    ("GAN (PacGAN Table 1)", (6.3, 98.2, 0.45), (17.3, 94.8, 0.70)),
    ("PacGAN2 (PacGAN Table 1)", (7.9, 95.6, 0.07), (23.8, 91.3, 0.13)),
    ("PacGAN4 (PacGAN Table 1)", (7.8, 95.9, 0.07), (24.8, 93.6, 0.04)),
]


def _one(job: dict) -> dict:
    """Train one cell (in a worker process) and return its final metrics and wall time."""
    torch.set_num_threads(1)
    from ganforge import api

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ganforge-toymodes-") as d:
        res = api.train(job["recipe"], overrides=job["overrides"], out=d, quiet=True)
    return {**{k: job[k] for k in ("objective", "dataset", "seed")}, **res.metrics,
            "seconds": time.perf_counter() - t0}


def _jobs(quick: bool) -> list[dict]:
    objectives = ("ns", "hinge") if quick else OBJECTIVES
    datasets = ("ring",) if quick else DATASETS
    seeds = (0,) if quick else SEEDS
    jobs = []
    for obj in objectives:
        for ds in datasets:
            for seed in seeds:
                ov = [f"--objective.name={obj}", f"--train.seed={seed}", "--train.threads=1", "--eval.every=0",
                      "--eval.samples=false", "--checkpoint.every=0", "--checkpoint.keep=1"]
                ov.append(f"--train.steps={QUICK_STEPS if quick else FULL_STEPS}")
                jobs.append({"objective": obj, "dataset": ds, "seed": seed, "overrides": ov,
                             "recipe": str(recipe(ds, obj))})
    return jobs


def _key(r: dict) -> tuple:
    return (r["objective"], r["dataset"], r["seed"])


@BENCHMARKS.register("toy-modes")
def run(*, quick: bool = False, out: str | None = None, workers: int = 2) -> dict[str, Any]:
    """Modes / HQ / rKL / seconds of every objective on the ring and grid, mean +- std over seeds."""
    jobs = _jobs(quick)
    partial = partial_path(out)
    t0 = time.perf_counter()
    runs = run_jobs(jobs, _one, _key, partial=partial, workers=workers,
                    report=lambda r: f"toy-modes: {r['dataset']:<5} {r['objective']:<10} seed {r['seed']}: "
                                     f"modes {r.get('modes')} hq {r.get('hq')} ({r['seconds']:.0f}s)")
    cells = seed_cells(jobs, runs, ("dataset", "objective"))
    result = {
        "benchmark": "toy-modes",
        "quick": quick,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}; "
                   f"{workers} runs at a time, 1 thread each",
        "recipes": {f"{j['dataset']}/{j['objective']}": str(Path(j["recipe"]).relative_to(ROOT)) for j in jobs},
        "steps": QUICK_STEPS if quick else FULL_STEPS,
        "wall_seconds": time.perf_counter() - t0,
        "cells": cells,
        "runs": runs,
    }
    if out:
        write(result, out)
        if partial is not None and partial.exists():
            partial.unlink()
    return result


def _ms(v: tuple[float, float], fmt: str = "{:.2f}") -> str:
    m, s = v
    if m != m:  # nan
        return "-"
    return f"{fmt.format(m)} ± {fmt.format(s)}"


def write(result: dict[str, Any], out: str) -> None:
    """JSON to ``out`` and a markdown table beside it (.md)."""
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    datasets = list(dict.fromkeys(c["dataset"] for c in result["cells"]))
    n_modes = {"ring": 8, "grid": 25}
    lines = [f"# Mode coverage on 2D Gaussian mixtures ({'quick' if result['quick'] else 'full'})", "",
             f"Machine: {result['machine']}. Recipes: "
             + ", ".join(f"`{v}`" for v in sorted(set(result["recipes"].values())))
             + " (the dataset recipe with `--objective.name=X` unless the objective has its own file), "
             f"each run cut to {result['steps']} generator steps. "
             "2,500 samples of the final generator; mean ± std over seeds; "
             f"wall time of the whole benchmark {result['wall_seconds'] / 60:.1f} min.", ""]
    for ds in datasets:
        lines += [f"## {ds} ({n_modes.get(ds, '?')} modes)", "",
                  "| objective | seeds | modes | HQ % | rKL | seconds/run |", "|---|---|---|---|---|---|"]
        for c in result["cells"]:
            if c["dataset"] != ds:
                continue
            hq = (c["hq"][0] * 100, c["hq"][1] * 100)
            lines.append(f"| {c['objective']} | {c['seeds']} | {_ms(c['modes'], '{:.1f}')} | {_ms(hq, '{:.1f}')} | "
                         f"{_ms(c['rkl'])} | {_ms(c['seconds'], '{:.0f}')} |")
        idx = 1 if ds == "ring" else 2
        lines += ["", "Published (../shared/BENCHMARKS.md; 400 epochs, 10 trials, means ± s.e.):", "",
                  "| model | modes | HQ % | rKL |", "|---|---|---|---|"]
        for name, *vals in PUBLISHED:
            m, hq, rkl = vals[idx - 1]
            lines.append(f"| {name} | {m} | {hq} | {'-' if rkl is None else rkl} |")
        lines.append("")
    path.with_suffix(".md").write_text("\n".join(lines) + "\n")
