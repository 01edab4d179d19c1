"""PacGAN packing (Lin et al. 2018): the critic scores m samples concatenated, real with real, fake with fake."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import TINY, assert_same_state, read_records, with_overrides

from ganforge.config import load_config
from ganforge.errors import ConfigError
from ganforge.training import checkpoint as ckpt
from ganforge.training.build import build_game
from ganforge.training.trainer import Trainer


def _raw(pack: int | None = None, **sections) -> dict:
    game = {"name": "gan", "z_dim": 4, **({} if pack is None else {"pack": pack})}
    return with_overrides(TINY, game=game, **sections)


def _game(pack: int, **sections):
    torch.manual_seed(0)
    return build_game(load_config(None, base=_raw(pack, **sections)))


def _packed_by_hand(x: torch.Tensor, m: int) -> torch.Tensor:
    """Row i = [x[i*m], x[i*m+1], ..., x[i*m+m-1]] concatenated along the feature axis."""
    return torch.stack([torch.cat([x[i * m + j] for j in range(m)]) for i in range(x.shape[0] // m)])


def test_packing_concatenates_consecutive_samples_along_the_feature_axis():
    game = _game(3)
    x = torch.randn(12, 2)
    torch.testing.assert_close(game.pack_samples(x), _packed_by_hand(x, 3), rtol=0, atol=0)
    img = torch.randn(4, 3, 5, 5)  # images: channels side by side
    game.pack = 2
    packed = game.pack_samples(img)
    assert packed.shape == (2, 6, 5, 5)
    torch.testing.assert_close(packed[1, 3:], img[3], rtol=0, atol=0)


@pytest.mark.parametrize("m", [1, 2, 4])
def test_critic_input_size_is_m_times_the_data_dimension(m):
    first = next(mod for mod in _game(m).nets["d"].modules() if isinstance(mod, torch.nn.Linear))
    assert first.in_features == 2 * m  # the ring is 2-d


@pytest.mark.parametrize("m", [2, 4])
def test_d_and_g_losses_are_the_objective_on_packed_reals_and_packed_fakes(m):
    game = _game(m)
    g, d = game.nets["g"], game.nets["d"]
    x = torch.randn(32, 2)
    torch.manual_seed(7)
    loss, _ = game.d_loss({"x": x})
    torch.manual_seed(7)  # the same noise the game drew
    with torch.no_grad():
        fake = g(torch.randn(32, 4))
    real_out, fake_out = d(_packed_by_hand(x, m)), d(_packed_by_hand(fake, m))
    assert real_out.shape == (32 // m, 1)
    want = F.softplus(-real_out).mean() + F.softplus(fake_out).mean()  # ns: -log D(x) - log(1 - D(G(z)))
    torch.testing.assert_close(loss, want, rtol=1e-6, atol=1e-7)

    torch.manual_seed(8)
    g_loss, _ = game.g_loss({"n": 32})
    torch.manual_seed(8)
    want_g = F.softplus(-d(_packed_by_hand(g(torch.randn(32, 4)), m))).mean()  # ns: -log D(G(z))
    torch.testing.assert_close(g_loss, want_g, rtol=1e-6, atol=1e-7)


def test_r1_penalty_sees_the_packed_reals():
    game = _game(2, penalties={"r1": 1.0})
    d = game.nets["d"]
    x = torch.randn(16, 2)
    torch.manual_seed(3)
    _, logs = game.d_loss({"x": x})
    xp = _packed_by_hand(x, 2).requires_grad_(True)
    (grad,) = torch.autograd.grad(d(xp).sum(), xp)
    want = 0.5 * grad.pow(2).sum(dim=1).mean()  # R1 (Mescheder et al. 2018, eq. 9) on the packed reals
    torch.testing.assert_close(torch.tensor(logs["r1"]), want.detach(), rtol=1e-5, atol=1e-7)


def test_pack_1_is_the_unpacked_game_bit_for_bit(tmp_path):
    a = Trainer(load_config(None, base=_raw(None)), tmp_path / "plain", quiet=True)
    a.fit()
    b = Trainer(load_config(None, base=_raw(1)), tmp_path / "pack1", quiet=True)
    b.fit()
    assert_same_state(a.game.state_dict(), b.game.state_dict())
    assert read_records(tmp_path / "plain") == read_records(tmp_path / "pack1")


def test_packed_run_resumes_exactly(tmp_path):
    raw = _raw(2, train={"steps": 6, "ema": 0.9}, checkpoint={"every": 3})
    Trainer(load_config(None, base=raw), tmp_path / "whole", quiet=True).fit()
    Trainer(load_config(None, base=with_overrides(raw, train={"steps": 3})), tmp_path / "run", quiet=True).fit()
    tr = Trainer.resume(tmp_path / "run", {"train.steps": 6}, quiet=True)
    assert tr.step == 3
    tr.fit()
    whole, part = ckpt.load_latest(tmp_path / "whole")[0], ckpt.load_latest(tmp_path / "run")[0]
    assert_same_state(whole["game"], part["game"])
    assert_same_state(whole["ema"], part["ema"])
    assert read_records(tmp_path / "whole") == read_records(tmp_path / "run")


def test_bad_pack_settings_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"pack \(samples per critic input, PacGAN's m\) must be >= 1, got 0"):
        _game(0)
    with pytest.raises(ConfigError, match="pack=2 needs an unconditional game"):
        build_game(load_config(None, base=with_overrides(TINY, game={"name": "gan", "pack": 2,
                                                                      "conditional": True})))
    tr = Trainer(load_config(None, base=_raw(3)), tmp_path / "odd", quiet=True)  # batch 32 is not a multiple of 3
    with pytest.raises(ConfigError, match=r"game.pack=3 .* batch must be divisible by 3; got a batch of 32 "
                                          r"\(set train.batch_size to a multiple of 3\)"):
        tr.fit()
