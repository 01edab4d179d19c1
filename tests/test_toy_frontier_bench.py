"""toy-frontier: finished runs are reused only for the same resolved config; DRS recipes report both samplings."""

from __future__ import annotations

import json

import pytest

from ganforge.bench import toy_frontier as tf

RECIPE = """name: t
data: {name: ring}
game: {name: gan, z_dim: 2}
train: {steps: 10, batch_size: 32}
"""


def test_config_hash_follows_the_resolved_config(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text(RECIPE)
    child = tmp_path / "child.yaml"
    child.write_text("base: base.yaml\nname: c\n")
    h = tf.config_hash(str(child), ["--train.seed=1"])
    assert h == tf.config_hash(str(child), ["--train.seed=1"])
    assert h != tf.config_hash(str(child), ["--train.seed=2"])
    base.write_text(RECIPE.replace("steps: 10", "steps: 11"))  # a change in the recipe it bases on
    assert h != tf.config_hash(str(child), ["--train.seed=1"])


def test_a_record_matches_its_job_only_with_the_same_config_hash():
    job = {"dataset": "ring", "seed": 3, "config_hash": "abc"}
    assert tf.job_key({**job, "hq": 0.9}) == tf.job_key(job)
    assert tf.job_key({**job, "config_hash": "abd"}) != tf.job_key(job)
    old = {"dataset": "ring", "seed": 3, "hq": 0.9}  # a record from before hashes: never reused
    assert tf.job_key(old) != tf.job_key(job)
    assert tf.job_key(old) != tf.job_key(dict(old))


def _run(ds, seed, hq, hq_plain=None):
    r = {"dataset": ds, "seed": seed, "config_hash": "h", "modes": 8 if ds == "ring" else 25, "hq": hq,
         "rkl": 0.01, "cpu_seconds": 40.0, "wall_seconds": 60.0}
    if hq_plain is not None:
        r.update(modes_plain=r["modes"], hq_plain=hq_plain, rkl_plain=0.005)
    return r


def test_a_drs_recipe_gets_a_row_for_direct_sampling_with_its_own_verdict(tmp_path, monkeypatch):
    monkeypatch.setattr(tf, "startup_cpu_seconds", lambda: 2.0)
    runs = [_run("ring", s, 0.975, 0.85) for s in range(5)] + [_run("grid", 0, 0.94)]
    res = tf.summarise(runs, quick=False, workers=2, wall=60.0)
    ring = res["cells"][0]
    assert ring["hq"]["mean"] == pytest.approx(0.975)
    assert ring["plain"]["hq"]["mean"] == pytest.approx(0.85)
    assert "plain" not in res["cells"][1]
    out = tmp_path / "tf.json"
    tf.write(res, str(out))
    md = out.with_suffix(".md").read_text()
    drs_row = next(ln for ln in md.splitlines() if "(DRS sampling)" in ln)
    plain_row = next(ln for ln in md.splitlines() if "sampled directly (no DRS)" in ln)
    assert "97.5" in drs_row and drs_row.rstrip(" |").endswith("yes")
    assert "85.0" in plain_row and plain_row.rstrip(" |").endswith("no")
    assert json.loads(out.read_text())["cells"][0]["plain"]["hq"]["mean"] == pytest.approx(0.85)
