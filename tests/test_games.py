"""Games run by the one trainer: each phase moves exactly its optimizer group's parameters."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import GAMES, TINY, with_overrides

from ganforge.config import load_config
from ganforge.training.trainer import Trainer


def _params(game) -> dict[str, torch.Tensor]:
    return {f"{role}.{n}": p.detach().clone() for role, net in game.nets.items()
            for n, p in net.named_parameters()}


def _grads(game) -> dict[str, torch.Tensor | None]:
    return {f"{role}.{n}": None if p.grad is None else p.grad.clone() for role, net in game.nets.items()
            for n, p in net.named_parameters()}


@pytest.mark.parametrize("name", list(GAMES))
def test_phase_moves_only_its_group(name, tmp_path):
    tr = Trainer(load_config(None, base=GAMES[name]), tmp_path / name, quiet=True)
    game = tr.game
    assert {ph.group for ph in tr.phases} == set(game.groups)
    for ph in tr.phases:
        inside = set(game.groups[ph.group])
        before = _params(game)
        grads_before = _grads(game)
        logs = tr._run_phase(ph)
        after = _params(game)
        assert logs and all(math.isfinite(v) for v in logs.values()), logs
        grads = _grads(game)
        zero_grad = []
        for key, old in before.items():
            role = key.split(".", 1)[0]
            if role not in inside:
                assert torch.equal(after[key], old), f"{name}/{ph.name}: {key} outside the phase changed"
                # no gradient accumulated into it either (it may still hold its own phase's last one)
                same = (grads[key] is None and grads_before[key] is None) or torch.equal(grads[key], grads_before[key])
                assert same, f"{name}/{ph.name}: {key} outside the phase got a gradient"
            elif torch.equal(after[key], old):
                # allowed only where the loss does not depend on it: the critic's output bias
                # cancels in E[D(fake)] - E[D(real)] (Wasserstein), so its gradient is exactly 0
                assert grads[key] is not None and not grads[key].any(), f"{name}/{ph.name}: {key} did not change"
                zero_grad.append(key)
        assert len(zero_grad) <= 1, zero_grad
        # nothing is left with gradients switched on outside the group
        for role, net in game.nets.items():
            assert all(p.requires_grad == (role in inside) for p in net.parameters())


def test_wgan_clipping_applies_to_the_critic_only(tmp_path):
    tr = Trainer(load_config(None, base=GAMES["gan-wgan-clip"]), tmp_path, quiet=True)
    for ph in tr.phases:
        tr._run_phase(ph)
    clip = torch.tensor(0.05)  # in float32
    assert max(p.abs().max() for p in tr.game.nets["d"].parameters()) <= clip
    assert max(float(p.detach().abs().max()) for p in tr.game.nets["g"].parameters()) > 0.05


@pytest.mark.parametrize("objective,g_batches", [("ns", 0), ("mmd", 1)])
def test_k_critic_steps_per_generator_step(objective, g_batches, tmp_path):
    """Goodfellow's Algorithm 1: k = 3 critic updates, each on a fresh minibatch, then one G update."""
    raw = with_overrides(TINY, objective={"name": objective}, train={"steps": 2, "d_steps": 3})
    tr = Trainer(load_config(None, base=raw), tmp_path, quiet=True)
    calls = []
    for ph in tr.phases:
        inner = ph.loss

        def counted(batch, _inner=inner, _name=ph.name):
            calls.append((_name, tuple(batch["x"].shape) if "x" in batch else None))
            return _inner(batch)

        ph.loss = counted
    tr.fit()
    assert [c[0] for c in calls] == ["d", "d", "d", "g"] * 2
    opt_steps = {g: {int(s["step"]) for s in o.state.values()} for g, o in tr.optimizers.items()}
    assert opt_steps == {"d": {6}, "g": {2}}
    batches = 6 + 2 * g_batches
    assert tr.stream.state_dict()["index"] == batches * 32  # 2048 points: no epoch wrap


def test_bigan_encoder_and_cyclegan_translation_shapes(tmp_path):
    tr = Trainer(load_config(None, base=GAMES["bigan"]), tmp_path / "b", quiet=True)
    x = tr.data.x[:5]
    assert tr.game.encode(x).shape == (5, 2) and tr.game.sample(7).shape == (7, 2)
    tr = Trainer(load_config(None, base=GAMES["cyclegan"]), tmp_path / "c", quiet=True)
    a = tr.data.info["parts"]["a"].x[:4]
    assert tr.game.translate(a, "ab").shape == (4, 2) and tr.game.translate(a, "ba").shape == (4, 2)
    assert tr.game.eval_reference() is tr.data.info["parts"]["b"]


def test_separate_optimizers_and_learning_rates(tmp_path):
    raw = with_overrides(TINY, optim={"d": {"name": "rmsprop", "lr": 5e-5}, "g": {"name": "sgd", "lr": 0.1,
                                                                                  "momentum": 0.9}})
    tr = Trainer(load_config(None, base=raw), tmp_path, quiet=True)
    d, g = tr.optimizers["d"], tr.optimizers["g"]
    assert isinstance(d, torch.optim.RMSprop) and d.param_groups[0]["lr"] == 5e-5
    assert isinstance(g, torch.optim.SGD) and g.param_groups[0]["lr"] == 0.1 and g.param_groups[0]["momentum"] == 0.9
    assert {id(p) for p in g.param_groups[0]["params"]} == {id(p) for p in tr.game.nets["g"].parameters()}
    assert {id(p) for p in d.param_groups[0]["params"]} == {id(p) for p in tr.game.nets["d"].parameters()}


def test_gradient_clipping_bounds_the_update(tmp_path):
    """Plain SGD with lr 1 moves the parameters by exactly the clipped gradient: norm <= grad_clip."""
    raw = with_overrides(TINY, optim={"d": {"name": "sgd", "lr": 1.0}, "g": {"name": "sgd", "lr": 1.0}},
                         train={"grad_clip": 1e-3})
    tr = Trainer(load_config(None, base=raw), tmp_path, quiet=True)
    for ph in tr.phases:
        before = torch.cat([p.detach().reshape(-1).clone() for r in tr.game.groups[ph.group]
                            for p in tr.game.nets[r].parameters()])
        logs = tr._run_phase(ph)
        after = torch.cat([p.detach().reshape(-1) for r in tr.game.groups[ph.group]
                           for p in tr.game.nets[r].parameters()])
        moved = float((after - before).norm())
        assert logs[f"{ph.name}_gnorm"] > 1e-3  # the unclipped norm is logged
        assert moved == pytest.approx(1e-3, rel=1e-3)
