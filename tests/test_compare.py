"""`ganforge bench compare`: grid parsing, the CI and test formulas, and a resumable sweep on a tiny toy config."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from scipy import stats

from ganforge.bench.compare import cells, compare, markdown, mean_ci, parse_grid, split_values, welch_p
from ganforge.cli import main
from ganforge.errors import ConfigError
from ganforge.training import checkpoint as ckpt

TINY = {
    "name": "tiny",
    "data": {"name": "ring", "n": 2000},
    "game": {"name": "gan", "z_dim": 4},
    "nets": {"g": {"name": "mlp", "hidden": 16, "depth": 2}, "d": {"name": "mlp", "hidden": 16, "depth": 2}},
    "train": {"steps": 6, "batch_size": 32, "threads": 1},
    "eval": {"every": 0, "n": 300, "samples": False},
    "checkpoint": {"every": 3, "keep": 5},
}


@pytest.fixture
def recipe(tmp_path):
    p = tmp_path / "tiny.yaml"
    p.write_text(yaml.safe_dump(TINY))
    return p


@pytest.mark.parametrize("n", [2, 3, 5, 10])
def test_ci_matches_scipy_t_interval(n):
    x = np.random.default_rng(n).normal(3.0, 2.0, size=n)
    got = mean_ci(list(x))
    lo, hi = stats.t.interval(0.95, n - 1, loc=x.mean(), scale=stats.sem(x))
    np.testing.assert_allclose([got["lo"], got["hi"]], [lo, hi], rtol=1e-12)
    np.testing.assert_allclose(got["std"], x.std(ddof=1), rtol=1e-12)
    assert got["n"] == n


def test_ci_degenerate_sizes():
    assert mean_ci([])["mean"] is None
    one = mean_ci([2.5])
    assert one["mean"] == 2.5 and one["half"] is None


def test_welch_p_matches_scipy_and_zero_variance_rule():
    a, b = [1.0, 2.0, 3.5], [4.0, 4.5, 7.0, 6.0]
    np.testing.assert_allclose(welch_p(a, b), stats.ttest_ind(a, b, equal_var=False).pvalue, rtol=1e-12)
    assert welch_p([8, 8, 8], [8, 8, 8]) == 1.0
    assert welch_p([8, 8, 8], [6, 6, 6]) == 0.0
    assert welch_p([1.0], [2.0, 3.0]) is None


def test_grid_parsing_and_cells():
    assert split_values("a,[1, 2],{x: 1}") == ["a", "[1, 2]", "{x: 1}"]
    g = parse_grid(["objective.name=ns,hinge", "--train.steps=100", "optim.g.betas=[0.5, 0.9],[0.0, 0.9]"])
    assert g[0] == ("objective.name", ["ns", "hinge"])
    assert g[1] == ("train.steps", [100])
    assert g[2][1] == [[0.5, 0.9], [0.0, 0.9]]
    cs = cells(g)
    assert [c.name for c in cs][:2] == ["objective-ns__betas-0.5_0.9", "objective-ns__betas-0.0_0.9"]
    assert len(cs) == 4 and cs[0].values["train.steps"] == 100
    with pytest.raises(ConfigError, match="must look like section.key=v1,v2"):
        parse_grid(["objective.name"])
    with pytest.raises(ConfigError, match="twice"):
        parse_grid(["a.b=1", "a.b=2"])


def test_sweep_is_resumable_and_marks_significance(recipe, tmp_path):
    out = tmp_path / "cmp"
    grid = ["objective.name=ns,hinge"]
    t1 = compare(recipe, seeds=2, grid=grid, out=out, quiet=True)
    assert [r["status"] for c in t1["cells"] for r in c["runs"]] == ["trained"] * 4
    assert (out / "compare.json").is_file() and (out / "compare.md").is_file()
    assert {"modes", "hq", "nll"} <= set(t1["metrics"])
    # each run trained with its own seed in its own directory
    cfg = yaml.safe_load((out / "objective-hinge" / "seed1" / "config.yaml").read_text())
    assert cfg["train"]["seed"] == 1 and cfg["objective"]["name"] == "hinge"

    # second call: every finished run is skipped, the table is the same
    t2 = compare(recipe, seeds=2, grid=grid, out=out, quiet=True)
    assert [r["status"] for c in t2["cells"] for r in c["runs"]] == ["skipped"] * 4
    assert [c["stats"] for c in t2["cells"]] == [c["stats"] for c in t1["cells"]]

    # a half-finished run (final checkpoint lost) is resumed from step 3 and ends exactly where it did
    run = out / "objective-ns" / "seed0"
    ckpt.checkpoint_path(run, 6).unlink()
    t3 = compare(recipe, seeds=2, grid=grid, out=out, quiet=True)
    assert [r["status"] for c in t3["cells"] for r in c["runs"]] == ["resumed", "skipped", "skipped", "skipped"]
    assert t3["cells"][0]["runs"][0]["metrics"] == t1["cells"][0]["runs"][0]["metrics"]
    recs = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in recs] == [6]  # the lost final record was dropped, then written once

    # the table: the reference cell per metric, p-values from the runs' own values
    for m in t3["metrics"]:
        st = [c["stats"][m] for c in t3["cells"]]
        assert sum(s["is_reference"] for s in st) == 1
        other = next(i for i, s in enumerate(st) if not s["is_reference"])
        ref = 1 - other
        vals = [[r["metrics"][m] for r in c["runs"]] for c in t3["cells"]]
        assert st[other]["p"] == welch_p(vals[other], vals[ref])
        assert st[other]["significant"] == (st[other]["p"] < 0.05)
    md = markdown(t3)
    assert "Welch" in md and "| objective-ns |" in md and "(ref)" in md


def test_sweep_refuses_a_foreign_run_directory(recipe, tmp_path):
    out = tmp_path / "cmp"
    compare(recipe, seeds=1, grid=["objective.name=ns"], out=out, quiet=True)
    with pytest.raises(ConfigError, match=r"different config \(train.batch_size differ"):
        compare(recipe, seeds=1, grid=["objective.name=ns", "train.batch_size=16"], out=out, quiet=True)
    # a run written before ganforge grew a config field (here: train.log_every missing) still counts
    p = out / "base" / "seed0" / "config.yaml"  # one value per key: the cell is "base"
    old = yaml.safe_load(p.read_text())
    del old["train"]["log_every"]
    p.write_text(yaml.safe_dump(old))
    t = compare(recipe, seeds=1, grid=["objective.name=ns"], out=out, quiet=True)
    assert t["cells"][0]["runs"][0]["status"] == "skipped"


def test_cli_compare_runs_and_reports_errors(recipe, tmp_path, capsys):
    out = tmp_path / "ok"
    assert main(["bench", "compare", str(recipe), "--seeds", "1", "--grid", "train.steps=2", "--out", str(out),
                 "--metric", "nll"]) == 0
    assert json.loads((out / "compare.json").read_text())["metrics"] == ["nll"]
    assert f"wrote {out / 'compare.json'}" in capsys.readouterr().out
    assert main(["bench", "compare", str(recipe), "--seeds", "0", "--out", str(tmp_path / "x")]) == 2
    assert "--seeds must be >= 1" in capsys.readouterr().err
    assert main(["bench", "compare", str(recipe), "--seeds", "1", "--grid", "train.seed=1,2"]) == 2
    assert "seeds come from --seeds" in capsys.readouterr().err
    assert main(["bench", "compare", str(recipe), "--grid", "objective.name=ns,nope"]) == 2
    assert "unknown objective 'nope'" in capsys.readouterr().err
    assert main(["bench", "metrics", str(recipe)]) == 2
    assert "belong to `bench compare`" in capsys.readouterr().err


def test_a_diverged_run_is_recorded_and_not_retried(recipe, tmp_path, monkeypatch):
    from ganforge import api
    from ganforge.training.trainer import TrainingStopped

    real_train, calls = api.train, []

    def train(config=None, **kw):
        calls.append(kw.get("out"))
        if config is not None and config["objective"]["name"] == "hinge" and config["train"]["seed"] == 1:
            raise TrainingStopped("20 non-finite d losses in a row at step 4")
        return real_train(config, **kw)

    monkeypatch.setattr(api, "train", train)
    out = tmp_path / "cmp"
    t = compare(recipe, seeds=2, grid=["objective.name=ns,hinge"], out=out, quiet=True, metrics=["nll"])
    assert [r["status"] for c in t["cells"] for r in c["runs"]] == ["trained", "trained", "trained", "failed"]
    assert t["cells"][1]["stats"]["nll"]["n"] == 1 and t["cells"][0]["stats"]["nll"]["n"] == 2
    assert "non-finite" in json.loads((out / "objective-hinge" / "seed1" / "failed.json").read_text())["reason"]
    assert "(1 diverged)" in markdown(t) and "(n=1)" in markdown(t)
    n = len(calls)
    t2 = compare(recipe, seeds=2, grid=["objective.name=ns,hinge"], out=out, quiet=True, metrics=["nll"])
    assert len(calls) == n and t2["cells"][1]["runs"][1]["status"] == "failed"  # not retried


def test_equal_cpu_budget_gives_each_recipe_the_steps_its_cost_allows(tmp_path, monkeypatch, capsys):
    """Two recipes, one ~100x costlier per step: under one CPU budget it gets fewer steps, steps = floor(B / cost),
    its step-counted lr decay scales with its length, and a resumed sweep keeps the plan (no re-timing)."""
    from ganforge.bench import budget

    wide = {**TINY, "name": "wide", "nets": {r: {"name": "mlp", "hidden": 512, "depth": 3} for r in ("g", "d")},
            "train": {**TINY["train"], "batch_size": 256, "lr_decay_start": 3, "lr_decay_steps": 3}}
    paths = []
    for name, raw in (("tiny", TINY), ("wide", wide)):
        paths.append(tmp_path / f"{name}.yaml")
        paths[-1].write_text(yaml.safe_dump(raw))
    out = tmp_path / "cmp"
    t = compare(paths, seeds=1, grid=[], out=out, quiet=True, metrics=["nll"], cpu_budget=0.4)
    (small, big) = t["cells"]
    assert [small["name"], big["name"]] == ["tiny", "wide"] and small["recipe"] == str(paths[0])
    for c in t["cells"]:
        assert c["budget"]["steps"] == int(0.4 // c["budget"]["cost"])
        assert ckpt.checkpoint_path(out / c["name"] / "seed0", c["budget"]["steps"]).is_file()  # ran its length
    assert big["budget"]["cost"] > 5 * small["budget"]["cost"] and big["budget"]["steps"] < small["budget"]["steps"]
    n = big["budget"]["steps"]
    assert big["budget"]["overrides"] == [f"--train.steps={n}", f"--train.lr_decay_start={round(3 * n / 6)}",
                                          f"--train.lr_decay_steps={round(3 * n / 6)}"]
    assert "Equal CPU" in (out / "compare.md").read_text() and "CPU-s per run" in markdown(t)

    monkeypatch.setattr(budget, "step_costs", lambda *a, **k: pytest.fail("a resumed sweep re-timed its cells"))
    again = compare(paths, seeds=1, grid=[], out=out, quiet=True, metrics=["nll"], cpu_budget=0.4)
    assert [r["status"] for c in again["cells"] for r in c["runs"]] == ["skipped", "skipped"]
    with pytest.raises(ConfigError, match="planned for --cpu-budget 0.4"):
        compare(paths, seeds=1, grid=[], out=out, quiet=True, cpu_budget=0.8)
    with pytest.raises(ConfigError, match="both set the runs' length"):
        compare(paths, seeds=1, grid=["train.steps=3"], out=tmp_path / "y", quiet=True, cpu_budget=0.4)
    assert main(["bench", "compare", str(paths[0]), "--cpu-budget", "-1", "--out", str(tmp_path / "z")]) == 2
    assert "--cpu-budget must be a positive number" in capsys.readouterr().err


def test_jobs_train_runs_in_parallel_workers_with_the_same_results(recipe, tmp_path, capsys):
    """--jobs 2: the runs train in two spawned workers; every run's metrics equal the one-at-a-time sweep's
    (each run is seeded on its own), the table keeps cell and seed order, and a bad --jobs is refused."""
    grid = ["objective.name=ns,hinge"]
    one = compare(recipe, seeds=2, grid=grid, out=tmp_path / "one", quiet=True)
    two = compare(recipe, seeds=2, grid=grid, out=tmp_path / "two", quiet=True, jobs=2)
    assert [(c["name"], r["seed"], r["status"]) for c in two["cells"] for r in c["runs"]] == \
        [(c["name"], r["seed"], "trained") for c in one["cells"] for r in c["runs"]]
    assert [r["metrics"] for c in two["cells"] for r in c["runs"]] == \
        [r["metrics"] for c in one["cells"] for r in c["runs"]]
    assert all(r["cpu_seconds"] > 0 and r["threads"] >= 1 for c in two["cells"] for r in c["runs"])  # in the worker
    assert two["jobs"] == 2 and "2 runs at once" in markdown(two)
    with pytest.raises(ConfigError, match="--jobs must be a whole number >= 1"):
        compare(recipe, seeds=1, grid=[], out=tmp_path / "x", quiet=True, jobs=0)
    assert main(["bench", "speed", "--jobs", "2"]) == 2
    assert "--jobs belong to `bench compare`" in capsys.readouterr().err
