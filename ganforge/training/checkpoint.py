"""Checkpoints: atomic writes, safe loads, the last N kept, fallback past a damaged file.

A checkpoint is a dict of tensors, numbers, strings, lists and dicts only, saved
with ``torch.save`` and read with ``torch.load(weights_only=True)``: loading never
runs code from the file. It holds the resolved config, so a checkpoint alone is
enough to rebuild the game and sample from it.
"""

from __future__ import annotations

import os
import random
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganforge.errors import CheckpointError

FORMAT = "ganforge-checkpoint"
VERSION = 1
_NAME = re.compile(r"^step_(\d{9})\.pt$")


def rng_state() -> dict[str, Any]:
    """Every RNG a run touches, as plain tensors/lists (weights_only-safe)."""
    np_state = np.random.get_state()
    py = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"key": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached": float(np_state[4])},
        "python": {"version": py[0], "state": list(py[1]), "gauss": py[2]},
    }
    if torch.cuda.is_available():
        state["cuda"] = [s for s in torch.cuda.get_rng_state_all()]
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_atomic(obj: dict, path: Path) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    try:  # make the rename itself durable
        fd = os.open(path.parent, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
    except OSError:
        pass


def load(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint without executing code; a clear error if it is damaged or foreign."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # truncated zip, a pickle that wants to run code, ...
        raise CheckpointError(f"cannot read checkpoint {path}: {type(e).__name__}: {str(e).splitlines()[0][:200]}"
                              ) from None
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a ganforge checkpoint")
    return obj


def checkpoint_path(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / "checkpoints" / f"step_{step:09d}.pt"


def list_checkpoints(run_dir: str | Path) -> list[tuple[int, Path]]:
    """(step, path), oldest first."""
    d = Path(run_dir) / "checkpoints"
    if not d.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in d.iterdir() if (m := _NAME.match(p.name))]
    return sorted(found)


def load_latest(run_dir: str | Path, map_location="cpu") -> tuple[dict, Path]:
    """The newest checkpoint that loads; damaged newer ones are reported and skipped."""
    ckpts = list_checkpoints(run_dir)
    if not ckpts:
        raise CheckpointError(f"no checkpoints in {Path(run_dir) / 'checkpoints'}")
    errors = []
    for _step, p in reversed(ckpts):
        try:
            obj = load(p, map_location)
        except CheckpointError as e:
            errors.append(str(e))
            warnings.warn(f"skipping damaged checkpoint: {e}", stacklevel=2)
            continue
        return obj, p
    raise CheckpointError("no checkpoint could be read:\n  " + "\n  ".join(errors))


def prune(run_dir: str | Path, keep: int) -> None:
    """Keep the newest ``keep`` checkpoints; remove older ones and temporary files left by killed saves."""
    for _step, p in list_checkpoints(run_dir)[:-keep]:
        p.unlink(missing_ok=True)
    mine = f".tmp-{os.getpid()}"
    for tmp in (Path(run_dir) / "checkpoints").glob(".step_*.pt.tmp-*"):
        if not tmp.name.endswith(mine):  # another (dead or finished) process's interrupted save
            tmp.unlink(missing_ok=True)
