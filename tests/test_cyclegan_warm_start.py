"""CycleGAN's warm start: an L1 pull of each generator towards doing nothing, fading out linearly.

The pull is |G_ab(a) - a| + |G_ba(b) - b| (grey images repeated over the colour channels, colour
images averaged to grey when the domains differ so), weighted ``warm_start_weight`` at step 0,
linearly less to 0 at step ``warm_start``; after that the loss is the paper's again.
"""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from ganforge import objectives
from ganforge.data.base import Dataset
from ganforge.errors import ConfigError
from ganforge.games.cyclegan import CycleGAN, as_shape

MLP = {"name": "mlp", "hidden": 8, "depth": 1}


def _game(**params) -> CycleGAN:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    a = Dataset(name="a", x=torch.randn(6, 3, generator=g))
    b = Dataset(name="b", x=torch.randn(6, 3, generator=g))
    game = CycleGAN(cycle=10.0, identity=0.0, pool_size=0, **params)
    game.build(Dataset(name="ab", x=a.x, info={"parts": {"a": a, "b": b}}), {r: MLP for r in CycleGAN.roles},
               objectives.get("lsgan"), [])
    return game


@pytest.mark.parametrize(("step", "weight"), [(0, 4.0), (25, 3.0), (75, 1.0), (100, 0.0), (500, 0.0)])
def test_generator_loss_adds_the_fading_pull_to_doing_nothing(step: int, weight: float) -> None:
    game = _game(warm_start=100, warm_start_weight=4.0)
    game.step = step
    n, (a, b) = game.nets, (game.data.info["parts"][p].x for p in "ab")
    g_phase = next(p for p in game.phases() if p.name == "g")
    loss, logs = g_phase.loss({"a": {"x": a}, "b": {"x": b}})
    adv = 0.5 * ((n["d_b"](n["g_ab"](a)) - 1) ** 2).mean() + 0.5 * ((n["d_a"](n["g_ba"](b)) - 1) ** 2).mean()
    cycle = (n["g_ba"](n["g_ab"](a)) - a).abs().mean() + (n["g_ab"](n["g_ba"](b)) - b).abs().mean()
    still = (n["g_ab"](a) - a).abs().mean() + (n["g_ba"](b) - b).abs().mean()
    assert_close(loss, adv + 10.0 * cycle + weight * still)
    assert game.warm_start_weight() == pytest.approx(weight)
    assert ("warm_start" in logs) == (weight > 0)
    if weight > 0:
        assert_close(torch.tensor(logs["warm_start"]), still.detach())


def test_off_by_default_is_the_papers_loss() -> None:
    game = _game()
    assert game.warm_start_weight() == 0.0


def test_do_nothing_across_grey_and_colour() -> None:
    grey, rgb = torch.rand(2, 1, 4, 4), torch.rand(2, 3, 4, 4)
    assert_close(as_shape(grey, rgb), grey.repeat(1, 3, 1, 1))  # grey -> colour: the level in every channel
    assert_close(as_shape(rgb, grey), rgb.mean(1, keepdim=True))  # colour -> grey: the channel mean
    assert as_shape(rgb, rgb) is rgb
    with pytest.raises(ConfigError, match="warm_start needs"):
        as_shape(torch.rand(2, 2, 4, 4), rgb)
    with pytest.raises(ConfigError, match="warm_start needs"):
        as_shape(grey, torch.rand(2, 3, 8, 8))


@pytest.mark.parametrize("params", [{"warm_start": -1}, {"warm_start_weight": -0.5}])
def test_negative_settings_are_refused(params: dict) -> None:
    with pytest.raises(ConfigError, match="warm_start"):
        CycleGAN(**params)


def test_domains_without_a_do_nothing_map_are_refused_at_build() -> None:
    a, b = Dataset(name="a", x=torch.randn(4, 3)), Dataset(name="b", x=torch.randn(4, 2))
    game = CycleGAN(warm_start=10)
    with pytest.raises(ConfigError, match="warm_start needs"):
        game.build(Dataset(name="ab", x=a.x, info={"parts": {"a": a, "b": b}}), {r: MLP for r in CycleGAN.roles},
                   objectives.get("lsgan"), [])
