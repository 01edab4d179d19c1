"""The equalised-learning-rate layers (Karras et al. 2018, Sec. 4.1) in nets.common, shared by the stylegan
and progressive nets: run-time scaling against its formula, and the property the trick exists for."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ganforge.nets import build_net, common, progressive, stylegan
from ganforge.nets.common import EqualConv2d, EqualLinear, lrelu_gain


def test_linear_formula_with_gain_lr_mul_bias_init_and_act() -> None:
    """y = x (W_stored gain lr_mul / sqrt(fan_in))^T + b_stored lr_mul; at init the effective weight is
    N(0, gain^2 / fan_in) and the effective bias is bias_init, whatever lr_mul."""
    torch.manual_seed(0)
    lin = EqualLinear(400, 300, gain=math.sqrt(2), bias_init=1.0, lr_mul=0.01)
    assert lin.scale == pytest.approx(math.sqrt(2) * 0.01 / 20.0, rel=1e-12)
    x = torch.randn(5, 400)
    torch.testing.assert_close(lin(x), F.linear(x, lin.weight * lin.scale, lin.bias * 0.01))
    eff = (lin.weight * lin.scale).detach()
    assert 0.97 < float(eff.std() * 20 / math.sqrt(2)) < 1.03
    torch.testing.assert_close((lin.bias * lin.lr_mul).detach(), torch.ones(300))
    act = EqualLinear(400, 300, act=True)
    torch.testing.assert_close(act(x), F.leaky_relu(F.linear(x, act.weight / 20.0, act.bias), 0.2) * math.sqrt(2))
    assert EqualLinear(4, 3, bias=False).bias is None


def test_conv_formula_padding_and_act() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 3, 6, 6)
    conv = EqualConv2d(3, 4, 3, gain=2.0)
    torch.testing.assert_close(conv(x), F.conv2d(x, conv.weight * 2.0 / math.sqrt(27), conv.bias, padding=1))
    valid = EqualConv2d(3, 4, 4, padding=0, act=True)
    want = lrelu_gain(F.conv2d(x, valid.weight / math.sqrt(48), valid.bias))
    torch.testing.assert_close(valid(x), want)
    assert want.shape == (2, 4, 3, 3)
    torch.testing.assert_close(lrelu_gain(torch.tensor([-1.0, 2.0])), torch.tensor([-0.2, 2.0]) * math.sqrt(2))


def test_adam_moves_every_layer_at_the_same_relative_rate() -> None:
    """The point of the trick: Adam's first step changes each stored weight by ~lr, so the effective weight
    changes by lr * scale, the same fraction (lr) of its init scale for a fan-in of 8 or of 2048."""
    torch.manual_seed(0)
    ratios = []
    for fan_in in (8, 2048):
        lin = EqualLinear(fan_in, 64)
        before = (lin.weight * lin.scale).detach().clone()
        opt = torch.optim.Adam(lin.parameters(), lr=1e-3, eps=1e-12)
        lin(torch.randn(16, fan_in)).square().sum().backward()
        opt.step()
        step = ((lin.weight * lin.scale).detach() - before).abs().mean()
        ratios.append(float(step / lin.scale))
    assert ratios == pytest.approx([1e-3, 1e-3], rel=1e-3)


def test_stylegan_and_progressive_share_one_implementation() -> None:
    for mod in (stylegan, progressive):
        assert not [n for n in vars(mod) if n.startswith("Equal") and getattr(mod, n).__module__ == mod.__name__]
    g = build_net("stylegan", in_shape=(8,), out_shape=(1, 16, 16), base=4, max_channels=8, w_dim=8,
                  mapping_layers=2)
    d = build_net("progressive", in_shape=(1, 16, 16), out_shape=(1,), base=4, max_channels=8)
    for net in (g, d):
        kinds = {type(m) for m in net.modules() if type(m).__name__.startswith("Equal")}
        assert kinds and kinds <= {common.EqualLinear, common.EqualConv2d}
    assert g.mapping_net[0].lr_mul == 0.01 and g.mapping_net[0].act
