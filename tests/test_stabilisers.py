"""The lectures' stabilisers: each one does what it claims, and matches its formula where one exists."""

from __future__ import annotations

import copy
import json
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import ganforge.components  # noqa: F401
from ganforge.errors import ConfigError
from ganforge.games.gan import GAN
from ganforge.nets import build_net
from ganforge.nets.common import NORMS, norm_layer
from ganforge.registry import NETS, OBJECTIVES
from ganforge.stabilisers import (
    MinibatchCritic,
    MinibatchDiscrimination,
    VirtualBatchNorm,
    add_instance_noise,
    attach_reference,
    diff_augment,
    feature_matching_loss,
    instance_noise_sigma,
    reference_of,
    set_reference,
    unroll,
)
from ganforge.stabilisers.augment import color, cutout, translation
from ganforge.training.ema import EMA

torch.set_num_threads(1)


def _game(tiny_cfg: dict, **game) -> GAN:
    """A built GAN game (no trainer) from the tiny config with game options."""
    from ganforge.config import resolve
    from ganforge.training.build import build_game

    cfg = copy.deepcopy(tiny_cfg)
    cfg["game"].update(game)
    return build_game(resolve(cfg))


def _batch(game: GAN, n: int = 64, seed: int = 0) -> dict:
    idx = torch.randperm(len(game.data.x), generator=torch.Generator().manual_seed(seed))[:n]
    return {"x": game.data.x[idx]}


# ---------------------------------------------------------------- one-sided label smoothing
@pytest.mark.parametrize("name", ["ns", "minimax"])
def test_one_sided_smoothing_is_cross_entropy_with_real_target_09(name):
    obj = OBJECTIVES.build(name, smoothing=0.1)
    plain = OBJECTIVES.build(name)
    real, fake = torch.randn(50, 1) * 3, torch.randn(50, 1) * 3
    ref = F.binary_cross_entropy_with_logits(real, torch.full_like(real, 0.9)) + \
        F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
    torch.testing.assert_close(obj.d_loss(real=real, fake=fake), ref)
    # the fake target stays 0: the loss's dependence on fake scores is untouched by smoothing
    f1, f2 = fake.clone().requires_grad_(True), fake.clone().requires_grad_(True)
    obj.d_loss(real=real, fake=f1).backward()
    plain.d_loss(real=real, fake=f2).backward()
    torch.testing.assert_close(f1.grad, f2.grad)
    # the generator's loss does not change either
    torch.testing.assert_close(obj.g_loss(fake=fake), plain.g_loss(fake=fake))


@pytest.mark.parametrize("s", [0.1, 0.2])
def test_one_sided_smoothing_optimal_discriminator(s):
    """Pointwise optimum of p [(1-s) sp(-v) + s sp(v)] + q sp(v): D*(x) = (1 - s) p / (p + q)."""
    obj = OBJECTIVES.build("ns", smoothing=s)
    p = torch.tensor([0.05, 0.3, 1.0, 2.5], dtype=torch.float64)
    q = torch.tensor([1.0, 0.3, 0.2, 0.01], dtype=torch.float64)
    d_star = (1 - s) * p / (p + q)
    v = torch.logit(d_star).requires_grad_(True)
    total = sum(pi * obj.d_loss(real=vi[None], fake=vi.new_full((1,), -1e4)) +
                qi * obj.d_loss(real=vi.new_full((1,), 1e4), fake=vi[None]) for pi, qi, vi in zip(p, q, v, strict=True))
    (grad,) = torch.autograd.grad(total, v)
    torch.testing.assert_close(grad, torch.zeros_like(grad), atol=1e-9, rtol=0)


# ---------------------------------------------------------------- minibatch discrimination
def test_minibatch_discrimination_formula():
    torch.manual_seed(0)
    mbd = MinibatchDiscrimination(6, kernels=4, kernel_dim=3)
    f = torch.randn(5, 6)
    m = torch.einsum("na,abc->nbc", f, mbd.T).detach()
    ref = torch.zeros(5, 4)
    for i in range(5):
        for b in range(4):
            ref[i, b] = sum(math.exp(-float((m[i, b] - m[j, b]).abs().sum())) for j in range(5))
    torch.testing.assert_close(mbd(f), ref)
    # n identical samples: every c_b = exp(0) = 1, so o = n
    torch.testing.assert_close(mbd(f[:1].expand(7, 6)), torch.full((7, 4), 7.0))


def test_minibatch_critic_sees_the_batch_and_keeps_the_contract():
    torch.manual_seed(0)
    base = build_net("mlp", in_shape=(2,), out_shape=(1,), hidden=8, depth=2)
    d = MinibatchCritic(base, in_shape=(2,), kernels=3, kernel_dim=2)
    x = torch.randn(6, 2)
    h = d.features(x)
    assert h.shape == (6, 8 + 3)
    torch.testing.assert_close(d(x), d.head(h))
    # the head on [h, o] is the next linear layer on the concatenation
    lin = base.net[-2]
    w = torch.cat([lin.weight, d.extra.weight], dim=1)
    torch.testing.assert_close(d(x), h @ w.T + lin.bias)
    # a sample's score depends on the others in its batch (a plain critic's does not)
    y = x.clone()
    y[1:] = torch.randn(5, 2)
    assert not torch.allclose(d(x)[0], d(y)[0])
    torch.testing.assert_close(base(x)[0], base(y)[0])


# ---------------------------------------------------------------- feature matching
def test_feature_matching_loss_formula_and_minimum():
    a, b = torch.randn(40, 5), torch.randn(30, 5) + 1
    torch.testing.assert_close(feature_matching_loss(a, b), ((a.mean(0) - b.mean(0)) ** 2).sum())
    c = b - b.mean(0) + a.mean(0)  # same mean, different samples: no loss
    torch.testing.assert_close(feature_matching_loss(a, c), torch.zeros(()), atol=1e-6, rtol=0)


def test_game_feature_matching_is_the_generator_loss(tiny_cfg):
    game = _game(tiny_cfg, feature_matching=True)
    g_phase = game.phases()[1]
    assert g_phase.needs_batch  # feature matching compares with real features
    batch = _batch(game)
    torch.manual_seed(3)
    loss, _ = game.g_loss(batch)
    torch.manual_seed(3)
    fake = game.nets["g"](game.noise(64, game.z_dim))
    d = game.nets["d"]
    ref = ((d.features(batch["x"]).mean(0) - d.features(fake).mean(0)) ** 2).sum()
    torch.testing.assert_close(loss, ref)


# ---------------------------------------------------------------- virtual batch norm
def _vbn_net(dims: int, channels: int = 3) -> nn.Module:
    return attach_reference(nn.Sequential(VirtualBatchNorm(channels, dims)))


@pytest.mark.parametrize("dims", [1, 2])
def test_vbn_formula(dims):
    torch.manual_seed(0)
    net = _vbn_net(dims)
    layer = net[0]
    with torch.no_grad():
        layer.weight.uniform_(0.5, 2)
        layer.bias.normal_()
    shape = (10, 3) if dims == 1 else (10, 3, 4, 4)
    ref = torch.randn(*shape) * 2 + 1
    x = torch.randn(*((4,) + shape[1:]))
    set_reference(net, ref)
    out = net(x)
    pos = (2, 3) if dims == 2 else ()
    r = ref.shape[0]
    mu_ref, sq_ref = ref.mean(dim=(0, *pos)), ref.pow(2).mean(dim=(0, *pos))
    for i in range(4):
        xi = x[i]
        own = xi.mean(dim=(1, 2)) if dims == 2 else xi
        own_sq = xi.pow(2).mean(dim=(1, 2)) if dims == 2 else xi.pow(2)
        mu = (r * mu_ref + own) / (r + 1)
        var = (r * sq_ref + own_sq) / (r + 1) - mu ** 2
        if dims == 2:
            mu, var = mu[:, None, None], var[:, None, None]
            w, b = layer.weight[:, None, None], layer.bias[:, None, None]
        else:
            w, b = layer.weight, layer.bias
        torch.testing.assert_close(out[i], w * (xi - mu) / torch.sqrt(var + layer.eps) + b)


def _small(net_name: str, role: str, **kw) -> tuple[nn.Module, tuple]:
    """A small mlp or dcgan generator (z (4,) -> x) or critic (x -> (1,)), and the data shape."""
    if net_name not in NETS:
        pytest.skip(f"net {net_name} not registered")
    torch.manual_seed(0)
    shape = (2,) if net_name == "mlp" else (1, 28, 28)
    params = {"hidden": 32, "depth": 2} if net_name == "mlp" else {"base": 8, "max_channels": 16}
    io = {"in_shape": (4,), "out_shape": shape} if role == "g" else {"in_shape": shape, "out_shape": (1,)}
    return build_net(net_name, **io, **params, **kw), shape


@pytest.mark.parametrize("net_name", ["mlp", "dcgan"])
def test_vbn_generator_output_does_not_depend_on_the_batch(net_name):
    g, _ = _small(net_name, "g", norm="vbn")
    set_reference(g, torch.randn(16, 4))
    z = torch.randn(5, 4)
    z2 = torch.cat([z[:1], torch.randn(7, 4) * 3])
    torch.testing.assert_close(g(z)[0], g(z2)[0])
    gb, _ = _small(net_name, "g", norm="batch")
    assert not torch.allclose(gb(z)[0], gb(z2)[0])  # plain batch norm: it does
    # gradients reach every parameter, the reference pass included
    g(z).sum().backward()
    assert all(p.grad is not None for p in g.parameters())


def test_vbn_reference_is_fixed_and_saved(tiny_cfg):
    cfg = copy.deepcopy(tiny_cfg)
    cfg["nets"]["g"]["norm"] = "vbn"
    game = _game(cfg, vbn_reference=32)
    g = game.nets["g"]
    ref = reference_of(g).x.clone()
    assert ref.shape == (32, game.z_dim)
    g(torch.randn(8, game.z_dim))  # a forward does not replace the reference batch
    torch.testing.assert_close(reference_of(g).x, ref)
    game2 = _game(cfg, vbn_reference=32)
    torch.testing.assert_close(reference_of(game2.nets["g"]).x, ref)  # seeded: the same every build
    g3 = build_net("mlp", in_shape=(game.z_dim,), out_shape=(2,), hidden=16, depth=2, norm="vbn")
    g3.load_state_dict(g.state_dict())
    z = torch.randn(6, game.z_dim)
    torch.testing.assert_close(g3(z), g(z))


def test_vbn_is_a_norm_name():
    assert "vbn" in NORMS
    assert isinstance(norm_layer("vbn", 4, 2), VirtualBatchNorm)
    with pytest.raises(ConfigError, match="vbn"):
        norm_layer("vbm", 4)


# ---------------------------------------------------------------- unrolled GAN
def _tiny_pair(dtype=torch.float64):
    torch.manual_seed(0)
    g = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 2)).to(dtype)

    class D(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))

        def forward(self, x, c=None):
            return self.net(x)

    return g, D().to(dtype)


def test_unroll_matches_torch_optimizers():
    obj = OBJECTIVES.build("ns")
    g, d = _tiny_pair()
    real, z = torch.randn(32, 2, dtype=torch.float64), torch.randn(32, 2, dtype=torch.float64)
    fake = g(z).detach()
    probe = torch.randn(5, 2, dtype=torch.float64)
    # eps: Adam's sqrt(v) + eps vs our sqrt(v + eps^2) agree to rounding when eps is negligible
    for name, opt_cls, kw in (("sgd", torch.optim.SGD, {}), ("adam", torch.optim.Adam, {"betas": (0.5, 0.999),
                                                                                         "eps": 0.0})):
        for k in (0, 1, 3):
            unrolled = unroll(d, lambda dd: obj.d_loss(real=dd(real), fake=dd(fake)), steps=k, lr=0.05,
                              optimizer=name, eps=1e-30)
            ref = copy.deepcopy(d)
            opt = opt_cls(ref.parameters(), lr=0.05, **kw)
            for _ in range(k):
                opt.zero_grad()
                obj.d_loss(real=ref(real), fake=ref(fake)).backward()
                opt.step()
            torch.testing.assert_close(unrolled(probe), ref(probe), rtol=1e-6, atol=1e-7)


def test_unrolled_generator_gradient_goes_through_the_unrolling():
    """dL_G/dtheta_G by autograd equals finite differences of L_G(theta_G, theta_D^k(theta_G))."""
    obj = OBJECTIVES.build("ns")
    g, d = _tiny_pair()
    real, z = torch.randn(32, 2, dtype=torch.float64), torch.randn(32, 2, dtype=torch.float64)
    d_before = copy.deepcopy(d.state_dict())

    def g_loss(stop_through_unroll: bool = False) -> torch.Tensor:
        fake = g(z)
        f_unroll = fake.detach() if stop_through_unroll else fake
        dk = unroll(d, lambda dd: obj.d_loss(real=dd(real), fake=dd(f_unroll)), steps=3, lr=0.5, optimizer="sgd")
        return obj.g_loss(fake=dk(fake))

    w = g[0].weight
    (grad,) = torch.autograd.grad(g_loss(), w)
    num = torch.zeros_like(w)
    eps = 1e-6
    for idx in [(0, 0), (3, 1), (7, 0)]:  # g_loss needs autograd (the unrolling differentiates D's loss)
        with torch.no_grad():
            w[idx] += eps
        up = float(g_loss().detach())
        with torch.no_grad():
            w[idx] -= 2 * eps
        down = float(g_loss().detach())
        with torch.no_grad():
            w[idx] += eps
        num[idx] = (up - down) / (2 * eps)
    for idx in [(0, 0), (3, 1), (7, 0)]:
        torch.testing.assert_close(grad[idx], num[idx], rtol=1e-5, atol=1e-9)
    (grad_stop,) = torch.autograd.grad(g_loss(stop_through_unroll=True), w)
    assert not torch.allclose(grad, grad_stop)  # the second-order term is really there
    for k, v in d.state_dict().items():  # the real critic never moved
        torch.testing.assert_close(v, d_before[k], rtol=0, atol=0)


def test_game_unrolled_changes_only_the_g_phase(tiny_cfg):
    cfg = copy.deepcopy(tiny_cfg)
    cfg["nets"]["d"]["spectral_norm"] = True
    plain, unrolled = _game(cfg), _game(cfg, unrolled_steps=5, unrolled_lr=1e-2)
    unrolled.load_state_dict(plain.state_dict())
    batch = _batch(plain)
    for fn in ("d_loss",):
        torch.manual_seed(1)
        a, _ = getattr(plain, fn)(batch)
        torch.manual_seed(1)
        b, _ = getattr(unrolled, fn)(batch)
        torch.testing.assert_close(a, b)
    assert unrolled.phases()[1].needs_batch
    before = copy.deepcopy(unrolled.nets["d"].state_dict())
    torch.manual_seed(1)
    loss_u, _ = unrolled.g_loss(batch)
    torch.manual_seed(1)
    loss_p, _ = plain.g_loss(batch)
    assert torch.isfinite(loss_u) and not torch.allclose(loss_u, loss_p)
    loss_u.backward()
    assert all(p.grad is not None for p in unrolled.nets["g"].parameters())
    for k, v in unrolled.nets["d"].state_dict().items():  # weights, spectral-norm vectors: untouched
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)


# ---------------------------------------------------------------- spectral normalisation
@pytest.mark.parametrize("net_name", ["mlp", "dcgan"])
def test_spectral_norm_top_singular_value_is_one(net_name):
    d, shape = _small(net_name, "d", spectral_norm=True)
    layers = [m for m in d.modules() if hasattr(m, "parametrizations")]
    assert len(layers) >= 3
    with torch.no_grad():
        for m in layers:  # raw weights with sigma = 5, far from 1
            w = m.parametrizations.weight.original
            w.mul_(5.0 / torch.linalg.svdvals(w.reshape(w.shape[0], -1))[0])
        for _ in range(60):  # each training-mode call runs one power iteration
            d(torch.randn(4, *shape))
    d.eval()
    for m in layers:
        raw = torch.linalg.svdvals(m.parametrizations.weight.original.reshape(m.weight.shape[0], -1))[0]
        sigma = torch.linalg.svdvals(m.weight.reshape(m.weight.shape[0], -1))[0]
        torch.testing.assert_close(raw, torch.tensor(5.0))
        torch.testing.assert_close(sigma, torch.tensor(1.0), atol=2e-3, rtol=0)


# ---------------------------------------------------------------- instance noise
def test_instance_noise_schedules():
    assert instance_noise_sigma(50, 0.4) == 0.4
    torch.testing.assert_close(instance_noise_sigma(25, 0.4, 100, "linear"), 0.3)
    assert instance_noise_sigma(100, 0.4, 100, "linear") == 0.0
    assert instance_noise_sigma(150, 0.4, 100, "linear") == 0.0
    torch.testing.assert_close(instance_noise_sigma(100, 0.4, 50, "exp"), 0.4 * math.exp(-2))
    with pytest.raises(ConfigError, match="linear, exp"):
        instance_noise_sigma(0, 0.1, 10, "cosine")
    x = torch.zeros(20000, 2)
    torch.testing.assert_close(add_instance_noise(x, 0.3).std(), torch.tensor(0.3), atol=0.01, rtol=0)
    assert add_instance_noise(x, 0.0) is x


def test_instance_noise_reaches_both_critic_inputs(tiny_cfg):
    game = _game(tiny_cfg, instance_noise=0.5, instance_noise_anneal=100)
    seen = []
    game.nets["d"].register_forward_pre_hook(lambda m, a: seen.append(a[0].detach().clone()))
    batch = _batch(game, n=512)
    torch.manual_seed(0)
    game.step = 50
    game.d_loss(batch)
    real_in, fake_in = seen
    torch.testing.assert_close((real_in - batch["x"]).std(), torch.tensor(0.25), atol=0.02, rtol=0)
    torch.manual_seed(0)
    clean = game.nets["g"](game.noise(512, game.z_dim))
    torch.testing.assert_close((fake_in - clean).std(), torch.tensor(0.25), atol=0.02, rtol=0)
    seen.clear()
    game.g_loss(batch)
    assert not torch.equal(seen[0], game.nets["g"](game.noise(512, game.z_dim)))
    seen.clear()
    game.step = 100  # annealed to zero: the critic sees the data itself
    game.d_loss(batch)
    torch.testing.assert_close(seen[0], batch["x"], rtol=0, atol=0)


def test_trainer_tells_the_game_the_step(tiny_cfg, tmp_path):
    from ganforge.api import train

    cfg = copy.deepcopy(tiny_cfg)
    cfg["game"].update(instance_noise=0.3, instance_noise_anneal=4)
    cfg["train"]["steps"] = 5
    train(cfg, out=tmp_path / "run")
    recs = [json.loads(ln) for ln in (tmp_path / "run" / "losses.jsonl").read_text().splitlines()]
    got = [r["noise_sigma"] for r in recs]
    torch.testing.assert_close(torch.tensor(got), torch.tensor([0.3, 0.225, 0.15, 0.075, 0.0]))


# ---------------------------------------------------------------- EMA of G
def test_ema_update_formula():
    torch.manual_seed(0)
    nets = nn.ModuleDict({"g": nn.Linear(3, 2)})
    ema = EMA(nets, ("g",), decay=0.9)
    s0 = [p.clone() for p in ema.shadow["g"].parameters()]
    with torch.no_grad():
        for p in nets["g"].parameters():
            p.add_(1.0)
    ema.update(nets, ("g",))
    for ps, p0, p in zip(ema.shadow["g"].parameters(), s0, nets["g"].parameters(), strict=True):
        torch.testing.assert_close(ps, 0.9 * p0 + 0.1 * p)


def test_samples_and_evaluation_use_the_ema_weights(tiny_cfg, tmp_path):
    from ganforge.api import load_game
    from ganforge.api import sample as api_sample
    from ganforge.training import hooks
    from ganforge.training.trainer import Trainer

    cfg = copy.deepcopy(tiny_cfg)
    cfg["train"].update(ema=0.5, steps=4)
    cfg["optim"]["g"]["lr"] = 1e-2
    seen = []

    class Spy(hooks.Hook):
        def on_eval(self, trainer, record, samples):
            seen.append(samples.clone())

    hooks.HOOK_FACTORIES.append(lambda t: Spy())
    try:
        from ganforge.config import resolve

        tr = Trainer(resolve(cfg), tmp_path / "run", quiet=True)
        tr.fit()
    finally:
        hooks.HOOK_FACTORIES.pop()
    shadow, live = tr.ema.shadow["g"], tr.game.nets["g"]
    assert not all(torch.equal(a, b) for a, b in zip(shadow.parameters(), live.parameters(), strict=True))
    ec = tr.cfg.eval
    z = tr.game.noise(ec.n, tr.game.z_dim, generator=torch.Generator().manual_seed(ec.seed))
    with torch.no_grad():
        shadow.eval()
        torch.testing.assert_close(seen[-1], shadow(z))  # the evaluation sampled the EMA generator
        live.eval()
        assert not torch.allclose(seen[-1], live(z))
    game, _, _ = load_game(tmp_path / "run")
    for a, b in zip(game.nets["g"].parameters(), shadow.parameters(), strict=True):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(api_sample(tmp_path / "run", n=10, seed=3),
                               game.sample(10, generator=torch.Generator().manual_seed(3)))


# ---------------------------------------------------------------- DiffAugment
def test_translation_is_an_integer_shift_with_zero_fill():
    x = torch.zeros(40, 1, 16, 16)
    x[:, 0, 8, 5] = 1.0
    x[:, 0, 3, 12] = 2.0
    out = translation(x, torch.Generator().manual_seed(0))
    shifts = set()
    for i in range(40):
        match = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                 if torch.equal(out[i], _shift(x[i], dy, dx))]
        assert match, f"sample {i} is not a shift by at most 2 pixels"
        shifts.add(match[0])
    assert len(shifts) > 5  # random per sample


def _shift(img: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    out = torch.zeros_like(img)
    h, w = img.shape[-2:]
    out[..., max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        img[..., max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


def test_cutout_zeros_one_half_size_square_and_passes_gradients():
    x = torch.rand(30, 3, 12, 12, requires_grad=True)
    out = cutout(x, torch.Generator().manual_seed(1))
    out.sum().backward()
    for i in range(30):
        mask = x.grad[i, 0] == 0
        rows, cols = mask.any(1).nonzero().ravel(), mask.any(0).nonzero().ravel()
        assert mask.sum() == 36 and len(rows) == 6 and len(cols) == 6
        assert (rows.diff() == 1).all() and (cols.diff() == 1).all()
        torch.testing.assert_close(out[i], x[i] * (~mask).float())


def test_color_is_a_per_sample_affine_map_on_grayscale():
    x = torch.rand(20, 1, 8, 8) * 2 - 1
    out = color(x, torch.Generator().manual_seed(2))
    for i in range(20):
        a = torch.stack([x[i].ravel(), torch.ones(64)], 1)
        sol = torch.linalg.lstsq(a, out[i].ravel()[:, None]).solution.ravel()
        torch.testing.assert_close(a @ sol, out[i].ravel(), atol=1e-5, rtol=0)
        assert 0.5 - 1e-5 <= float(sol[0]) <= 1.5 + 1e-5  # contrast factor


def test_diff_augment_is_differentiable_and_validated():
    fake = torch.randn(8, 3, 16, 16, requires_grad=True)
    out = diff_augment(fake, "translation,cutout,color")
    out.square().sum().backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0
    with pytest.raises(ConfigError, match="Valid: a comma-separated list of color, translation, cutout"):
        diff_augment(fake, "translation,flip")


def test_game_augments_real_and_fake_in_both_phases():
    from ganforge.data.base import Dataset

    torch.manual_seed(0)
    data = Dataset("tiny-images", torch.randint(0, 256, (64, 1, 8, 8), dtype=torch.uint8))
    game = GAN(z_dim=4, augment="cutout")
    game.build(data, {"g": {"name": "mlp", "hidden": 8, "depth": 1}, "d": {"name": "mlp", "hidden": 8, "depth": 1}},
               OBJECTIVES.build("ns"), [])
    seen = []
    game.nets["d"].register_forward_pre_hook(lambda m, a: seen.append(a[0].detach().clone()))
    x = data.to_model(data.x[:16])
    game.d_loss({"x": x})
    game.g_loss({"x": x})
    assert len(seen) == 3  # real and fake in the critic's phase, fake in the generator's
    for inp in seen:  # every critic input lost one 4 x 4 square (cutout, ratio 1/2)
        assert ((inp == 0).flatten(1).sum(1) == 16).all()
    torch.testing.assert_close(seen[0][seen[0] != 0], x[seen[0] != 0])
    game.zero_grad()
    loss, _ = game.g_loss({"x": x})
    loss.backward()  # G learns through the augmentation
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in game.nets["g"].parameters())


def test_game_augments_rejects_vectors(tiny_cfg):
    with pytest.raises(ConfigError, match="augment works on images"):
        _game(tiny_cfg, augment="cutout")
    with pytest.raises(ConfigError, match="unknown augmentation 'rotate'"):
        GAN(augment="rotate")


# ---------------------------------------------------------------- config and whole runs
@pytest.mark.parametrize("kw, msg", [
    ({"unrolled_steps": -1}, "unrolled_steps must be >= 0"),
    ({"unrolled_optimizer": "rmsprop"}, "adam, sgd"),
    ({"minibatch_disc": -2}, "minibatch_disc"),
    ({"instance_noise": -0.1}, "instance_noise"),
    ({"instance_noise_schedule": "cos"}, "linear, exp"),
    ({"vbn_reference": 1}, "vbn_reference"),
])
def test_bad_stabiliser_options(kw, msg):
    with pytest.raises(ConfigError, match=msg):
        GAN(**kw)


@pytest.mark.parametrize("game, nets", [
    ({"feature_matching": True}, {}),
    ({"minibatch_disc": 4, "feature_matching": True}, {}),
    ({"unrolled_steps": 2}, {"d": {"spectral_norm": True}}),
    ({"instance_noise": 0.1, "instance_noise_anneal": 3, "instance_noise_schedule": "exp"}, {}),
    ({}, {"g": {"norm": "vbn"}}),
])
def test_training_runs_with_stabilisers(tiny_cfg, tmp_path, game, nets):
    from ganforge.api import train

    cfg = copy.deepcopy(tiny_cfg)
    cfg["game"].update(game)
    for role, extra in nets.items():
        cfg["nets"][role].update(extra)
    cfg["train"]["ema"] = 0.9
    run = train(cfg, out=tmp_path / "run")
    recs = [json.loads(ln) for ln in (run.run_dir / "losses.jsonl").read_text().splitlines()]
    assert len(recs) == cfg["train"]["steps"]
    assert all(math.isfinite(r["d_loss"]) and math.isfinite(r["g_loss"]) for r in recs)
    from ganforge.api import sample

    assert torch.isfinite(sample(run.run_dir, n=50)).all()
