"""Lazy R1 (StyleGAN2) and orthogonal regularisation (BigGAN): each against its formula, and their wiring
through Game._penalties (the step and the generator passed by ``wants``)."""

from __future__ import annotations

import pytest
import torch
from conftest import TINY, with_overrides
from torch import nn

from ganforge.config import load_config
from ganforge.errors import ConfigError
from ganforge.penalties import R1, LazyR1, Orthogonal, build_penalties


class Counting(nn.Module):
    """D(x) = sum_i a_i x_i^2 (grad = 2 a x, R1 = 1/2 E ||2 a x||^2), counting its calls."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.tensor([0.5, -1.5, 2.0]))
        self.calls = 0

    def forward(self, x, c=None):
        self.calls += 1
        return (self.a * x.pow(2)).sum(1, keepdim=True)


def test_lazy_r1_is_k_times_r1_on_its_steps_and_zero_without_gradients_elsewhere() -> None:
    torch.manual_seed(0)
    d, real, fake = Counting(), torch.randn(7, 3), torch.randn(7, 3)
    r1 = 0.5 * (2 * d.a.detach() * real).pow(2).sum(1).mean()  # R1 written out for this critic
    torch.testing.assert_close(R1()(d, real=real, fake=fake), r1)
    lazy = LazyR1(every=4)
    assert lazy.wants == ("step",) and lazy.phase == "d"
    for step in range(10):
        d.calls = 0
        v = lazy(d, real=real, fake=fake, step=step)
        if step % 4 == 0:
            torch.testing.assert_close(v, 4 * r1)
            assert v.requires_grad and d.calls == 1
            (g,) = torch.autograd.grad(v, d.a)  # differentiable in the critic's weights (double backprop)
            torch.testing.assert_close(g, 4 * 0.5 * (8 * d.a.detach() * real.pow(2)).mean(0))
        else:
            assert torch.equal(v, torch.zeros(())) and not v.requires_grad and d.calls == 0
    torch.testing.assert_close(LazyR1(every=1)(d, real=real, fake=fake, step=3), r1)


@pytest.mark.parametrize("every", [0, -2, 2.5])
def test_lazy_r1_rejects_a_bad_interval(every) -> None:
    with pytest.raises(ConfigError, match=r"r1-lazy every must be an int >= 1 .*got"):
        build_penalties({"r1-lazy": {"weight": 1, "every": every}})


def test_the_game_passes_its_step_to_lazy_r1() -> None:
    from ganforge.training.build import build_game

    raw = with_overrides(TINY, penalties={"r1-lazy": {"weight": 2.0, "every": 3}})
    game = build_game(load_config(None, base=raw))
    d = game.nets["d"]
    real, fake = torch.randn(8, 2), torch.randn(8, 2)
    r1 = R1()(d, real=real, fake=fake)
    for step, want in [(0, 3 * r1), (1, 0 * r1), (2, 0 * r1), (3, 3 * r1), (6, 3 * r1)]:
        game.step = step
        total, logs = game._penalties("d", d, real=real, fake=fake)
        torch.testing.assert_close(total, 2.0 * want)
        torch.testing.assert_close(torch.tensor(logs["r1-lazy"]), want.detach())


def _net() -> nn.Module:
    return nn.Sequential(nn.Linear(3, 4), nn.Conv2d(2, 5, 3), nn.utils.parametrizations.spectral_norm(nn.Linear(6, 3)),
                         nn.BatchNorm2d(4))


def test_orthogonal_equals_its_formula() -> None:
    """sum over layers of sum_{i != j} <w_i, w_j>^2, w_i the rows of W as (out, -1); SN layers: the raw weight."""
    torch.manual_seed(0)
    g = _net()
    mats = [m.detach() for m in (g[0].weight, g[1].weight.reshape(5, 18), g[2].parametrizations.weight.original)]
    want = sum(float(m[i] @ m[j]) ** 2 for m in mats for i in range(m.shape[0]) for j in range(m.shape[0]) if i != j)
    pen = Orthogonal()
    assert pen.phase == "g" and pen.wants == ("generator",)
    v = pen(nn.Identity(), real=torch.zeros(1), fake=torch.zeros(1), generator=g)
    torch.testing.assert_close(v, torch.tensor(want, dtype=torch.float32))
    # gradient: d/dW ||W W^T o (1 - I)||_F^2 = 4 (W W^T o (1 - I)) W
    (grad,) = torch.autograd.grad(v, g[0].weight)
    w = g[0].weight.detach()
    torch.testing.assert_close(grad, 4 * ((w @ w.t()) * (1 - torch.eye(4))) @ w)


def test_orthogonal_is_zero_for_orthogonal_filters_of_any_norm() -> None:
    torch.manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(18, 5))  # 5 orthonormal columns of length 18
    lin, conv = nn.Linear(18, 5), nn.Conv2d(2, 5, 3)
    with torch.no_grad():
        lin.weight.copy_(q.t() * torch.tensor([1.0, 2.0, 0.5, 3.0, 1.5])[:, None])  # rows orthogonal, norms free
        conv.weight.copy_(q.t().reshape(5, 2, 3, 3))
    v = Orthogonal()(nn.Identity(), real=torch.zeros(1), fake=torch.zeros(1), generator=nn.Sequential(lin, conv))
    torch.testing.assert_close(v, torch.tensor(0.0), atol=1e-9, rtol=0)
    with torch.no_grad():
        conv.weight[1] += 0.1 * conv.weight[0]  # one pair no longer orthogonal: 2 <w0, w1>^2 = 2 * 0.1^2
    v = Orthogonal()(nn.Identity(), real=torch.zeros(1), fake=torch.zeros(1), generator=nn.Sequential(lin, conv))
    torch.testing.assert_close(v, torch.tensor(2 * 0.01), rtol=1e-4, atol=0)


def test_the_game_passes_its_generator_to_orthogonal_in_the_g_phase() -> None:
    from ganforge.training.build import build_game

    raw = with_overrides(TINY, penalties={"orthogonal": 1e-4})
    game = build_game(load_config(None, base=raw))
    real, fake = torch.randn(8, 2), torch.randn(8, 2)
    d_total, d_logs = game._penalties("d", game.nets["d"], real=real, fake=fake)
    assert float(d_total) == 0.0 and d_logs == {}  # a "g"-phase penalty stays out of the critic's loss
    total, logs = game._penalties("g", game.nets["d"], real=real, fake=fake)
    want = Orthogonal()(game.nets["d"], real=real, fake=fake, generator=game.nets["g"])
    torch.testing.assert_close(total, 1e-4 * want)
    assert logs == {"orthogonal": pytest.approx(float(want.detach()))}
    with pytest.raises(ConfigError, match="'orthogonal' regularises the generator"):
        Orthogonal()(game.nets["d"], real=real, fake=fake, generator=None)


# ------------------------------------------------------------------------ consistency regularisation (cr)
def test_cr_equals_its_formula_and_is_lazy() -> None:
    """Zhang et al. 2020: ||D(x) - D(T(x))||^2, summed over outputs, averaged over the batch; lazy: k times it
    on every k-th step and 0 (no graph) elsewhere; bCR adds the same on the fakes."""
    from ganforge.penalties import ConsistencyRegularisation
    from ganforge.stabilisers.augment import translation

    torch.manual_seed(0)
    critic = nn.Sequential(nn.Flatten(), nn.Linear(64, 2))
    real, fake = torch.randn(5, 1, 8, 8), torch.randn(5, 1, 8, 8)
    torch.manual_seed(1)
    got = ConsistencyRegularisation(every=3)(critic, real=real, fake=fake, step=6)
    torch.manual_seed(1)
    want = 3 * (critic(real) - critic(translation(real))).pow(2).sum(1).mean()
    torch.testing.assert_close(got, want)
    off = ConsistencyRegularisation(every=3)(critic, real=real, fake=fake, step=7)
    assert off.item() == 0.0 and not off.requires_grad
    torch.manual_seed(2)
    both = ConsistencyRegularisation(fakes=True)(critic, real=real, fake=fake)
    torch.manual_seed(2)
    want = (critic(real) - critic(translation(real))).pow(2).sum(1).mean()
    want = want + (critic(fake) - critic(translation(fake))).pow(2).sum(1).mean()
    torch.testing.assert_close(both, want)


def test_cr_is_zero_for_a_translation_invariant_critic() -> None:
    """Shifts of at most 1/8 of the size keep a centred object whole: a critic that sums the pixels sees no change,
    one that reads a fixed pixel does."""
    from ganforge.penalties import ConsistencyRegularisation

    x = torch.zeros(16, 1, 16, 16)
    x[:, :, 4:12, 4:12] = torch.rand(16, 1, 8, 8) + 0.5

    class Sum(nn.Module):
        def forward(self, x):
            return x.sum(dim=(1, 2, 3))[:, None]

    class Pixel(nn.Module):
        def forward(self, x):
            return x[:, :, 4, 4]

    torch.manual_seed(0)
    assert ConsistencyRegularisation()(Sum(), real=x, fake=x).item() < 1e-9
    assert ConsistencyRegularisation()(Pixel(), real=x, fake=x).item() > 0.01


@pytest.mark.parametrize("kwargs, match", [({"every": 0}, "cr every must be an int >= 1"),
                                           ({"policy": ""}, "cr needs an augmentation policy"),
                                           ({"policy": "rotate"}, "unknown augmentation 'rotate'")])
def test_cr_bad_settings_say_what_is_valid(kwargs, match) -> None:
    from ganforge.penalties import ConsistencyRegularisation

    with pytest.raises(ConfigError, match=match):
        ConsistencyRegularisation(**kwargs)


def test_cr_refuses_samples_that_are_not_images() -> None:
    from ganforge.penalties import ConsistencyRegularisation

    x = torch.randn(4, 3)
    with pytest.raises(ConfigError, match=r"penalty 'cr' augments images \(N, C, H, W\); got samples of shape \(3,\)"):
        ConsistencyRegularisation()(nn.Linear(3, 1), real=x, fake=x)


def test_lazy_penalties_refuse_a_bool_interval() -> None:
    from ganforge.penalties import ConsistencyRegularisation

    for make, name in ((lambda: LazyR1(every=True), "r1-lazy"), (lambda: ConsistencyRegularisation(every=True), "cr")):
        with pytest.raises(ConfigError, match=f"{name} every must be an int >= 1 .*got True"):
            make()
