"""The critic choosing among fakes: top-k generator updates (Sinha et al. 2020) and discriminator
rejection sampling (Azadi et al. 2019)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from conftest import TINY, with_overrides

from ganforge.config import load_config
from ganforge.errors import ConfigError
from ganforge.games.selection import (
    drs_acceptance,
    drs_sample,
    packed_scores,
    platt_scale,
    top_k,
    top_k_fraction,
)
from ganforge.training.build import build_game


def _game(**game):
    torch.manual_seed(0)
    return build_game(load_config(None, base=with_overrides(TINY, game={"name": "gan", "z_dim": 4, **game})))


def test_top_k_fraction_falls_linearly_from_one_to_nu_then_stays():
    assert top_k_fraction(0, 0.5, 1000) == 1.0
    assert top_k_fraction(250, 0.5, 1000) == pytest.approx(0.875)
    assert top_k_fraction(1000, 0.5, 1000) == pytest.approx(0.5)
    assert top_k_fraction(5000, 0.5, 1000) == pytest.approx(0.5)
    assert top_k_fraction(0, 0.6, 0) == 0.6  # no annealing: nu from the first step


def test_top_k_keeps_the_ceil_k_highest_scores():
    s = torch.tensor([[0.25], [-1.0], [2.0], [0.5], [-0.25]])
    kept = top_k(s, 0.5)  # ceil(2.5) = 3
    assert sorted(kept.reshape(-1).tolist()) == [0.25, 0.5, 2.0]
    assert top_k(s, 1.0) is s
    assert top_k(s, 1e-6).reshape(-1).tolist() == [2.0]  # never fewer than one


@pytest.mark.parametrize("pack", [1, 2])
def test_g_loss_is_the_ns_loss_over_the_k_best_scored_fakes(pack):
    game = _game(pack=pack, top_k=0.25, top_k_anneal=100)
    g, d = game.nets["g"], game.nets["d"]
    game.step = 100  # fully annealed: a quarter of the critic's inputs
    torch.manual_seed(8)
    loss, _ = game.g_loss({"n": 32})
    torch.manual_seed(8)
    out = d(game.pack_samples(g(torch.randn(32, 4)))).reshape(-1)
    best = out.sort(descending=True).values[: math.ceil(0.25 * len(out))]
    torch.testing.assert_close(loss, F.softplus(-best).mean(), rtol=1e-6, atol=1e-7)  # ns: -log D(G(z))
    game.step = 0  # the first step: every fake
    torch.manual_seed(8)
    loss0, _ = game.g_loss({"n": 32})
    torch.testing.assert_close(loss0, F.softplus(-out).mean(), rtol=1e-6, atol=1e-7)


def test_drs_acceptance_with_gamma_zero_is_exact_rejection_sampling():
    logits = torch.tensor([-3.0, -1.0, 0.0, 1.5])
    p = drs_acceptance(logits, d_max=2.0, quantile=0.0, eps=0.0)
    torch.testing.assert_close(p, torch.exp(logits - 2.0))  # sigmoid(a - log(1 - e^a)) = e^a
    q = drs_acceptance(logits, d_max=2.0, quantile=0.5, eps=1e-6)
    f = (logits - 2.0).double()
    f = f - torch.log1p(-torch.exp(f - 1e-6))
    gamma = (f.sort().values[1] + f.sort().values[2]) / 2  # the median of four values, interpolated
    torch.testing.assert_close(q, torch.sigmoid(f - gamma).float())


def test_platt_scale_recovers_the_logistic_model_that_labelled_the_scores():
    gen = torch.Generator().manual_seed(0)
    s = torch.rand(200_000, generator=gen) * 6 - 3
    real = torch.rand(len(s), generator=gen) < torch.sigmoid(3.0 * s - 0.5)  # P(real | s) = sigmoid(3 s - 0.5)
    a, b = platt_scale(s[real], s[~real])
    assert a == pytest.approx(3.0, abs=0.05)
    assert b == pytest.approx(-0.5, abs=0.03)


def test_drs_with_the_exact_log_ratio_samples_the_target():
    """Proposal N(0, 1), target N(0.5, 0.7^2), critic = log target / proposal: exact rejection sampling."""
    gen = torch.Generator().manual_seed(0)
    target = torch.distributions.Normal(0.5, 0.7)
    proposal = torch.distributions.Normal(0.0, 1.0)

    def score(x):
        return (target.log_prob(x) - proposal.log_prob(x)).reshape(-1)

    x = drs_sample(lambda m: torch.randn(m, 1, generator=gen), score, 20_000, quantile=0.0, burn_in=20_000,
                   generator=gen)
    assert x.shape == (20_000, 1)
    assert float(x.mean()) == pytest.approx(0.5, abs=0.02)
    assert float(x.std()) == pytest.approx(0.7, abs=0.02)


def test_packed_scores_average_every_slot_over_distinct_partners():
    """An additive packed critic h(x_1) + 10 h(x_2): a candidate's score averages its own h with its
    slot's weight over the packs, plus its partners'."""
    w = torch.tensor([1.0, -2.0])

    def critic(xp):
        return (xp[:, :2] @ w + 10 * (xp[:, 2:] @ w))[:, None]

    x = torch.randn(7, 2)
    h = x @ w
    s = packed_scores(critic, x, pack=2, partners=2)
    # pack 0: x_i in slot 0 beside x_{i+1}; pack 1: x_i in slot 1 beside x_{i+2}
    want = ((h + 10 * h.roll(-1)) + (h.roll(-2) + 10 * h)) / 2
    torch.testing.assert_close(s, want)
    torch.testing.assert_close(packed_scores(lambda v: (v @ w)[:, None], x, pack=1, partners=5), h)  # m = 1


def test_game_samples_with_drs_deterministically_and_prefers_high_scores():
    game = _game(drs=True, drs_burn_in=512, drs_quantile=0.5, drs_calibration=1000)
    a = game.sample(300, generator=torch.Generator().manual_seed(3))
    b = game.sample(300, generator=torch.Generator().manual_seed(3))
    assert a.shape == (300, 2)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    game.drs = False
    plain = game.sample(3000, generator=torch.Generator().manual_seed(4))
    d = game.nets["d"]
    with torch.no_grad():
        assert float(d(a).mean()) > float(d(plain).mean())  # rejection keeps the critic's favourites


def test_drs_and_top_k_are_checked():
    with pytest.raises(ConfigError, match="drs"):
        _game(conditional=True, drs=True)
    with pytest.raises(ConfigError, match="top_k"):
        _game(top_k=0.0)
    with pytest.raises(ConfigError, match="top_k"):
        _game(top_k=0.5, feature_matching=True)
    with pytest.raises(ConfigError, match="drs_quantile"):
        _game(drs=True, drs_quantile=1.0)
    with pytest.raises(ConfigError, match="drs_calibration"):
        _game(drs=True, drs_calibration=-1)
