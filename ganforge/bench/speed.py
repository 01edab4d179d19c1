"""Training throughput of DCGAN with and without the speed settings (bf16 / fp16, channels_last, compile).

    ganforge bench speed [--quick] [--out benchmarks/results/speed.json]

Each variant builds the real trainer (Fashion-MNIST resized to 64x64, DCGAN G and D
with base width 64, non-saturating loss, batch 64; the quick version: 32x32, base 16,
batch 32) and times its inner loop, ``Trainer._run_phase`` for every phase, after
warm-up steps (which absorb torch.compile's compilation, timed separately).
images/s = training images consumed per second = batch_size x steps / seconds
(each step is one critic update on a real batch and a fake batch, then one generator
update); the variants are interleaved over rounds and each keeps its best round.
On CUDA the loop is synchronised before the clock is read. Variants that cannot run
on this device (fp16 off CUDA; torch.compile on CPU, whose C++ code
generation takes minutes here) are listed with the reason instead of a number.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from ganforge.registry import BENCHMARKS

VARIANTS = [
    ("fp32", {}),
    ("bf16", {"precision": "bf16"}),
    ("fp32 + channels_last", {"channels_last": True}),
    ("bf16 + channels_last", {"precision": "bf16", "channels_last": True}),
    ("fp16 + channels_last", {"precision": "fp16", "channels_last": True}),
    ("bf16 + channels_last + compile", {"precision": "bf16", "channels_last": True, "compile": True}),
]


def _config(quick: bool, device: str, settings: dict) -> dict:
    res, base, batch = (32, 16, 32) if quick else (64, 64, 64)
    return {
        "name": "speed",
        "data": {"name": "fmnist", "resolution": res, "limit": 1024 if quick else 4096},
        "game": {"name": "gan", "z_dim": 100},
        "objective": {"name": "ns"},
        "nets": {"g": {"name": "dcgan", "base": base}, "d": {"name": "dcgan", "base": base}},
        "optim": {"g": {"name": "adam", "lr": 2e-4, "betas": [0.5, 0.999]},
                  "d": {"name": "adam", "lr": 2e-4, "betas": [0.5, 0.999]}},
        "train": {"steps": 10**6, "batch_size": batch, "device": device, "tensorboard": False, **settings},
        "eval": {"every": 0, "samples": False},
        "checkpoint": {"every": 0},
    }


def _skip_reason(settings: dict, device: torch.device) -> str | None:
    if settings.get("precision") == "fp16" and device.type != "cuda":
        return "fp16 needs CUDA"
    if settings.get("compile") and device.type != "cuda":
        return "torch.compile (inductor) takes minutes to generate C++ on this CPU; measured on GPUs only"
    return None


def _time(trainer, warmup: int, steps: int) -> tuple[float, float]:
    """(seconds of the warm-up steps, seconds of the timed steps)."""
    cuda = trainer.device.type == "cuda"

    def run(n: int) -> float:
        if cuda:
            torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(n):
            for ph in trainer.phases:
                trainer._run_phase(ph)
            trainer.step += 1
        if cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - t

    return run(warmup), run(steps)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def measure(quick: bool, device: str = "auto") -> dict:
    """Images/s per variant on this machine: variants interleaved over rounds, the best round kept."""
    from ganforge.config import load_config
    from ganforge.training.build import pick_device
    from ganforge.training.trainer import Trainer

    dev = pick_device(device)
    # a 64x64 DCGAN step takes seconds on a CPU: few steps there; many on a GPU
    warmup, steps, rounds = (2, 3, 2) if quick else ((1, 2, 2) if dev.type == "cpu" else (5, 50, 3))
    rows, trainers = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, settings in VARIANTS:
            reason = _skip_reason(settings, dev)
            row = {"variant": name, "settings": settings}
            rows.append(row)
            if reason:
                row["skipped"] = reason
                continue
            cfg = load_config(None, [], base=_config(quick, device, settings))
            trainers[name] = Trainer(cfg, Path(tmp) / name.replace(" ", ""), quiet=True)
            row["warmup_s"] = round(_time(trainers[name], warmup, 0)[0], 2)
        best: dict[str, float] = {}
        for _ in range(rounds):  # interleaved, so that a busy moment does not favour one variant
            for name, trainer in trainers.items():
                best[name] = min(best.get(name, float("inf")), _time(trainer, 0, steps)[1])
        for row in rows:
            if row["variant"] in best:
                s = best[row["variant"]]
                batch = trainers[row["variant"]].cfg.train.batch_size
                row.update(images_per_s=round(batch * steps / s, 1), step_ms=round(1000 * s / steps, 1))
    base = next(r["images_per_s"] for r in rows if "images_per_s" in r)
    for r in rows:
        if "images_per_s" in r:
            r["speedup"] = round(r["images_per_s"] / base, 2)
    c = _config(quick, device, {})
    return {
        "benchmark": "speed", "quick": quick, "device": str(dev),
        "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else cpu_name(),
        "threads": torch.get_num_threads(), "torch": torch.__version__,
        "protocol": {"resolution": c["data"]["resolution"], "base": c["nets"]["g"]["base"],
                     "batch_size": c["train"]["batch_size"], "warmup_steps": warmup, "timed_steps": steps,
                     "rounds": rounds},
        "rows": rows,
        "load_average": [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None,
    }


def markdown(res: dict) -> str:
    p = res["protocol"]
    lines = [f"# DCGAN training throughput ({res['device']}: {res['device_name']}, {res['threads']} threads, "
             f"torch {res['torch']})", "",
             f"DCGAN {p['resolution']}x{p['resolution']}, base width {p['base']}, batch {p['batch_size']}; "
             f"best of {p['rounds']} interleaved rounds of {p['timed_steps']} timed steps, after {p['warmup_steps']} "
             f"warm-up steps.", "",
             "| variant | images/s | ms/step | vs fp32 |", "|---|---|---|---|"]
    if res.get("load_average"):
        lines.insert(3, f"System load average (1, 5, 15 min) when it finished: {res['load_average']}.")
        lines.insert(4, "")
    for r in res["rows"]:
        if "skipped" in r:
            lines.append(f"| {r['variant']} | not run: {r['skipped']} | | |")
        else:
            lines.append(f"| {r['variant']} | {r['images_per_s']} | {r['step_ms']} | {r['speedup']}x |")
    return "\n".join(lines) + "\n"


@BENCHMARKS.register("speed")
def run(*, quick: bool, out: str) -> dict:
    """DCGAN images/s with and without bf16/fp16, channels_last, torch.compile (on this device)."""
    res = measure(quick)
    p = Path(out)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(res, indent=1) + "\n")
    p.with_suffix(".md").write_text(markdown(res))
    return res
