"""``ganforge bench gain``: GAIN imputation against mean imputation and scikit-learn's IterativeImputer.

Each job hides a fraction of a bundled scikit-learn table's entries completely at random (MCAR, 20 % and
50 %, mask seed = the job's seed), trains ``configs/gain/breast_cancer.yaml`` on what is left (only
``data.table``, ``data.missing_rate``, the seeds and the run mechanics overridden), and fills the hidden
entries three ways on the same mask:

- GAIN (Yoon et al. 2018), the trained generator, one imputation draw;
- mean imputation: each column's observed mean;
- ``IterativeImputer`` (scikit-learn, MICE-like chained regressions; its defaults: BayesianRidge,
  max_iter 10, random_state = seed).

RMSE over the hidden entries with both tables min-max scaled to [0, 1] by the true table's columns, the
paper's convention (its code's ``rmse_loss``). Mean ± half-width of the 95 % Student-t interval over 3
seeds (``bench.compare.mean_ci``). Target (issue 15): GAIN below mean imputation on every table.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganforge.bench.compare import mean_ci
from ganforge.bench.cyclegan_bench import RUN_OVERRIDES, train_recipe
from ganforge.bench.jobs import ci_text, finish, machine_line, partial_path, run_jobs
from ganforge.bench.translation import write
from ganforge.registry import BENCHMARKS

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "configs" / "gain" / "breast_cancer.yaml"
TABLES = ("breast_cancer", "wine", "diabetes")
RATES = (0.2, 0.5)
SEEDS = (0, 1, 2)
QUICK_STEPS = 300
METHODS = {"gain": "GAIN", "mean": "mean", "iterative": "IterativeImputer"}


def iterative_impute(values: np.ndarray, seed: int) -> tuple[np.ndarray, bool]:
    """scikit-learn's IterativeImputer with its defaults: (completed table, whether it converged)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.experimental import enable_iterative_imputer  # noqa: F401  (makes IterativeImputer importable)
    from sklearn.impute import IterativeImputer

    imp = IterativeImputer(random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # recorded as "converged" instead
        out = imp.fit_transform(values)
    return out, bool(imp.n_iter_ < imp.max_iter)


def _one(job: dict) -> dict:
    """One (table, rate, seed): GAIN trained here, the two baselines on the same mask, RMSEs and CPU-s."""
    from ganforge.data.tabular import mean_impute, scaled_rmse

    torch.set_num_threads(1)
    game, cpu, cfg = train_recipe(RECIPE, job["overrides"])
    info = game.data.info
    truth, hidden = info["truth"], info["hidden"]
    given = np.where(hidden, np.nan, truth)
    c0 = time.process_time()
    filled = {"gain": game.impute_values(given, generator=torch.Generator().manual_seed(job["seed"]))}
    cpu_impute = time.process_time() - c0
    filled["mean"] = mean_impute(given)
    c0 = time.process_time()
    filled["iterative"], converged = iterative_impute(given, job["seed"])
    cpu_iter = time.process_time() - c0
    observed = ~np.isnan(given)
    assert np.array_equal(filled["gain"][observed], given[observed])  # GAIN never touches an observed entry
    return {"table": job["table"], "rate": job["rate"], "seed": job["seed"], "shape": list(truth.shape),
            "hidden": int(hidden.sum()), "steps": cfg["train"]["steps"], "cpu_s": cpu, "cpu_s_impute": cpu_impute,
            "cpu_s_iterative": cpu_iter, "iterative_converged": converged,
            **{f"rmse_{k}": scaled_rmse(v, truth, hidden) for k, v in filled.items()}}


def _jobs(quick: bool) -> list[dict]:
    tables, rates, seeds = (TABLES[:1], RATES[:1], SEEDS[:1]) if quick else (TABLES, RATES, SEEDS)
    steps = [f"--train.steps={QUICK_STEPS}"] if quick else []
    # seed-major: an interrupted bench has every (table, rate) cell on its first seeds (the partial record)
    return [{"table": t, "rate": r, "seed": s,
             "overrides": [f"--data.table={t}", f"--data.missing_rate={r}", f"--data.seed={s}",
                           f"--train.seed={s}", *RUN_OVERRIDES, *steps]}
            for s in seeds for t in tables for r in rates]


@BENCHMARKS.register("gain")
def run(*, quick: bool = False, out: str | None = None, workers: int = 2) -> dict[str, Any]:
    """GAIN vs mean imputation vs IterativeImputer: [0,1]-scaled RMSE at 20 % and 50 % MCAR, 3 tables, 3 seeds."""
    jobs = _jobs(quick)
    partial = partial_path(out)
    t0 = time.perf_counter()
    runs = run_jobs(jobs, _one, lambda r: (r["table"], r["rate"], r["seed"]), partial=partial,
                    workers=1 if quick else workers,
                    report=lambda r: f"gain bench: {r['table']} {r['rate']:.0%} seed {r['seed']}: RMSE GAIN "
                                     f"{r['rmse_gain']:.4f}, mean {r['rmse_mean']:.4f}, iterative "
                                     f"{r['rmse_iterative']:.4f} ({r['cpu_s']:.0f} CPU-s)")
    result = summarise(jobs, runs, quick=quick, workers=1 if quick else workers, wall=time.perf_counter() - t0)
    write(result, out, markdown(result))
    if out:
        finish(partial)
    return result


def summarise(jobs: list[dict], runs: list[dict], *, quick: bool, workers: int, wall: float) -> dict[str, Any]:
    """The result record of the finished ``runs`` (all of ``jobs``, or those of an interrupted bench)."""
    cells = []
    for t in dict.fromkeys(j["table"] for j in jobs):
        for rate in dict.fromkeys(j["rate"] for j in jobs):
            rs = [r for r in runs if r["table"] == t and r["rate"] == rate]
            if not rs:
                continue
            cells.append({"table": t, "rate": rate, "shape": rs[0]["shape"], "seeds": len(rs),
                          **{k: mean_ci([r[f"rmse_{k}"] for r in rs]) for k in METHODS},
                          "gain_wins_vs_mean": sum(r["rmse_gain"] < r["rmse_mean"] for r in rs),
                          "gain_wins_vs_iterative": sum(r["rmse_gain"] < r["rmse_iterative"] for r in rs),
                          "cpu_s": mean_ci([r["cpu_s"] for r in rs]),
                          "cpu_s_iterative": mean_ci([r["cpu_s_iterative"] for r in rs]),
                          "iterative_converged": sum(r["iterative_converged"] for r in rs)})
    result = {"benchmark": "gain", "quick": quick, "threads": 1, "runs_done": f"{len(runs)} of {len(jobs)}",
              "machine": f"{machine_line(1)} (2-core CPU, shared with other jobs); {workers} runs "
                         "at a time, 1 thread each",
              "recipe": str(RECIPE.relative_to(ROOT)), "steps": runs[0]["steps"],
              "overrides": [*RUN_OVERRIDES, "--data.table=T", "--data.missing_rate=R", "--data.seed=S",
                            "--train.seed=S", *([f"--train.steps={QUICK_STEPS}"] if quick else [])],
              "rmse": "over the hidden entries, both tables min-max scaled to [0, 1] by the true table's columns "
                      "(Yoon et al.'s convention)",
              "target": "GAIN's mean RMSE below mean imputation's on every table and rate",
              "target_met": all(c["gain"]["mean"] < c["mean"]["mean"] for c in cells),
              "wall_seconds": wall, "cells": cells, "runs": runs}
    return result


def from_partial(out: str, wall: float) -> dict[str, Any]:
    """Write the tables of an interrupted full bench from its partial record (the runs finished so far)."""
    import json

    runs = [json.loads(ln) for ln in partial_path(out).read_text().splitlines() if ln.strip()]
    result = summarise(_jobs(False), runs, quick=False, workers=2, wall=wall)
    write(result, out, markdown(result))
    return result


def markdown(result: dict[str, Any]) -> list[str]:
    """The markdown table of a ``gain`` result."""
    cmd = "ganforge bench gain" + (" --quick" if result["quick"] else "")
    total_cpu = sum(r["cpu_s"] + r["cpu_s_impute"] + r["cpu_s_iterative"] for r in result["runs"])
    done = result.get("runs_done", "")
    partial = f" (interrupted: {done} runs)" if done and done.split(" of ")[0] != done.split(" of ")[1] else ""
    lines = [f"# GAIN imputation vs mean and IterativeImputer{' (quick)' if result['quick'] else ''}{partial}", "",
             f"Made by `{cmd}`. Machine: {result['machine']}. GAIN: `{result['recipe']}` as committed "
             f"({result['steps']} steps) with only `{' '.join(result['overrides'])}`. Each seed S hides entries "
             "completely at random (MCAR) with mask seed S; the three methods fill the same hidden entries. "
             f"RMSE {result['rmse']}. IterativeImputer: scikit-learn's defaults (BayesianRidge, max_iter 10, "
             "random_state S). Mean ± half-width of the 95 % Student-t interval over seeds; lower is better. "
             "CPU-s = user + system time of one GAIN training at 1 thread. "
             f"Total CPU {total_cpu / 60:.1f} min; wall {result['wall_seconds'] / 60:.1f} min.", "",
             "| table | rows x cols | MCAR | seeds | GAIN RMSE | mean RMSE | IterativeImputer RMSE | GAIN < mean "
             "(seeds) | GAIN < Iterative (seeds) | GAIN CPU-s | Iterative CPU-s (converged) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for c in result["cells"]:
        n = c["seeds"]
        lines.append(f"| {c['table']} | {c['shape'][0]} x {c['shape'][1]} | {c['rate']:.0%} | {n} | "
                     f"{ci_text(c['gain'], 1, '{:.4f}')} | {ci_text(c['mean'], 1, '{:.4f}')} | "
                     f"{ci_text(c['iterative'], 1, '{:.4f}')} | {c['gain_wins_vs_mean']}/{n} | "
                     f"{c['gain_wins_vs_iterative']}/{n} | {ci_text(c['cpu_s'], 1, '{:.1f}')} | "
                     f"{ci_text(c['cpu_s_iterative'], 1, '{:.1f}')} ({c['iterative_converged']}/{n}) |")
    lines += ["", f"Target ({result['target']}): {'met' if result['target_met'] else 'not met'}."]
    return lines
