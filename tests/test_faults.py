"""Fault handling (issue 8, part 6) end to end: through resume and the CLI.

tests/test_checkpoint.py and tests/test_trainer.py cover the pieces (safe loads,
NaN skipping and counting, SIGTERM in-process, an unwritable directory); these
tests check what a user sees: ``ganforge train --resume`` refusing a code-running
checkpoint, a NaN stop leaving a loadable checkpoint to resume from, SIGINT, a
SIGTERM to a real ``ganforge train`` process, the CLI's error for a bad --out.
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import with_overrides

from ganforge.api import make_config
from ganforge.cli import main
from ganforge.errors import CheckpointError, ConfigError
from ganforge.training import checkpoint as ckpt
from ganforge.training.hooks import Hook
from ganforge.training.trainer import Trainer, TrainingStopped


class _Payload:
    """Unpickling this creates ``marker``: the stand-in for any code an attacker could run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


# ------------------------------------------------------------------ pickles that would run code
def test_a_checkpoint_that_would_run_code_is_refused(tmp_path, tiny_cfg, capsys):
    marker = tmp_path / "code-ran"
    evil = {"format": ckpt.FORMAT, "version": ckpt.VERSION, "config": tiny_cfg, "step": 3, "x": _Payload(marker)}
    # control: the payload is live; an ordinary unpickler runs it
    control = tmp_path / "control"
    pickle.loads(pickle.dumps(_Payload(control)))
    assert control.exists()

    run = tmp_path / "run"
    path = ckpt.checkpoint_path(run, 3)
    path.parent.mkdir(parents=True)
    torch.save(evil, path)  # a real torch checkpoint file, with the payload inside
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        ckpt.load(path)
    with pytest.raises(CheckpointError, match="no checkpoint could be read"), pytest.warns(UserWarning):
        Trainer.resume(run)
    import ganforge

    with pytest.raises(CheckpointError):
        ganforge.load_game(path)
    with pytest.warns(UserWarning):
        assert main(["train", "--resume", str(run), "--quiet"]) == 2
    assert "no checkpoint could be read" in capsys.readouterr().err
    assert not marker.exists(), "unpickling the checkpoint ran the payload"


# ------------------------------------------------------------------ non-finite losses
def _poison(trainer: Trainer, from_step: int, phases=("d", "g"), until: int | None = None) -> None:
    """Make the named phases' losses NaN for steps in [from_step, until)."""
    for ph in trainer.phases:
        if ph.name not in phases:
            continue
        real = ph.loss

        def loss(batch, _real=real):
            value, logs = _real(batch)
            if trainer.step >= from_step and (until is None or trainer.step < until):
                return value * float("nan"), logs
            return value, logs

        ph.loss = loss


def test_too_many_nonfinite_in_a_row_stops_and_keeps_the_last_good_checkpoint(tmp_path, tiny_cfg):
    cfg = make_config(with_overrides(tiny_cfg, train={"steps": 50, "max_nonfinite": 4},
                                     checkpoint={"every": 10, "keep": 10}))
    t = Trainer(cfg, tmp_path / "run", quiet=True)
    _poison(t, 12)
    good = {}

    class Snap(Hook):
        def on_log(self, trainer, record):
            if record["step"] == 12:  # the last state before the losses turn NaN
                good.update({k: v.clone() for k, v in trainer.game.state_dict().items()})

    t.hooks.append(Snap())
    with pytest.raises(TrainingStopped, match=r"4 non-finite (\w+ )?losses in a row at step 1[2-5]"):
        t.fit()
    assert t.skipped >= 4
    # no NaN update got into the weights, and the last good checkpoint is the one on disk
    for k, v in t.game.state_dict().items():
        assert torch.equal(v, good[k]), k
    state, path = ckpt.load_latest(t.run_dir)
    assert state["step"] == 10 and path.name == "step_000000010.pt"
    assert all(torch.isfinite(v).all() for v in state["game"].values() if v.is_floating_point())
    # the run continues from that checkpoint once the cause is gone
    resumed = Trainer.resume(t.run_dir, {"train.steps": 12}, quiet=True)
    assert resumed.step == 10
    resumed.fit()
    assert resumed.step == 12


def test_max_nonfinite_is_validated():
    with pytest.raises(ConfigError, match=r"train.max_nonfinite must be >= 1, got 0"):
        make_config({"train": {"max_nonfinite": 0}})


# ------------------------------------------------------------------ signals
def test_sigint_writes_a_checkpoint_and_stops_cleanly(tmp_path, tiny_cfg):
    """Ctrl-C (SIGTERM in-process is in tests/test_trainer.py)."""
    sig = signal.SIGINT
    cfg = make_config(with_overrides(tiny_cfg, train={"steps": 100}, checkpoint={"every": 0}))
    t = Trainer(cfg, tmp_path / "run", quiet=True)

    class Kill(Hook):
        def on_log(self, trainer, record):
            if record["step"] == 4:
                os.kill(os.getpid(), sig)

    t.hooks.append(Kill())
    before = signal.getsignal(sig)
    with pytest.raises(TrainingStopped, match=f"stopped by {sig.name} at step 4; checkpoint saved"):
        t.fit()
    assert signal.getsignal(sig) is before  # handlers restored
    assert [s for s, _ in ckpt.list_checkpoints(t.run_dir)] == [4]
    state, _ = ckpt.load_latest(t.run_dir)
    for k, v in t.game.state_dict().items():
        assert torch.equal(state["game"][k], v), k


def test_sigterm_to_the_cli_saves_and_exits_130(tmp_path):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "ganforge", "train", str(Path(__file__).parent.parent / "configs/toy/ring.yaml"),
           "--out", str(run), "--quiet", "--train.steps=100000", "--train.threads=1", "--train.log_every=1",
           "--train.batch_size=32", "--eval.every=0", "--checkpoint.every=0", "--nets.g.hidden=16",
           "--nets.d.hidden=16", "--data.n=2048"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    losses = run / "losses.jsonl"
    deadline = time.time() + 60
    while time.time() < deadline and not (losses.exists() and losses.stat().st_size > 0):
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "stopped by SIGTERM" in err and "--resume" in err
    steps = [s for s, _ in ckpt.list_checkpoints(run)]
    assert len(steps) == 1 and steps[0] >= 1
    assert ckpt.load_latest(run)[0]["step"] == steps[0]


# ------------------------------------------------------------------ unwritable output
def test_unwritable_run_directory_is_a_clear_error_before_training(tmp_path, tiny_cfg, capsys, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    built = []
    import ganforge.training.trainer as tr

    monkeypatch.setattr(tr, "build", lambda cfg: built.append(cfg))
    with pytest.raises(ConfigError, match=r"cannot write to the run directory .*a-file/run"):
        Trainer(make_config(tiny_cfg), blocker / "run", quiet=True)
    assert built == [], "the trainer built the game before checking the directory"
    monkeypatch.undo()
    cfg_file = tmp_path / "tiny.yaml"
    import yaml

    cfg_file.write_text(yaml.safe_dump(tiny_cfg))
    assert main(["train", str(cfg_file), "--out", str(blocker / "run"), "--quiet"]) == 2
    assert "cannot write to the run directory" in capsys.readouterr().err


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into a read-only folder")
def test_read_only_run_directory_is_a_clear_error(tmp_path, tiny_cfg):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(ConfigError, match="cannot write to the run directory"):
            Trainer(make_config(tiny_cfg), ro / "run", quiet=True)
    finally:
        ro.chmod(0o700)


# ------------------------------------------------------------------ the drill's comparison
def test_fault_drill_comparison_sees_a_single_bit():
    from ganforge.bench.faults import _diff
    from ganforge.registry import BENCHMARKS

    assert "faults" in BENCHMARKS
    a = {"game": {"w": torch.tensor([1.0, 2.0])}, "rng": [torch.zeros(3, dtype=torch.uint8)], "step": 5}
    b = {"game": {"w": torch.tensor([1.0, 2.0])}, "rng": [torch.zeros(3, dtype=torch.uint8)], "step": 5}
    out, n = [], [0]
    _diff(a, b, "", out, n)
    assert out == [] and n == [2]
    b["game"]["w"] = torch.tensor([1.0, torch.nextafter(torch.tensor(2.0), torch.tensor(3.0)).item()])
    b["step"] = 6
    _diff(a, b, "", out, n)
    assert out == ["game.w", "step"]


def test_fault_drill_log_comparison_is_byte_for_byte_without_time(tmp_path):
    from ganforge.bench.faults import log_lines

    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "losses.jsonl").write_text('{"step": 3, "time": 1.5, "d_loss": 0.25}\n'
                                    '{"step": 6, "time": 3.0, "d_loss": 0.5}\n')
    (b / "losses.jsonl").write_text('{"step": 3, "time": 0.123, "d_loss": 0.25}\n{"step": 6, "time": 9e-05, '
                                    '"d_loss": 0.5}\n')
    assert log_lines(a, "losses.jsonl") == log_lines(b, "losses.jsonl")
    assert log_lines(a, "losses.jsonl")[0] == b'{"step": 3, "d_loss": 0.25}'
    (b / "losses.jsonl").write_text('{"step": 3, "time": 0.1, "d_loss": 0.25}\n{"step": 6, "time": 3.0, '
                                    '"d_loss": 0.50}\n')  # the same number, other bytes: a difference
    assert log_lines(a, "losses.jsonl") != log_lines(b, "losses.jsonl")
