"""Seeded comparisons: a grid of config values x N seeds -> a table of means with 95 % confidence intervals.

    ganforge bench compare configs/toy/ring.yaml --seeds 3 \\
        --grid objective.name=ns,hinge,lsgan --grid train.steps=2000 --out runs/cmp

Each cell of the grid (the product of the ``--grid`` lists) is trained once per
seed (``train.seed`` = 0 .. N-1) with :func:`ganforge.api.train` into
``DIR/<cell>/seed<k>``. The sweep is resumable: a run whose final checkpoint
(step ``train.steps``) and final metrics record exist is skipped; a run with an
earlier checkpoint is resumed exactly; a run directory holding a different
config is an error (nothing is overwritten). Then ``DIR/compare.json`` and
``DIR/compare.md`` hold, per cell and final metric, the mean over seeds and its
95 % Student-t confidence interval, mean +- t_{0.975, n-1} s / sqrt(n) with the
n-1 sample standard deviation s, and a Welch two-sample t-test
(``scipy.stats.ttest_ind(equal_var=False)``) of each cell against the
reference cell: the best cell by mean for metrics with a known direction,
else the first cell.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import platform
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ganforge.config import Config, parse_value
from ganforge.errors import ConfigError

ALPHA = 0.05
# +1: larger is better, -1: smaller is better. Metrics not listed (e.g. density, whose ideal is 1, not
# the largest value) are compared with the first cell.
DIRECTION = {"modes": 1, "hq": 1, "rkl": -1, "nll": -1, "kl": -1, "js": -1, "fid": -1, "kid": -1,
             "precision": 1, "recall": 1, "coverage": 1, "is": 1, "accuracy": 1}
TEST_NAME = "Welch two-sample t-test (unequal variances, scipy.stats.ttest_ind(equal_var=False)), two-sided"


# ---------------------------------------------------------------------------------------- grid
def split_values(text: str) -> list[str]:
    """``a,b,[1, 2]`` -> ``["a", "b", "[1, 2]"]``: commas inside brackets or braces do not split."""
    out, depth, cur = [], 0, ""
    for ch in text:
        if ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    out.append(cur)
    return [v.strip() for v in out]


def parse_grid(items: list[str]) -> list[tuple[str, list[Any]]]:
    """``["objective.name=ns,hinge", "train.steps=500"]`` -> ``[("objective.name", ["ns", "hinge"]), ...]``."""
    grid: list[tuple[str, list[Any]]] = []
    for item in items:
        s = item[2:] if item.startswith("--") else item
        key, sep, vals = s.partition("=")
        if not sep or not key or not vals.strip():
            raise ConfigError(f"--grid {item!r} must look like section.key=v1,v2 (e.g. objective.name=ns,hinge)")
        if any(k == key for k, _ in grid):
            raise ConfigError(f"--grid names {key!r} twice; give all its values in one --grid {key}=v1,v2")
        values = split_values(vals)
        if any(v == "" for v in values):
            raise ConfigError(f"--grid {item!r} has an empty value; separate values with single commas")
        grid.append((key, [parse_value(v) for v in values]))
    return grid


def _slug(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return re.sub(r"[^A-Za-z0-9.+-]+", "_", text).strip("_") or "x"


@dataclass
class Cell:
    """One point of the grid: its directory name and its overrides."""

    name: str
    values: dict[str, Any]

    def overrides(self) -> list[str]:
        return [f"--{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in self.values.items()]


def cells(grid: list[tuple[str, list[Any]]]) -> list[Cell]:
    """The product of the grid's value lists, in the order given (the first cell is the reference)."""
    if not grid:
        return [Cell("base", {})]
    keys = [k for k, _ in grid]
    out = []
    for combo in itertools.product(*(v for _, v in grid)):
        varying = [(k, v) for (k, vals), v in zip(grid, combo, strict=True) if len(vals) > 1]
        name = "__".join(f"{k.split('.')[-2] if k.endswith('.name') else k.split('.')[-1]}-{_slug(v)}"
                         for k, v in varying) or "base"
        out.append(Cell(name, dict(zip(keys, combo, strict=True))))
    names = [c.name for c in out]
    if len(set(names)) != len(names):
        raise ConfigError(f"grid cells would share a directory name: {names}; give distinct values")
    return out


# ---------------------------------------------------------------------------------------- stats
def mean_ci(values: list[float], level: float = 0.95) -> dict[str, float | int | None]:
    """Mean, sample std (ddof=1) and the Student-t interval mean +- t_{(1+level)/2, n-1} s / sqrt(n)."""
    from scipy import stats

    x = np.asarray(values, dtype=np.float64)
    n = len(x)
    if n == 0:
        return {"n": 0, "mean": None, "std": None, "half": None, "lo": None, "hi": None}
    m = float(x.mean())
    if n == 1:
        return {"n": 1, "mean": m, "std": None, "half": None, "lo": None, "hi": None}
    s = float(x.std(ddof=1))
    half = float(stats.t.ppf((1 + level) / 2, n - 1) * s / math.sqrt(n))
    return {"n": n, "mean": m, "std": s, "half": half, "lo": m - half, "hi": m + half}


def welch_p(a: list[float], b: list[float]) -> float | None:
    """Two-sided Welch t-test p-value; None with fewer than 2 values on a side.

    With zero variance on both sides the t statistic is undefined: equal means give p = 1,
    different means p = 0 (the limit as both variances go to zero).
    """
    from scipy import stats

    if len(a) < 2 or len(b) < 2:
        return None
    xa, xb = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if xa.std() == 0 and xb.std() == 0:
        return 1.0 if xa.mean() == xb.mean() else 0.0
    return float(stats.ttest_ind(xa, xb, equal_var=False).pvalue)


def summarise(cells_runs: list[dict], metrics: list[str]) -> None:
    """Add ``stats[metric]`` (mean, CI, p-value against the reference cell, significance) to each cell."""
    for metric in metrics:
        vals = [[r["metrics"][metric] for r in c["runs"] if _finite(r["metrics"].get(metric))] for c in cells_runs]
        for c, v in zip(cells_runs, vals, strict=True):
            c.setdefault("stats", {})[metric] = mean_ci(v)
        means = [c["stats"][metric]["mean"] for c in cells_runs]
        direction = DIRECTION.get(metric.lower(), 0)
        ref = 0
        if direction and any(m is not None for m in means):
            ref = max((i for i, m in enumerate(means) if m is not None), key=lambda i: direction * means[i])
        for i, c in enumerate(cells_runs):
            st = c["stats"][metric]
            st["reference"] = cells_runs[ref]["name"]
            st["is_reference"] = i == ref
            p = None if i == ref else welch_p(vals[i], vals[ref])
            st["p"] = p
            st["significant"] = p is not None and p < ALPHA


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


# ---------------------------------------------------------------------------------------- runs
def final_metrics(run_dir: Path, steps: int) -> dict | None:
    """The metrics record at ``steps`` if the run finished (final checkpoint and record present), else None."""
    from ganforge.training import checkpoint as ckpt

    if not ckpt.checkpoint_path(run_dir, steps).is_file():
        return None
    p = run_dir / "metrics.jsonl"
    if not p.is_file():
        return None
    recs = [json.loads(ln) for ln in p.read_text().splitlines() if ln.strip()]
    final = [r for r in recs if r.get("step") == steps]
    if not final:
        return None
    return {k: v for k, v in final[-1].items() if k != "step"}


def _check_same_config(run_dir: Path, cfg: Config) -> None:
    import yaml

    p = run_dir / "config.yaml"
    if not p.is_file():
        return
    old = yaml.safe_load(p.read_text()) or {}
    new = json.loads(json.dumps(cfg.data))
    old = json.loads(json.dumps(old))
    old.get("train", {}).pop("steps", None)  # a longer train.steps extends a run; everything else must match
    new.get("train", {}).pop("steps", None)
    diff = _differences(old, new)
    if diff:
        raise ConfigError(f"{run_dir} holds a run with a different config ({', '.join(diff[:5])} differ); "
                          f"remove it or choose another --out")


def _differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ. Keys only one side has are ignored: a newer ganforge may add
    config fields (with defaults) after a sweep's first runs, and those runs still count."""
    out = []
    for k in sorted(set(old) & set(new)):
        a, b = old[k], new[k]
        if isinstance(a, dict) and isinstance(b, dict) and a.get("name") == b.get("name"):
            out += _differences(a, b, f"{prefix}{k}.")
        elif a != b:
            out.append(f"{prefix}{k}")
    return out


def run_one(cfg: Config, run_dir: Path) -> tuple[str, dict]:
    """Train (or resume, or skip) one run; returns (status, final metrics)."""
    from ganforge import api
    from ganforge.training import checkpoint as ckpt
    from ganforge.training.trainer import TrainingStopped

    steps = cfg.train.steps
    _check_same_config(run_dir, cfg)
    done = final_metrics(run_dir, steps)
    if done is not None:
        return "skipped", done
    failed = run_dir / "failed.json"
    if failed.is_file() and json.loads(failed.read_text()).get("steps") == steps:
        return "failed", {}  # a run that diverged: resuming it would diverge again at the same step
    try:
        if ckpt.list_checkpoints(run_dir):
            res = api.train(resume=run_dir, overrides=[f"--train.steps={steps}"])
            status = "resumed"
        else:
            for stale in ("losses.jsonl", "metrics.jsonl"):  # records of a run killed before its first checkpoint
                (run_dir / stale).unlink(missing_ok=True)
            res = api.train(cfg, out=run_dir)
            status = "trained"
    except TrainingStopped as e:
        if "non-finite" not in str(e):
            raise  # a signal: stop the sweep; the next call resumes this run
        run_dir.mkdir(parents=True, exist_ok=True)
        failed.write_text(json.dumps({"steps": steps, "reason": str(e)}) + "\n")
        return "failed", {}
    finally:
        _drop_log_handler(run_dir)
    done = final_metrics(run_dir, steps)
    if done is None:  # pragma: no cover - the trainer always evaluates and saves at the end
        raise RuntimeError(f"run {run_dir} ended at step {res.step} without its final metrics")
    return status, done


def _record(job: dict) -> dict:
    """Train one run of the sweep (``run_one``) and describe it: status, wall and CPU seconds, torch threads,
    final metrics. CPU seconds are this process's (all its threads), so runs in parallel workers are each
    measured alone."""
    import torch

    t, cpu = time.time(), time.process_time()
    status, m = run_one(job["cfg"], Path(job["dir"]))
    trained = status != "skipped"
    return {"seed": job["seed"], "dir": job["dir"], "status": status, "seconds": round(time.time() - t, 1),
            "cpu_seconds": round(time.process_time() - cpu, 1) if trained else None,
            "threads": torch.get_num_threads() if trained else None,
            "train_seconds": _train_seconds(Path(job["dir"])), "metrics": m}


def _train_seconds(run_dir: Path) -> float | None:
    """Wall time of the run's last training session (the "time" of its last losses.jsonl record)."""
    p = run_dir / "losses.jsonl"
    if not p.is_file():
        return None
    lines = [ln for ln in p.read_text().splitlines() if ln.strip()]
    return json.loads(lines[-1]).get("time") if lines else None


def _drop_log_handler(run_dir: Path) -> None:
    """The trainer attaches a train.log handler per run directory; many runs in one process must not share it."""
    log = logging.getLogger("ganforge")
    for h in list(log.handlers):
        if getattr(h, "_ganforge", None) == str(run_dir):
            log.removeHandler(h)
            h.close()


# ---------------------------------------------------------------------------------------- driver
def recipe_cells(recipes: list[str | Path], grid_cells: list[Cell]) -> list[tuple[Path, Cell]]:
    """Each recipe x each grid cell; with several recipes a cell's name starts with its recipe's."""
    paths = [Path(r) for r in recipes]
    if len(paths) == 1:
        return [(paths[0], c) for c in grid_cells]
    stems = [p.stem for p in paths]
    if len(set(stems)) != len(stems):  # configs/a/dcgan.yaml and configs/b/dcgan.yaml: a-dcgan, b-dcgan
        stems = [f"{p.parent.name}-{p.stem}" for p in paths]
    if len(set(stems)) != len(stems):
        raise ConfigError(f"recipes {[str(p) for p in paths]} would share a directory name: give distinct recipes")
    return [(p, Cell(_slug(st) if c.name == "base" else f"{_slug(st)}__{c.name}", c.values))
            for p, st in zip(paths, stems, strict=True) for c in grid_cells]


def compare(config: str | Path | list[str | Path], *, seeds: int, grid: list[str], out: str | Path,
            metrics: list[str] | None = None, quiet: bool = False, cpu_budget: float | None = None,
            jobs: int = 1) -> dict:
    """Run recipe(s) x ``grid`` x ``seeds`` and write ``out/compare.json`` and ``out/compare.md``.

    Several recipes (a list) are compared cell by cell, the first recipe's cells first; ``cpu_budget``
    trains every cell for that many CPU-seconds per run instead of its train.steps (``bench/budget.py``);
    ``jobs`` > 1 trains that many runs at once in worker processes (each its share of the CPUs).
    """
    from ganforge import api
    from ganforge.bench import budget
    from ganforge.bench.jobs import cpu_share, run_jobs

    if seeds < 1:
        raise ConfigError(f"--seeds must be >= 1, got {seeds}")
    if not (isinstance(jobs, int) and jobs >= 1):
        raise ConfigError(f"--jobs must be a whole number >= 1 (runs trained at once), got {jobs!r}")
    recipes = [config] if isinstance(config, (str, Path)) else list(config or [])
    if not recipes:
        raise ConfigError("bench compare needs a config file, e.g. ganforge bench compare configs/toy/ring.yaml "
                          "--seeds 3 --grid objective.name=ns,hinge")
    out = Path(out)
    parsed = parse_grid(grid)
    if any(k == "train.seed" for k, _ in parsed):
        raise ConfigError("--grid train.seed is not allowed: seeds come from --seeds (train.seed = 0 .. N-1)")
    if cpu_budget is not None and any(k == "train.steps" for k, _ in parsed):
        raise ConfigError("--grid train.steps and --cpu-budget both set the runs' length: give one of them")
    todo = recipe_cells(recipes, cells(parsed))
    base = {c.name: api.make_config(r, c.overrides()) for r, c in todo}  # validate every cell first
    length = {name: [] for name in base}
    planned = None
    if cpu_budget is not None:
        planned = budget.plan(base, cpu_budget, out, quiet=quiet)
        length = {name: budget.scaled(base[name], planned[name]["steps"]) for name in base}
    configs = {(c.name, k): api.make_config(r, [*c.overrides(), *length[c.name], f"--train.seed={k}"])
               for r, c in todo for k in range(seeds)}
    t0 = time.time()
    work = [{"cfg": configs[(c.name, k)], "dir": str(out / c.name / f"seed{k}"), "seed": k}
            for _, c in todo for k in range(seeds)]

    def report(rec: dict) -> str:
        return (f"[compare] {Path(rec['dir']).parent.name} seed {rec['seed']}: {rec['status']} "
                f"({rec['seconds']:.1f}s) {json.dumps(rec['metrics'])}")

    if jobs == 1:
        done = []
        for job in work:
            done.append(_record(job))
            if not quiet:
                print(report(done[-1]), flush=True)
    else:
        done = run_jobs(work, _record, lambda j: j["dir"], partial=None, workers=jobs,
                        report=None if quiet else report, threads=cpu_share(jobs))
    records = {rec["dir"]: rec for rec in done}
    table_cells = []
    for r, c in todo:
        runs = [records[str(out / c.name / f"seed{k}")] for k in range(seeds)]
        cell = {"name": c.name, "recipe": str(r), "values": c.values, "runs": runs}
        if planned is not None:
            cell["budget"] = {**planned[c.name], "overrides": length[c.name]}
        table_cells.append(cell)
    found = sorted({k for c in table_cells for r in c["runs"] for k, v in r["metrics"].items() if _finite(v)})
    if metrics:
        missing = [m for m in metrics if m not in found]
        if missing:
            raise ConfigError(f"--metric {', '.join(missing)} not among the runs' final metrics. "
                              f"Valid: {', '.join(found) or '(none)'}")
        found = list(metrics)
    summarise(table_cells, found)
    import torch

    from ganforge.bench.jobs import machine_line
    from ganforge.bench.speed import cpu_name

    table = {"benchmark": "compare", "config": ", ".join(map(str, recipes)), "recipes": [str(r) for r in recipes],
             "cpu_budget": cpu_budget, "seeds": seeds, "jobs": jobs, "grid": [[k, v] for k, v in parsed],
             "metrics": found, "alpha": ALPHA, "test": TEST_NAME, "ci": "95 % Student t over seeds, ddof=1",
             "cells": table_cells, "seconds": round(time.time() - t0, 1),  # this invocation (skips are fast)
             "machine": {"platform": platform.platform(), "python": platform.python_version(),
                         "torch": torch.__version__, "processor": cpu_name(),
                         "threads": torch.get_num_threads(), "line": machine_line()}}
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.json").write_text(json.dumps(table, indent=1) + "\n")
    (out / "compare.md").write_text(markdown(table))
    return table


def _fmt(v: float | None) -> str:
    if v is None:
        return "-"
    a = abs(v)
    if a >= 1000:
        return f"{v:.0f}"
    if a >= 100:
        return f"{v:.1f}"
    return f"{v:.3g}" if 0 < a < 0.01 else f"{v:.3f}"


def _threads_text(table: dict) -> str:
    """The torch thread counts the runs trained with (older tables: the sweep process's)."""
    used = sorted({r["threads"] for c in table["cells"] for r in c["runs"] if r.get("threads")})
    return "/".join(map(str, used)) if used else str(table["machine"].get("threads", "?"))


def markdown(table: dict) -> str:
    """The table as markdown: one row per cell, one column per metric, mean +- CI half-width [lo, hi]."""
    ms = table["metrics"]
    train = sum(r.get("train_seconds") or 0 for c in table["cells"] for r in c["runs"])
    fixed = {k: v[0] for k, v in table["grid"] if len(v) == 1}
    budget = table.get("cpu_budget")
    extra = ["steps", "CPU-s per run"] if budget is not None else []
    lines = [f"# Seeded comparison: {table['config']}", "",
             f"{table['seeds']} seeds (train.seed = 0..{table['seeds'] - 1}) per cell"
             + (f"; fixed: {', '.join(f'{k}={v}' for k, v in fixed.items())}" if fixed else "") + "."
             + (f" Equal CPU: every run gets {budget:g} CPU-seconds of training steps (train.steps = budget / the "
                f"cell's CPU-seconds per step, measured interleaved before the runs; bench/budget.py); CPU-s per "
                f"run is the whole run's (evaluations included) in this invocation." if budget is not None else ""),
             "", "| cell | " + " | ".join(ms + extra) + " |", "|---|" + "---|" * (len(ms) + len(extra))]
    for c in table["cells"]:
        row = []
        if budget is not None:
            cpu = [r["cpu_seconds"] for r in c["runs"] if r.get("cpu_seconds") is not None]
            row_extra = [str(c["budget"]["steps"]), _fmt(sum(cpu) / len(cpu)) if cpu else "-"]
        else:
            row_extra = []
        for m in ms:
            st = c["stats"][m]
            if st["mean"] is None:
                row.append("-")
                continue
            s = _fmt(st["mean"])
            if st["half"] is not None:
                s += f" ± {_fmt(st['half'])} [{_fmt(st['lo'])}, {_fmt(st['hi'])}]"
            if st["is_reference"]:
                s = f"**{s}** (ref)"
            elif st["significant"]:
                s += f" * (p={st['p']:.2g})"
            if st["n"] != table["seeds"]:
                s += f" (n={st['n']})"  # failed runs or non-finite values
            row.append(s)
        fails = sum(r["status"] == "failed" for r in c["runs"])
        lines.append(f"| {c['name']}{f' ({fails} diverged)' if fails else ''} | " + " | ".join(row + row_extra)
                     + " |")
    lines += ["", "Mean ± half-width [low, high] of the 95 % confidence interval (Student t over seeds, "
              "n-1 standard deviation). "
              f"(ref): the reference cell for that metric, the best mean where the metric has a direction "
              f"({', '.join(m for m in ms if m.lower() in DIRECTION) or 'none here'}), else the first cell. "
              f"*: differs from the reference at p < {table['alpha']} by a {table['test']}; two cells that both "
              f"have zero variance count as different when their means differ. No correction for multiple "
              f"comparisons. Training wall time {train:.0f} s summed over the runs (shared CPU), "
              f"on {table['machine']['processor']}, torch {table['machine']['torch']}, "
              f"{_threads_text(table)} thread(s) per run"
              + (f", {table['jobs']} runs at once." if table.get("jobs", 1) > 1 else "."), ""]
    return "\n".join(lines)
