"""Why configs/cyclegan/fmnist-fade.yaml's generators have no instance norm: on [-1, 1] the fade is u -> u / 2,
and a ResNet generator with instance norm cannot even tell two images apart whose garments differ only in
contrast (x = -1 + s d): its first normalisation removes the per-image scale s."""

from __future__ import annotations

from pathlib import Path

import torch

from ganforge.api import make_config
from ganforge.data.domains import get_transform
from ganforge.nets.translation import ResnetGenerator

ROOT = Path(__file__).resolve().parents[1]


def _pair(norm: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    g = ResnetGenerator(in_shape=(1, 12, 12), out_shape=(1, 12, 12), ngf=4, n_down=0, n_blocks=1, norm=norm).eval()
    d = torch.rand(2, 1, 12, 12) * 2  # a garment d >= 0 on a black background (-1)
    x_full, x_dim = d - 1, 0.5 * d - 1  # the same garment at full and at half contrast
    with torch.no_grad():
        return g(x_full), g(x_dim), get_transform("fade")(x_full) - get_transform("fade")(x_dim)


def test_instance_norm_generator_ignores_garment_contrast_that_fade_keeps() -> None:
    y_full, y_dim, true_gap = _pair("instance")
    torch.testing.assert_close(y_full, y_dim, atol=1e-3, rtol=0)  # same output for both contrasts
    assert true_gap.abs().mean() > 0.1  # while T(x_full) and T(x_dim) differ: (d - 0.5 d) / 2 = d / 4
    y_full, y_dim, _ = _pair("none")
    assert (y_full - y_dim).abs().mean() > 1e-3  # without norm the contrast reaches the output


def test_fade_recipe_generators_have_no_norm_and_critics_keep_instance_norm() -> None:
    cfg = make_config(str(ROOT / "configs" / "cyclegan" / "fmnist-fade.yaml"), [])
    nets = cfg["nets"]
    assert nets["g_ab"]["norm"] == nets["g_ba"]["norm"] == "none"
    assert nets["d_a"]["norm"] == nets["d_b"]["norm"] == "instance"
    assert cfg["data"]["transform"] == "fade" and cfg["game"]["identity"] == 0.0 and cfg["game"]["warm_start"] == 100
