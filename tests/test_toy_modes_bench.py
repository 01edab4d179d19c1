"""The toy-modes benchmark: every objective has a recipe that loads and trains that objective."""

from __future__ import annotations

from ganforge.bench import toy_modes
from ganforge.config import read_yaml
from ganforge.registry import OBJECTIVES


def test_every_objective_gets_a_recipe_that_resolves_to_it():
    jobs = toy_modes._jobs(quick=False)
    assert sorted({j["objective"] for j in jobs}) == sorted(OBJECTIVES.names())
    assert len(jobs) == len(OBJECTIVES.names()) * len(toy_modes.SEEDS)
    for obj in OBJECTIVES.names():
        path, ov = toy_modes.recipe(obj)
        raw = read_yaml(path)  # with its base: recipes merged (full resolution builds optimizers: slow)
        name = ov[0].split("=", 1)[1] if ov else raw["objective"]["name"]
        assert name == obj and raw["data"]["name"] == "ring" and raw["train"]["steps"] >= 1000, path
        assert "steps" not in " ".join(ov)  # full length: the recipe's own step count


def test_own_recipe_wins_over_the_shared_one():
    path, ov = toy_modes.recipe("wgan-gp")
    assert path.name == "ring-wgan-gp.yaml" and ov == []
    path, ov = toy_modes.recipe("ns")
    assert path.name == "ring-bench.yaml" and ov == ["--objective.name=ns"]
