"""toy-frontier keeps the runs of its earlier output whose resolved config is unchanged, and says so in the table."""

from __future__ import annotations

import json

from ganforge.bench import toy_frontier as tf


def _rec(ds, seed, h, hq=0.95):
    return {"dataset": ds, "seed": seed, "config_hash": h, "modes": 8 if ds == "ring" else 25, "hq": hq,
            "rkl": 0.01, "cpu_seconds": 40.0, "wall_seconds": 60.0}


def _jobs():
    return [{"dataset": ds, "seed": s, "config_hash": f"{ds}{s}", "overrides": [], "recipe": "x"}
            for ds in ("ring", "grid") for s in (0, 1)]


def _old(tmp_path, runs, **extra):
    out = tmp_path / "tf.json"
    out.write_text(json.dumps({"benchmark": "toy-frontier", "quick": False, "machine": "old box", "runs": runs,
                               **extra}))
    return out


def test_only_runs_with_the_same_data_seed_and_config_hash_are_kept(tmp_path):
    out = _old(tmp_path, [_rec("ring", 0, "ring0"), _rec("ring", 1, "changed"), _rec("grid", 0, "grid0"),
                          {k: v for k, v in _rec("grid", 1, "grid1").items() if k != "config_hash"}])
    kept = tf.previous_runs(str(out), _jobs())
    assert sorted((r["dataset"], r["seed"]) for r in kept.values()) == [("grid", 0), ("ring", 0)]
    assert all(r["reused"] == "old box" for r in kept.values())
    assert tf.previous_runs(str(tmp_path / "missing.json"), _jobs()) == {}
    assert tf.previous_runs(None, _jobs()) == {}
    other = _old(tmp_path, [_rec("ring", 0, "ring0")], benchmark="toy-modes")
    assert tf.previous_runs(str(other), _jobs()) == {}


def test_run_trains_only_the_changed_runs_and_the_table_names_the_reused_ones(tmp_path, monkeypatch):
    out = _old(tmp_path, [_rec("ring", s, f"ring{s}", hq=0.97) for s in (0, 1)]
               + [_rec("grid", s, "old-grid", hq=0.5) for s in (0, 1)])
    trained = []

    def fake_run_jobs(jobs, fn, key, **kw):
        trained.extend((j["dataset"], j["seed"]) for j in jobs)
        return [_rec(j["dataset"], j["seed"], j["config_hash"], hq=0.94) for j in jobs]

    monkeypatch.setattr(tf, "_jobs", lambda quick: _jobs())
    monkeypatch.setattr(tf, "run_jobs", fake_run_jobs)
    monkeypatch.setattr(tf, "startup_cpu_seconds", lambda: 2.0)
    res = tf.run(out=str(out))
    assert trained == [("grid", 0), ("grid", 1)]
    runs = {(r["dataset"], r["seed"]): r for r in res["runs"]}
    assert runs[("ring", 0)]["hq"] == 0.97 and runs[("ring", 0)]["reused"] == "old box"
    assert runs[("grid", 1)]["hq"] == 0.94 and "reused" not in runs[("grid", 1)]
    md = out.with_suffix(".md").read_text()
    assert "Reused from the earlier table" in md and "ring seeds 0, 1, measured under: old box" in md
    assert "Trained in this run (the wall time is theirs): grid seeds 0, 1." in md
    assert md.count("(reused) |") == 2
    # written again with nothing changed: everything is reused, still under the first machine line
    trained.clear()
    res = tf.run(out=str(out))
    assert trained == [] and all(r["reused"] == "old box" for r in res["runs"][:2])
    assert all(r["reused"] for r in res["runs"])
