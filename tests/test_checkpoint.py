"""Checkpoints: atomic writes, the last N kept, every RNG restored, damaged files skipped, code never run."""

from __future__ import annotations

import json
import pickle
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY, assert_same_state, read_records, with_overrides

from ganforge import api
from ganforge.config import load_config
from ganforge.errors import CheckpointError
from ganforge.training import checkpoint as ckpt
from ganforge.training.trainer import Trainer


def _cfg(**sections):
    return load_config(None, base=with_overrides(TINY, **sections))


def _draws() -> tuple:
    return torch.rand(3), np.random.rand(3), np.random.randn(2), [random.random() for _ in range(3)], \
        random.gauss(0, 1)


def test_rng_state_round_trip_through_a_safe_load(tmp_path):
    torch.manual_seed(1)
    np.random.seed(2)
    random.seed(3)
    np.random.randn()  # leaves a cached Gaussian in numpy's state
    random.gauss(0, 1)  # and in Python's
    state = ckpt.rng_state()
    want = _draws()
    path = tmp_path / "rng.pt"
    ckpt.save_atomic({"format": ckpt.FORMAT, "rng": state}, path)
    torch.manual_seed(99)
    np.random.seed(99)
    random.seed(99)
    ckpt.set_rng_state(ckpt.load(path)["rng"])
    got = _draws()
    assert torch.equal(got[0], want[0])
    for a, b in zip(got[1:], want[1:], strict=True):
        assert np.array_equal(a, b)


def test_atomic_save_leaves_no_temporary_file_and_replaces(tmp_path):
    path = tmp_path / "checkpoints" / "step_000000001.pt"
    ckpt.save_atomic({"format": ckpt.FORMAT, "v": torch.ones(2)}, path)
    ckpt.save_atomic({"format": ckpt.FORMAT, "v": torch.zeros(2)}, path)
    assert [p.name for p in path.parent.iterdir()] == [path.name]
    assert torch.equal(ckpt.load(path)["v"], torch.zeros(2))

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("cannot pickle")

    with pytest.raises(RuntimeError, match="cannot pickle"):
        ckpt.save_atomic({"format": ckpt.FORMAT, "v": Unpicklable()}, path)
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # the failed write left the old file alone
    assert torch.equal(ckpt.load(path)["v"], torch.zeros(2))


def test_keep_last_n_and_ignore_foreign_names(tmp_path):
    Trainer(_cfg(train={"steps": 10}, checkpoint={"every": 2, "keep": 3}), tmp_path, quiet=True).fit()
    (tmp_path / "checkpoints" / ".step_000000012.pt.tmp-123").write_bytes(b"half a write")
    (tmp_path / "checkpoints" / "notes.txt").write_text("mine")
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path)] == [6, 8, 10]
    state, path = ckpt.load_latest(tmp_path)
    assert state["step"] == 10 and path.name == "step_000000010.pt"
    for key in ("config", "game", "optimizers", "rng", "data", "step", "counters"):
        assert key in state


# ---------------------------------------------------------------------------- damaged and hostile files
def _two_checkpoints(run: Path) -> list[Path]:
    Trainer(_cfg(train={"steps": 6}, checkpoint={"every": 3}), run, quiet=True).fit()
    found = ckpt.list_checkpoints(run)
    assert [s for s, _ in found] == [3, 6]
    return [p for _, p in found]


def test_truncated_checkpoint_is_skipped_with_a_warning(tmp_path):
    older, newest = _two_checkpoints(tmp_path / "run")
    data = newest.read_bytes()
    newest.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"cannot read checkpoint .*step_000000006\.pt"):
        ckpt.load(newest)
    with pytest.warns(UserWarning, match=r"skipping damaged checkpoint: cannot read checkpoint .*step_000000006"):
        state, path = ckpt.load_latest(tmp_path / "run")
    assert path == older and state["step"] == 3
    # a resume goes on from the previous checkpoint and still ends exactly where the whole run ends
    with pytest.warns(UserWarning, match="skipping damaged checkpoint"):
        tr = Trainer.resume(tmp_path / "run", quiet=True)
    assert tr.step == 3
    tr.fit()
    Trainer(_cfg(train={"steps": 6}, checkpoint={"every": 3}), tmp_path / "whole", quiet=True).fit()
    assert_same_state(ckpt.load_latest(tmp_path / "whole")[0], ckpt.load_latest(tmp_path / "run")[0])
    assert read_records(tmp_path / "whole") == read_records(tmp_path / "run")


def test_garbage_and_foreign_files(tmp_path):
    older, newest = _two_checkpoints(tmp_path / "run")
    newest.write_bytes(b"\x00" * 100)
    with pytest.warns(UserWarning):
        assert ckpt.load_latest(tmp_path / "run")[1] == older
    older.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.warns(UserWarning), pytest.raises(CheckpointError, match="no checkpoint could be read"):
        ckpt.load_latest(tmp_path / "run")
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(CheckpointError, match="is not a ganforge checkpoint"):
        ckpt.load(foreign)
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        ckpt.load(tmp_path / "missing.pt")


class _Payload:
    """Unpickling this calls open(marker, "w"): proof that code from the file ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("how", ["torch.save", "pickle"])
def test_a_checkpoint_that_would_run_code_is_refused(tmp_path, how):
    _two_checkpoints(tmp_path / "run")
    marker = tmp_path / "pwned"
    evil = ckpt.checkpoint_path(tmp_path / "run", 9)
    state = {"format": ckpt.FORMAT, "step": 9, "x": _Payload(marker)}
    if how == "torch.save":
        torch.save(state, evil)
    else:
        evil.write_bytes(pickle.dumps(state, protocol=2))
    with pytest.raises(CheckpointError, match=r"cannot read checkpoint .*step_000000009\.pt"):
        ckpt.load(evil)
    assert not marker.exists()
    with pytest.warns(UserWarning, match="skipping damaged checkpoint"):
        state, _ = ckpt.load_latest(tmp_path / "run")
    assert state["step"] == 6 and not marker.exists()
    with pytest.warns(UserWarning):
        api.sample(tmp_path / "run", 4)
    assert not marker.exists()
    # the payload is live: an unrestricted load would have run it
    if how == "torch.save":
        torch.load(evil, weights_only=False)
    else:
        pickle.loads(evil.read_bytes())
    assert marker.exists()


# ---------------------------------------------------------------------------- logs after a kill and a resume
def _killed_at(run: Path, sections: dict, step: int) -> None:
    """Train into ``run`` and die abruptly after ``step`` (no save, no cleanup of logs: as SIGKILL would leave it)."""
    t = Trainer(_cfg(**sections), run, quiet=True)
    real = t._run_phase

    def phase(ph):
        if t.step == step:
            raise KeyboardInterrupt  # the in-process stand-in for SIGKILL: logs stay as they were
        return real(ph)

    t._run_phase = phase
    with pytest.raises(KeyboardInterrupt):
        t.fit()


@pytest.mark.parametrize("killed_after", [5, 7, 10])
def test_logs_after_kill_and_resume_equal_the_unbroken_run_byte_for_byte(tmp_path, killed_after):
    """Losses every 4 steps, checkpoints every 3 (inside a window), evaluations every 2: the resumed run's
    losses.jsonl and metrics.jsonl are the unbroken run's bytes, time fields aside (no duplicate metrics, the
    first loss record after the resume averages the same 4 steps)."""
    from ganforge.bench.faults import log_lines

    sec = dict(train={"steps": 12, "log_every": 4, "ema": 0.9}, eval={"every": 2, "n": 64},
               checkpoint={"every": 3, "keep": 2})
    Trainer(_cfg(**sec), tmp_path / "whole", quiet=True).fit()
    _killed_at(tmp_path / "cut", sec, killed_after)
    last = ckpt.load_latest(tmp_path / "cut")[0]
    assert last["step"] == killed_after // 3 * 3 and last["step"] % 4 != 0  # resumed inside a logging window
    assert last["log_window"] and all(len(v) == last["step"] % 4 for v in last["log_window"].values())
    tr = Trainer.resume(tmp_path / "cut", quiet=True)
    tr.fit()
    for name in ("losses.jsonl", "metrics.jsonl"):
        whole, cut = log_lines(tmp_path / "whole", name), log_lines(tmp_path / "cut", name)
        assert len(whole) > 3 and whole == cut, name
    assert_same_state(ckpt.load_latest(tmp_path / "whole")[0], ckpt.load_latest(tmp_path / "cut")[0])


def test_time_goes_on_from_the_checkpoint_after_a_resume(tmp_path):
    sec = dict(train={"steps": 4, "log_every": 1}, checkpoint={"every": 2})
    t = Trainer(_cfg(**sec), tmp_path / "run", quiet=True)
    t._elapsed0 = 1000.0  # as if the run had already trained for 1000 s
    t.fit()
    saved = ckpt.load_latest(tmp_path / "run")[0]["elapsed"]
    assert 1000.0 < saved < 1000.0 + 600
    Trainer.resume(tmp_path / "run", {"train.steps": 6}, quiet=True).fit()
    times = [r["time"] for r in (json.loads(ln) for ln in (tmp_path / "run" / "losses.jsonl").read_text().splitlines())]
    assert len(times) == 6 and all(a <= b for a, b in zip(times, times[1:], strict=False))
    assert times[0] >= 1000.0 and times[4] >= saved  # not back to 0 after the resume
