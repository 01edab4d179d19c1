"""StyleGAN2 nets: modulation/demodulation (eq. 1-3), truncation, style mixing, path length, sizes, resume."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from conftest import assert_same_state

from ganforge.errors import ConfigError
from ganforge.nets import build_net
from ganforge.nets.stylegan import ModulatedConv2d, minibatch_stddev, style_mixing_figure
from ganforge.penalties import PathLength


def _g(res: int = 16, channels: int = 1, **kw):
    kw = {"base": 4, "max_channels": 8, "w_dim": 8, "mapping_layers": 2, **kw}
    return build_net("stylegan", in_shape=(6,), out_shape=(channels, res, res), **kw)


def _randomise(g: torch.nn.Module, seed: int = 0) -> None:
    """Non-zero noise strengths and biases (they start at 0) so that every input matters."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in g.named_parameters():
            if name.endswith("noise_strength") or (name.endswith("bias") and "affine" not in name):
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)


# ------------------------------------------------------------------ modulated convolution (eq. 1-3)
def test_demodulated_weight_has_unit_l2_norm_per_output_channel() -> None:
    torch.manual_seed(0)
    conv = ModulatedConv2d(5, 7, 3, 4)
    s = torch.randn(3, 5).exp() * 3  # styles far from 1
    w = conv.modulated_weight(s)  # (N, Cout, Cin, k, k)
    torch.testing.assert_close(w.square().sum(dim=(2, 3, 4)), torch.ones(3, 7), rtol=1e-5, atol=1e-5)
    undemod = ModulatedConv2d(5, 7, 3, 4, demodulate=False)
    undemod.weight = conv.weight
    torch.testing.assert_close(undemod.modulated_weight(s), conv.weight[None] * conv.scale * s[:, None, :, None, None])


def test_forward_equals_the_grouped_convolution_with_the_modulated_weight() -> None:
    torch.manual_seed(1)
    conv = ModulatedConv2d(4, 6, 3, 5)
    x, w = torch.randn(3, 4, 8, 8), torch.randn(3, 5)
    weight = conv.modulated_weight(conv.affine(w))  # (3, 6, 4, 3, 3)
    grouped = torch.nn.functional.conv2d(x.reshape(1, 12, 8, 8), weight.reshape(18, 4, 3, 3), padding=1, groups=3)
    torch.testing.assert_close(conv(x, w), grouped.reshape(3, 6, 8, 8), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_modulation_demodulation_keeps_unit_output_variance_for_unit_input(seed: int) -> None:
    """StyleGAN2 Sec. 2.2: with i.i.d. unit-variance inputs, demodulated outputs have unit variance, whatever the
    weights and styles; without demodulation the styles scale it."""
    torch.manual_seed(seed)
    conv = ModulatedConv2d(64, 16, 3, 8)
    with torch.no_grad():
        conv.weight.mul_(torch.rand(16, 1, 1, 1) * 4)  # output channels of very different scales
        conv.affine.bias.copy_(torch.randn(64).abs() * 3)  # styles far from 1
    x, w = torch.randn(64, 64, 12, 12), torch.randn(64, 8)
    with torch.no_grad():
        y = conv(x, w)[:, :, 1:-1, 1:-1]  # interior: zero padding lowers the variance at the border
        var = y.transpose(0, 1).reshape(16, -1).var(dim=1)
        torch.testing.assert_close(var, torch.ones(16), rtol=0, atol=0.15)
        conv.demodulate = False
        raw = conv(x, w)[:, :, 1:-1, 1:-1].transpose(0, 1).reshape(16, -1).var(dim=1)
    assert (raw - 1).abs().max() > 1.0


# ------------------------------------------------------------------ truncation and w_avg
def test_w_avg_is_an_ema_of_w_in_training_mode_only() -> None:
    torch.manual_seed(0)
    g = _g(mixing=0.0, w_avg_beta=0.9)
    z = torch.randn(5, 6)
    g(z)
    torch.testing.assert_close(g.w_avg, 0.1 * g.mapping(z).detach().mean(0))
    before = g.w_avg.clone()
    g.eval()(torch.randn(5, 6))
    assert torch.equal(g.w_avg, before)


def test_truncation_psi_0_gives_the_image_of_w_avg_for_every_z() -> None:
    torch.manual_seed(0)
    g = _g()
    _randomise(g)
    for _ in range(3):
        g(torch.randn(8, 6))  # training forwards move w_avg off 0
    g.eval()
    g.truncation = 0.0
    x = g(torch.randn(5, 6))
    mean_image = g.synthesis(g.broadcast(g.w_avg[None]), "const")
    torch.testing.assert_close(x, mean_image.expand_as(x), rtol=0, atol=1e-5)
    g.truncation = 1.0
    assert (g(torch.randn(5, 6)) - mean_image).abs().amax(dim=(1, 2, 3)).min() > 1e-3


def test_truncation_psi_1_leaves_samples_unchanged_and_psi_interpolates_in_w() -> None:
    torch.manual_seed(0)
    g = _g()
    _randomise(g)
    g(torch.randn(8, 6))
    g.eval()
    z = torch.randn(4, 6)
    plain = g(z)
    g.truncation = 1.0
    assert torch.equal(g(z), plain)
    g.truncation = 0.5
    w = g.mapping(z)
    want = g.synthesis(g.broadcast(g.w_avg + 0.5 * (w - g.w_avg)), "const")
    torch.testing.assert_close(g(z), want)
    assert not torch.allclose(g(z), plain)


def test_eval_samples_depend_only_on_z() -> None:
    g = _g().eval()
    z = torch.randn(3, 6)
    assert torch.equal(g(z), g(z))


# ------------------------------------------------------------------ style mixing
def _style_inputs(g) -> tuple[list, list]:
    """Hooks recording every mapping output and the w each style index received (index -> tensor)."""
    maps, seen = [], {}
    g.mapping_net.register_forward_hook(lambda m, i, o: maps.append(o.detach()))
    for j, layer in enumerate(g.layers):
        layer.conv.affine.register_forward_hook(lambda m, i, o, j=j: seen.__setitem__(j, i[0].detach()))
    for b, rgb in enumerate(g.to_rgb):
        rgb.conv.affine.register_forward_hook(lambda m, i, o, k=2 * b + 1: seen.__setitem__(("rgb", k), i[0].detach()))
    return maps, seen


def test_style_mixing_uses_w1_before_the_crossover_and_w2_from_it_on() -> None:
    torch.manual_seed(0)
    g = _g(res=32, mixing=1.0)
    maps, seen = _style_inputs(g)
    cutoffs = set()
    for _ in range(12):
        maps.clear()
        seen.clear()
        g(torch.randn(4, 6))
        assert len(maps) == 2
        w1, w2 = maps
        by_index = {}
        for key, w in seen.items():
            idx = key[1] if isinstance(key, tuple) else key
            assert idx not in by_index or torch.equal(by_index[idx], w)  # a toRGB shares its index
            by_index[idx] = w
        assert sorted(by_index) == list(range(g.num_ws))
        which = [1 if torch.equal(by_index[i], w1) else 2 if torch.equal(by_index[i], w2) else 0
                 for i in range(g.num_ws)]
        cut = which.index(2)
        assert 1 <= cut < g.num_ws and which == [1] * cut + [2] * (g.num_ws - cut)
        cutoffs.add(cut)
    assert len(cutoffs) >= 3  # the crossover is drawn, not fixed


def test_no_mixing_with_probability_0_or_in_eval_mode() -> None:
    g = _g(mixing=0.0)
    maps, seen = _style_inputs(g)
    g(torch.randn(4, 6))
    assert len(maps) == 1 and all(torch.equal(w, maps[0]) for w in seen.values())
    g2 = _g(mixing=1.0).eval()
    maps, _ = _style_inputs(g2)
    g2(torch.randn(4, 6))
    assert len(maps) == 1


def test_style_mixing_figure_takes_the_rows_coarse_styles_and_the_columns_fine_ones() -> None:
    torch.manual_seed(0)
    g = _g(res=32).eval()
    _randomise(g)
    z = torch.randn(5, 6)  # 3 columns (A), 2 rows (B)
    fig = style_mixing_figure(g, z, 3, 2)
    assert fig.shape == (12, 1, 32, 32) and torch.equal(fig[0], torch.full_like(fig[0], -1.0))
    w = g.mapping(z)
    alone = g(z)
    torch.testing.assert_close(fig[1:4], alone[:3])  # top row: A
    torch.testing.assert_close(fig[[4, 8]], alone[3:])  # left column: B
    for r in range(2):
        for k in range(3):
            ws = torch.stack([w[3 + r]] * 2 + [w[k]] * (g.num_ws - 2))[None]
            torch.testing.assert_close(fig[4 * (r + 1) + k + 1], g.synthesis(ws, "const")[0])
    with pytest.raises(ConfigError, match=r"--style-mix takes the layer where A's styles start, 1\.\.7"):
        style_mixing_figure(g, z, 3, 8)


# ------------------------------------------------------------------ path-length regularisation
def _lengths_by_jacobian(g, w: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """||J_w^T y|| per sample from the Jacobian of the (eval-mode) synthesis network at w, built column by column
    with forward-mode derivatives (J e_d for each basis vector e_d of w's space), not by backpropagation."""
    cols = []
    for e in torch.eye(w.shape[1]):
        _, col = torch.func.jvp(lambda v: g.synthesis(g.broadcast(v), "const"), (w,), (e.expand_as(w),))
        cols.append((col * y).sum(dim=(1, 2, 3)))  # (J e_d)^T y = (J^T y)_d, per sample
    return torch.stack(cols, dim=1).norm(dim=1)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")  # raised inside torch.func.jvp
def test_path_length_penalty_equals_its_formula() -> None:
    g = _g(channels=2).eval()  # eval: fixed noise, so G(w) is a function of w alone
    _randomise(g)
    fake = torch.zeros(6, 2, 16, 16)
    pen = PathLength(every=4, decay=0.01, batch_shrink=2)
    torch.manual_seed(5)
    got = pen(None, real=fake, fake=fake, generator=g, step=8)
    torch.manual_seed(5)  # the penalty's draws, in its order: z, then y
    z = torch.randn(3, 6)
    y = torch.randn(3, 2, 16, 16) / 16.0
    with torch.no_grad():
        w = g.mapping(z)
    lengths = _lengths_by_jacobian(g, w, y)
    a = 0.01 * lengths.mean()  # the running mean starts at 0
    torch.testing.assert_close(g.pl_mean, a, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(got, 4 * (lengths - a).square().mean(), rtol=1e-4, atol=1e-7)
    got.backward()  # differentiable with respect to G's weights (double backprop)
    assert g.layers[0].conv.weight.grad.abs().sum() > 0


def test_path_length_is_lazy_and_scaled_by_k() -> None:
    fake = torch.zeros(4, 1, 16, 16)
    values = {}
    for k in (1, 3):
        torch.manual_seed(0)  # the same G for both k
        g = _g()
        pen = PathLength(every=k, batch_shrink=1)
        torch.manual_seed(7)
        values[k] = pen(None, real=fake, fake=fake, generator=g, step=6)
        for step in (1, 2, 4, 5):
            if step % k:
                skipped = pen(None, real=fake, fake=fake, generator=g, step=step)
                assert float(skipped) == 0.0 and not skipped.requires_grad
    torch.testing.assert_close(values[3], 3 * values[1])


def test_path_length_needs_a_stylegan_generator_and_valid_options() -> None:
    dc = build_net("dcgan", in_shape=(6,), out_shape=(1, 16, 16), base=4)
    fake = torch.zeros(2, 1, 16, 16)
    with pytest.raises(ConfigError, match="path-length.*net 'stylegan'.*DCGANGenerator"):
        PathLength()(None, real=fake, fake=fake, generator=dc, step=0)
    with pytest.raises(ConfigError, match="every must be an int >= 1"):
        PathLength(every=0)


# ------------------------------------------------------------------ sizes, discriminator, errors
@pytest.mark.parametrize("res", [16, 32, 64])
def test_output_sizes_and_style_count(res: int) -> None:
    g = _g(res=res, channels=3)
    assert g(torch.randn(2, 6)).shape == (2, 3, res, res)
    assert g.num_ws == 2 * res.bit_length() - 4  # 2 log2(R) - 2
    d = build_net("stylegan", in_shape=(3, res, res), out_shape=(1,), base=4, max_channels=8)
    assert d(torch.randn(4, 3, res, res)).shape == (4, 1)


def test_bad_sizes_and_options_are_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"square images whose side is a power of two >= 16; got 24x24"):
        _g(res=24)
    with pytest.raises(ConfigError, match=r"mixing .* must be in \[0, 1\], got 1.5"):
        _g(mixing=1.5)
    with pytest.raises(ConfigError, match="upsample must be one of bilinear, nearest"):
        _g(upsample="cubic")


def test_conditional_critic_contract_and_minibatch_stddev() -> None:
    torch.manual_seed(0)
    g = build_net("stylegan", in_shape=(6,), out_shape=(1, 16, 16), n_classes=3, base=4, w_dim=8)
    d = build_net("stylegan", in_shape=(1, 16, 16), out_shape=(2,), n_classes=3, base=4)
    c = torch.tensor([0, 1, 2, 1])
    x = g(torch.randn(4, 6), c)
    torch.testing.assert_close(d(x, c), d.head(d.features(x, c), c))
    assert not torch.allclose(d(x, c), d(x, torch.tensor([2, 2, 0, 0])))
    h = torch.randn(6, 2, 4, 4)
    out = minibatch_stddev(h, 4)  # 6 is not divisible by 4: groups of 3 (samples i, i+2, i+4)
    want = torch.stack([h[j::2].std(0, unbiased=False).mean() for j in range(2)])
    torch.testing.assert_close(out[:, 2, 0, 0], want.repeat(3), rtol=1e-4, atol=1e-6)


# ------------------------------------------------------------------ training, resume, sampling
def _cfg(steps: int):
    from ganforge.config import load_config

    return load_config(None, base={
        "data": {"name": "digits", "resolution": 16, "limit": 64},
        "game": {"name": "gan", "z_dim": 6},
        "objective": {"name": "ns"},
        "nets": {"g": {"name": "stylegan", "base": 4, "max_channels": 8, "w_dim": 8, "mapping_layers": 2},
                 "d": {"name": "stylegan", "base": 4, "max_channels": 8}},
        "penalties": {"r1-lazy": {"weight": 1.0, "every": 4}, "path-length": {"weight": 2.0, "every": 3}},
        "optim": {"g": {"name": "adam", "lr": 2e-3, "betas": [0.0, 0.99]},
                  "d": {"name": "adam", "lr": 2e-3, "betas": [0.0, 0.99]}},
        "train": {"steps": steps, "batch_size": 8, "threads": 1, "device": "cpu", "log_every": 5, "ema": 0.9,
                  "tensorboard": False},
        "eval": {"every": 0, "n": 16, "samples": False},
        "checkpoint": {"every": 15, "keep": 3},
    })


def test_training_resumes_exactly_and_sampling_honours_truncation(tmp_path) -> None:
    from ganforge import api, cli
    from ganforge.training import checkpoint as ckpt
    from ganforge.training.trainer import Trainer

    Trainer(_cfg(30), tmp_path / "whole", quiet=True).fit()
    shutil.copytree(tmp_path / "whole", tmp_path / "cut")  # as if killed after the step-15 checkpoint
    ckpt.checkpoint_path(tmp_path / "cut", 30).unlink()
    Trainer.resume(tmp_path / "cut", quiet=True).fit()
    whole, cut = ckpt.load_latest(tmp_path / "whole")[0], ckpt.load_latest(tmp_path / "cut")[0]
    assert whole["step"] == 30 and float(whole["game"]["nets.g.pl_mean"]) > 0  # path length ran and kept a
    assert_same_state(whole["game"], cut["game"])
    assert_same_state(whole["ema"], cut["ema"])
    assert_same_state(whole["optimizers"], cut["optimizers"])

    plain = api.sample(tmp_path / "whole", 6, seed=3)
    assert torch.equal(api.sample(tmp_path / "whole", 6, seed=3, truncation=1.0), plain)
    mean = api.sample(tmp_path / "whole", 6, seed=3, truncation=0.0)
    torch.testing.assert_close(mean, mean[:1].expand_as(mean), rtol=0, atol=1e-5)
    npy = tmp_path / "half.npy"
    assert cli.main(["sample", str(tmp_path / "whole"), "--n", "6", "--seed", "3", "--truncation", "0.5",
                     "--out", str(npy)]) == 0
    half = torch.from_numpy(np.load(npy))
    assert torch.equal(half, api.sample(tmp_path / "whole", 6, seed=3, truncation=0.5))
    assert not torch.allclose(half, plain) and not torch.allclose(half, mean)
    png = tmp_path / "mix.png"
    assert cli.main(["sample", str(tmp_path / "whole"), "--grid", str(png), "--n", "9", "--style-mix", "2",
                     "--truncation", "0.7"]) == 0
    assert png.stat().st_size > 0


def test_truncation_on_another_net_is_a_clear_error() -> None:
    from ganforge.api import _style_mixing, set_truncation
    from ganforge.config import load_config
    from ganforge.data.base import Dataset
    from ganforge.training.build import build_game

    cfg = load_config(None, base={"data": {"name": "digits", "resolution": 16, "limit": 8},
                                  "game": {"name": "gan", "z_dim": 6},
                                  "nets": {"g": {"name": "dcgan", "base": 4}, "d": {"name": "dcgan", "base": 4}}})
    game = build_game(cfg, Dataset("tiny", x=torch.zeros(8, 1, 16, 16, dtype=torch.uint8)))
    set_truncation(game, cfg, 1.0)  # psi = 1 is plain sampling for every net
    with pytest.raises(ConfigError, match="--truncation needs .* \\(net stylegan\\); this run's generator is net "
                                          "'dcgan'"):
        set_truncation(game, cfg, 0.7)
    with pytest.raises(ConfigError, match="--style-mix needs a style-based generator .* net 'dcgan'"):
        _style_mixing(game, cfg, 9, 0, 2)
