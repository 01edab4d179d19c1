"""The trainer: exact resume (in process, after SIGTERM, after SIGKILL), damaged and hostile checkpoints,
non-finite losses, unwritable run directories, evaluation isolation, and a short run that learns."""

from __future__ import annotations

import io
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from conftest import GAMES, TINY, assert_same_state, read_records, with_overrides

from ganforge import api, cli
from ganforge.config import load_config
from ganforge.errors import CheckpointError, ConfigError
from ganforge.training import checkpoint as ckpt
from ganforge.training.trainer import Trainer, TrainingStopped

REPO = Path(__file__).resolve().parents[1]


def _cfg(**sections):
    return load_config(None, base=with_overrides(TINY, **sections))


def _final_state(run_dir: Path) -> dict:
    state, _ = ckpt.load_latest(run_dir)
    return state


def _assert_same_run(a: Path, b: Path, *, all_evals: bool = True) -> None:
    """Final checkpoints (weights, optimizer states, EMA, RNG, data position, config) and logs are identical.

    ``all_evals=False``: the split run also evaluated at the end of its first leg, so only the final
    evaluation is compared.
    """
    sa, sb = _final_state(a), _final_state(b)
    assert sa["step"] == sb["step"]
    assert_same_state(sa, sb)
    assert read_records(a) == read_records(b)
    ma, mb = read_records(a, "metrics.jsonl"), read_records(b, "metrics.jsonl")
    assert (ma == mb) if all_evals else (ma[-1] == mb[-1])


# ---------------------------------------------------------------------------- exact resume
def test_resume_is_exact(tmp_path):
    """2N steps in one go == N steps, then Trainer.resume, then to 2N (EMA and eval on, k = 2)."""
    sec = dict(train={"steps": 8, "ema": 0.9, "d_steps": 2}, eval={"every": 4, "n": 64},
               checkpoint={"every": 4})
    Trainer(_cfg(**sec), tmp_path / "whole", quiet=True).fit()
    half = dict(sec, train={**sec["train"], "steps": 4})
    Trainer(_cfg(**half), tmp_path / "split", quiet=True).fit()
    assert _final_state(tmp_path / "split")["step"] == 4
    tr = Trainer.resume(tmp_path / "split", {"train.steps": 8}, quiet=True)
    assert tr.step == 4
    tr.fit()
    _assert_same_run(tmp_path / "whole", tmp_path / "split")
    assert len(read_records(tmp_path / "whole")) == 8
    # the resolved config in the run directory is the one that ran, and every checkpoint holds it
    on_disk = yaml.safe_load((tmp_path / "split" / "config.yaml").read_text())
    assert on_disk == tr.cfg.data and on_disk["train"]["steps"] == 8
    for _, p in ckpt.list_checkpoints(tmp_path / "whole"):
        assert ckpt.load(p)["config"] == yaml.safe_load((tmp_path / "whole" / "config.yaml").read_text())


@pytest.mark.parametrize("game", ["bigan", "cyclegan", "gan-wgan-gp", "gan-ebgan"])
def test_resume_is_exact_for_other_games(game, tmp_path):
    """Two optimizer groups with other names (BiGAN), two data streams (CycleGAN), penalties' own RNG use."""
    raw = with_overrides(GAMES[game], train={"steps": 4}, checkpoint={"every": 2})
    Trainer(load_config(None, base=raw), tmp_path / "whole", quiet=True).fit()
    Trainer(load_config(None, base=with_overrides(raw, train={"steps": 2})), tmp_path / "split", quiet=True).fit()
    Trainer.resume(tmp_path / "split", {"train.steps": 4}, quiet=True).fit()
    _assert_same_run(tmp_path / "whole", tmp_path / "split", all_evals=False)


def test_resume_refuses_changes_that_would_alter_the_run(tmp_path):
    Trainer(_cfg(train={"steps": 2}), tmp_path, quiet=True).fit()
    with pytest.raises(ConfigError, match=r"cannot change optim.g.lr when resuming.*Allowed: train.steps"):
        Trainer.resume(tmp_path, {"optim.g.lr": 0.1})
    with pytest.raises(ConfigError, match=r"give either a config or --resume RUN_DIR"):
        api.train(TINY, resume=tmp_path)
    with pytest.raises(CheckpointError, match="no checkpoints in"):
        Trainer.resume(tmp_path / "nothing-here")


def test_sigterm_writes_a_checkpoint_and_the_run_resumes_exactly(tmp_path):
    Trainer(_cfg(train={"steps": 7}, checkpoint={"every": 0}), tmp_path / "whole", quiet=True).fit()
    tr = Trainer(_cfg(train={"steps": 7}, checkpoint={"every": 0}), tmp_path / "cut", quiet=True)
    g_phase = tr.phases[1]
    inner, calls = g_phase.loss, []

    def loss_then_signal(batch):
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGTERM)  # as a scheduler would, mid-step 3
        return inner(batch)

    g_phase.loss = loss_then_signal
    handler_before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(TrainingStopped, match=r"stopped by SIGTERM at step 3; checkpoint saved.*--resume"):
        tr.fit()
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path / "cut")] == [3]
    assert signal.getsignal(signal.SIGTERM) is handler_before  # the trainer's handler is removed again
    Trainer.resume(tmp_path / "cut", quiet=True).fit()
    _assert_same_run(tmp_path / "whole", tmp_path / "cut")


def _wait_for(pred, timeout: float, proc: subprocess.Popen) -> None:
    t0 = time.time()
    while not pred():
        assert proc.poll() is None, f"the run ended early: {proc.communicate()}"
        assert time.time() - t0 < timeout, "timed out waiting for the subprocess"
        time.sleep(0.01)


def test_sigkilled_run_resumes_from_its_last_good_checkpoint(tmp_path):
    # The kill lands at the second checkpoint (step 80) or soon after; the 120 steps left keep it mid-run
    # (the child's pace and the test's share of the CPU are alike, however loaded the machine).
    steps = 200
    raw = with_overrides(TINY, train={"steps": steps, "log_every": 10}, checkpoint={"every": 40, "keep": 3})
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(yaml.safe_dump(raw))
    run = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "ganforge", "train", str(recipe), "--out", str(run), "--quiet"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: len(ckpt.list_checkpoints(run)) >= 2, 600, proc)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    last = ckpt.list_checkpoints(run)[-1][0]
    assert 80 <= last < steps, last
    logged = read_records(run)
    # the killed run may have logged steps after its last checkpoint; a resume must drop them
    assert cli.main(["train", "--resume", str(run), "--quiet"]) == 0
    assert _final_state(run)["step"] == steps
    assert len(read_records(run)) == steps // 10 and len(logged) >= last // 10
    Trainer(load_config(recipe), tmp_path / "whole", quiet=True).fit()
    _assert_same_run(tmp_path / "whole", run)


# ---------------------------------------------------------------------------- non-finite losses
def _flaky(tr: Trainer, bad_calls: set[int]):
    """Make the critic's loss NaN on the given (1-based) calls."""
    ph = tr.phases[0]
    inner, n = ph.loss, [0]

    def loss(batch):
        n[0] += 1
        value, logs = inner(batch)
        return (value * math.nan, logs) if n[0] in bad_calls else (value, logs)

    ph.loss = loss


def test_non_finite_losses_are_skipped_and_counted(tmp_path):
    tr = Trainer(_cfg(train={"steps": 6}), tmp_path, quiet=True)
    _flaky(tr, {2, 3, 5})
    d_before = [p.detach().clone() for p in tr.game.nets["d"].parameters()]
    tr._run_phase(tr.phases[0])  # call 1: fine
    d_after_one = [p.detach().clone() for p in tr.game.nets["d"].parameters()]
    tr._run_phase(tr.phases[0])  # call 2: NaN, so no update
    assert any(not torch.equal(a, b) for a, b in zip(d_before, d_after_one, strict=True))
    assert all(torch.equal(a, p) for a, p in zip(d_after_one, tr.game.nets["d"].parameters(), strict=True))
    assert tr.skipped == 1 and tr.nonfinite == {"d": 1}
    tr.fit()
    assert tr.skipped == 3 and tr.step == 6
    assert _final_state(tmp_path)["counters"]["skipped"] == 3
    for line in (tmp_path / "losses.jsonl").read_text().splitlines():  # strict JSON: no NaN records
        json.loads(line, parse_constant=lambda c: pytest.fail(f"non-finite value {c} in losses.jsonl"))
    assert "non-finite d loss at step" in (tmp_path / "train.log").read_text()


def test_too_many_non_finite_losses_in_a_row_stop_the_run(tmp_path):
    """Counted per phase: the critic's NaNs stop the run although the generator's losses stay finite."""
    tr = Trainer(_cfg(train={"steps": 50, "max_nonfinite": 4}), tmp_path, quiet=True)
    _flaky(tr, set(range(3, 1000)))
    with pytest.raises(TrainingStopped, match=r"4 non-finite d losses in a row at step 5.*Lower the learning rate"):
        tr.fit()
    assert tr.skipped == 4


# ---------------------------------------------------------------------------- run directory
def test_unwritable_run_directory_is_a_config_error_before_training(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(ConfigError, match=r"cannot write to the run directory .*a-file/run"):
        Trainer(_cfg(), blocker / "run", quiet=True)
    assert blocker.read_text() == "not a directory"


def test_run_directory_layout_and_sampling_from_a_checkpoint_alone(tmp_path):
    run = tmp_path / "run"
    res = api.train(with_overrides(TINY, eval={"every": 3, "samples": True}), out=run)
    assert res.step == 6 and set(res.metrics) >= {"modes", "hq", "rkl"}
    assert {p.name for p in run.iterdir()} >= {"config.yaml", "checkpoints", "samples", "metrics.jsonl",
                                               "losses.jsonl", "train.log"}
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step_0000003.png", "step_0000006.png"]
    assert [r["step"] for r in read_records(run, "metrics.jsonl")] == [3, 6]
    assert (run / "samples" / "step_0000006.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # a checkpoint copied anywhere on its own is enough to sample from
    lone = tmp_path / "elsewhere" / "model.pt"
    lone.parent.mkdir()
    lone.write_bytes(ckpt.checkpoint_path(run, 6).read_bytes())
    x = api.sample(lone, 50, seed=3)
    assert x.shape == (50, 2) and torch.isfinite(x).all()
    assert torch.equal(x, api.sample(run, 50, seed=3))
    assert not torch.equal(x, api.sample(lone, 50, seed=4))


def test_evaluation_never_touches_the_training_rng(tmp_path):
    Trainer(_cfg(eval={"every": 1, "samples": True, "n": 300}), tmp_path / "eval", quiet=True).fit()
    Trainer(_cfg(eval={"every": 0, "n": 300}), tmp_path / "plain", quiet=True).fit()
    a, b = _final_state(tmp_path / "eval"), _final_state(tmp_path / "plain")
    for key in ("game", "optimizers", "rng", "data", "step"):
        assert_same_state(a[key], b[key], key)
    assert read_records(tmp_path / "eval") == read_records(tmp_path / "plain")
    assert len(read_records(tmp_path / "eval", "metrics.jsonl")) == 6


# ---------------------------------------------------------------------------- it learns
def test_a_short_ring_run_covers_the_modes(tmp_path):
    """300 steps of the non-saturating GAN on an 8-mode ring (std 0.05): all modes, many HQ samples.

    Measured (seeds 0-2, evaluations every 100 steps up to 600): 8/8 modes at every evaluation,
    hq 0.31-0.35 at step 300. An untrained generator has hq ~ 0.
    """
    raw = with_overrides(
        TINY, data={"name": "ring", "n": 20000, "std": 0.05}, game={"name": "gan", "z_dim": 8},
        nets={"g": {"name": "mlp", "hidden": 64, "depth": 2, "norm": "batch"},
              "d": {"name": "mlp", "hidden": 64, "depth": 2, "activation": "leaky_relu"}},
        train={"steps": 300, "batch_size": 128, "log_every": 100},
        eval={"every": 0, "n": 2500}, checkpoint={"every": 0, "keep": 1})
    tr = Trainer(load_config(None, base=raw), tmp_path, quiet=True)
    before = tr._metrics_fn(tr.data, tr.game.sample(2500, generator=torch.Generator().manual_seed(0)), None)
    metrics = tr.fit()
    assert before["hq"] < 0.05, before
    assert metrics["modes"] >= 7, metrics
    assert metrics["hq"] >= 0.2, metrics


# ---------------------------------------------------------------------------- feedback
class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("quiet", [False, True])
def test_progress_bar_with_eta_and_live_losses_only_on_a_terminal(tmp_path, monkeypatch, quiet):
    term = _Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    Trainer(_cfg(train={"steps": 6, "log_every": 2}), tmp_path, quiet=quiet).fit()
    out = term.getvalue()
    if quiet:
        assert "step/s" not in out
    else:
        assert "6/6 [" in out and "<00:00" in out and "d_loss=" in out and "g_loss=" in out


def test_1d_data_is_evaluated_by_kl_and_js(tmp_path):
    res = api.train(with_overrides(TINY, data={"name": "mixture-1d", "n": 1000}, train={"steps": 3},
                                   eval={"every": 0, "n": 500, "samples": True}), out=tmp_path)
    assert {"kl", "js"} <= set(res.metrics) and all(math.isfinite(res.metrics[k]) for k in ("kl", "js"))
    assert 0 <= res.metrics["js"] <= math.log(2) + 1e-9
    assert (tmp_path / "samples" / "step_0000003.png").is_file()


# ---------------------------------------------------------------------------- EMA
def test_ema_of_the_generator(tmp_path):
    """shadow <- decay * shadow + (1 - decay) * param after each G update; sampling uses the shadow."""
    tr = Trainer(_cfg(train={"ema": 0.75}), tmp_path, quiet=True)
    assert set(tr.ema.shadow) == {"g"}
    shadow0 = [p.detach().clone() for p in tr.ema.shadow["g"].parameters()]
    tr._run_phase(tr.phases[0])  # the critic's step leaves the shadow alone
    assert all(torch.equal(a, b) for a, b in zip(shadow0, tr.ema.shadow["g"].parameters(), strict=True))
    tr._run_phase(tr.phases[1])
    for s0, s1, p in zip(shadow0, tr.ema.shadow["g"].parameters(), tr.game.nets["g"].parameters(), strict=True):
        torch.testing.assert_close(s1, 0.75 * s0 + 0.25 * p.detach())
    gen = torch.Generator().manual_seed(0)
    with tr.sampling_context():
        x_ema = tr.game.sample(5, generator=gen)
    z = torch.randn(5, 4, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(x_ema, tr.ema.shadow["g"].eval()(z))
