"""The toy recipes against PacGAN's published table: modes, HQ, rKL and CPU-seconds per run, over seeds.

Trains ``configs/toy/ring.yaml`` and ``configs/toy/grid.yaml`` exactly as shipped (only the seed, one
thread and no intermediate evaluations, figures or checkpoints are overridden), 5 seeds each, and
scores 2,500 samples of the final generator with the PacGAN/VEEGAN protocol
(``ganforge.metrics.modes``). Each run's cost is the CPU time (user + system, ``time.process_time``)
of its ``api.train`` call in a one-thread worker process: building, training and the final
evaluation, not the interpreter's start-up and imports (measured once, reported apart). Means carry
a 95 % Student-t interval over seeds (``bench.compare.mean_ci``). Runs go two at a time; finished
runs are kept in a ``.partial.jsonl`` file (``bench.jobs``), so an interrupted benchmark continues.

    ganforge bench toy-frontier [--quick] [--out benchmarks/results/toy-frontier.json]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from ganforge.bench.compare import mean_ci
from ganforge.bench.jobs import ci_text, machine_line, partial_path, run_jobs
from ganforge.bench.toy_modes import PUBLISHED
from ganforge.registry import BENCHMARKS

ROOT = Path(__file__).resolve().parents[2]
DATASETS = ("ring", "grid")
SEEDS = (0, 1, 2, 3, 4)
QUICK_STEPS = 200
#: The issue's targets: (modes >=, HQ >=, rKL <=, CPU-seconds per run <=); None where none is set.
TARGETS = {"ring": (8, 0.97, 0.02, 60), "grid": (24.8, 0.936, None, 300)}
METRICS = ("modes", "hq", "rkl", "cpu_seconds")


def _one(job: dict) -> dict:
    """Train one seed of one recipe in this (one-thread) worker; its final metrics and CPU-seconds."""
    torch.set_num_threads(1)
    from ganforge import api

    c0, t0 = time.process_time(), time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ganforge-frontier-") as d:
        res = api.train(job["recipe"], overrides=job["overrides"], out=d, quiet=True)
    return {"dataset": job["dataset"], "seed": job["seed"],
            **{k: res.metrics.get(k) for k in ("modes", "hq", "rkl")},
            "cpu_seconds": time.process_time() - c0, "wall_seconds": time.perf_counter() - t0}


def _jobs(quick: bool) -> list[dict]:
    """Grid seed 0 first, so that the longest runs start at once beside the short ring runs."""
    seeds = SEEDS[:1] if quick else SEEDS
    order = [("grid", seeds[0])] + [("ring", s) for s in seeds] + [("grid", s) for s in seeds[1:]]
    jobs = []
    for ds, seed in order:
        ov = [f"--train.seed={seed}", "--train.threads=1", "--eval.every=0", "--eval.samples=false",
              "--checkpoint.every=0", "--checkpoint.keep=1", "--train.tensorboard=false"]
        if quick:
            ov.append(f"--train.steps={QUICK_STEPS}")
        jobs.append({"dataset": ds, "seed": seed, "overrides": ov,
                     "recipe": str(ROOT / "configs" / "toy" / f"{ds}.yaml")})
    return jobs


def startup_cpu_seconds() -> float:
    """CPU-seconds of a fresh one-thread interpreter that imports ganforge's components (not in a run's cost)."""
    code = ("import resource, torch; torch.set_num_threads(1); import ganforge.components; "
            "r = resource.getrusage(resource.RUSAGE_SELF); print(r.ru_utime + r.ru_stime)")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return float(out.stdout.strip().splitlines()[-1])


@BENCHMARKS.register("toy-frontier")
def run(*, quick: bool = False, out: str | None = None, workers: int = 2) -> dict[str, Any]:
    """Ring and grid recipes, 5 seeds each: modes / HQ / rKL / CPU-s, mean and 95 % CI, beside PacGAN's rows."""
    jobs = _jobs(quick)
    partial = partial_path(out)
    t0 = time.perf_counter()
    runs = run_jobs(jobs, _one, lambda r: (r["dataset"], r["seed"]), partial=partial, workers=workers,
                    report=lambda r: f"toy-frontier: {r['dataset']:<5} seed {r['seed']}: modes {r['modes']} "
                                     f"hq {r['hq']} rkl {r['rkl']} ({r['cpu_seconds']:.0f} CPU-s)")
    result = summarise(runs, quick=quick, workers=workers, wall=time.perf_counter() - t0)
    if out:
        write(result, out)
        if partial is not None and partial.exists():
            partial.unlink()
    return result


def met(cell: dict, target: dict) -> bool:
    """Whether the cell's means reach every target (modes, HQ at least; rKL, CPU-seconds at most)."""
    mean = {k: cell[k]["mean"] for k in METRICS}
    if any(v is None for v in mean.values()):
        return False
    return (mean["modes"] >= target["modes"] and mean["hq"] >= target["hq"]
            and (target["rkl"] is None or mean["rkl"] <= target["rkl"])
            and mean["cpu_seconds"] <= target["cpu_seconds"])


def summarise(runs: list[dict], *, quick: bool, workers: int, wall: float) -> dict[str, Any]:
    """The result record for finished ``runs`` (also usable on a ``.partial.jsonl`` of an unfinished run)."""
    cells = []
    for ds in DATASETS:
        rs = [r for r in runs if r["dataset"] == ds]
        cells.append({"dataset": ds, "seeds": len(rs),
                      **{m: mean_ci([r[m] for r in rs if r[m] is not None]) for m in METRICS}})
    return {
        "benchmark": "toy-frontier",
        "quick": quick,
        "machine": f"{machine_line(1)} (a 2-core CPU shared with other jobs); {workers} runs at a time, "
                   f"1 thread each (OMP_NUM_THREADS and train.threads = 1)",
        "threads": 1,
        "recipes": {ds: f"configs/toy/{ds}.yaml" for ds in DATASETS},
        "steps_override": QUICK_STEPS if quick else None,
        "startup_cpu_seconds": startup_cpu_seconds(),
        "targets": {ds: dict(zip(("modes", "hq", "rkl", "cpu_seconds"), t, strict=True)) for ds, t in TARGETS.items()},
        "wall_seconds": wall,
        "cells": cells,
        "runs": sorted(runs, key=lambda r: (DATASETS.index(r["dataset"]), r["seed"])),
    }


def _met_text(cell: dict, target: dict) -> str:
    ok = "yes" if met(cell, target) else "no"
    return ok if cell["seeds"] >= len(SEEDS) else f"{ok} ({cell['seeds']} seed{'s' if cell['seeds'] != 1 else ''})"


def _ci(st: dict, scale: float = 1.0, fmt: str = "{:.3f}") -> str:
    return ci_text(st, scale, fmt)


def write(result: dict[str, Any], out: str) -> None:
    """JSON to ``out`` and a markdown table beside it (.md)."""
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    cmd = "ganforge bench toy-frontier" + (" --quick" if result["quick"] else "")
    quick = " (quick)" if result["quick"] else ""
    lines = [f"# Toy frontier: ganforge's ring and grid recipes beside PacGAN's table{quick}",
             "", f"Made by `{cmd}`. Machine: {result['machine']}. Recipes: "
             + ", ".join(f"`{v}`" for v in result["recipes"].values())
             + (f", cut to {result['steps_override']} steps" if result["steps_override"] else ", as shipped")
             + ". 2,500 samples of the final generator (EMA weights), PacGAN/VEEGAN protocol "
             "(`ganforge.metrics.modes`). Mean ± half-width of the 95 % Student-t interval over seeds. "
             "CPU-s = user + system CPU time of one run's `api.train` (build, train, final evaluation) at 1 thread; "
             f"a fresh interpreter's imports add {result['startup_cpu_seconds']:.1f} CPU-s once. "
             f"Wall time of the whole benchmark {result['wall_seconds'] / 60:.1f} min.", "",
             "| data | model | seeds | modes | HQ % | rKL | CPU-s per run | target | met (means) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for c in result["cells"]:
        t = result["targets"][c["dataset"]]
        target = f"modes ≥ {t['modes']}, HQ ≥ {t['hq'] * 100:g} %" + \
            (f", rKL ≤ {t['rkl']}" if t["rkl"] is not None else "") + f", ≤ {t['cpu_seconds']} CPU-s"
        lines.append(f"| {c['dataset']} | ganforge `{result['recipes'][c['dataset']]}` | {c['seeds']} | "
                     f"{_ci(c['modes'], fmt='{:.1f}')} | {_ci(c['hq'], 100, '{:.1f}')} | "
                     f"{_ci(c['rkl'], fmt='{:.4f}')} | "
                     f"{_ci(c['cpu_seconds'], fmt='{:.0f}')} | {target} | {_met_text(c, t)} |")
        idx = DATASETS.index(c["dataset"])
        for name, *vals in PUBLISHED:
            if "PacGAN" in name:
                m, hq, rkl = vals[idx]
                lines.append(f"| {c['dataset']} | {name} | 10 | {m} | {hq} | {'-' if rkl is None else rkl} | "
                             f"- (400 epochs of 100k) | | |")
    short = [f"{c['dataset']} {c['seeds']} of {len(SEEDS)}" for c in result["cells"]
             if not result["quick"] and c["seeds"] < len(SEEDS)]
    if short:
        lines += ["", f"**Incomplete**: seeds finished: {', '.join(short)}. Running the same command again "
                  f"finishes the rest; it skips the finished runs where their record "
                  f"`{path.with_suffix('.partial.jsonl').name}` (git-ignored) is beside the output."]
    lines += ["", "Published rows: ../shared/BENCHMARKS.md (PacGAN Table 1; means ± s.e. over 10 trials; "
              "G = MLP 4 x 400, D = maxout 3 x 200, batch 100, 400 epochs).", "",
              "| data | seed | modes | HQ % | rKL | CPU-s |", "|---|---|---|---|---|---|"]
    for r in result["runs"]:
        hq = "-" if r["hq"] is None else f"{r['hq'] * 100:.1f}"
        rkl = "-" if r["rkl"] is None else f"{r['rkl']:.4f}"
        lines.append(f"| {r['dataset']} | {r['seed']} | {r['modes']} | {hq} | {rkl} | {r['cpu_seconds']:.0f} |")
    path.with_suffix(".md").write_text("\n".join(lines) + "\n")
