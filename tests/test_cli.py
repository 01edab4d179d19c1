"""The `ganforge` command line: smoke runs of every foundation entry point, and bad input -> exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import TINY

from ganforge import api, cli
from ganforge.config import load_config
from ganforge.errors import ConfigError
from ganforge.registry import LABS, OBJECTIVES

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def recipe(tmp_path) -> Path:
    p = tmp_path / "tiny.yaml"
    p.write_text(yaml.safe_dump(TINY))
    return p


def test_train_then_sample(recipe, tmp_path, capsys):
    run = tmp_path / "run"
    assert cli.main(["train", str(recipe), "--train.steps=4", "--objective.name=hinge", "--out", str(run)]) == 0
    out, err = capsys.readouterr()
    assert "finished tiny" in out and f"run folder:       {run}" in out and "final metrics at step 4" in out
    assert "step/s" not in out + err  # no progress bar when the output is not a terminal
    assert yaml.safe_load((run / "config.yaml").read_text())["objective"] == {"name": "hinge"}
    npy, csv = tmp_path / "s.npy", tmp_path / "s.csv"
    assert cli.main(["sample", str(run), "--n", "30", "--seed", "5", "--out", str(npy)]) == 0
    assert cli.main(["sample", str(run), "--n", "30", "--seed", "5", "--out", str(csv)]) == 0
    assert f"wrote 30 samples to {npy}" in capsys.readouterr().out
    a, b = np.load(npy), np.loadtxt(csv, delimiter=",")
    assert a.shape == (30, 2) and np.allclose(a, b, rtol=1e-6, atol=1e-7)
    assert np.array_equal(a, api.sample(run, 30, seed=5).numpy())  # same seed and checkpoint: same samples
    assert not np.array_equal(a, api.sample(run, 30, seed=6).numpy())
    # --resume with a larger train.steps extends the run
    assert cli.main(["train", "--resume", str(run), "--train.steps=6", "--quiet"]) == 0
    assert ": step 6 in " in capsys.readouterr().out


def test_list(capsys):
    assert cli.main(["list", "objectives"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "objectives:"
    names = [ln.split()[0] for ln in lines[1:]]
    assert names == OBJECTIVES.names()
    assert all(len(ln.split(None, 1)) == 2 for ln in lines[1:])  # one line each, with a description
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    for kind in ("objectives:", "penalties:", "nets:", "datasets:", "games:"):
        assert kind in out


def test_dry_run_prints_the_resolved_config(recipe, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["train", str(recipe), "--dry-run", "--train.steps=77", "--optim.d.lr=1e-3"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed == load_config(recipe, ["--train.steps=77", "--optim.d.lr=1e-3"]).data
    assert printed["train"]["steps"] == 77 and printed["optim"]["d"]["lr"] == 1e-3
    assert printed["train"]["d_steps"] == 1  # defaults filled in
    assert not (tmp_path / "runs").exists()  # nothing was trained


def test_lab_list(capsys):
    assert cli.main(["lab", "list"]) == 0
    out = capsys.readouterr().out
    assert [ln.split()[0] for ln in out.splitlines()] == LABS.names()


def _bad_cases(tmp_path: Path, recipe: Path) -> list[tuple[list[str], str]]:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    empty = tmp_path / "empty-run"
    empty.mkdir()
    return [
        (["train", str(recipe), "--objective.name=hinj"], "unknown objective 'hinj'. Did you mean 'hinge'?"),
        (["train", str(recipe), "--objective.name=vanilla"], "'vanilla' is ambiguous"),
        (["train", str(recipe), "--train.lr=1"], "unknown key train.lr. Valid keys: steps, batch_size"),
        (["train", str(recipe), "--train.steps=many"], "train.steps must be an integer, got 'many'"),
        (["train", str(tmp_path / "nope.yaml")], "config file not found:"),
        (["train", str(recipe), "--train.steps=-3"], "train.steps must be >= 0, got -3"),
        (["train", str(recipe), "--out", str(blocker / "run")], "cannot write to the run directory"),
        (["train", "--resume", str(empty)], "no checkpoints in"),
        (["train"], "train needs a config file"),
        (["train", str(recipe), "stray"], "unexpected argument(s) stray"),
        (["sample", str(empty)], "no checkpoints in"),
        (["bench", "no-such-bench"], "unknown benchmark 'no-such-bench'"),
        (["lab", "no-such-lab"], "unknown lab experiment 'no-such-lab'"),
    ]


def test_bad_input_exits_2_with_a_message_and_no_traceback(recipe, tmp_path, capsys):
    for argv, message in _bad_cases(tmp_path, recipe):
        code = cli.main(argv)
        out, err = capsys.readouterr()
        assert code == 2, (argv, out, err)
        assert err.startswith("ganforge: error: ") and message in err, (argv, err)
        assert "Traceback" not in out + err


@pytest.mark.parametrize("args,message", [(["--train.steps=-1"], "train.steps must be >= 0, got -1"),
                                          (["--objective.name=nope"], "Valid objectives: alpha")])
def test_the_installed_command_exits_2_without_a_traceback(recipe, args, message):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    p = subprocess.run([sys.executable, "-m", "ganforge", "train", str(recipe), *args], capture_output=True,
                       text=True, env=env, timeout=300)
    assert p.returncode == 2, p.stderr
    assert message in p.stderr and "Traceback" not in p.stderr and p.stdout == ""


def test_sample_file_type_is_checked(tmp_path, capsys):
    run = tmp_path / "run"
    api.train(TINY, out=run)
    assert cli.main(["sample", str(run), "--out", str(tmp_path / "s.txt")]) == 2
    assert "unknown sample file type '.txt'. Valid: .npy, .csv" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="n must be >= 1"):
        api.sample(run, 0)
    assert torch.isfinite(api.sample(run, 3)).all()
