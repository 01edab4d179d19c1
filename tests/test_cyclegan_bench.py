"""``ganforge bench cyclegan``'s summary: per-transform means over seeds, targets, and the table's words."""

from __future__ import annotations

import pytest

from ganforge.bench.cyclegan_bench import TRANSFORMS, markdown, summarise


def _run(t: str, seed: int, psnr: float, acc: float) -> dict:
    return {"transform": t, "seed": seed, "steps": 1000, "identity": 0.0, "warm_start": 100, "cpu_s": 100.0 + seed,
            "psnr_ab": psnr, "psnr_ba": 15.0, "acc_ab": acc, "acc_ba": 0.8, "fid_ab": 1.0, "fid_floor": 0.1,
            "acc_original": 0.947, "psnr_do_nothing": None, "fid_do_nothing": None}


def test_summary_means_and_targets_per_transform() -> None:
    runs = [_run("fade", 0, 20.0, 0.82), _run("fade", 1, 22.0, 0.84),
            _run("tint", 0, 19.0, 0.85), _run("tint", 1, 9.0, 0.20)]
    result = summarise(runs, quick=False, n_test=1000, workers=2, wall_seconds=60.0, note="Two seeds only.")
    cells = {c["transform"]: c for c in result["cells"]}
    assert set(cells) == set(TRANSFORMS)
    assert cells["fade"]["psnr_ab"]["mean"] == pytest.approx(21.0)
    assert cells["tint"]["acc_ab"]["mean"] == pytest.approx(0.525)
    assert cells["fade"]["seeds"] == 2 and cells["fade"]["warm_start"] == 100
    lines = markdown(result)
    text = "\n".join(lines)
    assert "Made by `ganforge bench cyclegan`" in text and "1 thread" in text and "Two seeds only." in text
    rows = {ln.split(" | ")[0][2:]: ln for ln in lines if ln.startswith("| fade | 0 | 100") or
            ln.startswith("| tint | 0 | 100")}
    assert rows["fade"].endswith("| yes |") and rows["tint"].endswith("| no |")  # tint: 14 dB, content 0.525
    assert "Total CPU-s of the bench's training: 402." in text


def test_train_recipe_returns_the_ema_generator_as_sample_and_eval_do(tmp_path) -> None:
    """A bench that trains through train_recipe scores what `ganforge sample` would draw: the EMA copy."""
    import torch
    import yaml

    from ganforge import api
    from ganforge.bench.cyclegan_bench import train_recipe

    raw = {"name": "tiny-ema", "data": {"name": "ring", "n": 500}, "game": {"name": "gan", "z_dim": 2},
           "nets": {r: {"name": "mlp", "hidden": 8, "depth": 1} for r in ("g", "d")},
           "train": {"steps": 4, "batch_size": 16, "threads": 1, "ema": 0.5, "tensorboard": False},
           "eval": {"every": 0, "n": 100, "samples": False}, "checkpoint": {"every": 0}}
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(raw))
    game, _, _ = train_recipe(recipe, [])
    ema, _, _ = api.load_game(api.train(raw, out=tmp_path / "run", quiet=True).run_dir)
    raw_g, _, _ = api.load_game(tmp_path / "run", use_ema=False)
    for name, p in game.nets["g"].state_dict().items():
        torch.testing.assert_close(p, ema.nets["g"].state_dict()[name])
    assert any(not torch.equal(p, raw_g.nets["g"].state_dict()[k]) for k, p in game.nets["g"].state_dict().items())
