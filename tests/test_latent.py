"""Latent tools (interpolation, arithmetic, class sweeps), PNG grids, and `ganforge sample --grid`."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge import latent as L
from ganforge.errors import ConfigError
from ganforge.imaging import grid, save_grid, to_uint8


# ------------------------------------------------------------------------------ pure latent math
def test_lerp_endpoints_and_midpoint() -> None:
    z0, z1 = torch.randn(7), torch.randn(7)
    p = L.lerp(z0, z1, 5)
    assert p.shape == (5, 7)
    torch.testing.assert_close(p[0], z0)
    torch.testing.assert_close(p[-1], z1)
    torch.testing.assert_close(p[2], (z0 + z1) / 2)
    torch.testing.assert_close(p[1:] - p[:-1], ((z1 - z0) / 4).expand(4, 7))  # equal steps


def test_slerp_follows_the_great_circle() -> None:
    torch.manual_seed(0)
    z0, z1 = torch.randn(16, dtype=torch.float64), torch.randn(16, dtype=torch.float64)
    z1 = z1 / z1.norm() * z0.norm()  # equal norms: the path stays on the sphere
    p = L.slerp(z0, z1, 9)
    torch.testing.assert_close(p[0], z0)
    torch.testing.assert_close(p[-1], z1)
    torch.testing.assert_close(p.norm(dim=1), z0.norm().expand(9))
    omega = math.acos(float(z0 @ z1 / (z0.norm() * z1.norm())))
    cos_step = (p[:-1] * p[1:]).sum(1) / (p[:-1].norm(dim=1) * p[1:].norm(dim=1))
    torch.testing.assert_close(torch.arccos(cos_step), torch.full((8,), omega / 8, dtype=torch.float64))
    # every point lies in the plane spanned by z0 and z1
    basis = torch.linalg.qr(torch.stack([z0, z1], 1)).Q
    torch.testing.assert_close(p @ basis @ basis.T, p)


def test_slerp_of_parallel_vectors_is_linear_and_lerp_shrinks_norm() -> None:
    z = torch.randn(5)
    torch.testing.assert_close(L.slerp(z, 2 * z, 3), L.lerp(z, 2 * z, 3))
    e0, e1 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    torch.testing.assert_close(L.lerp(e0, e1, 3)[1].norm(), torch.tensor(math.sqrt(0.5)))
    torch.testing.assert_close(L.interpolate(e0, e1, 3, spherical=True)[1], torch.tensor([1.0, 1.0]) / math.sqrt(2))
    with pytest.raises(ConfigError, match="steps >= 2"):
        L.lerp(e0, e1, 1)


def test_mean_latent_and_arithmetic() -> None:
    z = torch.arange(12.0).reshape(4, 3)
    torch.testing.assert_close(L.mean_latent(z, [0, 2]), torch.tensor([3.0, 4.0, 5.0]))
    terms = L.parse_terms("0,2 - 1 + 3")
    assert terms == [(1, [0, 2]), (-1, [1]), (1, [3])]
    torch.testing.assert_close(L.arithmetic(z, terms), z[[0, 2]].mean(0) - z[1] + z[3])
    assert L.parse_terms("1 - -2") == [(1, [1]), (1, [2])]
    with pytest.raises(ConfigError, match=r"sample index 9 is out of range: there are 4 samples \(0..3\)"):
        L.mean_latent(z, [9])
    with pytest.raises(ConfigError, match="cannot read latent arithmetic 'a - 1'"):
        L.parse_terms("a - 1")


# ------------------------------------------------------------------------------ grids
def test_to_uint8_and_grid_layout() -> None:
    torch.testing.assert_close(to_uint8(torch.tensor([-1.0, 0.0, 1.0, 3.0, -7.0])),
                               torch.tensor([0, 128, 255, 255, 0], dtype=torch.uint8))
    imgs = torch.stack([torch.full((1, 3, 2), v) for v in (-1.0, 0.0, 1.0)])  # 3 images of 3x2 px
    g = grid(imgs, nrow=2, padding=1, pad_value=9)
    assert g.shape == (2 * 4 + 1, 2 * 3 + 1) and g.dtype == np.uint8
    assert (g[1:4, 1:3] == 0).all() and (g[1:4, 4:6] == 128).all() and (g[5:8, 1:3] == 255).all()
    assert (g[5:8, 4:6] == 9).all() and (g[0] == 9).all() and (g[:, 3] == 9).all()  # empty cell, padding
    rgb = grid(torch.rand(4, 3, 5, 5) * 2 - 1, padding=0)
    assert rgb.shape == (10, 10, 3)


def test_save_grid_png_round_trip(tmp_path) -> None:
    x = torch.rand(5, 3, 6, 6) * 2 - 1
    p = save_grid(x, tmp_path / "g.png", nrow=3, scale=2)
    arr = np.asarray(Image.open(p))
    ref = grid(x, nrow=3)
    np.testing.assert_array_equal(arr, ref.repeat(2, 0).repeat(2, 1))
    with pytest.raises(ConfigError, match="grid files are PNG"):
        save_grid(x, tmp_path / "g.jpg")
    with pytest.raises(ConfigError, match="C = 1 or 3; got shape"):
        grid(torch.zeros(2, 2, 4, 4))


# ------------------------------------------------------------------------------ through a game
@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two tiny trained runs on 16x16 digits: unconditional and conditional."""
    from ganforge import api

    base = {
        "data": {"name": "digits", "resolution": 16, "limit": 200},
        "game": {"name": "gan", "z_dim": 8},
        "nets": {"g": {"name": "dcgan", "base": 8}, "d": {"name": "dcgan", "base": 8}},
        "train": {"steps": 2, "batch_size": 32, "threads": 1, "device": "cpu", "tensorboard": False},
        "eval": {"every": 0, "n": 64, "samples": False},
        "checkpoint": {"every": 0},
    }
    root = tmp_path_factory.mktemp("runs")
    plain = api.train(base, out=root / "plain").run_dir
    cond = api.train({**base, "game": {"name": "gan", "z_dim": 8, "conditional": True}}, out=root / "cond").run_dir
    return plain, cond


@pytest.mark.parametrize("which", [0, 1])
def test_codes_reproduce_game_sample(runs, which) -> None:
    from ganforge.api import load_game

    game, _, _ = load_game(runs[which])
    z, c = L.codes(game, 20, seed=3)
    assert (c is None) == (which == 0)
    torch.testing.assert_close(L.render(game, z, c), game.sample(20, generator=torch.Generator().manual_seed(3)))


def test_class_sweep_rows_are_classes_and_columns_share_z(runs) -> None:
    from ganforge.api import load_game

    game, _, _ = load_game(runs[1])
    out = L.class_sweep(game, per_class=4, seed=1)
    assert out.shape == (10 * 4, 1, 16, 16)
    z, _ = L.codes(game, 4, seed=1)
    for k in (0, 7):
        torch.testing.assert_close(out[4 * k:4 * k + 4], L.render(game, z, torch.full((4,), k)))
    plain, _, _ = load_game(runs[0])
    with pytest.raises(ConfigError, match="a class sweep needs a conditional model"):
        L.class_sweep(plain)


def test_interpolation_rows_render_the_path(runs) -> None:
    from ganforge.api import load_game

    game, _, _ = load_game(runs[0])
    out = L.interpolation_rows(game, steps=5, rows=2, seed=0, spherical=True)
    z, _ = L.codes(game, 4, seed=0)
    torch.testing.assert_close(out[5:10], L.render(game, L.slerp(z[2], z[3], 5)))
    torch.testing.assert_close(out[0], L.render(game, z[:1])[0])


def test_sample_cli_grids(runs, tmp_path, capsys) -> None:
    from ganforge.cli import main

    plain, cond = runs
    assert main(["sample", str(plain), "--grid", str(tmp_path / "g.png")]) == 0
    assert Image.open(tmp_path / "g.png").size == ((8 * 18 + 2) * 2, (8 * 18 + 2) * 2)  # 64 samples, 8 per row
    assert main(["sample", str(plain), "--grid", str(tmp_path / "i.png"), "--interpolate", "6", "--slerp",
                 "--n", "3"]) == 0
    assert Image.open(tmp_path / "i.png").size == ((6 * 18 + 2) * 2, (3 * 18 + 2) * 2)
    assert main(["sample", str(plain), "--grid", str(tmp_path / "a.png"), "--arithmetic", "0,1 - 2 + 3"]) == 0
    assert Image.open(tmp_path / "a.png").size == ((4 * 18 + 2) * 2, (18 + 2) * 2)  # 3 term means + result
    assert main(["sample", str(cond), "--grid", str(tmp_path / "s.png"), "--class-sweep"]) == 0
    assert Image.open(tmp_path / "s.png").size == ((8 * 18 + 2) * 2, (10 * 18 + 2) * 2)  # one row per class
    assert main(["sample", str(plain), "--class-sweep", "--grid", str(tmp_path / "x.png")]) == 2
    assert main(["sample", str(plain), "--slerp"]) == 2
    err = capsys.readouterr().err
    assert "a class sweep needs a conditional model" in err and "draw a figure: add --grid FILE.png" in err
