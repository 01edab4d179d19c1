"""Progressive growing (Karras et al. 2018): the schedule, the fade-in, equalized lr, pixel norm, minibatch
stddev, the critic's view at low levels, and an exact resume from the middle of a fade."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from conftest import assert_same_state, read_records

from ganforge.errors import ConfigError
from ganforge.nets import build_net
from ganforge.nets.common import EqualConv2d, EqualLinear
from ganforge.nets.progressive import (
    HE,
    minibatch_stddev,
    pixel_norm,
    schedule,
    widths,
)

P = 5  # phase_steps in the net tests: level l fades in over steps (2l - 1) P .. 2l P - 1


def _pair(res: int, channels: int = 1, phase_steps: int = P, **kw):
    torch.manual_seed(0)
    g = build_net("progressive", in_shape=(8,), out_shape=(channels, res, res), base=4, max_channels=16,
                  phase_steps=phase_steps, **kw)
    d = build_net("progressive", in_shape=(channels, res, res), out_shape=(1,), base=4, max_channels=16,
                  phase_steps=phase_steps, **kw)
    return g, d


def _at(net, level: int, alpha: float):
    """Set ``net``'s schedule to (level, alpha) through set_step, the trainer's path."""
    step = 0 if level == 0 else ((2 * level - 1) * P + round(alpha * P) if alpha < 1 else 2 * level * P)
    net.set_step(step)
    assert net.state() == (level, pytest.approx(alpha))
    return net


def test_schedule_formula_at_boundary_steps() -> None:
    # phase p = step // P: 0 stable level 0; odd p fades level (p+1)/2 in with alpha = (step mod P) / P;
    # even p > 0 stabilises level p/2; from p = 2 * top on the top level stays
    want = {0: (0, 1.0), 9: (0, 1.0), 10: (1, 0.0), 13: (1, 0.3), 19: (1, 0.9), 20: (1, 1.0), 29: (1, 1.0),
            30: (2, 0.0), 39: (2, 0.9), 40: (2, 1.0), 50: (3, 0.0), 55: (3, 0.5), 59: (3, 0.9), 60: (3, 1.0),
            10**6: (3, 1.0)}
    for step, (level, alpha) in want.items():
        got = schedule(step, 10, 3)
        assert got[0] == level and got[1] == pytest.approx(alpha, abs=1e-12), step
    assert schedule(0, 0, 3) == (3, 1.0)  # phase_steps 0: no growing
    g, d = _pair(32)
    for net in (g, d):
        net.set_step(13)  # level 2 fades in over steps 15..19 (P = 5): step 13 is level 1, stable
        assert (int(net.step), net.state()) == (13, (1, 1.0))
        net.set_step(17)
        assert net.state() == (2, pytest.approx(0.4))
        assert {"step", "level", "alpha"} <= set(net.state_dict())  # the schedule rides in checkpoints


@pytest.mark.parametrize("res", [16, 32, 64])
def test_every_level_gives_full_size_images_and_scores(res) -> None:
    g, d = _pair(res, channels=3)
    top = int(math.log2(res)) - 2
    z = torch.randn(6, 8)
    for step in range(0, 2 * top * P + 2, 2):
        g.set_step(step)
        d.set_step(step)
        x = g(z)
        assert x.shape == (6, 3, res, res)
        assert d(x).shape == (6, 1)
        assert d.features(x).shape == (6, widths(top, 4, 16)[0])
        torch.testing.assert_close(d(x), d.head(d.features(x)))
        level, _ = g.state()
        k = 2 ** (top - level)  # at level l the image is made of k x k blocks of equal pixels
        torch.testing.assert_close(x, F.interpolate(x[:, :, ::k, ::k], scale_factor=k, mode="nearest"),
                                   rtol=0, atol=0)


@pytest.mark.parametrize("res", [16, 32, 64])
def test_generator_fade_in_alpha_0_is_the_lower_level_upsampled_and_alpha_1_the_new_level(res) -> None:
    g, _ = _pair(res)
    z = torch.randn(5, 8)
    with torch.no_grad():
        for level in range(1, g.top + 1):
            low = _at(g, level - 1, 1.0)(z)
            assert torch.equal(_at(g, level, 0.0)(z), low)  # exactly: lerp at 0, nearest up2 then up k
            new = _at(g, level, 1.0)(z)
            assert not torch.allclose(new, low)
            mid = _at(g, level, 0.4)(z)
            torch.testing.assert_close(mid, 0.6 * low + 0.4 * new)
            # alpha = 1 is the new level alone: the old toRGB no longer matters
            g.to_rgb[level - 1].weight.add_(1.0)
            assert torch.equal(_at(g, level, 1.0)(z), new)
            assert not torch.equal(_at(g, level, 0.4)(z), mid)


@pytest.mark.parametrize("res", [16, 32])
def test_critic_fade_in_mirrors_the_generator(res) -> None:
    _, d = _pair(res)
    x = torch.randn(8, 1, res, res)
    with torch.no_grad():
        for level in range(1, d.top + 1):
            low = _at(d, level - 1, 1.0)(x)
            assert torch.equal(_at(d, level, 0.0)(x), low)  # repeated 2x2 pooling makes this exact
            new = _at(d, level, 1.0)(x)
            d.from_rgb[level - 1].weight.add_(1.0)
            assert torch.equal(_at(d, level, 1.0)(x), new)  # alpha = 1 ignores the old fromRGB


def test_critic_below_the_top_level_sees_only_the_pooled_image() -> None:
    """At level l < top, D(x) depends on x only through its 2^(top-l)-pooled image: replacing x by that
    image upsampled (same pooled image, no detail above the level's resolution) leaves every score equal."""
    _, d = _pair(32)
    torch.manual_seed(1)
    x = torch.randint(-64, 64, (8, 1, 32, 32)).float() / 64  # dyadic: every pooling is exact in float32
    with torch.no_grad():
        for level in range(d.top):
            k = 2 ** (d.top - level)
            coarse = F.interpolate(F.avg_pool2d(x, k), scale_factor=k, mode="nearest")
            assert torch.equal(_at(d, level, 1.0)(x), d(coarse))
        assert not torch.allclose(_at(d, d.top, 1.0)(x), d(F.interpolate(F.avg_pool2d(x, 2), scale_factor=2)))


def test_equalized_learning_rate_scales_weights_by_he_constant_at_run_time() -> None:
    g, d = _pair(32, channels=3)
    layers = [m for net in (g, d) for m in net.modules() if isinstance(m, (EqualConv2d, EqualLinear))]
    assert len(layers) > 10
    for m in layers:
        fan_in = m.weight[0].numel()
        gain = 1.0 if (m in list(g.to_rgb.modules()) or m is d.out or m is getattr(g, "embed", None)) else HE
        assert m.scale == pytest.approx(gain / math.sqrt(fan_in), rel=1e-12)
    conv = g.blocks[2][0]
    x = torch.randn(2, conv.weight.shape[1], 8, 8)
    torch.testing.assert_close(conv(x), F.conv2d(x, conv.weight * math.sqrt(2 / conv.weight[0].numel()),
                                                 conv.bias, padding=1))
    big = EqualConv2d(64, 64, 3, gain=HE)  # stored weights are N(0, 1), biases 0: the scale lives in forward
    assert 0.97 < float(big.weight.detach().std()) < 1.03 and not big.bias.detach().any()


def test_pixel_norm_gives_unit_mean_square_per_pixel() -> None:
    x = torch.randn(4, 7, 5, 5) * (torch.rand(4, 1, 5, 5) + 0.5) * 10  # per-pixel scales from 5 to 15
    y = pixel_norm(x)
    torch.testing.assert_close(y.pow(2).mean(dim=1), torch.ones(4, 5, 5))
    torch.testing.assert_close(y * x.pow(2).mean(1, keepdim=True).sqrt(), x, rtol=1e-5, atol=1e-5)
    g, _ = _pair(16)
    seen = []
    g.blocks[1][1].register_forward_hook(lambda m, i, o: seen.append(pixel_norm(F.leaky_relu(o, 0.2))))
    z = torch.randn(3, 8)
    _at(g, 2, 1.0)
    with torch.no_grad():
        torch.testing.assert_close(g(z), g(5 * z))  # the latent is normalised too: G(z) = G(c z)
    torch.testing.assert_close(seen[0].pow(2).mean(1), torch.ones(3, 8, 8))


def test_minibatch_stddev_equals_its_formula() -> None:
    torch.manual_seed(2)
    for n, group, g_used in ((8, 4, 4), (6, 4, 3), (5, 4, 1), (3, 8, 3)):
        x = torch.randn(n, 3, 4, 4, dtype=torch.float64)
        y = minibatch_stddev(x, group)
        assert y.shape == (n, 4, 4, 4) and torch.equal(y[:, :3], x)
        m = n // g_used
        for i in range(n):
            members = x[[j for j in range(n) if j % m == i % m]]  # strided groups, as in the paper's code
            std = (members.var(dim=0, unbiased=False) + 1e-8).sqrt().mean()
            torch.testing.assert_close(y[i, 3], std.expand(4, 4))
    # in the critic: one sample's score depends on the rest of its group only through this feature
    _, d = _pair(16)
    _, d0 = _pair(16, mbstd_group=0)
    x = torch.randn(4, 1, 16, 16)
    x2 = x.clone()
    x2[1:] = torch.randn(3, 1, 16, 16)
    with torch.no_grad():
        assert not torch.allclose(d(x)[0], d(x2)[0])
        torch.testing.assert_close(d0(x)[0], d0(x2)[0])


def test_conditional_nets_and_bad_input() -> None:
    g = build_net("progressive", in_shape=(8,), out_shape=(1, 16, 16), n_classes=3, base=4)
    d = build_net("progressive", in_shape=(1, 16, 16), out_shape=(1,), n_classes=3, base=4)
    c = torch.tensor([0, 1, 2, 1])
    x = g(torch.randn(4, 8), c)
    assert x.shape == (4, 1, 16, 16)
    h = d.features(x, c)
    torch.testing.assert_close(d(x, c), d.head(h, c))
    torch.testing.assert_close(d.head(h, c) - d.out(h), (d.project(F.one_hot(c, 3).float()) * h).sum(1, True))
    with pytest.raises(ConfigError, match=r"power of two >= 16; got 28x28.*--data.resolution=32"):
        build_net("progressive", in_shape=(1, 28, 28), out_shape=(1,))
    with pytest.raises(ConfigError, match="phase_steps must be >= 0"):
        build_net("progressive", in_shape=(8,), out_shape=(1, 16, 16), phase_steps=-1)
    with pytest.raises(ConfigError, match=r"progressive maps a latent vector.*got in_shape \(8,\) -> out_shape"):
        build_net("progressive", in_shape=(8,), out_shape=(2,))


def test_drift_penalty_is_the_mean_squared_real_score() -> None:
    from ganforge.penalties import build_penalties

    ((name, weight, pen),) = build_penalties({"drift": 0.001})
    _, d = _pair(16)
    real = torch.randn(8, 1, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(pen(d, real=real, fake=real.flip(0)), d(real).pow(2).mean())
    assert (name, weight) == ("drift", 0.001)


# ------------------------------------------------------------------ training: the trainer's hook, exact resume
RUN = {
    "name": "prog-tiny",
    "data": {"name": "digits", "resolution": 16, "limit": 64},
    "game": {"name": "gan", "z_dim": 8},
    "objective": {"name": "wgan-gp"},
    "penalties": {"drift": 0.001},
    "nets": {r: {"name": "progressive", "base": 4, "max_channels": 8, "phase_steps": 4} for r in ("g", "d")},
    "optim": {r: {"name": "adam", "lr": 1e-3, "betas": [0.0, 0.99]} for r in ("g", "d")},
    "train": {"steps": 14, "batch_size": 16, "threads": 1, "log_every": 1, "device": "cpu", "ema": 0.9},
    "eval": {"every": 0, "n": 64, "samples": False, "metrics": []},
    "checkpoint": {"every": 6, "keep": 10},
}


def test_resume_from_the_middle_of_a_fade_equals_the_unbroken_run(tmp_path) -> None:
    """14 steps at 16 px with 4 steps per phase (level 1 fades in over steps 4-7, level 2 over 12-15): the run
    killed after step 8 resumes from the checkpoint at step 6 (alpha 0.25 of level 1) and ends bit for bit
    where the unbroken run ends."""
    from ganforge.config import load_config
    from ganforge.training import checkpoint as ckpt
    from ganforge.training.trainer import Trainer

    Trainer(load_config(None, base=RUN), tmp_path / "whole", quiet=True).fit()
    cut = Trainer(load_config(None, base=RUN), tmp_path / "cut", quiet=True)
    real = cut._run_phase

    def phase(ph):
        if cut.step == 8:
            raise KeyboardInterrupt  # the in-process stand-in for SIGKILL
        return real(ph)

    cut._run_phase = phase
    with pytest.raises(KeyboardInterrupt):
        cut.fit()
    mid = ckpt.load_latest(tmp_path / "cut")[0]
    assert mid["step"] == 6
    for key in ("nets.g.", "nets.d."):  # the trainer set the schedule of the last trained step (5)
        s = mid["game"]
        assert int(s[key + "step"]) == 5 and int(s[key + "level"]) == 1 and float(s[key + "alpha"]) == 0.25
    assert float(mid["ema"]["shadow.g.alpha"]) == 0.25
    tr = Trainer.resume(tmp_path / "cut", quiet=True)
    tr.fit()
    assert read_records(tmp_path / "whole") == read_records(tmp_path / "cut")
    end = ckpt.load_latest(tmp_path / "whole")[0]
    assert_same_state(end, ckpt.load_latest(tmp_path / "cut")[0])
    assert float(end["game"]["nets.g.alpha"]) == 0.25 and int(end["game"]["nets.g.level"]) == 2  # step 13
    # sampling after training (a deep copy of G, with EMA swapped in) uses the final level and fade
    with tr.sampling_context():
        net = tr.game.sampling_net("g", lambda m, gen: (torch.randn(m, 8, generator=gen),))
    assert net.state() == (2, 0.25)
