"""Run a benchmark's independent training jobs in worker processes, resumably.

Each finished job's record is appended to a ``.partial.jsonl`` file beside the
benchmark's output, so that an interrupted benchmark continues where it
stopped; the caller deletes it with ``finish`` once the final results are written.
"""

from __future__ import annotations

import json
import os
import statistics
from collections.abc import Callable, Hashable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path


def partial_path(out: str | None) -> Path | None:
    return Path(out).with_suffix(".partial.jsonl") if out else None


def finish(partial: Path | None) -> None:
    """Delete a benchmark's ``.partial.jsonl`` once its final results are written (if there is one)."""
    if partial is not None and partial.exists():
        partial.unlink()


def read_partial(partial: Path | None, key: Callable[[dict], Hashable]) -> dict[Hashable, dict]:
    """The records an earlier, interrupted run of a benchmark left in ``partial``, by ``key``."""
    done: dict[Hashable, dict] = {}
    if partial is not None and partial.exists():
        for ln in partial.read_text().splitlines():
            if ln.strip():
                r = json.loads(ln)
                done[key(r)] = r
    return done


def _worker_init(threads: int) -> None:
    """A worker's default torch thread count (``train.threads: 0``) is ``threads`` unless OMP_NUM_THREADS is set."""
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))


def cpu_share(workers: int) -> int:
    """This process's CPUs divided among ``workers`` processes (at least 1 each)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cpus // workers)


def run_jobs(jobs: list[dict], fn: Callable[[dict], dict], key: Callable[[dict], Hashable], *,
             partial: Path | None, workers: int, report: Callable[[dict], str] | None,
             threads: int | None = None) -> list[dict]:
    """``fn(job)`` for every job not yet in ``partial`` (spawned workers); the records in job order.

    ``fn`` must be a module-level function (it is pickled); ``key`` identifies a job and its record;
    ``report(record)`` is printed as each finishes (None: nothing printed); ``threads``: each worker's default
    torch thread count unless OMP_NUM_THREADS is set (None: torch's own default).
    """
    done = read_partial(partial, key)
    todo = [j for j in jobs if key(j) not in done]
    if todo:
        init = {"initializer": _worker_init, "initargs": (threads,)} if threads is not None else {}
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"), **init) as pool:
            for r in pool.map(fn, todo):
                done[key(r)] = r
                if report is not None:
                    print(report(r), flush=True)
                if partial is not None:
                    partial.parent.mkdir(parents=True, exist_ok=True)
                    with open(partial, "a") as f:
                        f.write(json.dumps(r) + "\n")
    return [done[key(j)] for j in jobs]


def mean_std(xs: list) -> tuple[float, float]:
    """(mean, sample std) of the non-None values; (nan, nan) when there are none, std 0 for one."""
    xs = [float(x) for x in xs if x is not None]
    if not xs:
        return float("nan"), float("nan")
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


def seed_cells(jobs: list[dict], runs: list[dict], by: tuple[str, str],
               metrics: tuple[str, ...] = ("modes", "hq", "rkl", "seconds")) -> list[dict]:
    """One cell per (by[0], by[1]) pair in job order: its run count and each metric's mean and std over seeds."""
    cells = []
    for a in dict.fromkeys(j[by[0]] for j in jobs):
        for b in dict.fromkeys(j[by[1]] for j in jobs):
            rs = [r for r in runs if r[by[0]] == a and r[by[1]] == b]
            cell = {by[0]: a, by[1]: b, "seeds": len(rs)}
            cell.update({m: mean_std([r.get(m) for r in rs]) for m in metrics})
            cells.append(cell)
    return cells


def machine_line(threads: int | None = None) -> str:
    """The machine line every benchmark records: architecture, the CPUs this process may use, torch, the
    thread count it ran with (default: torch's current one) and the load average (the CPU may be shared)."""
    import os
    import platform

    import torch

    from ganforge.training.threads import available_cpus

    n = torch.get_num_threads() if threads is None else threads
    cpus, total = available_cpus(), os.cpu_count()
    where = f"{cpus} of {total} CPUs available to the process" if cpus and cpus != total else f"{total} CPUs"
    try:
        load = f", load average {os.getloadavg()[0]:.1f}"
    except (AttributeError, OSError):
        load = ""
    return (f"{platform.machine()}, {where}, torch {torch.__version__}, {n} thread{'s' if n != 1 else ''}"
            f"{load}")


def value_text(v: float | None, fmt: str) -> str:
    """One number formatted, "-" when there is none."""
    return "-" if v is None else fmt.format(v)


def ci_text(st: dict, scale: float = 1.0, fmt: str = "{:.3f}") -> str:
    """A ``{"mean", "half"}`` cell (``compare.mean_ci``) as "m ± h", "m" for one seed, "-" when empty."""
    if st["mean"] is None:
        return "-"
    if st["half"] is None:
        return fmt.format(st["mean"] * scale)
    return f"{fmt.format(st['mean'] * scale)} ± {fmt.format(st['half'] * scale)}"
