"""Latent optimisation (ganforge.projection): projection, inpainting (Yeh et al. 2017), directions, and the CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge import projection as P
from ganforge.errors import ConfigError
from ganforge.latent import class_direction, edit_path


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A tiny DCGAN run on 16x16 digits (z 8), a few steps: G is barely trained, which is all projection needs."""
    from ganforge import api

    cfg = {"data": {"name": "digits", "resolution": 16, "limit": 200}, "game": {"name": "gan", "z_dim": 8},
           "nets": {"g": {"name": "dcgan", "base": 8}, "d": {"name": "dcgan", "base": 8}},
           "train": {"steps": 3, "batch_size": 32, "threads": 1, "device": "cpu", "tensorboard": False},
           "eval": {"every": 0, "n": 64, "samples": False}, "checkpoint": {"every": 0}}
    return api.train(cfg, out=tmp_path_factory.mktemp("runs") / "digits").run_dir


@pytest.fixture(scope="module")
def model(run_dir):
    from ganforge.api import load_game

    game, _, _ = load_game(run_dir)
    return P.model_of(game)


def test_projection_recovers_a_generated_image(model) -> None:
    gen = torch.Generator().manual_seed(1)
    x = P.render(model, model.noise(6, gen))
    res = P.project(model, x, restarts=2, steps=150, lr=0.05, seed=3)
    random_mse = (P.render(model, model.noise(6, gen)) - x).pow(2).flatten(1).mean(1)
    assert res["z"].shape == (6, 8) and res["x_hat"].shape == x.shape
    torch.testing.assert_close(res["mse"], (P.render(model, res["z"]) - x).pow(2).flatten(1).mean(1))
    assert (res["mse"] < 0.05 * random_mse).all(), (res["mse"], random_mse)
    assert float(res["mse"].mean()) < 2e-3


def test_more_restarts_are_never_worse_than_one(model) -> None:
    from ganforge.data.images import digits

    x = digits(resolution=16, limit=5).x.float() / 127.5 - 1
    one = P.project(model, x, restarts=1, steps=20, seed=7)
    three = P.project(model, x, restarts=3, steps=20, seed=7)
    assert (three["loss"] <= one["loss"] + 1e-6).all()
    # the loss reported is the loss at the z returned
    torch.testing.assert_close(three["loss"], three["mse"], rtol=1e-5, atol=1e-7)


def test_restart_zero_starts_from_the_encoder_and_restarts_extend() -> None:
    m = P.Model(g=torch.nn.Identity(), z_dim=3, latent="normal", image_shape=(1, 4, 4))
    x = torch.zeros(2, 1, 4, 4)
    z1, _ = P._starts(m, x, 1, torch.Generator().manual_seed(0))
    z3, c = P._starts(m, x, 3, torch.Generator().manual_seed(0))
    assert c is None and z3.shape == (6, 3)
    torch.testing.assert_close(z3[:2], z1)  # restart 0 of 3 starts where the single start does
    m.encode = lambda xx: torch.full((len(xx), 3), 7.0)
    ze, _ = P._starts(m, x, 3, torch.Generator().manual_seed(0))
    torch.testing.assert_close(ze[:2], torch.full((2, 3), 7.0))
    torch.testing.assert_close(ze[2:], z3[2:])
    m.n_classes = 4  # conditional: every restart tries every class
    zc, cc = P._starts(m, x, 2, torch.Generator().manual_seed(0))
    assert zc.shape == (16, 3) and cc.tolist() == [0, 0, 1, 1, 2, 2, 3, 3] * 2
    torch.testing.assert_close(zc[2:4], zc[0:2])  # the same code under each class


def test_contextual_weights_equal_their_formula() -> None:
    gen = torch.Generator().manual_seed(0)
    known = (torch.rand(3, 1, 9, 11, generator=gen) > 0.4).float()
    for win in (3, 7):
        w = P.contextual_weights(known, win)
        ref = torch.zeros_like(known)
        r = win // 2
        for n in range(3):
            for i in range(9):
                for j in range(11):
                    if known[n, 0, i, j]:
                        nb = known[n, 0, max(0, i - r):i + r + 1, max(0, j - r):j + r + 1]
                        ref[n, 0, i, j] = (1 - nb).sum() / nb.numel()  # |N(i)|: the window inside the image
        torch.testing.assert_close(w, ref)
    torch.testing.assert_close(P.contextual_weights(known, weighting="uniform"), known)
    with pytest.raises(ConfigError, match="odd number"):
        P.contextual_weights(known, 4)


def test_prior_loss_forms_and_sign() -> None:
    v = torch.linspace(-6, 6, 13, dtype=torch.float64)
    d = torch.sigmoid(v)
    torch.testing.assert_close(P.prior_loss(v, "minimax"), torch.log(1 - d))
    torch.testing.assert_close(P.prior_loss(v, "ns"), -torch.log(d))
    for form in ("minimax", "ns"):  # a higher D(G(z)) lowers the prior loss
        assert (P.prior_loss(v, form).diff() < 0).all()
    assert (P.prior_loss(v, "none") == 0).all()
    with pytest.raises(ConfigError, match="unknown prior 'x'; valid: minimax, ns, none"):
        P.prior_loss(v, "x")


def test_inpainting_keeps_known_pixels_exactly(model) -> None:
    from ganforge.data.images import digits

    x = digits(resolution=16, limit=4).x.float() / 127.5 - 1
    for mask in ("center", "random"):
        known = P.make_mask(mask, (1, 16, 16), 4, seed=2)
        for how in ("paste", "poisson"):
            res = P.inpaint(model, x, known, restarts=2, steps=5, blend_with=how)
            k = known.expand_as(x) > 0
            assert torch.equal(res["completed"][k], x[k])
            if how == "paste":
                assert torch.equal(res["completed"][~k], res["x_hat"][~k])
            # the reported terms are the loss at the returned z
            torch.testing.assert_close(res["loss"], res["contextual"] + 0.003 * res["prior"], rtol=1e-5, atol=1e-6)


def test_contextual_loss_is_the_weighted_l1_of_the_known_pixels(model) -> None:
    x = torch.rand(2, 1, 16, 16) * 2 - 1
    known = P.make_mask("center", (1, 16, 16), 2)
    res = P.inpaint(model, x, known, lam=0.0, restarts=1, steps=0)
    w = P.contextual_weights(known)
    torch.testing.assert_close(res["contextual"], (w * (res["x_hat"] - x)).abs().flatten(1).sum(1))
    assert (w[known == 0] == 0).all() and (w.flatten(1).sum(1) > 0).all()


def test_poisson_blend_removes_a_constant_offset() -> None:
    x = torch.rand(2, 1, 12, 12) * 2 - 1
    known = P.make_mask("center", (1, 12, 12), 2)
    torch.testing.assert_close(P.blend(x, x + 0.3, known, "poisson"), x, atol=1e-4, rtol=0)
    assert torch.allclose(P.blend(x, x + 0.3, known, "paste")[known.expand_as(x) == 0], x[known.expand_as(x) == 0]
                          + 0.3)


def test_masks() -> None:
    for h in (16, 28):
        c = P.make_mask("center", (1, h, h), 3)
        assert float(1 - c.mean()) == pytest.approx(0.25)  # a quarter hidden
        assert c[0, 0, h // 2, h // 2] == 0 and c[0, 0, 0, 0] == 1
    r = P.make_mask("random", (1, 28, 28), 50, missing=0.8, seed=0)
    assert float(1 - r.mean()) == pytest.approx(0.8, abs=0.01)
    with pytest.raises(ConfigError, match="unknown mask 'middle': give center, random or a .npy file"):
        P.make_mask("middle", (1, 8, 8), 1)


def test_class_direction_is_the_difference_of_means() -> None:
    z = torch.randn(40, 5, dtype=torch.float64)
    y = torch.arange(40) % 4
    torch.testing.assert_close(class_direction(z, y, 1, 3), z[y == 3].mean(0) - z[y == 1].mean(0))
    with pytest.raises(ConfigError, match="no latent of class 7"):
        class_direction(z, y, 0, 7)
    ts = torch.tensor([-1.0, 0.0, 2.0], dtype=torch.float64)
    d = torch.ones(5, dtype=torch.float64)
    p = edit_path(z[:2], d, ts)
    torch.testing.assert_close(p, torch.stack([z[i] + t * d for i in range(2) for t in ts]))


def test_load_images(tmp_path) -> None:
    a = np.arange(2 * 16 * 16, dtype=np.int64).reshape(2, 16, 16) % 256
    np.save(tmp_path / "u8.npy", a.astype(np.uint8))
    x = P.load_images(tmp_path / "u8.npy", (1, 16, 16))
    torch.testing.assert_close(x, torch.from_numpy(a).float()[:, None] / 127.5 - 1)
    np.save(tmp_path / "f.npy", np.full((1, 1, 16, 16), 3.0, np.float32))
    with pytest.raises(ConfigError, match=r"float images must lie in \[-1, 1\]"):
        P.load_images(tmp_path / "f.npy", (1, 16, 16))
    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.fromarray(np.full((40, 40), 255, np.uint8)).save(folder / "a.png")
    torch.testing.assert_close(P.load_images(folder, (1, 16, 16)), torch.ones(1, 1, 16, 16))


# ------------------------------------------------------------------ the commands
def _cli(capsys, *argv) -> tuple[int, str]:
    from ganforge.cli import main

    code = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return code, cap.out + cap.err


def test_project_and_inpaint_commands(run_dir, tmp_path, capsys) -> None:
    from ganforge.data.images import digits

    x = digits(resolution=16, limit=3).x.numpy()
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "d.npy", np.ones(8, np.float32))
    out = tmp_path / "proj"
    code, text = _cli(capsys, "project", run_dir, tmp_path / "x.npy", "--out", out, "--restarts", 2, "--steps", 10,
                      "--edit", "--direction", tmp_path / "d.npy", "--t-steps", 3)
    assert code == 0, text
    assert np.load(out / "latents.npy").shape == (3, 8)
    rep = json.loads((out / "mse.json").read_text())
    assert len(rep["mse"]) == 3 and rep["mean_psnr_db"] == pytest.approx(np.mean(rep["psnr_db"]))
    assert rep["mean_psnr_db"] == pytest.approx(np.mean([10 * math.log10(4 / m) for m in rep["mse"]]), rel=1e-5)
    assert Image.open(out / "edit.png").size == ((3 * 18 + 2) * 2, (3 * 18 + 2) * 2)  # 3 images x 3 values of t
    assert Image.open(out / "reconstructions.png").size == ((3 * 18 + 2) * 2, (2 * 18 + 2) * 2)
    code, text = _cli(capsys, "inpaint", run_dir, tmp_path / "x.npy", "--mask", "center", "--out", tmp_path / "inp",
                      "--restarts", 2, "--steps", 5)
    assert code == 0, text
    done = np.load(tmp_path / "inp" / "completed.npy")
    hole = np.load(tmp_path / "inp" / "mask.npy").astype(bool)
    assert done.dtype == np.uint8 and done.shape == x.shape and hole.mean() == pytest.approx(0.25)
    np.testing.assert_array_equal(done[:, 0][~hole], x[:, 0][~hole])  # known pixels exactly as given
    assert len(list((tmp_path / "inp" / "completed").glob("*.png"))) == 3


def test_command_errors_exit_2(run_dir, tmp_path, capsys) -> None:
    np.save(tmp_path / "x.npy", np.zeros((2, 1, 16, 16), np.uint8))
    np.save(tmp_path / "big.npy", np.zeros((2, 1, 28, 28), np.uint8))
    np.save(tmp_path / "m.npy", np.zeros((5, 5)))
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    cases = [
        (("project", tmp_path / "nope", tmp_path / "x.npy", "--out", tmp_path / "o1"), "run .*nope does not exist"),
        (("project", run_dir, tmp_path / "big.npy", "--out", tmp_path / "o2"),
         r"shape \(2, 1, 28, 28\), but the run's images are 1x16x16"),
        (("project", run_dir, tmp_path / "x.npy", "--out", tmp_path / "full"), "already exists and is not empty"),
        (("project", run_dir, tmp_path / "x.npy", "--out", tmp_path / "o3", "--edit"), "--edit needs --direction"),
        (("inpaint", run_dir, tmp_path / "x.npy", "--mask", "middle", "--out", tmp_path / "o4"),
         "unknown mask 'middle'"),
        (("inpaint", run_dir, tmp_path / "x.npy", "--mask", tmp_path / "m.npy", "--out", tmp_path / "o5"),
         r"has shape \(5, 5\); it must be \(16, 16\)"),
        (("inpaint", run_dir, tmp_path / "x.npy", "--mask", "center", "--out", tmp_path / "full"),
         "already exists and is not empty"),
    ]
    import re

    for argv, msg in cases:
        code, text = _cli(capsys, *argv)
        assert code == 2 and re.search(msg, text), (argv, text)
        assert "Traceback" not in text
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"
    assert not any((tmp_path / f"o{i}").exists() for i in range(1, 6))  # refused before any folder was made
