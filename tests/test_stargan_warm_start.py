"""StarGAN's warm start: an L1 pull of G(x, c_trg) towards x (doing nothing), fading out linearly.

G pays ``warm_start_weight * (1 - step / warm_start) * |G(x, c_trg) - x|_1`` on top of the paper's
loss (eq. 7) for steps before ``warm_start``; from then on the loss is the paper's alone.
"""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from ganforge import objectives
from ganforge.data.base import Dataset
from ganforge.errors import ConfigError
from ganforge.games.stargan import StarGAN
from ganforge.penalties import build_penalties


def _cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    p = torch.exp(logits) / torch.exp(logits).sum(1, keepdim=True)
    return -torch.log(p[torch.arange(len(y)), y]).mean()


def _game(**params) -> tuple[StarGAN, torch.Tensor, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    x_u8 = torch.randint(0, 256, (6, 3, 8, 8), generator=g, dtype=torch.uint8)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    data = Dataset(name="domains", x=x_u8, y=y, n_classes=3)
    game = StarGAN(cls=1.0, rec=10.0, **params)
    obj = objectives.get("wgan-gp")
    game.build(data, {"g": {"name": "resnet-gen", "ngf": 4, "n_blocks": 1, "n_down": 0, "label": "channels"},
                      "d": {"name": "patchgan", "ndf": 4, "n_layers": 2}}, obj, build_penalties({}, obj))
    c_trg = (y + 1) % 3
    game.targets = lambda n, generator=None: c_trg[:n]
    return game, data.to_model(x_u8), y, c_trg


@pytest.mark.parametrize(("step", "weight"), [(0, 4.0), (10, 3.0), (30, 1.0), (40, 0.0), (1000, 0.0)])
def test_generator_loss_adds_the_fading_pull_to_doing_nothing(step: int, weight: float) -> None:
    game, x, c_org, c_trg = _game(warm_start=40, warm_start_weight=4.0)
    game.step = step
    g, d = game.nets["g"], game.nets["d"]
    g_phase = next(p for p in game.phases() if p.name == "g")
    loss, logs = g_phase.loss({"x": x, "y": c_org})
    fake = g(x, c_trg)
    paper = -d(fake).mean() + 1.0 * _cross_entropy(d.classify(fake), c_trg) \
        + 10.0 * (x - g(fake, c_org)).abs().mean()
    still = (fake - x).abs().mean()  # doing nothing: every domain has x's shape
    assert still > 0.05  # a random G is far from the identity, so the term is visible
    assert_close(loss, paper + weight * still)
    assert game.warm_start_weight() == pytest.approx(weight)
    assert ("warm_start" in logs) == (weight > 0)
    if weight > 0:
        assert_close(torch.tensor(logs["warm_start"]), still.detach())


def test_off_by_default() -> None:
    game, x, c_org, _ = _game()
    assert game.warm_start == 0 and game.warm_start_weight() == 0.0
    _, logs = next(p for p in game.phases() if p.name == "g").loss({"x": x, "y": c_org})
    assert "warm_start" not in logs


def test_warm_start_pulls_g_towards_the_identity() -> None:
    """Steps on the pull alone (a large weight) bring G(x, c) closer to x for every target domain."""
    game, x, c_org, _ = _game(warm_start=1000, warm_start_weight=100.0)
    g = game.nets["g"]
    opt = torch.optim.Adam(g.parameters(), lr=2e-2)
    def dist():
        with torch.no_grad():
            return torch.stack([(g(x, torch.full((6,), c)) - x).abs().mean() for c in range(3)])
    before = dist()
    for _ in range(15):
        opt.zero_grad()
        next(p for p in game.phases() if p.name == "g").loss({"x": x, "y": c_org})[0].backward()
        opt.step()
    after = dist()
    assert bool((after < 0.5 * before).all()), (before, after)


@pytest.mark.parametrize("params", [{"warm_start": -1}, {"warm_start_weight": -0.5}])
def test_negative_settings_are_refused(params: dict) -> None:
    with pytest.raises(ConfigError, match="warm_start"):
        StarGAN(**params)
