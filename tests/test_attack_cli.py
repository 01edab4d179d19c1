"""The command line's first hour: bad input is one sentence and exit 2, help is complete, `list` is light,
a run ends with a readable summary, and threads default to what the process may use (issues 12, 14)."""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from conftest import TINY, with_overrides

import ganforge
from ganforge import catalogue, cli
from ganforge.commands import invoked_as
from ganforge.commands.train import summary
from ganforge.training import progress, threads

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A finished tiny toy run with one evaluation (modes, hq, rkl, nll) and two checkpoints."""
    raw = with_overrides(TINY, train={"steps": 4}, eval={"every": 0, "n": 256, "samples": True},
                         checkpoint={"every": 2})
    return ganforge.train(raw, out=tmp_path_factory.mktemp("attack") / "run").run_dir


def _exits_2(argv: list[str], message: str, capsys) -> str:
    """``ganforge ARGV`` exits 2 (returned or raised by argparse) with ``message`` on stderr, no traceback."""
    try:
        code = cli.main(argv)
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    assert code == 2, (argv, code, out, err)
    assert err.rstrip().splitlines()[-1].startswith("ganforge: error: "), (argv, err)
    assert message in err, (argv, err)
    assert "Traceback" not in out + err, (argv, err)
    return err


# ------------------------------------------------------------------------------------------ bad input
def test_unknown_command_names_the_valid_ones(capsys):
    err = _exits_2(["trian", "configs/toy/ring.yaml"], "unknown command 'trian'. Did you mean 'train'?", capsys)
    assert "Valid commands: train, sample, eval, report, export, project, inpaint, impute, list, bench, lab" in err


def test_unknown_kind_names_the_valid_ones(capsys):
    err = _exits_2(["list", "nettz"], "unknown kind 'nettz'. Did you mean 'nets'?", capsys)
    assert "Valid kinds: benchmarks, datasets, extractors, games, labs, metrics, nets, objectives" in err


@pytest.mark.parametrize("argv,message", [
    (["sample"], "the following arguments are required: RUN_DIR. See `ganforge sample --help`."),
    (["sample", "x", "--n", "many"], "argument --n: invalid int value: 'many'"),
    (["eval"], "the following arguments are required: source"),
    (["-x"], "unexpected argument(s): -x"),
    (["list", "objectives", "extra"], "unexpected argument(s) for `list`: extra"),
    (["train", "configs/toy/ring.yaml", "--train.steps", "5"],
     "unexpected argument(s) --train.steps 5; overrides look like --section.key=value (here: --train.steps=5)"),
    (["train", "--resume", "runs/x", "--dry-run"], "--dry-run prints a new run's config"),
    (["train", "configs/toy/ring.yaml", "--train.threads=-1"], "train.threads must be >= 0"),
])
def test_argument_errors_are_one_sentence(argv, message, capsys):
    _exits_2(argv, message, capsys)


def test_sample_out_that_cannot_be_written(run, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("mine")
    folder = tmp_path / "a-folder"
    folder.mkdir()
    _exits_2(["sample", str(run), "--out", str(blocker / "sub" / "s.npy")], "is a file, not a folder", capsys)
    _exits_2(["sample", str(run), "--out", str(folder)], "is a folder; give a file name inside it", capsys)
    _exits_2(["sample", str(run), "--grid", str(blocker / "g.png")], "is a file, not a folder", capsys)
    _exits_2(["sample", str(run), "--grid", str(tmp_path / "g.jpg")], "grid files are PNG", capsys)
    _exits_2(["sample", str(run), "--out", str(tmp_path / "s.txt")], "unknown sample file type '.txt'", capsys)
    if Path("/proc").is_dir():  # a folder no one can create files in, root included
        _exits_2(["sample", str(run), "--out", "/proc/ganforge-no-such-dir/s.npy"], "cannot write", capsys)
    assert blocker.read_text() == "mine" and list(folder.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "a-folder"]


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root may write a read-only folder")
def test_sample_out_in_a_read_only_folder(run, tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        _exits_2(["sample", str(run), "--out", str(ro / "s.npy")], "is not writable", capsys)
    finally:
        ro.chmod(0o755)


def test_lab_and_bench_outputs_under_a_file_are_refused_before_any_work(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("mine")
    _exits_2(["lab", "js-identity", "--quick", "--out", str(blocker / "lab")], "cannot create the lab's output",
             capsys)
    _exits_2(["bench", "overhead", "--quick", "--out", str(blocker / "o.json")], "is a file, not a folder", capsys)
    _exits_2(["bench", "compare", "c.yaml", "--out", str(blocker)], "is a file, not a folder", capsys)
    assert blocker.read_text() == "mine" and [p.name for p in tmp_path.iterdir()] == ["a-file"]


# ------------------------------------------------------------------------------------------ help and speed
def _subparsers(p: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def test_every_argument_of_every_command_has_help():
    p = cli._parser()
    commands = _subparsers(p)
    assert list(commands) == ["train", "sample", "eval", "report", "export", "project", "inpaint", "impute", "list",
                             "bench", "lab"]
    missing = [f"{name} {a.option_strings or a.dest}" for name, sp in [("ganforge", p), *commands.items()]
               for a in sp._actions if not isinstance(a, argparse._SubParsersAction)
               and not (a.help and a.help.strip() and a.help != argparse.SUPPRESS)]
    assert missing == [], f"arguments without a help string: {missing}"
    for name, sp in commands.items():
        assert sp.description or name in ("list",), f"`ganforge {name} --help` has no description"


def test_plain_ganforge_prints_the_overview(capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", [str(Path(".venv") / "bin" / "ganforge")])
    assert cli.main([]) == 0
    out = capsys.readouterr().out
    assert "required" not in out
    for name in ("train", "sample", "eval", "report", "export", "list", "bench", "lab"):
        assert f"\n  {name} " in out, name
    assert f"{Path('.venv') / 'bin' / 'ganforge'} train configs/toy/ring.yaml" in out


def test_train_help_explains_overrides_and_lists_the_sections(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["train", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "--SECTION.KEY=VALUE" in out and "--train.steps=2000 --objective.name=hinge" in out
    for section in ("name", "game", "data", "objective", "nets.ROLE", "optim.GROUP", "penalties", "train",
                    "eval", "checkpoint"):
        assert f"\n  {section} " in out, section
    assert "steps, batch_size, d_steps" in out and "every, keep" in out  # the typed sections' keys
    assert "--resume" in out


def test_the_list_catalogue_equals_the_registries():
    stored, real = catalogue.load(), catalogue.from_registries()
    drift = {kind: sorted(set(map(tuple, real.get(kind, []))) ^ set(map(tuple, stored.get(kind, []))))
             for kind in set(real) | set(stored)}
    drift = {k: v for k, v in drift.items() if v}
    assert stored == real, ("ganforge/catalogue.json differs from the registries; regenerate it with "
                            f"`python -m ganforge.catalogue`. Differences (either side): {drift}")


def test_list_prints_the_catalogue(capsys):
    assert cli.main(["list", "games"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "games:"
    assert [ln.split()[0] for ln in lines[1:]] == [n for n, _ in catalogue.from_registries()["games"]]


_LIGHT = """
import sys
from ganforge.cli import main
for argv in ([], ["--help"], ["list"], ["list", "nets"], ["lab", "list"], ["train", "--help"], ["sample", "--help"],
             ["train", "nope.yaml"], ["train", "c.yaml", "--train.steps", "5"], ["train"],
             ["trian"], ["list", "foo"], ["sample"], ["sample", "r", "--n", "x"], ["-x"]):
    try:
        main(argv)
    except SystemExit:
        pass
print("HEAVY", sorted(m for m in ("torch", "matplotlib", "scipy", "sklearn") if m in sys.modules))
"""


def test_help_list_and_argument_errors_import_nothing_heavy():
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    p = subprocess.run([sys.executable, "-c", _LIGHT], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines()[-1] == "HEAVY []", p.stdout[-500:]
    assert "Traceback" not in p.stderr


# ------------------------------------------------------------------------------------------ what a run prints
def test_progress_lines_are_short_and_name_n():
    rec = {"step": 500, "fid": 7.336780617253382, "kid": 0.00213, "kid_std": 0.0003, "modes": 8, "rkl": None}
    assert progress.eval_line(500, rec, 2000) == "step 500: fid 7.34, kid 0.00213 +- 3.00e-04, modes 8, rkl n/a " \
                                                 "(n=2000 samples)"
    assert progress.postfix({"d_loss": 1.3862, "g_loss": 0.69}, rec) == {
        "d_loss": "1.39", "g_loss": "0.69", "fid": "7.34", "kid": "0.00213", "modes": "8", "rkl": "n/a"}
    assert progress.short(1.234e-5) == "1.23e-05" and progress.short(0.0) == "0"


def test_the_end_of_a_run_is_a_readable_summary(run, monkeypatch):
    metrics = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    metrics.pop("step")
    text = summary(run, 4, metrics, wall=75.2, cpu=61.0, threads=1, argv0=".venv/bin/ganforge")
    lines = text.splitlines()
    assert lines[0] == "finished tiny: step 4 in 1 min 15 s wall, 1 min 01 s CPU (1 thread)"
    assert lines[1].startswith("final metrics at step 4 (n=256 samples): modes ")
    assert "{" not in text and '"' not in text  # no raw JSON
    last = sorted((run / "samples").glob("*.png"))[-1]
    assert f"last samples:     {last}" in text
    assert f"checkpoint:       {sorted((run / 'checkpoints').glob('*.pt'))[-1]}" in text
    assert f"{run / 'losses.jsonl'}, {run / 'metrics.jsonl'}, {run / 'train.log'}" in text
    g = os.path.join(".venv", "bin", "ganforge")
    assert f"  {g} train --resume {run} --train.steps=8" in text and f"  {g} report {run}" in text
    assert " eval " not in text  # a toy run: `ganforge eval` scores images only
    text = summary(run, 4, {"fid": 7.3367, "kid": 0.002, "kid_std": 0.0001}, wall=3, cpu=2, threads=2,
                   argv0=".venv/bin/ganforge")
    assert "fid 7.34, kid 0.002 +- 1.00e-04" in text and f"  {g} eval {run} " in text and "(2 threads)" in text


def test_a_stopped_run_says_how_to_continue_with_the_same_executable(monkeypatch):
    from ganforge.training.trainer import TrainingStopped

    monkeypatch.setattr(sys, "argv", ["/nowhere/bin/ganforge"])
    e = TrainingStopped("stopped by SIGINT at step 7; checkpoint saved. Continue with: ganforge train --resume r")
    assert cli._stopped_message(e).endswith("Continue with: /nowhere/bin/ganforge train --resume r")
    assert cli._stopped_message(ValueError("x")) is None


def test_invoked_as_repeats_what_the_user_typed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exe = tmp_path / ".venv" / "bin" / "ganforge"
    exe.parent.mkdir(parents=True)
    exe.write_text("")
    assert invoked_as(str(exe)) == os.path.join(".venv", "bin", "ganforge")
    assert invoked_as(".venv/bin/ganforge") == os.path.join(".venv", "bin", "ganforge")
    assert invoked_as("/elsewhere/bin/ganforge") == "/elsewhere/bin/ganforge"
    assert invoked_as(str(REPO / "ganforge" / "__main__.py")).endswith(" -m ganforge")


def test_train_json_and_resume_with_runtime_settings(tmp_path, capsys):
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(yaml.safe_dump(with_overrides(TINY, train={"steps": 2})))
    out = tmp_path / "run"
    assert cli.main(["train", str(recipe), "--out", str(out), "--json"]) == 0
    rec = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert rec["step"] == 2 and rec["threads"] == 1 and rec["run_dir"] == str(out) and "nll" in rec["metrics"]
    assert cli.main(["train", "--resume", str(out), "--train.steps=3", "--train.threads=1", "--train.device=cpu",
                     "--quiet", "--train.log_every=1", "--eval.every=1", "--checkpoint.every=1"]) == 0
    assert "finished tiny: step 3 in " in capsys.readouterr().out


# ------------------------------------------------------------------------------------------ threads
def test_no_recipe_pins_threads():
    pinned = [str(p.relative_to(REPO)) for p in sorted((REPO / "configs").rglob("*.yaml"))
              if "threads" in (yaml.safe_load(p.read_text()).get("train") or {})]
    assert pinned == []


def test_default_threads_is_what_the_process_may_use(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert threads.default_threads() == 3
    monkeypatch.delenv("OMP_NUM_THREADS")
    n = threads.default_threads()
    cpus = threads.available_cpus()
    assert 1 <= n <= (cpus or n)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", str(n + 1))  # more processes on this machine than threads
    assert threads.default_threads() == 1
    old = torch.get_num_threads()
    try:
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        assert threads.set_threads(0) == 1 and torch.get_num_threads() == 1
        assert threads.set_threads(2) == 2 and torch.get_num_threads() == 2  # an explicit count is obeyed
    finally:
        torch.set_num_threads(old)


def test_a_run_records_its_thread_count(run):
    log = (run / "train.log").read_text()
    assert "training with 1 CPU threads (train.threads=1)" in log


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_evaluations_during_training_are_printed_and_kept_in_the_bar(tmp_path, monkeypatch, capsys):
    from ganforge.api import make_config
    from ganforge.training.trainer import Trainer

    raw = with_overrides(TINY, train={"steps": 6, "log_every": 2}, eval={"every": 2, "n": 128, "samples": False})
    term = _Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    Trainer(make_config(raw), tmp_path / "tty").fit()
    out = term.getvalue()
    assert "step 2: modes " in out and "step 4: modes " in out and "(n=128 samples)" in out
    assert "d_loss=" in out and "modes=" in out and "nll=" in out  # the bar's postfix: losses and metrics
    monkeypatch.undo()
    Trainer(make_config(raw), tmp_path / "pipe").fit()  # not a terminal: the lines, no bar
    err = capsys.readouterr().err
    assert "step 2: modes " in err and "step/s" not in err
    Trainer(make_config(raw), tmp_path / "quiet", quiet=True).fit()
    assert capsys.readouterr().err == ""


def test_the_benchmark_machine_line_names_the_thread_count():
    from ganforge.bench.jobs import machine_line

    assert f"torch {torch.__version__}, 3 threads" in machine_line(3)
    assert f", {torch.get_num_threads()} thread" in machine_line()


@pytest.mark.parametrize("game, wanted, unwanted", [
    ("gain", [" impute TABLE.csv --run "], [" eval ", " sample "]),
    ("dann", [" report "], [" eval ", " sample ", " impute "]),
    ("adda", [" report "], [" eval ", " sample ", " impute "]),
])
def test_summary_suggests_commands_that_fit_the_game(tmp_path, game, wanted, unwanted):
    (tmp_path / "config.yaml").write_text(f"name: t\ngame: {{name: {game}}}\neval: {{n: 10}}\n")
    text = summary(tmp_path, 2, {"rmse": 0.3}, wall=1, cpu=1, threads=1, argv0="ganforge")
    nxt = text.split("next:")[1]
    assert all(w in nxt for w in wanted) and not any(u in nxt for u in unwanted), nxt
    assert " train --resume " in nxt
