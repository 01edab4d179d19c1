"""The toy recipes against PacGAN's published table: modes, HQ, rKL and CPU-seconds per run, over seeds.

Trains ``configs/toy/ring.yaml`` and ``configs/toy/grid.yaml`` exactly as shipped (only the seed, one
thread and no intermediate evaluations, figures or checkpoints are overridden), 5 seeds each, and
scores 2,500 samples of the final generator with the PacGAN/VEEGAN protocol
(``ganforge.metrics.modes``). Each run's cost is the CPU time (user + system, ``time.process_time``)
of its ``api.train`` call in a one-thread worker process: building, training and the final
evaluation, not the interpreter's start-up and imports (measured once, reported apart). Means carry
a 95 % Student-t interval over seeds (``bench.compare.mean_ci``). Runs go two at a time; finished
runs are kept in a ``.partial.jsonl`` file (``bench.jobs``), so an interrupted benchmark continues.
The runs recorded in the output JSON already there (the committed table) are kept the same way, so
that after a change to one recipe only that recipe's runs are trained again; the table says which
runs were reused and the machine line they were measured under. A kept run is reused only when its
record carries the hash of the same fully resolved config (recipe, the recipes it bases on, every
default, the overrides; ``config_hash``): after any change to a recipe or to a default the runs are
trained again, and records without a hash never count. Delete the output JSON to train every run anew.

A recipe that samples with discriminator rejection sampling (``game.drs``) is scored both ways: its
metrics as the recipe samples, and ``*_plain`` metrics of the same final generator sampled directly
(the same evaluation seed and n), outside the run's CPU-seconds.

    ganforge bench toy-frontier [--quick] [--out benchmarks/results/toy-frontier.json]
"""

from __future__ import annotations

import hashlib
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
from ganforge.bench.jobs import ci_text, finish, machine_line, partial_path, run_jobs
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
        cpu, wall = time.process_time() - c0, time.perf_counter() - t0
        plain = _plain_metrics(d)
    return {"dataset": job["dataset"], "seed": job["seed"], "config_hash": job["config_hash"],
            **{k: res.metrics.get(k) for k in ("modes", "hq", "rkl")}, **plain,
            "cpu_seconds": cpu, "wall_seconds": wall}


def _plain_metrics(run_dir: str) -> dict:
    """For a run that samples with rejection (game.drs): modes / hq / rkl of direct samples, else {}."""
    from ganforge import api
    from ganforge.metrics.modes import mode_metrics

    game, cfg, _ = api.load_game(run_dir)
    if not getattr(game, "drs", False):
        return {}
    game.drs = False
    x = game.sample(cfg.eval.n, generator=torch.Generator().manual_seed(cfg.eval.seed))
    dens = game.data.density
    m = mode_metrics(x, dens.means, dens.std)
    return {f"{k}_plain": m[k] for k in ("modes", "hq", "rkl")}


def config_hash(recipe: str, overrides: list[str]) -> str:
    """sha256 (16 hex digits) of the fully resolved config of ``recipe`` with ``overrides``."""
    from ganforge import api

    cfg = api.make_config(recipe, overrides)
    return hashlib.sha256(json.dumps(cfg.data, sort_keys=True, default=str).encode()).hexdigest()[:16]


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
        recipe = str(ROOT / "configs" / "toy" / f"{ds}.yaml")
        jobs.append({"dataset": ds, "seed": seed, "overrides": ov, "recipe": recipe,
                     "config_hash": config_hash(recipe, ov)})
    return jobs


def job_key(r: dict) -> tuple:
    """A job and its record match only with the same data, seed and resolved config (None: never reused)."""
    return r["dataset"], r["seed"], r.get("config_hash") or object()


def previous_runs(out: str | None, jobs: list[dict]) -> dict:
    """Runs of the output JSON already at ``out`` that match one of ``jobs`` (same data, seed, config hash),
    by ``job_key``, each marked ``reused`` with the machine line it was measured under; {} without one."""
    path = Path(out) if out else None
    if path is None or not path.exists():
        return {}
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if old.get("benchmark") != "toy-frontier":
        return {}
    wanted = {job_key(j) for j in jobs}
    kept = {}
    for r in old.get("runs", []):
        if r.get("config_hash") and job_key(r) in wanted:
            kept[job_key(r)] = {**r, "reused": r.get("reused") or old.get("machine", "an earlier run")}
    return kept


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
    previous = previous_runs(out, jobs)
    t0 = time.perf_counter()
    trained = run_jobs([j for j in jobs if job_key(j) not in previous], _one, job_key, partial=partial,
                       workers=workers,
                       report=lambda r: f"toy-frontier: {r['dataset']:<5} seed {r['seed']}: modes {r['modes']} "
                                        f"hq {r['hq']} rkl {r['rkl']} ({r['cpu_seconds']:.0f} CPU-s)")
    by_key = {**previous, **{job_key(r): r for r in trained}}
    runs = [by_key[job_key(j)] for j in jobs]
    result = summarise(runs, quick=quick, workers=workers, wall=time.perf_counter() - t0)
    if out:
        write(result, out)
        finish(partial)
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
        cell = {"dataset": ds, "seeds": len(rs),
                **{m: mean_ci([r[m] for r in rs if r[m] is not None]) for m in METRICS}}
        if rs and all("hq_plain" in r for r in rs):  # a recipe with rejection sampling: also its direct samples
            cell["plain"] = {**{m: mean_ci([r[f"{m}_plain"] for r in rs if r[f"{m}_plain"] is not None])
                                for m in METRICS[:3]}, "cpu_seconds": cell["cpu_seconds"]}
        cells.append(cell)
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
    ok = "yes" if met({**cell, **cell.get("view", {})}, target) else "no"
    return ok if cell["seeds"] >= len(SEEDS) else f"{ok} ({cell['seeds']} seed{'s' if cell['seeds'] != 1 else ''})"


def _seeds_text(runs: list[dict]) -> str:
    """"ring seeds 0, 1; grid seed 4": the runs' data and seeds, in order."""
    parts = []
    for ds in dict.fromkeys(r["dataset"] for r in runs):
        seeds = [str(r["seed"]) for r in runs if r["dataset"] == ds]
        parts.append(f"{ds} seed{'s' if len(seeds) > 1 else ''} {', '.join(seeds)}")
    return "; ".join(parts)


def _reuse_text(runs: list[dict]) -> str:
    """The sentence saying which runs were reused from the earlier table (and under which machine line)."""
    reused = [r for r in runs if r.get("reused")]
    if not reused:
        return ""
    trained = [r for r in runs if not r.get("reused")]
    where = "; ".join(dict.fromkeys(r["reused"] for r in reused))
    return (f" Reused from the earlier table, not trained again (same resolved config hash): "
            f"{_seeds_text(reused)}, measured under: {where}. Trained in this run (the wall time is theirs): "
            f"{_seeds_text(trained) if trained else 'none'}.")


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
             + ". 2,500 samples of the final generator (EMA weights; where a recipe sets `game.drs`, kept by "
             "discriminator rejection sampling, and the same generators are also scored sampled directly), "
             "PacGAN/VEEGAN protocol "
             "(`ganforge.metrics.modes`). Mean ± half-width of the 95 % Student-t interval over seeds. "
             "CPU-s = user + system CPU time of one run's `api.train` (build, train, final evaluation) at 1 thread; "
             f"a fresh interpreter's imports add {result['startup_cpu_seconds']:.1f} CPU-s once. "
             f"Wall time of the whole benchmark {result['wall_seconds'] / 60:.1f} min."
             + _reuse_text(result["runs"]), "",
             "| data | model | seeds | modes | HQ % | rKL | CPU-s per run | target | met (means) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for c in result["cells"]:
        t = result["targets"][c["dataset"]]
        target = f"modes ≥ {t['modes']}, HQ ≥ {t['hq'] * 100:g} %" + \
            (f", rKL ≤ {t['rkl']}" if t["rkl"] is not None else "") + f", ≤ {t['cpu_seconds']} CPU-s"
        recipe = f"ganforge `{result['recipes'][c['dataset']]}`"
        views = [(recipe + (" (DRS sampling)" if "plain" in c else ""), c)]
        if "plain" in c:
            views.append(("the same runs' generators sampled directly (no DRS)", {**c, "view": c["plain"]}))
        for label, v in views:
            st = {**v, **v.get("view", {})}
            lines.append(f"| {c['dataset']} | {label} | {c['seeds']} | "
                         f"{ci_text(st['modes'], fmt='{:.1f}')} | {ci_text(st['hq'], 100, '{:.1f}')} | "
                         f"{ci_text(st['rkl'], fmt='{:.4f}')} | "
                         f"{ci_text(st['cpu_seconds'], fmt='{:.0f}')} | {target} | {_met_text(v, t)} |")
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
              "| data | seed | modes | HQ % | rKL | direct sampling: modes, HQ %, rKL | CPU-s |",
              "|---|---|---|---|---|---|---|"]
    for r in result["runs"]:
        hq = "-" if r["hq"] is None else f"{r['hq'] * 100:.1f}"
        rkl = "-" if r["rkl"] is None else f"{r['rkl']:.4f}"
        plain = (f"{r['modes_plain']}, {r['hq_plain'] * 100:.1f}, {r['rkl_plain']:.4f}" if r.get("hq_plain")
                 is not None else "- (sampled directly)")
        lines.append(f"| {r['dataset']} | {r['seed']} | {r['modes']} | {hq} | {rkl} | {plain} | "
                     f"{r['cpu_seconds']:.0f}{' (reused)' if r.get('reused') else ''} |")
    path.with_suffix(".md").write_text("\n".join(lines) + "\n")
