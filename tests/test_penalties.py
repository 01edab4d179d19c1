"""Penalties: gradient penalty (two- and one-sided), R1, R2 and EBGAN's pull-away term, by closed form."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from torch import nn

from ganforge import objectives
from ganforge.errors import ConfigError
from ganforge.penalties import build_penalties
from ganforge.registry import PENALTIES


def _linear(w: list[float]) -> nn.Linear:
    """D(x) = w . x + 0.3: its input gradient is w everywhere, so ||grad D|| = ||w||."""
    lin = nn.Linear(len(w), 1).double()
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([w], dtype=torch.float64))
        lin.bias.fill_(0.3)
    return lin


class Quadratic(nn.Module):
    """D(x) = a/2 ||x||^2: grad D(x) = a x, so ||grad D(x)|| = |a| ||x||."""

    def __init__(self, a: float) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.tensor(a, dtype=torch.float64))

    def forward(self, x, c=None):
        return 0.5 * self.a * x.pow(2).sum(dim=1, keepdim=True)


def _batch(seed: int, n: int = 6, d: int = 3, shift: float = 0.0) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) + shift


@pytest.mark.parametrize("w", [[1.5, -2.0], [0.3, 0.4], [0.6, 0.8]])
def test_gp_on_a_linear_critic(w):
    norm = float(np.linalg.norm(w))  # 2.5, 0.5, 1.0
    critic = _linear(w)
    real, fake = _batch(0, d=2), _batch(1, d=2)
    two = PENALTIES.build("gp")(critic, real=real, fake=fake)
    one = PENALTIES.build("gp", one_sided=True)(critic, real=real, fake=fake)
    torch.testing.assert_close(two, torch.tensor((norm - 1) ** 2, dtype=torch.float64))
    torch.testing.assert_close(one, torch.tensor(max(norm - 1, 0.0) ** 2, dtype=torch.float64))
    t = PENALTIES.build("gp", target=2.0)(critic, real=real, fake=fake)
    torch.testing.assert_close(t, torch.tensor((norm - 2) ** 2, dtype=torch.float64))


def test_gp_gradient_reaches_the_critic_parameters():
    """d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w|| (double backprop through the input gradient)."""
    w = torch.tensor([1.5, -2.0], dtype=torch.float64)
    critic = _linear(w.tolist())
    PENALTIES.build("gp")(critic, real=_batch(0, d=2), fake=_batch(1, d=2)).backward()
    norm = w.norm()
    torch.testing.assert_close(critic.weight.grad[0], 2 * (norm - 1) * w / norm)
    assert critic.bias.grad is None or float(critic.bias.grad.abs()) == 0.0


def test_gp_is_taken_at_random_interpolates():
    """With D = 1/2 ||x||^2 the penalty is mean (||x_hat|| - 1)^2, x_hat = e real + (1 - e) fake, e ~ U[0,1]."""
    real, fake = _batch(0, n=64), _batch(1, n=64, shift=2.0)
    torch.manual_seed(123)
    got = PENALTIES.build("gp")(Quadratic(1.0), real=real, fake=fake).detach()
    torch.manual_seed(123)
    e = torch.rand(64, 1, dtype=torch.float64)
    x_hat = e * real + (1 - e) * fake
    torch.testing.assert_close(got, (x_hat.norm(dim=1) - 1).pow(2).mean())
    # not at the end points: those give different values
    assert abs(float(got) - float((real.norm(dim=1) - 1).pow(2).mean())) > 1e-3
    assert abs(float(got) - float((fake.norm(dim=1) - 1).pow(2).mean())) > 1e-3


def test_r1_and_r2_closed_forms():
    real, fake = _batch(0), _batch(1, shift=3.0)
    q = Quadratic(2.0)  # ||grad D(x)||^2 = 4 ||x||^2
    torch.testing.assert_close(PENALTIES.build("r1")(q, real=real, fake=fake), 0.5 * 4 * real.pow(2).sum(1).mean())
    torch.testing.assert_close(PENALTIES.build("r2")(q, real=real, fake=fake), 0.5 * 4 * fake.pow(2).sum(1).mean())
    lin = _linear([0.6, -0.8, 2.0])
    for name in ("r1", "r2"):
        torch.testing.assert_close(PENALTIES.build(name)(lin, real=real, fake=fake),
                                   torch.tensor(0.5 * (0.36 + 0.64 + 4.0), dtype=torch.float64))
    assert PENALTIES.build("r1").phase == "d" and PENALTIES.build("r2").phase == "d"


class Embedder(nn.Module):
    """A critic whose embedding is the input itself."""

    def forward(self, x, c=None):
        return x.sum(1, keepdim=True)

    def embed(self, x, c=None):
        return x


def test_pull_away_term():
    pt = PENALTIES.build("pull-away")
    assert pt.phase == "g"
    orth = torch.eye(4, dtype=torch.float64) * torch.tensor([1.0, 2.0, 3.0, 0.5], dtype=torch.float64)[:, None]
    assert float(pt(Embedder(), real=orth, fake=orth)) == pytest.approx(0.0, abs=1e-15)
    same = torch.tensor([[1.0, 2.0]] * 3, dtype=torch.float64) * torch.tensor([[1.0], [2.0], [0.1]])
    assert float(pt(Embedder(), real=same, fake=same)) == pytest.approx(1.0, rel=1e-12)
    s = _batch(5, n=7, d=4).numpy()
    ref = np.mean([(s[i] @ s[j] / np.linalg.norm(s[i]) / np.linalg.norm(s[j])) ** 2
                   for i, j in itertools.permutations(range(7), 2)])
    assert float(pt(Embedder(), real=torch.as_tensor(s), fake=torch.as_tensor(s))) == pytest.approx(ref, rel=1e-12)
    with pytest.raises(ConfigError, match="needs a critic with an embedding"):
        pt(_linear([1.0, 2.0]), real=orth[:, :2], fake=orth[:, :2])


def test_build_penalties_weights_and_objective_defaults():
    built = build_penalties({"r1": 2.0, "gp": {"weight": 5, "one_sided": True}})
    assert [(n, w) for n, w, _ in built] == [("r1", 2.0), ("gp", 5.0)]
    assert built[1][2].one_sided is True
    wgp = objectives.get("wgan-gp")
    assert [(n, w) for n, w, _ in build_penalties({}, wgp)] == [("gp", 10.0)]
    assert [(n, w) for n, w, _ in build_penalties({"gp": 1.0}, wgp)] == [("gp", 1.0)]
    assert build_penalties({"gp": 0}, wgp) == []  # weight 0 switches the default off
    with pytest.raises(ConfigError, match="weight must be >= 0"):
        build_penalties({"r1": -1.0})
    with pytest.raises(ConfigError, match="needs a weight"):
        build_penalties({"r1": {}})
    with pytest.raises(ConfigError, match=r"unknown penalty 'r3'.*Valid penalties: .*gp.*r1"):
        build_penalties({"r3": 1.0})
    with pytest.raises(ConfigError, match="gp target norm must be > 0"):
        build_penalties({"gp": {"weight": 1, "target": 0}})
