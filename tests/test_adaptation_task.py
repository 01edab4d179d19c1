"""The adaptation target Fashion-MNIST-M (issue 13): a textured background, the garment kept, seeded.

The default ``fmnist-m`` blends ``|0.4 * patch - image|``; ``fmnist-m-invert`` is
MNIST-M's full blend ``|patch - image|`` (the first target, which inverts whole
garments). Both draw the same texture bank and crops from (seed, split), so
where the garment image is 0 the inverted target *is* the patch, and the
default target there must be exactly 0.4 of it.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganforge.data import build_dataset
from ganforge.data.fmnist_m import STRENGTH, blend
from ganforge.errors import ConfigError

N, TEX = 120, 6


@pytest.fixture(scope="module")
def sets():
    return {"plain": build_dataset("fmnist", limit=N),
            "new": build_dataset("fmnist-m", limit=N, textures=TEX),
            "invert": build_dataset("fmnist-m-invert", limit=N, textures=TEX)}


def _corr(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double() - a.double().mean(), b.double() - b.double().mean()
    return float((a * b).sum() / (a.norm() * b.norm()))


def test_blend_formula_at_fixed_pixels():
    """out = round(|s * patch - image|) per channel; s = 1 is the exact integer MNIST-M blend."""
    img = np.array([[[0, 100], [200, 255]]], dtype=np.uint8)                     # (1, 2, 2)
    bank = np.stack([np.full((2, 2), v, np.uint8) for v in (10, 101, 250)])[None]  # (1, 3, 2, 2)
    z = np.zeros(1, dtype=int)
    half = blend(img, bank, z, z, z, 0.5)
    want = np.stack([np.abs(0.5 * v - img[0].astype(float)) for v in (10, 101, 250)])
    np.testing.assert_array_equal(half[0], np.rint(want).astype(np.uint8))
    assert half[0, 1, 0, 0] == 50  # 50.5 rounds half to even
    full = blend(img, bank, z, z, z)
    np.testing.assert_array_equal(full[0], np.abs(bank[0].astype(int) - img[0].astype(int)).astype(np.uint8))


def test_background_is_the_scaled_texture_of_the_inverted_target(sets):
    assert STRENGTH == 0.4
    bg = sets["plain"].x[:, 0] == 0                                   # (N, 28, 28)
    assert bg.float().mean() > 0.3
    new, inv = sets["new"].x.permute(1, 0, 2, 3), sets["invert"].x.permute(1, 0, 2, 3)  # (3, N, 28, 28)
    patch = inv[:, bg].double()                                        # |patch - 0| = patch
    torch.testing.assert_close(new[:, bg].double(), torch.round(STRENGTH * patch), rtol=0, atol=0)


def test_background_is_textured(sets):
    """Background pixels vary within an image and across colour channels (no flat black as in the source)."""
    x, bg = sets["new"].x.double(), sets["plain"].x[:, 0] == 0
    per_image_std = torch.stack([x[i][:, bg[i]].std(dim=1).mean() for i in range(N) if bg[i].sum() > 20])
    assert per_image_std.median() > 3
    chan_spread = torch.stack([x[i][:, bg[i]].mean(dim=1) for i in range(N) if bg[i].sum() > 20])
    assert (chan_spread.max(1).values - chan_spread.min(1).values).median() > 10  # coloured, not grey


def test_garment_is_kept_not_inverted(sets):
    """The grey garment's shading survives in the new target's brightness; the inverted target flips it."""
    plain = sets["plain"].x[:, 0].double()
    new, inv = sets["new"].x.double().mean(1), sets["invert"].x.double().mean(1)
    assert _corr(new.flatten(), plain.flatten()) > 0.7
    assert _corr(inv.flatten(), plain.flatten()) < 0
    garment, bg = plain >= 128, plain == 0
    assert new[garment].mean() > new[bg].mean() + 50
    assert inv[garment].mean() < inv[bg].mean()
    # a bright garment pixel loses at most STRENGTH * 255 to the patch
    assert bool((new[garment] >= plain[garment] - STRENGTH * 255).all())


def test_deterministic_by_seed_and_sliceable(sets):
    a = build_dataset("fmnist-m", limit=N, textures=TEX)
    assert torch.equal(a.x, sets["new"].x) and torch.equal(a.y, sets["plain"].y)
    part = build_dataset("fmnist-m", start=30, limit=40, textures=TEX)
    assert torch.equal(part.x, a.x[30:70])
    other = build_dataset("fmnist-m", limit=N, textures=TEX, seed=1)
    assert not torch.equal(other.x, a.x)
    test_split = build_dataset("fmnist-m", split="test", limit=N, textures=TEX)
    assert not torch.equal(test_split.x, a.x)
    assert a.name == "fmnist-m" and sets["invert"].name == "fmnist-m-invert"


def test_recipes_use_the_new_target():
    from pathlib import Path

    from ganforge.config import load_config

    root = Path(__file__).resolve().parents[1] / "configs"
    for recipe in ("dann/fmnist_m.yaml", "adda/fmnist_m.yaml"):
        data = load_config(root / recipe, [])["data"]
        assert data["target"]["name"] == "fmnist-m" and data["test"]["name"] == "fmnist-m", recipe
        assert data["target"].get("strength", STRENGTH) == STRENGTH, recipe


@pytest.mark.parametrize("strength", [0.0, 1.5])
def test_bad_strength_is_named(strength):
    with pytest.raises(ConfigError, match=r"fmnist-m strength must be in \(0, 1\]"):
        build_dataset("fmnist-m", limit=4, textures=1, strength=strength)
