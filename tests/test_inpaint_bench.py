"""The inpaint and pix2pix benches share one protocol: same test images, same central hole, same scoring."""

from __future__ import annotations

import json

import numpy as np
import torch
from torch.testing import assert_close

from ganforge.bench import inpaint_bench as ib
from ganforge.bench import pix2pix_bench as pb
from ganforge.config import load_config


class NoJudge:
    """Accuracy = the fraction of images whose hole is all +1 (so a test can see what the judge was shown)."""

    def accuracy(self, x, y):
        return float((x[:, :, 7:21, 7:21] == 1).flatten(1).all(1).float().mean())

    def fid(self, x, y):
        return 0.0


def test_masked_recipe_is_the_inpaint_benchs_images_and_hole() -> None:
    """The pix2pix masked recipe's first test pairs are the inpaint bench's test images with its central mask."""
    from ganforge.bench.translation import test_images, to_model
    from ganforge.projection import make_mask

    data = load_config(str(pb.recipe("masked")))["data"]
    assert data["hole"] == 14 and data["hole_position"] == "center"
    t = pb.test_pairs("masked", 5, data)
    x, y = test_images(5)
    assert torch.equal(t["b"], to_model(x)) and torch.equal(t["y"], y)
    known = make_mask("center", (1, 28, 28), 5)
    assert torch.equal(t["mask"].float(), 1 - known)
    assert torch.equal(t["a"][known.expand_as(t["a"]) > 0], t["b"][known.expand_as(t["b"]) > 0])


def test_completion_scores_keep_known_pixels_and_score_the_hole_only() -> None:
    b = torch.zeros(3, 1, 28, 28)
    mask = torch.zeros(3, 1, 28, 28, dtype=torch.bool)
    mask[:, :, 7:21, 7:21] = True
    fake = torch.full_like(b, 1.0)  # wrong everywhere: off by 1 in the hole, and outside it (to be discarded)
    row = pb.completion_scores(fake, {"b": b, "mask": mask, "y": torch.zeros(3)}, NoJudge(), 2)
    assert row["n"] == 2
    assert_close(row["psnr_hole"], 10 * np.log10(4 / 1.0))  # only the hole's squared error, 1
    assert row["accuracy"] == 1.0  # the judge saw the fill in the hole


def test_full_jobs_train_the_recipes_as_committed_and_score_the_inpaint_protocol() -> None:
    jobs = pb._jobs(False, 1000)
    assert len(jobs) == len(pb.SEEDS) * len(pb.TASKS) * len(pb.MODES)
    for j in jobs:
        assert not any(o.startswith(("--train.steps", "--data.", "--nets.", "--optim.", "--game.l1=1"))
                       for o in j["overrides"]), j["overrides"]
        assert j.get("inpaint_n") == (ib.FULL["n_test"] if j["task"] == "masked" else None)


def _fake_run(mode: str, seed: int, n: int) -> dict:
    return {"task": "masked", "mode": mode, "seed": seed, "steps": 7, "cpu_s": 1.0,
            "inpaint": {"psnr_hole": 20.0 + seed, "accuracy": 0.9, "n": n}}


def test_learned_rows_reuse_the_pix2pix_table_only_for_the_same_recipe(tmp_path) -> None:
    n, seeds = ib.FULL["n_test"], ib.SEEDS
    out = str(tmp_path / "inpaint.json")
    runs = [_fake_run(m, s, n) for s in seeds for m in ("L1", "L1+cGAN", "cGAN") if (m, s) != ("L1+cGAN", 2)]
    table = {"quick": False, "recipe_sha256": {"masked": pb.recipe_digest("masked")}, "runs": runs}
    (tmp_path / "pix2pix.json").write_text(json.dumps(table))
    reused, todo = ib.learned_jobs(quick=False, seeds=seeds, n_test=n, out=out)
    assert sorted((r["mode"], r["seed"]) for r in reused) == sorted(
        (m, s) for s in seeds for m in ("L1", "L1+cGAN") if (m, s) != ("L1+cGAN", 2))
    assert [(j["mode"], j["seed"], j["kind"], j["inpaint_n"]) for j in todo] == [("L1+cGAN", 2, "pix2pix", n)]
    assert todo[0]["recipe"].endswith("fmnist-masked.yaml")

    table["recipe_sha256"]["masked"] = "another recipe"
    (tmp_path / "pix2pix.json").write_text(json.dumps(table))
    reused, todo = ib.learned_jobs(quick=False, seeds=seeds, n_test=n, out=out)
    assert not reused and len(todo) == 2 * len(seeds)
    assert all(j["task"] == "masked" and j["inpaint_n"] == n for j in todo)


def test_targets_name_each_method_against_the_best_fill() -> None:
    def cell(m, p, a):
        return {"method": m, "psnr_hole": {"mean": p, "half": None}, "accuracy": {"mean": a, "half": None}}

    vals = {"mean fill": (10.0, 0.6), "nearest-neighbour fill": (15.0, 0.9), "latent (paste)": (12.0, 0.85),
            "pix2pix L1 + cGAN (paste)": (16.0, 0.85), "pix2pix L1 alone (paste)": (16.5, 0.7)}
    cells = [cell(m, *vals.get(m, (0.0, 0.0))) for m in ib.METHODS]
    met = ib.targets_met({"cells": cells})
    assert met["latent (paste)"] == {"psnr": False, "accuracy": True}
    assert met["pix2pix L1 + cGAN (paste)"] == {"psnr": True, "accuracy": True}
    assert met["pix2pix L1 alone (paste)"] == {"psnr": True, "accuracy": False}
    assert "mean fill" not in met
