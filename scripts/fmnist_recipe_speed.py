"""CPU-seconds per training step of two image recipes, interleaved in one process.

    python scripts/fmnist_recipe_speed.py OLD.yaml NEW.yaml [--rounds 200 --chunk 1 --threads 1]
        [--out benchmarks/results/fmnist-recipe-speed.json]

Both recipes are built as Trainers (their own nets, optimizers, EMA, data stream) in the same process;
each round times ``chunk`` steps of one, then ``chunk`` steps of the other, the side that goes first
alternating (as ``ganforge bench overhead`` does), so machine load hits both alike. A step is what
``Trainer.fit`` runs per step (``ganforge.bench.overhead.ganforge_step``: every phase, EMA update,
schedulers); evaluation, logging and checkpoints are left out. Time is the process's CPU time
(``time.process_time``, user + system), so other jobs on a shared machine do not count; the torch
thread count is fixed to ``--threads``. With ``--chunk 1`` the two recipes alternate step by step, so
load changes on a shared machine cancel out best. Reported: the mean CPU ms per step of each side, their
ratio new/old with a 95 % interval (Student t over 10 consecutive blocks of rounds), the ratio of
medians and the median of the per-round ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from ganforge import api
from ganforge.bench.overhead import ganforge_step
from ganforge.training.trainer import Trainer

QUIET = ["--eval.every=0", "--eval.samples=false", "--checkpoint.every=0", "--train.tensorboard=false",
         "--train.steps=1000000000", "--train.device=cpu"]


def _cpu_ms_per_step(trainer: Trainer, n: int) -> float:
    t = time.process_time()
    for _ in range(n):
        ganforge_step(trainer)
    return (time.process_time() - t) / n * 1000.0


def measure(old: str, new: str, *, threads: int, rounds: int, chunk: int, warmup: int = 5) -> dict:
    torch.set_num_threads(threads)
    over = [*QUIET, f"--train.threads={threads}"]
    with tempfile.TemporaryDirectory() as tmp:
        tr = {k: Trainer(api.make_config(p, over), Path(tmp) / k, quiet=True) for k, p in (("old", old), ("new", new))}
        for t in tr.values():
            _cpu_ms_per_step(t, warmup)
        ms: dict[str, list[float]] = {"old": [], "new": []}
        order = ["old", "new"]
        for r in range(rounds):
            for k in order if r % 2 == 0 else order[::-1]:
                ms[k].append(_cpu_ms_per_step(tr[k], chunk))
    o, n = statistics.mean(ms["old"]), statistics.mean(ms["new"])
    return {"old": old, "new": new, "threads": threads, "rounds": rounds, "chunk": chunk,
            "old_cpu_ms_per_step": o, "new_cpu_ms_per_step": n, "ratio_new_over_old": n / o,
            "ratio_ci95": block_ci(ms["old"], ms["new"]),
            "ratio_of_medians": statistics.median(ms["new"]) / statistics.median(ms["old"]),
            "ratio_paired_median": statistics.median(b / a for a, b in zip(ms["old"], ms["new"], strict=True)),
            "old_ms_all": ms["old"], "new_ms_all": ms["new"]}


def block_ci(old: list[float], new: list[float], blocks: int = 10) -> list[float] | None:
    """95 % Student-t interval of sum(new)/sum(old) over ``blocks`` consecutive blocks of rounds."""
    from ganforge.bench.compare import mean_ci

    size = len(old) // blocks
    if size < 1 or blocks < 2:
        return None
    r = [sum(new[i * size:(i + 1) * size]) / sum(old[i * size:(i + 1) * size]) for i in range(blocks)]
    st = mean_ci(r)
    return [st["lo"], st["hi"]]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("old")
    p.add_argument("new")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=200)
    p.add_argument("--chunk", type=int, default=1)
    p.add_argument("--out")
    a = p.parse_args()
    t0 = time.time()
    res = measure(a.old, a.new, threads=a.threads, rounds=a.rounds, chunk=a.chunk)
    res.update(machine="2-core CPU, shared with other jobs",
               detail=f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}",
               load_average=list(os.getloadavg()), seconds=round(time.time() - t0, 1))
    print(json.dumps({k: v for k, v in res.items() if not k.endswith("_all")}, indent=1))
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
