"""Fault drill: `ganforge bench faults`. SIGKILL a training run 5 times, resume each time, compare bit for bit.

One uninterrupted run and one run that is killed with SIGKILL (no chance to
clean up: the kill may land mid-step, mid-log-write or mid-checkpoint-write)
at 5 random points and resumed with ``ganforge train --resume DIR`` after
each. Both are real ``python -m ganforge train`` processes. The final
checkpoints are compared tensor for tensor (generator, critic, EMA copies,
optimizer moments, RNG states, data-stream position, the partial loss window)
with ``torch.equal``, and losses.jsonl and metrics.jsonl byte for byte with
the wall-clock ``time`` fields cut out. Losses are logged every 3 steps, so
most checkpoints (every 20 or 50 steps) fall inside a logging window.
"""

from __future__ import annotations

import json
import os
import platform
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import yaml

from ganforge.bench.jobs import machine_line
from ganforge.registry import BENCHMARKS

KILLS = 5


def drill_config(quick: bool) -> dict:
    """A small ring GAN with EMA, k=2 critic steps and frequent checkpoints: every piece of state matters."""
    return {
        "name": "fault-drill",
        "data": {"name": "ring", "n": 4096},
        "game": {"name": "gan", "z_dim": 8},
        "objective": {"name": "ns"},
        "nets": {"g": {"name": "mlp", "hidden": 64, "depth": 2, "norm": "batch"},
                 "d": {"name": "mlp", "hidden": 64, "depth": 2, "activation": "leaky_relu"}},
        "optim": {"g": {"name": "adam", "lr": 5e-4, "betas": [0.5, 0.999]},
                  "d": {"name": "adam", "lr": 5e-4, "betas": [0.5, 0.999]}},
        "train": {"steps": 200 if quick else 3000, "batch_size": 64, "d_steps": 2, "seed": 3, "ema": 0.99,
                  "log_every": 3, "threads": 1, "device": "cpu"},
        "eval": {"every": 100 if quick else 500, "n": 500, "samples": False},
        "checkpoint": {"every": 20 if quick else 50, "keep": 3},
    }


def _cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "ganforge", "train", *args, "--quiet"]


_SRC: list[str] = []  # the code snapshot every process of one drill imports


def _env() -> dict:
    root = _SRC[0] if _SRC else str(Path(__file__).resolve().parents[2])
    return {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}


def _cwd() -> str | None:
    return _SRC[0] if _SRC else None  # `python -m` puts the working folder first on sys.path


def _snapshot(work: Path) -> None:
    """Copy the package once, so that every process of the drill runs the same code even if the tree changes."""
    src = Path(__file__).resolve().parents[1]
    shutil.copytree(src, work / "src" / "ganforge", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    _SRC[:] = [str(work / "src")]


def _last_step(run: Path) -> int:
    """The newest step in losses.jsonl (0 when none), read from the file's tail; skips a half-written line."""
    p = run / "losses.jsonl"
    try:
        with open(p, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 4096))
            tail = f.read().decode(errors="replace")
    except OSError:
        return 0
    for line in reversed(tail.splitlines()):
        try:
            return int(json.loads(line)["step"])
        except (ValueError, KeyError, TypeError):
            continue
    return 0


def _temp_files(run: Path) -> set[str]:
    """Temporary checkpoint files (a save that SIGKILL interrupted leaves one behind)."""
    folder = run / "checkpoints"
    return {n for n in os.listdir(folder) if ".tmp-" in n} if folder.is_dir() else set()


def _wait_for_checkpoint_write(run: Path, step: int, proc: subprocess.Popen, deadline: float) -> bool:
    """Spin until checkpoint ``step`` is being written (its temporary file exists): True, or it is done: False."""
    final = f"step_{step:09d}.pt"
    folder = run / "checkpoints"
    while proc.poll() is None and time.time() < deadline:
        names = os.listdir(folder)
        if any(n.startswith(f".{final}.tmp-") for n in names):
            return True
        if final in names:
            return False
    return False


_TIME = re.compile(rb'"time": [-+0-9.eE]+(, )?')


def log_lines(run: Path, name: str) -> list[bytes]:
    """A jsonl log's lines as bytes, each with its ``"time": X`` field cut out (the one field that may differ)."""
    p = run / name
    return [_TIME.sub(b"", ln) for ln in p.read_bytes().split(b"\n")] if p.exists() else []


def _diff(a: Any, b: Any, path: str, out: list[str], counter: list[int]) -> None:
    """Append to ``out`` every path where the nested states ``a`` and ``b`` differ."""
    if torch.is_tensor(a):
        counter[0] += 1
        if not (torch.is_tensor(b) and a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)):
            out.append(path)
    elif isinstance(a, dict):
        if not isinstance(b, dict) or set(a) != set(b):
            out.append(f"{path} (keys)")
            return
        for k in a:
            _diff(a[k], b[k], f"{path}.{k}" if path else str(k), out, counter)
    elif isinstance(a, (list, tuple)):
        if not isinstance(b, (list, tuple)) or len(a) != len(b):
            out.append(f"{path} (length)")
            return
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _diff(x, y, f"{path}[{i}]", out, counter)
    elif a != b:
        out.append(path)


def _kill_and_resume(cfg_file: Path, run: Path, steps: int, every: int, rng: random.Random,
                     deadline: float) -> list[dict]:
    """Start the run, SIGKILL it at KILLS random points (each after progress past the last), resume each time."""
    span = max(2, (steps - every) // (KILLS + 2))
    kills: list[dict] = []
    args = (str(cfg_file), "--out", str(run))
    died_at = 0
    for i in range(KILLS):
        target = (every if i == 0 else died_at) + rng.randint(1, span)
        stale = _temp_files(run)
        proc = subprocess.Popen(_cmd(*args), env=_env(), cwd=_cwd(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # every record at a step >= target comes from this process: stale ones end at died_at < target
        while proc.poll() is None and _last_step(run) < target and time.time() < deadline:
            time.sleep(0.005)
        aim = "checkpoint write" if i % 2 else "random"
        if aim == "random":
            time.sleep(rng.uniform(0.0, 0.03))  # land anywhere inside a step or a log write
        else:  # the riskiest moment: while the next checkpoint is being written
            _wait_for_checkpoint_write(run, -(-target // every) * every, proc, deadline)
        finished = proc.poll() is not None
        if not finished:
            proc.send_signal(signal.SIGKILL)
        err = proc.communicate()[1].decode(errors="replace")
        if finished:
            raise RuntimeError(f"the run ended before kill {i + 1} (exit {proc.returncode}): {err[-500:]}")
        died_at = _last_step(run)
        ck = sorted(p.name for p in (run / "checkpoints").glob("step_*.pt"))
        kills.append({"aim": aim, "target_step": target, "killed_at_step": died_at,
                      "newest_checkpoint": ck[-1] if ck else None,
                      "mid_checkpoint_write": bool(_temp_files(run) - stale)})
        args = ("--resume", str(run))
    proc = subprocess.run(_cmd(*args), env=_env(), cwd=_cwd(), capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"the final resume failed (exit {proc.returncode}): {proc.stderr[-1000:]}")
    return kills


@BENCHMARKS.register("faults")
def run(*, quick: bool = False, out: str | None = None, seed: int = 0) -> dict[str, Any]:
    """SIGKILL a toy run at 5 random points, resume each time; final weights bit-identical to an unbroken run?"""
    from ganforge.training import checkpoint as ckpt

    t0 = time.time()
    cfg = drill_config(quick)
    steps, every = cfg["train"]["steps"], cfg["checkpoint"]["every"]
    rng = random.Random(seed)
    work = Path(tempfile.mkdtemp(prefix="ganforge-faults-"))
    try:
        _snapshot(work)
        cfg_file = work / "drill.yaml"
        cfg_file.write_text(yaml.safe_dump(cfg, sort_keys=False))
        # the uninterrupted reference runs beside the drill (separate processes share nothing but the disk)
        ref = subprocess.Popen(_cmd(str(cfg_file), "--out", str(work / "reference")), env=_env(), cwd=_cwd(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        kills = _kill_and_resume(cfg_file, work / "killed", steps, every, rng, deadline=time.time() + 3600)
        ref_err = ref.communicate()[1].decode(errors="replace")
        if ref.returncode != 0:
            raise RuntimeError(f"the reference run failed: {ref_err[-1000:]}")
        a, _ = ckpt.load_latest(work / "reference")
        b, _ = ckpt.load_latest(work / "killed")
        sections = {}
        total = [0]
        for key in ("game", "ema", "optimizers", "rng", "data", "counters", "log_window", "finished", "step",
                    "config"):
            mism: list[str] = []
            _diff(a.get(key), b.get(key), key, mism, total)
            sections[key] = {"identical": not mism, "differences": mism[:20]}
        logs, log_diffs = {}, {}
        for name in ("losses.jsonl", "metrics.jsonl"):
            ra, rb = log_lines(work / "reference", name), log_lines(work / "killed", name)
            logs[name] = ra == rb and len(ra) > 1
            if ra != rb:
                first = next((i for i, (x, y) in enumerate(zip(ra, rb, strict=False)) if x != y), min(len(ra), len(rb)))
                log_diffs[name] = {"lines": [len(ra), len(rb)], "first_difference": first,
                                   "reference": ra[first].decode(errors="replace") if first < len(ra) else None,
                                   "killed": rb[first].decode(errors="replace") if first < len(rb) else None}
        leftovers = sorted(_temp_files(work / "killed"))
    finally:
        _SRC.clear()
        shutil.rmtree(work, ignore_errors=True)
    weights = all(sections[k]["identical"] for k in ("game", "ema", "optimizers"))
    result = {
        "benchmark": "faults",
        "quick": quick,
        "kills": len(kills),
        "identical": weights and all(s["identical"] for s in sections.values()),
        "weights_identical": weights,
        "logs_identical": logs,
        "log_differences": log_diffs,
        "tensors_compared": total[0],
        "sections": sections,
        "kill_points": kills,
        "leftover_temp_files": leftovers,
        "steps": steps,
        "checkpoint_every": every,
        "seed": seed,
        "code": "one snapshot of the ganforge package, copied before the drill, imported by every process",
        "seconds": round(time.time() - t0, 1),
        "machine": f"{machine_line(1)}, Python {platform.python_version()}",
        "threads": 1,  # every training process of the drill (train.threads in its config)
        "config": cfg,
    }
    if out:
        write(result, out)
    return result


def write(result: dict[str, Any], out: str) -> None:
    """JSON to ``out`` and a markdown summary beside it (.md)."""
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    r = result
    lines = [
        f"# Fault drill: SIGKILL x {r['kills']} and resume ({'quick' if r['quick'] else 'full'})",
        "",
        f"A {r['steps']}-step ring GAN (EMA, k=2 critic steps, checkpoint every {r['checkpoint_every']} steps, "
        f"`python -m ganforge train` subprocesses) killed with SIGKILL at {r['kills']} random points "
        f"(seed {r['seed']}) and resumed with `ganforge train --resume` after each, against an uninterrupted run.",
        "",
        f"**Final state bit-identical: {'yes' if r['identical'] else 'NO'}** "
        f"({r['tensors_compared']} tensors compared with torch.equal). "
        f"Logs identical byte for byte (time fields cut out): "
        f"{', '.join(f'{k} {v}' for k, v in r['logs_identical'].items())}. "
        f"Temporary checkpoint files left behind: {len(r['leftover_temp_files'])} (a save cut by SIGKILL leaves its "
        "`.step_*.pt.tmp-PID`; resume ignores it and the next save removes it; finished checkpoints are never "
        "touched). Each kill leaves a stale run-folder lock, which the resume takes over. "
        "Every process imports one snapshot of the package copied before the drill.",
        "",
        "| kill | aimed at | target step | killed at step (last logged) | newest complete checkpoint | "
        "killed mid checkpoint write |",
        "|---|---|---|---|---|---|",
    ]
    for i, k in enumerate(r["kill_points"], 1):
        lines.append(f"| {i} | {k['aim']} | {k['target_step']} | {k['killed_at_step']} | {k['newest_checkpoint']} | "
                     f"{'yes' if k['mid_checkpoint_write'] else 'no'} |")
    lines += ["", "| state | identical |", "|---|---|"]
    for name, s in r["sections"].items():
        lines.append(f"| {name} | {'yes' if s['identical'] else 'no: ' + ', '.join(s['differences'][:3])} |")
    lines += ["", f"Command: `ganforge bench faults{' --quick' if r['quick'] else ''}`; every training process "
              f"runs with train.threads={r.get('threads', 1)}.",
              "", f"Machine: {r['machine']}. Total {r['seconds']} s (both runs side by side)."]
    path.with_suffix(".md").write_text("\n".join(lines) + "\n")
