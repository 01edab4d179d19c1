"""`ganforge sample --grid`, `project` and `inpaint` on every kind of image game, not only gan/cgan.

Regressions: a grid of a translation game (pix2pix, cyclegan, stargan, srgan) crashed on the missing
``z_dim``; bigan and ssgan grids crashed on the missing ``labels``; inpainting an ssgan run crashed on D's
K class logits. Translation grids show ``game.sample``'s translations; latent figures are refused in a
sentence; an ssgan prior scores "real" through logsumexp of D's logits, as its unsupervised loss does.
"""

from __future__ import annotations

import copy

import pytest
import torch
from PIL import Image
from test_games_beyond import COMMON, GAMES
from test_pix2pix import RUN as P2P

from ganforge.errors import ConfigError


def _train(raw: dict, out):
    from ganforge import api

    raw = copy.deepcopy(raw)
    raw.setdefault("name", "tiny")
    raw["train"] = {**raw["train"], "steps": 1, "tensorboard": False}
    raw["checkpoint"] = {"every": 0}
    try:
        return api.train(raw, out=out, quiet=True).run_dir
    except ConfigError as e:
        if "Fashion-MNIST" in str(e):
            pytest.skip(str(e).splitlines()[0])
        raise


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("anygame")
    out = {g: _train({**GAMES[g], **COMMON}, root / g) for g in ("ssgan", "bigan")}
    out["pix2pix"] = _train(P2P, root / "pix2pix")
    return out


@pytest.mark.parametrize("game", ["ssgan", "bigan", "pix2pix"])
def test_plain_grid_is_the_games_seeded_samples(runs, game, tmp_path) -> None:
    from ganforge.api import load_game
    from ganforge.cli import main
    from ganforge.latent import figure_images

    g, _, _ = load_game(runs[game])
    images, per_row = figure_images(g, n=6, seed=4)
    torch.testing.assert_close(images, g.sample(6, generator=torch.Generator().manual_seed(4)))
    assert per_row == 8
    assert main(["sample", str(runs[game]), "--grid", str(tmp_path / "g.png"), "--n", "6"]) == 0
    w, h = Image.open(tmp_path / "g.png").size
    side = images.shape[-1] + 2
    assert (w, h) == ((8 * side + 2) * 2, (side + 2) * 2)  # one row of 8 cells (6 used), pixels doubled


def test_translation_game_refuses_latent_figures(runs, tmp_path, capsys) -> None:
    from ganforge.cli import main

    assert main(["sample", str(runs["pix2pix"]), "--grid", str(tmp_path / "i.png"), "--interpolate", "4"]) == 2
    err = capsys.readouterr().err
    assert "--interpolate walks a generator's latent space" in err and "Pix2Pix" in err and "Traceback" not in err
    assert not (tmp_path / "i.png").exists()


def test_ssgan_inpaint_prior_is_logsumexp_of_the_class_logits(runs) -> None:
    from ganforge.api import load_game
    from ganforge.projection import model_of

    game, _, _ = load_game(runs["ssgan"])
    model = model_of(game)
    x = torch.rand(3, *game.data.shape) * 2 - 1
    d = game.nets["d"].eval()
    with torch.no_grad():
        want = torch.log(d(x).exp().sum(1))  # logit of D(x) = Z / (Z + 1), Z = sum_k exp(l_k)
        got = model.critic(x, None, None)
    torch.testing.assert_close(got, want)


def test_plain_grid_of_a_rejection_sampling_run_shows_the_kept_samples(tmp_path) -> None:
    from ganforge import api
    from ganforge.api import load_game
    from ganforge.latent import codes, figure_images, render

    raw = {"name": "tiny-drs", "data": {"name": "digits", "resolution": 16, "limit": 200},
           "game": {"name": "gan", "z_dim": 8, "drs": True, "drs_burn_in": 64, "drs_calibration": 64},
           "nets": {"g": {"name": "dcgan", "base": 8}, "d": {"name": "dcgan", "base": 8}},
           "train": {"steps": 2, "batch_size": 32, "threads": 1, "device": "cpu", "tensorboard": False},
           "eval": {"every": 0, "n": 64, "samples": False, "metrics": []}, "checkpoint": {"every": 0}}
    run = api.train(raw, out=tmp_path / "r", quiet=True).run_dir
    game, _, _ = load_game(run)
    images, _ = figure_images(game, n=6, seed=2)
    torch.testing.assert_close(images, game.sample(6, generator=torch.Generator().manual_seed(2)))
    assert not torch.allclose(images, render(game, *codes(game, 6, 2)))  # not simply the first 6 codes
    # --no-rejection: the generator drawn directly, code for code
    direct = api.sample(run, 6, seed=2, rejection=False)
    torch.testing.assert_close(direct, render(game, *codes(game, 6, 2)))
    torch.testing.assert_close(api.sample(run, 6, seed=2), images)
    with pytest.raises(ConfigError, match="does not sample through rejection"):
        api.sample(api.train({**raw, "game": {"name": "gan", "z_dim": 8}}, out=tmp_path / "plain",
                             quiet=True).run_dir, 6, rejection=False)


def test_rejection_quantile_turns_on_rejection_sampling_for_a_run_trained_without_it(tmp_path, capsys) -> None:
    from ganforge import api
    from ganforge.api import load_game
    from ganforge.cli import main

    raw = {"name": "tiny-plain", "data": {"name": "digits", "resolution": 16, "limit": 200},
           "game": {"name": "gan", "z_dim": 8, "drs_burn_in": 64, "drs_calibration": 64},
           "nets": {"g": {"name": "dcgan", "base": 8}, "d": {"name": "dcgan", "base": 8}},
           "train": {"steps": 3, "batch_size": 32, "threads": 1, "device": "cpu", "tensorboard": False},
           "eval": {"every": 0, "n": 64, "samples": False, "metrics": []}, "checkpoint": {"every": 0}}
    run = api.train(raw, out=tmp_path / "r", quiet=True).run_dir
    game, _, _ = load_game(run)
    assert not game.drs
    game.drs, game.drs_quantile = True, 0.8
    want = game.sample(40, generator=torch.Generator().manual_seed(2))
    got = api.sample(run, 40, seed=2, rejection=0.8)
    torch.testing.assert_close(got, want)
    # what it keeps is what the critic rates higher than the generator's direct draws
    direct = api.sample(run, 400, seed=3)
    kept = api.sample(run, 400, seed=3, rejection=0.8)
    d = game.nets["d"].eval()
    with torch.no_grad():
        assert d(kept).mean() > d(direct).mean()
    with pytest.raises(ConfigError, match=r"in \[0, 1\)"):
        api.sample(run, 4, rejection=1.0)
    # the CLI: --rejection and --no-rejection exclude each other; the eval record names the quantile
    with pytest.raises(SystemExit):
        main(["sample", str(run), "--out", str(tmp_path / "s.npy"), "--rejection", "0.5", "--no-rejection"])
    assert main(["eval", str(run), "--rejection", "0.5", "--metrics", "fid", "--n", "50", "--extractor", "pixels",
                 "--out", str(tmp_path / "e.json")]) == 0
    import json

    src = json.loads((tmp_path / "e.json").read_text())["source"]
    assert src["rejection"] is True and src["rejection_quantile"] == 0.5
    capsys.readouterr()


def test_rejection_quantile_needs_an_unconditional_gan_game(runs, tmp_path) -> None:
    from ganforge import api

    with pytest.raises(ConfigError, match="G-vs-D game"):
        api.sample(runs["pix2pix"], 2, rejection=0.9)
    raw = {"name": "tiny-cond", "data": {"name": "digits", "resolution": 16, "limit": 200},
           "game": {"name": "gan", "z_dim": 8, "conditional": True},
           "nets": {"g": {"name": "dcgan", "base": 8}, "d": {"name": "dcgan", "base": 8}},
           "train": {"steps": 1, "batch_size": 32, "threads": 1, "device": "cpu", "tensorboard": False},
           "eval": {"every": 0, "n": 64, "samples": False, "metrics": []}, "checkpoint": {"every": 0}}
    run = api.train(raw, out=tmp_path / "cond", quiet=True).run_dir
    with pytest.raises(ConfigError, match="needs an unconditional gan run"):
        api.sample(run, 2, rejection=0.9)
