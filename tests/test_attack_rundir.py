"""Attacks on run folders (issue 12, "Data loss and clobbering"): nothing a user made is ever lost.

Each test points ganforge at something it must not destroy (a folder of the user's own files, an
existing run, a folder another process is writing, planted symbolic links, a torn log, a full disk,
a hostile pickle, an out-of-memory error) and asserts three things: exit code 2 (or a clear error
from the API), no traceback, and that no user file changed (the folder is hashed before and after).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
from contextlib import nullcontext
from pathlib import Path

import pytest
import torch
import yaml
from conftest import TINY, with_overrides

from ganforge import api, rundir
from ganforge.cli import main
from ganforge.config import load_config
from ganforge.errors import CheckpointError, ConfigError
from ganforge.training import checkpoint as ckpt
from ganforge.training.hooks import Hook
from ganforge.training.trainer import Trainer, TrainingStopped


# ------------------------------------------------------------------ helpers
def snapshot(root: Path) -> dict[str, tuple]:
    """Every entry under ``root`` (links not followed): a link's target, a file's sha256, or 'dir'."""
    out: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = ("link", os.readlink(p))
            elif p.is_dir():
                out[rel] = ("dir",)
            else:
                out[rel] = ("file", hashlib.sha256(p.read_bytes()).hexdigest())
    return out


def cli(args: list[str], capsys) -> tuple[int, str]:
    """Run the CLI in process; returns (exit code, stderr) and checks that no traceback was printed."""
    code = main(args)
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return code, err


def _cfg(**sections):
    return load_config(None, base=with_overrides(TINY, **sections))


@pytest.fixture
def recipe(tmp_path) -> Path:
    p = tmp_path / "tiny.yaml"
    p.write_text(yaml.safe_dump(with_overrides(TINY, train={"steps": 4}, checkpoint={"every": 2})))
    return p


@pytest.fixture
def user_folder(tmp_path) -> Path:
    """A folder of the user's own files, with the names a run would write."""
    d = tmp_path / "mine"
    (d / "samples").mkdir(parents=True)
    (d / "checkpoints").mkdir()
    (d / "config.yaml").write_text("my: own config\n")
    (d / "samples" / "step_0000004.png").write_bytes(b"my picture")
    (d / "checkpoints" / "step_000000001.pt").write_bytes(b"my weights")
    (d / "losses.jsonl").write_text('{"step": 1, "mine": true}\n')
    (d / "train.log").write_text("my notes\n")
    return d


@pytest.fixture
def run(tmp_path, recipe, capsys) -> Path:
    """A finished 4-step ganforge run (checkpoints at 2 and 4)."""
    r = tmp_path / "run"
    assert main(["train", str(recipe), "--out", str(r), "--quiet"]) == 0
    capsys.readouterr()
    return r


@pytest.fixture
def outside(tmp_path) -> Path:
    """A file outside every run folder that a planted link points at."""
    p = tmp_path / "elsewhere" / "precious.txt"
    p.parent.mkdir()
    p.write_text("do not touch\n")
    return p


# ------------------------------------------------------------------ 1. --out only on a new or empty folder
def test_out_on_a_folder_of_user_files_is_refused(user_folder, recipe, capsys):
    before = snapshot(user_folder)
    code, err = cli(["train", str(recipe), "--out", str(user_folder), "--quiet"], capsys)
    assert code == 2
    assert "already exists and is not empty" in err and "--overwrite" in err and "another --out" in err
    assert snapshot(user_folder) == before


def test_out_on_an_existing_run_is_refused_and_points_to_resume(run, recipe, capsys):
    before = snapshot(run)
    code, err = cli(["train", str(recipe), "--out", str(run), "--quiet", "--train.seed=7"], capsys)
    assert code == 2 and f"--resume {run}" in err
    assert snapshot(run) == before


def test_out_that_is_a_file_is_refused(tmp_path, recipe, capsys):
    f = tmp_path / "notes.txt"
    f.write_text("mine\n")
    code, err = cli(["train", str(recipe), "--out", str(f), "--quiet"], capsys)
    assert code == 2 and "it is a file, not a folder" in err
    assert f.read_text() == "mine\n"


def test_overwrite_moves_the_old_folder_aside_and_deletes_nothing(user_folder, recipe, capsys):
    before = snapshot(user_folder)
    with pytest.warns(UserWarning, match="--overwrite: moved the old"):
        code, _ = cli(["train", str(recipe), "--out", str(user_folder), "--overwrite", "--quiet"], capsys)
    assert code == 0
    aside = [p for p in user_folder.parent.iterdir() if p.name.startswith("mine.old-")]
    assert len(aside) == 1 and snapshot(aside[0]) == before
    assert rundir.is_run_dir(user_folder) and [s for s, _ in ckpt.list_checkpoints(user_folder)] == [2, 4]
    assert not (user_folder / rundir.LOCK).exists()  # released at the end


def test_overwrite_cannot_be_combined_with_resume(run, capsys):
    before = snapshot(run)
    code, err = cli(["train", "--resume", str(run), "--overwrite", "--quiet"], capsys)
    assert code == 2 and "cannot be combined with --resume" in err
    assert snapshot(run) == before


def test_resume_of_a_folder_that_is_not_a_run(user_folder, capsys):
    before = snapshot(user_folder)
    with pytest.warns(UserWarning):  # its checkpoints/step_000000001.pt is not a checkpoint
        code, err = cli(["train", "--resume", str(user_folder), "--quiet"], capsys)
    assert code == 2 and "no checkpoint could be read" in err
    assert snapshot(user_folder) == before


def test_a_run_killed_before_its_first_checkpoint_starts_again(tmp_path):
    d = tmp_path / "r"
    t = Trainer(_cfg(train={"steps": 2}, checkpoint={"every": 0}), d, quiet=True)
    t._append("losses.jsonl", {"step": 1, "stale": 1.0})
    t._release()  # as a kill before the first checkpoint would leave it (marker, logs, no checkpoint)
    with pytest.warns(UserWarning, match="never reached a checkpoint"):
        Trainer(_cfg(train={"steps": 2}, checkpoint={"every": 0}), d, quiet=True).fit()
    recs = [json.loads(ln) for ln in (d / "losses.jsonl").read_text().splitlines()]
    assert [r["step"] for r in recs] == [1, 2] and all("stale" not in r for r in recs)


# ------------------------------------------------------------------ 2. one writer at a time
@pytest.fixture
def other_process():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc
    proc.kill()
    proc.wait()


def _plant_lock(run: Path, pid: int, host: str | None = None) -> None:
    (run / rundir.LOCK).write_text(json.dumps({"pid": pid, "host": host or socket.gethostname(),
                                               "started": "2026-01-01T00:00:00", "token": "theirs"}))


@pytest.mark.parametrize("how", ["resume", "out", "overwrite"])
def test_a_live_lock_refuses_a_second_writer(run, recipe, other_process, capsys, how):
    _plant_lock(run, other_process.pid)
    before = snapshot(run)
    args = {"resume": ["train", "--resume", str(run), "--train.steps=6"],
            "out": ["train", str(recipe), "--out", str(run)],
            "overwrite": ["train", str(recipe), "--out", str(run), "--overwrite"]}[how]
    code, err = cli(args + ["--quiet"], capsys)
    assert code == 2 and f"in use by another ganforge process (pid {other_process.pid}" in err
    assert snapshot(run) == before


def test_a_lock_held_on_another_host_is_not_guessed_at(run, capsys):
    _plant_lock(run, 1, host="some-other-machine")
    before = snapshot(run)
    code, err = cli(["train", "--resume", str(run), "--train.steps=6", "--quiet"], capsys)
    assert code == 2 and "some-other-machine" in err and f"delete {run / rundir.LOCK}" in err
    assert snapshot(run) == before


def test_a_stale_lock_is_taken_over_with_a_warning(run, capsys):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _plant_lock(run, dead.pid)
    with pytest.warns(UserWarning, match=f"taking over the lock of process {dead.pid}"):
        code, _ = cli(["train", "--resume", str(run), "--train.steps=6", "--quiet"], capsys)
    assert code == 0 and ckpt.load_latest(run)[0]["step"] == 6
    assert not (run / rundir.LOCK).exists()


def test_the_lock_is_released_on_error_and_on_a_signal(tmp_path, monkeypatch):
    import ganforge.training.trainer as tr

    def broken(cfg):
        raise ConfigError("broken on purpose")

    monkeypatch.setattr(tr, "build", broken)
    with pytest.raises(ConfigError, match="broken on purpose"):
        Trainer(_cfg(), tmp_path / "a", quiet=True)
    assert not (tmp_path / "a" / rundir.LOCK).exists()
    monkeypatch.undo()

    t = Trainer(_cfg(train={"steps": 50}, checkpoint={"every": 0}), tmp_path / "b", quiet=True)
    owner = json.loads((tmp_path / "b" / rundir.LOCK).read_text())
    assert owner["pid"] == os.getpid() and owner["host"] == socket.gethostname() and owner["started"]

    class Interrupt(Hook):
        def on_log(self, trainer, record):
            if record["step"] == 2:
                os.kill(os.getpid(), signal.SIGINT)

    t.hooks.append(Interrupt())
    with pytest.raises(TrainingStopped, match="stopped by SIGINT at step 2"):
        t.fit()
    assert not (tmp_path / "b" / rundir.LOCK).exists()

    # a SIGTERM before training starts (while the run is being built) unwinds and lets go of the folder too
    def terminated(cfg):
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(tr, "build", terminated)
    with pytest.raises(SystemExit) as e:
        Trainer(_cfg(), tmp_path / "c", quiet=True)
    assert e.value.code == 128 + signal.SIGTERM and not (tmp_path / "c" / rundir.LOCK).exists()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


@pytest.mark.slow
def test_a_real_second_process_is_refused_while_the_first_trains(tmp_path, capsys):
    run = tmp_path / "busy"
    cmd = [sys.executable, "-m", "ganforge", "train", str(Path(__file__).parents[1] / "configs/toy/ring.yaml"),
           "--out", str(run), "--quiet", "--train.steps=100000", "--train.threads=1", "--eval.every=0",
           "--checkpoint.every=0", "--train.batch_size=16", "--nets.g.hidden=8", "--nets.d.hidden=8",
           "--data.n=512", "--train.log_every=1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        import time

        deadline = time.time() + 120
        while not (run / "losses.jsonl").exists() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()
        code, err = cli(["train", "--resume", str(run), "--quiet"], capsys)
        assert code == 2 and f"pid {proc.pid}" in err
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=120)
    assert proc.returncode == 130 and not (run / rundir.LOCK).exists()


# ------------------------------------------------------------------ 3. no write through a link
@pytest.mark.parametrize("name", ["config.yaml", "losses.jsonl", "metrics.jsonl", "train.log", "samples",
                                  "checkpoints", "tb", rundir.LOCK, "eval_protocol.json"])
def test_a_planted_link_is_never_written_through(run, outside, capsys, name):
    target = outside if name not in ("samples", "checkpoints", "tb") else outside.parent
    victim = run / name
    if victim.is_dir():
        victim.rename(run.parent / f"{name}-moved")
    else:
        victim.unlink(missing_ok=True)
    victim.symlink_to(target)
    before, before_out = snapshot(run), snapshot(outside.parent)
    with pytest.warns(UserWarning) if name == "checkpoints" else nullcontext():
        code, err = cli(["train", "--resume", str(run), "--train.steps=6", "--quiet"], capsys)
    assert code == 2
    assert ("symbolic link" in err) or ("no checkpoints" in err), err
    assert snapshot(outside.parent) == before_out and snapshot(run) == before


def test_a_link_at_the_next_checkpoint_name_is_refused(run, outside, capsys):
    planted = ckpt.checkpoint_path(run, 6)
    planted.symlink_to(outside)
    before_out = snapshot(outside.parent)
    with pytest.warns(UserWarning, match="ignoring .*step_000000006.pt: a symbolic link"):
        code, err = cli(["train", "--resume", str(run), "--train.steps=6", "--quiet"], capsys)
    assert code == 2 and "refusing to write" in err and "symbolic link" in err
    assert snapshot(outside.parent) == before_out and planted.is_symlink()
    assert not [p for p in planted.parent.iterdir() if ".tmp-" in p.name]


def test_a_linked_sample_folder_inside_a_run_cannot_leak_out(tmp_path, outside):
    run = tmp_path / "r"
    run.mkdir()
    (run / "sub").symlink_to(outside.parent)
    with pytest.raises(rundir.UnsafePath, match="outside the run folder"):
        rundir.write_text(run, run / "sub" / "precious.txt", "overwritten")
    with pytest.raises(rundir.UnsafePath, match="symbolic link"):
        rundir.append_text(run, run / "sub", "x")
    (run / "log.jsonl").symlink_to(outside)
    with pytest.raises(rundir.UnsafePath, match="symbolic link"):
        rundir.append_text(run, run / "log.jsonl", "appended\n")
    assert outside.read_text() == "do not touch\n"


def test_a_symlinked_checkpoint_from_another_run_is_never_loaded(tmp_path, run, recipe, capsys):
    other = tmp_path / "other"
    assert main(["train", str(recipe), "--out", str(other), "--quiet", "--train.seed=5"]) == 0
    own = api.sample(run, 16, seed=0)
    link = ckpt.checkpoint_path(run, 99)
    link.symlink_to(ckpt.checkpoint_path(other, 4))
    with pytest.warns(UserWarning, match="ignoring .*step_000000099.pt: a symbolic link"):
        state, path = ckpt.load_latest(run)
    assert state["step"] == 4 and path == ckpt.checkpoint_path(run, 4)
    with pytest.warns(UserWarning, match="symbolic link"):
        assert torch.equal(api.sample(run, 16, seed=0), own)
    # a whole checkpoints/ folder linked to another run's is not used either
    (run / "checkpoints").rename(tmp_path / "moved")
    (run / "checkpoints").symlink_to(other / "checkpoints")
    with pytest.warns(UserWarning, match="ignoring .*checkpoints: a symbolic link"), \
            pytest.raises(CheckpointError, match="no checkpoints in"):
        ckpt.load_latest(run)


# ------------------------------------------------------------------ 4. prune and torn logs
def test_prune_removes_only_checkpoints_this_run_wrote(tmp_path, outside):
    d = tmp_path / "r"
    Trainer(_cfg(train={"steps": 2}, checkpoint={"every": 1, "keep": 1}), d, quiet=True).fit()
    folder = d / "checkpoints"
    (folder / "notes.txt").write_text("mine")
    (folder / "step_1.pt").write_bytes(b"mine")
    (folder / ".step_000000001.pt.tmp-mine").write_bytes(b"mine")
    (folder / "step_000000001.pt").symlink_to(outside)
    (folder / "step_000000000.pt").mkdir()
    before = {k: v for k, v in snapshot(folder).items() if "step_000000002" not in k}
    before_out = snapshot(outside.parent)
    with pytest.warns(UserWarning, match="symbolic link"):
        Trainer.resume(d, {"train.steps": 4, "checkpoint.every": 1}, quiet=True).fit()
    after = snapshot(folder)
    assert {k: v for k, v in after.items() if k in before} == before  # every user entry untouched
    assert [s for s, _ in ckpt.list_checkpoints(d)] == [4]  # and the run's own old checkpoints pruned
    assert snapshot(outside.parent) == before_out


@pytest.mark.parametrize("tail", [b'{"step": 5, "d_lo', b'{"step": 3, "d_loss": 0.1', b"\xff\xfe\x00garbage",
                                  b"\n\n"])
def test_a_torn_last_line_does_not_break_resume(tmp_path, tail, capsys):
    sec = dict(train={"steps": 6}, eval={"every": 2, "n": 32}, checkpoint={"every": 2})
    Trainer(_cfg(**sec), tmp_path / "whole", quiet=True).fit()
    Trainer(_cfg(**{**sec, "train": {"steps": 4}}), tmp_path / "cut", quiet=True).fit()
    for name in ("losses.jsonl", "metrics.jsonl"):
        with open(tmp_path / "cut" / name, "ab") as f:
            f.write(tail)  # what a kill or a full disk in the middle of an append leaves
    with pytest.warns(UserWarning, match="unreadable line") if tail.strip() else nullcontext():
        code, _ = cli(["train", "--resume", str(tmp_path / "cut"), "--train.steps=6", "--quiet"], capsys)
    assert code == 0
    from ganforge.bench.faults import log_lines

    for name in ("losses.jsonl", "metrics.jsonl"):
        assert log_lines(tmp_path / "whole", name) == log_lines(tmp_path / "cut", name), name


# ------------------------------------------------------------------ 6. what a resume may change
def test_resume_below_or_at_the_current_step_is_refused(run, capsys):
    before = snapshot(run)
    for extra, says in ((["--train.steps=3"], "--train.steps=3 would not train further"),
                        (["--train.steps=4"], "--train.steps=4 would not train further"),
                        ([], "it already finished (train.steps = 4)")):
        code, err = cli(["train", "--resume", str(run), "--quiet", *extra], capsys)
        assert code == 2 and f"is already at step 4: {says}" in err and "larger than 4" in err
    assert snapshot(run) == before


def test_runtime_settings_may_change_on_resume_and_the_maths_may_not(run, capsys):
    before = snapshot(run)
    for bad in ("--optim.g.lr=0.1", "--train.batch_size=8", "--train.seed=1", "--nets.g.hidden=8"):
        code, err = cli(["train", "--resume", str(run), "--train.steps=6", bad, "--quiet"], capsys)
        assert code == 2 and "cannot change" in err and "train.threads" in err, bad
    assert snapshot(run) == before
    code, _ = cli(["train", "--resume", str(run), "--train.steps=6", "--train.threads=1", "--train.device=cpu",
                   "--train.log_every=1", "--train.tensorboard=false", "--eval.every=1", "--eval.n=16",
                   "--checkpoint.every=1", "--checkpoint.keep=2", "--train.max_nonfinite=3", "--quiet"], capsys)
    assert code == 0 and [s for s, _ in ckpt.list_checkpoints(run)] == [5, 6]


# ------------------------------------------------------------------ 7. disk full during a checkpoint write
def _disk_full_on_save(monkeypatch, fail_from: int) -> list[int]:
    real, calls = torch.save, []

    def save(obj, f, *a, **k):
        calls.append(1)
        if len(calls) >= fail_from:
            f.write(b"PK\x03\x04 half a checkpoint")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(obj, f, *a, **k)

    monkeypatch.setattr(ckpt.torch, "save", save)
    return calls


@pytest.mark.parametrize("fail_from", [1, 2])
def test_disk_full_during_a_checkpoint_write_is_one_sentence(tmp_path, recipe, capsys, monkeypatch, fail_from):
    run = tmp_path / "run"
    _disk_full_on_save(monkeypatch, fail_from)
    code, err = cli(["train", str(recipe), "--out", str(run), "--quiet"], capsys)
    assert code == 2
    line = err.strip()
    assert "\n" not in line and "No space left on device" in line and "cannot write checkpoint" in line
    if fail_from == 1:
        assert "there is no earlier checkpoint" in line and "last good checkpoint" not in line
    else:
        assert f"the last good checkpoint is {ckpt.checkpoint_path(run, 2)}" in line
        monkeypatch.undo()
        assert ckpt.load(ckpt.checkpoint_path(run, 2))["step"] == 2  # the good one was left alone
    assert not [p for p in (run / "checkpoints").iterdir() if ".tmp-" in p.name]  # temporary file removed
    assert not (run / rundir.LOCK).exists()


def test_a_full_disk_while_appending_a_log_record(tmp_path, monkeypatch):
    t = Trainer(_cfg(train={"steps": 4}), tmp_path / "r", quiet=True)

    def full(*a, **k):
        raise rundir.WriteError(f"cannot append to {tmp_path / 'r' / 'losses.jsonl'}: No space left on device",
                                "No space left on device")

    monkeypatch.setattr(rundir, "append_text", full)
    with pytest.raises(ConfigError, match=r"No space left on device; there is no earlier checkpoint"):
        t.fit()
    assert not (tmp_path / "r" / rundir.LOCK).exists()


def test_nonfinite_stop_never_names_an_empty_folder_as_the_last_good_checkpoint(tmp_path):
    t = Trainer(_cfg(train={"steps": 20, "max_nonfinite": 2}, checkpoint={"every": 0}), tmp_path / "r", quiet=True)
    for ph in t.phases:
        real = ph.loss
        ph.loss = lambda batch, _real=real: (_real(batch)[0] * float("nan"), {})
    with pytest.raises(TrainingStopped) as e:
        t.fit()
    assert "there is no earlier checkpoint" in str(e.value) and "last good checkpoint is in" not in str(e.value)


# ------------------------------------------------------------------ 8. a pickle that wants to run code
class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_code_carrying_checkpoint_is_refused_in_one_plain_sentence(run, tmp_path, capsys):
    marker = tmp_path / "code-ran"
    evil = tmp_path / "evil.pt"
    torch.save({"format": ckpt.FORMAT, "step": 1, "x": _Payload(marker)}, evil)
    with pytest.raises(CheckpointError) as e:
        ckpt.load(evil)
    msg = str(e.value)
    assert f"cannot read checkpoint {evil}: refused, because it tries to import the callable" in msg
    assert ("io.open" in msg or "builtins.open" in msg) and "never runs code from a checkpoint" in msg
    assert "\n" not in msg and "\x1b" not in msg  # not torch's text, cut mid-sentence
    code, err = cli(["sample", str(evil), "--n", "4", "--out", str(tmp_path / "s.npy")], capsys)
    assert code == 2 and "tries to import the callable" in err
    assert not marker.exists() and not (tmp_path / "s.npy").exists()


# ------------------------------------------------------------------ 9. out of memory
@pytest.mark.parametrize("error", [
    torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB"),
    RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: not enough memory: you tried to "
                 "allocate 1099511627776 bytes."),
])
def test_out_of_memory_says_which_settings_to_lower(tmp_path, recipe, capsys, monkeypatch, error):
    real = Trainer._run_phase

    def phase(self, ph):
        if self.step == 3:
            raise error
        return real(self, ph)

    monkeypatch.setattr(Trainer, "_run_phase", phase)
    run = tmp_path / "run"
    code, err = cli(["train", str(recipe), "--out", str(run), "--quiet"], capsys)
    assert code == 2
    line = err.strip()
    assert "\n" not in line and line.startswith("ganforge: error: out of memory at step 3")
    for setting in ("train.batch_size (now 32)", "nets.g.hidden=16", "nets.d.hidden=16", "eval.n (now 256)"):
        assert setting in line
    assert f"the last good checkpoint is {ckpt.checkpoint_path(run, 2)}" in line
    assert [s for s, _ in ckpt.list_checkpoints(run)] == [2]  # nothing saved after the error
    assert not (run / rundir.LOCK).exists()


def test_a_run_that_fails_to_build_leaves_no_half_made_folder(tmp_path, capsys):
    """A new --out folder is removed again when the run cannot start (here: a batch larger than the data)."""
    p = tmp_path / "big-batch.yaml"
    p.write_text(yaml.safe_dump(with_overrides(TINY, train={"steps": 4, "batch_size": 10**7})))
    out = tmp_path / "new-run"
    code, err = cli(["train", str(p), "--out", str(out), "--quiet"], capsys)
    assert code == 2 and "larger than the dataset" in err
    assert not out.exists()
    mine = tmp_path / "mine"  # an existing empty folder is the user's: it stays
    mine.mkdir()
    code, _ = cli(["train", str(p), "--out", str(mine), "--quiet"], capsys)
    assert code == 2 and mine.is_dir()
