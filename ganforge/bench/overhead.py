"""Trainer overhead: one DCGAN training step through ganforge's Trainer vs a minimal hand-written PyTorch loop.

Both sides train the Fashion-MNIST DCGAN recipe's networks (configs/fmnist/dcgan.yaml: base 64, z 100,
batch 64, non-saturating loss) with the paper's Adam 2e-4, betas (0.5, 0.999), constant (the recipe's lr,
betas and decay cost the same per step) from the same initial weights, on the
same minibatch sequence (a ``BatchStream`` with the same seed each), in the same process. A step is
one D update on a real batch and fresh noise, then one G update on fresh noise. The hand-written loop
is the careful minimum: G's forward under ``no_grad`` in D's step and D frozen in G's step, as the
trainer does, so both compute the same gradients and any difference is the trainer's bookkeeping.

The trainer side runs exactly what ``Trainer.fit`` runs per step (``Trainer.run_step``: the step
hooks, ``_run_phase`` for every phase, the step counter; then the schedulers); logging every 50 steps,
evaluation and checkpoints are outside the timed step. Timing: ``rounds`` rounds of ``chunk`` steps per
side, the side that goes first alternating, median over rounds; ratio = ganforge_ms / plain_ms. Data:
Fashion-MNIST when its files are installed, else scikit-learn's digits resized to 28x28 (same tensor shapes).

    ganforge bench overhead [--quick] [--out benchmarks/results/overhead.json]
"""

from __future__ import annotations

import copy
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ganforge.errors import ConfigError
from ganforge.registry import BENCHMARKS

MACHINE = "2-core CPU (shared with other jobs)"


def _config(data: dict, threads: int, base: int = 64) -> dict:
    return {
        "name": "overhead",
        "data": data,
        "game": {"name": "gan", "z_dim": 100},
        "objective": {"name": "ns"},
        "nets": {"g": {"name": "dcgan", "base": base}, "d": {"name": "dcgan", "base": base}},
        "optim": {g: {"name": "adam", "lr": 2e-4, "betas": [0.5, 0.999]} for g in ("g", "d")},
        "train": {"steps": 10**9, "batch_size": 64, "threads": threads, "device": "cpu", "log_every": 50,
                  "tensorboard": False},
        "eval": {"every": 0, "samples": False},
        "checkpoint": {"every": 0},
    }


def _data_section() -> dict:
    from ganforge.data.fmnist import fmnist

    try:
        fmnist(limit=1)
        return {"name": "fmnist", "limit": 10000}
    except ConfigError:
        return {"name": "digits", "resolution": 28}


class PlainLoop:
    """The hand-written reference: two nets, two Adams, softplus losses on logits."""

    def __init__(self, g: torch.nn.Module, d: torch.nn.Module, stream, z_dim: int, lr: float = 2e-4) -> None:
        self.g, self.d, self.stream, self.z_dim = g, d, stream, z_dim
        self.opt_g = torch.optim.Adam(g.parameters(), lr, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(d.parameters(), lr, betas=(0.5, 0.999))

    def step(self) -> None:
        x = self.stream.next()["x"]
        self.d.requires_grad_(True)
        self.g.requires_grad_(False)
        with torch.no_grad():
            fake = self.g(torch.randn(x.shape[0], self.z_dim))
        loss = F.softplus(-self.d(x)).mean() + F.softplus(self.d(fake)).mean()
        self.opt_d.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_d.step()
        self.d.requires_grad_(False)
        self.g.requires_grad_(True)
        loss = F.softplus(-self.d(self.g(torch.randn(x.shape[0], self.z_dim)))).mean()
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_g.step()


def ganforge_step(trainer) -> None:
    """The body of ``Trainer.fit``'s loop without the every-``log_every`` bookkeeping."""
    acc: dict[str, list[float]] = {}
    for logs in trainer.run_step():
        for k, v in logs.items():
            acc.setdefault(k, []).append(v)
    for sch in getattr(trainer, "schedulers", {}).values():
        sch.step()


def _time(fn, n: int) -> float:
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t) / n * 1000.0


def measure(threads: int, rounds: int, chunk: int, warmup: int = 3, base: int = 64) -> dict[str, Any]:
    """Median ms per step of each side over ``rounds`` interleaved chunks, at ``threads`` torch threads.

    base: the nets' width (64: the recipe; a tiny width makes the step nearly all bookkeeping, so the
    difference ganforge_ms - plain_ms is the trainer's overhead in milliseconds).
    """
    from ganforge.config import load_config
    from ganforge.data.base import BatchStream
    from ganforge.training.trainer import Trainer

    torch.set_num_threads(threads)
    data = _data_section()
    cfg = load_config(None, base=_config(data, threads, base))
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, Path(tmp) / "run", quiet=True)
        g, d = copy.deepcopy(trainer.game.nets["g"]), copy.deepcopy(trainer.game.nets["d"])
        plain = PlainLoop(g, d, BatchStream(trainer.data, 64, seed=cfg.train.seed), z_dim=100)
        for _ in range(warmup):
            ganforge_step(trainer)
            plain.step()
        ours, theirs = [], []
        for r in range(rounds):
            sides = [(ours, lambda: ganforge_step(trainer)), (theirs, plain.step)]
            for out, fn in sides if r % 2 == 0 else sides[::-1]:
                out.append(_time(fn, chunk))
        n_data = len(trainer.data)
    g_ms, p_ms = statistics.median(ours), statistics.median(theirs)
    return {
        "threads": threads, "base": base, "data": data["name"], "data_size": n_data, "batch_size": 64, "rounds": rounds,
        "chunk": chunk, "ganforge_ms": g_ms, "plain_ms": p_ms, "ratio": g_ms / p_ms,
        "ratio_paired_median": statistics.median(a / b for a, b in zip(ours, theirs, strict=True)),
        "ganforge_images_per_s": 64 * 1000.0 / g_ms, "plain_images_per_s": 64 * 1000.0 / p_ms,
        "ganforge_ms_all": ours, "plain_ms_all": theirs,
    }


@BENCHMARKS.register("overhead")
def run(*, quick: bool = False, out: str | None = None) -> dict[str, Any]:
    """Trainer vs hand-written loop, one DCGAN step on Fashion-MNIST: ganforge_ms, plain_ms, ratio, images/s."""
    t0 = time.time()
    old = torch.get_num_threads()
    try:
        if quick:
            rows = [measure(1, rounds=4, chunk=5)]
        else:
            rows = [measure(t, rounds=15, chunk=10) for t in (1, 2)] + [measure(1, rounds=15, chunk=50, base=4)]
    finally:
        torch.set_num_threads(old)
    head = min((r for r in rows if r["base"] == 64), key=lambda r: r["ganforge_ms"])  # the faster setting here
    result = {
        "benchmark": "overhead", "quick": quick, "machine": MACHINE,
        "detail": f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}",
        "ganforge_ms": head["ganforge_ms"], "plain_ms": head["plain_ms"], "ratio": head["ratio"],
        "images_per_s": head["ganforge_images_per_s"], "threads": head["threads"],
        "rows": rows, "seconds": round(time.time() - t0, 1),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    if out:
        write(result, out)
    return result


def write(result: dict[str, Any], out: str) -> None:
    """JSON to ``out`` and a markdown table beside it (``.md``)."""
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        f"# Trainer overhead: one DCGAN step, ganforge Trainer vs a hand-written loop "
        f"({'quick' if result['quick'] else 'full'})",
        "",
        f"Machine: {result['machine']} ({result['detail']}); load average at the end "
        f"{result['load_average']}; {result['seconds']} s in all. Same nets, optimizers and batches, same "
        "process, interleaved chunks, medians.",
        "",
        "| threads | nets (base) | data | ganforge ms/step | plain ms/step | ratio | paired-median ratio "
        "| ganforge images/s | plain images/s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        lines.append(f"| {r['threads']} | dcgan ({r['base']}) | {r['data']} | {r['ganforge_ms']:.1f} | "
                     f"{r['plain_ms']:.1f} | "
                     f"{r['ratio']:.3f} | {r['ratio_paired_median']:.3f} | {r['ganforge_images_per_s']:.0f} | "
                     f"{r['plain_images_per_s']:.0f} |")
    path.with_suffix(".md").write_text("\n".join(lines) + "\n")
