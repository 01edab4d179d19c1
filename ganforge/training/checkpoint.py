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
import stat
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganforge import rundir
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


def save_atomic(obj: dict, path: Path, run_dir: str | Path | None = None) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over ``path``.

    ``run_dir``: refuse a ``path`` that is a link or resolves outside it. An OSError (disk full, ...) is one
    CheckpointError naming the file and the last good checkpoint; the temporary file is removed and an
    older file at ``path`` is left as it was.
    """
    path = Path(path)
    root = Path(run_dir) if run_dir is not None else path.parent
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        rundir.write_with(root, path, lambda tmp: _torch_save(obj, tmp), tmp_name=f".{path.name}.tmp-{os.getpid()}")
    except (OSError, rundir.WriteError) as e:
        reason = e.reason if isinstance(e, rundir.WriteError) else rundir._reason(e)
        raise CheckpointError(f"cannot write checkpoint {path}: {reason}; {last_good(path.parent)}") from None


def _torch_save(obj: dict, tmp: Path) -> None:
    with open(tmp, "wb") as f:  # through a Python file, a full disk is an OSError (a path gives RuntimeError)
        torch.save(obj, f)


def last_good(folder: str | Path) -> str:
    """'the last good checkpoint is PATH', or a sentence saying there is none (never an empty folder's name)."""
    found = _scan(Path(folder))
    return (f"the last good checkpoint is {found[-1][1]}" if found
            else f"there is no earlier checkpoint in {folder} (the run cannot be resumed from there)")


def _refusal(path: Path, e: Exception) -> str:
    """What a failed ``torch.load(weights_only=True)`` means, in one sentence."""
    text = str(e)
    if "Weights only load failed" in text or "WeightsUnpickler" in text:
        never = "ganforge loads tensors and plain values only and never runs code from a checkpoint"
        m = re.search(r"GLOBAL ([\w.]+)", text)
        if m:
            return (f"cannot read checkpoint {path}: refused, because it tries to import the callable {m.group(1)}; "
                    + never)
        m = re.search(r"WeightsUnpickler error: ([^\n]*?)(\.|$)", text, re.M)
        detail = f" ({m.group(1).strip()[:120]})" if m else ""
        return (f"cannot read checkpoint {path}: refused, because it holds more than tensors and plain values"
                f"{detail}; {never}")
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), type(e).__name__)
    return f"cannot read checkpoint {path}: it is damaged or not a checkpoint ({type(e).__name__}: {first[:160]})"


def load(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint without executing code; a clear error if it is damaged or foreign."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # truncated zip, a pickle that wants to run code, ...
        raise CheckpointError(_refusal(path, e)) from None
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a ganforge checkpoint")
    return obj


def checkpoint_path(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / "checkpoints" / f"step_{step:09d}.pt"


def _scan(d: Path) -> list[tuple[int, Path]]:
    """(step, path) of the regular checkpoint files in folder ``d``, oldest first; links are skipped."""
    found = []
    try:
        names = os.listdir(d)
    except OSError:
        return []
    for name in names:
        if not (m := _NAME.match(name)):
            continue
        p = d / name
        try:
            mode = os.lstat(p).st_mode
        except FileNotFoundError:  # pruned meanwhile
            continue
        if stat.S_ISLNK(mode):
            warnings.warn(f"ignoring {p}: a symbolic link (to {os.readlink(p)}); ganforge loads and prunes only "
                          "the checkpoint files a run wrote itself", stacklevel=3)
        elif stat.S_ISREG(mode):
            found.append((int(m.group(1)), p))
    return sorted(found)


def list_checkpoints(run_dir: str | Path) -> list[tuple[int, Path]]:
    """(step, path), oldest first: regular files named step_NNNNNNNNN.pt in RUN_DIR/checkpoints.

    A link (to another run's checkpoint, or a checkpoints/ folder that links elsewhere) is never used.
    """
    d = Path(run_dir) / "checkpoints"
    if d.is_symlink():
        warnings.warn(f"ignoring {d}: a symbolic link (to {os.readlink(d)}); ganforge uses only a run's own "
                      "checkpoints folder", stacklevel=2)
        return []
    return _scan(d) if d.is_dir() else []


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
    raise CheckpointError(f"no checkpoint could be read in {Path(run_dir) / 'checkpoints'}: " + "; ".join(errors))


_TMP = re.compile(r"^\.step_\d{9}\.pt\.tmp-\d+$")


def prune(run_dir: str | Path, keep: int) -> None:
    """Keep the newest ``keep`` checkpoints; remove older ones and temporary files left by killed saves.

    Only regular files with ganforge's own names are removed (never a link, never a user's file); the run
    folder's lock guarantees that no other live process is writing a temporary file here.
    """
    for _step, p in list_checkpoints(run_dir)[:-keep]:
        p.unlink(missing_ok=True)
    d = Path(run_dir) / "checkpoints"
    if d.is_symlink() or not d.is_dir():
        return
    mine = f".tmp-{os.getpid()}"
    for name in os.listdir(d):
        p = d / name
        if _TMP.match(name) and not name.endswith(mine) and stat.S_ISREG(os.lstat(p).st_mode):
            p.unlink(missing_ok=True)  # another (dead) process's interrupted save
