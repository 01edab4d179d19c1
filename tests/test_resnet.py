"""ResNet nets (SNGAN): spectral norm sigma ~ 1, class-conditional BN, SAGAN attention against its formula,
the projection critic, every size, and a short conditional run that trains and resumes exactly."""

from __future__ import annotations

import pytest
import torch
from conftest import assert_same_state, read_records
from torch import nn

from ganforge.errors import ConfigError
from ganforge.nets import build_net
from ganforge.nets.resnet import ConditionalBatchNorm2d, ResNetDiscriminator, ResNetGenerator, SelfAttention, plan


def _pair(size=32, n_classes=0, ch=8, channels=1, **kw):
    g = build_net("resnet", in_shape=(16,), out_shape=(channels, size, size), n_classes=n_classes, ch=ch, **kw)
    d = build_net("resnet", in_shape=(channels, size, size), out_shape=(1,), n_classes=n_classes, ch=ch, **kw)
    return g, d


@pytest.mark.parametrize("size", [16, 32, 64])
def test_every_power_of_two_size(size) -> None:
    torch.manual_seed(0)
    g, d = _pair(size, channels=3, attention=8)
    assert isinstance(g, ResNetGenerator) and isinstance(d, ResNetDiscriminator)
    assert plan((3, size, size)) == {16: 2, 32: 3, 64: 4}[size] == len(g.blocks)
    x = g(torch.randn(3, 16))
    assert x.shape == (3, 3, size, size) and x.abs().max() <= 1.0
    assert d(x).shape == (3, 1)
    # G: ch at the full-resolution block, doubling per halving; D: ch at its first block, down to 8x8
    assert [b.conv2.out_channels for b in g.blocks] == [8 * 2 ** i for i in range(len(g.blocks))][::-1]
    assert d.blocks(x).shape[-2:] == (8, 8)
    assert sum(isinstance(m, SelfAttention) for m in g.modules()) == 1
    assert sum(isinstance(m, SelfAttention) for m in d.modules()) == 1


def test_bad_inputs_are_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"power of two >= 16; got 28x28. .*--data.resolution=32"):
        build_net("resnet", in_shape=(1, 28, 28), out_shape=(1,))
    with pytest.raises(ConfigError, match=r"got 28x28"):
        build_net("resnet", in_shape=(16,), out_shape=(1, 28, 28))
    with pytest.raises(ConfigError, match=r"generator attention must be 0 \(none\) or .* one of 8, 16, 32; got 4"):
        build_net("resnet", in_shape=(16,), out_shape=(1, 32, 32), attention=4)
    with pytest.raises(ConfigError, match=r"critic attention .* one of 16, 8; got 32"):
        build_net("resnet", in_shape=(1, 32, 32), out_shape=(1,), attention=32)
    with pytest.raises(ConfigError, match=r"resnet maps a latent vector .* got in_shape \(16,\) -> out_shape \(2,\)"):
        build_net("resnet", in_shape=(16,), out_shape=(2,))
    with pytest.raises(ConfigError, match="net 'resnet' has no parameter 'base'"):
        build_net("resnet", in_shape=(16,), out_shape=(1, 32, 32), base=8)


def _sn_layers(net: nn.Module) -> list[nn.Module]:
    return [m for m in net.modules() if hasattr(m, "parametrizations")]


def test_spectral_norm_gives_top_singular_value_one() -> None:
    """Miyato et al. 2018: W / sigma(W) with sigma from power iteration (one per training forward)."""
    torch.manual_seed(0)
    g, d = _pair(32, n_classes=3, ch=8, attention=16)
    assert _sn_layers(g) == []  # default: SN in the critic only
    layers = _sn_layers(d)
    convs_and_linears = [m for m in d.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert layers == convs_and_linears and len(layers) > 10  # every conv and linear, projection included
    with torch.no_grad():
        for m in layers:  # scale the raw weights: sigma(W) far from 1, the normalised weight unchanged
            m.parametrizations.weight.original.mul_(3.0)
    x, c = torch.randn(4, 1, 32, 32), torch.arange(4) % 3
    for _ in range(30):
        d(x, c)
    for m in layers:
        w = m.weight.detach()
        raw = m.parametrizations.weight.original.detach()
        sigma_raw = torch.linalg.svdvals(raw.reshape(raw.shape[0], -1))[0]
        assert sigma_raw > 1.5
        top = torch.linalg.svdvals(w.reshape(w.shape[0], -1))[0]
        torch.testing.assert_close(top, torch.tensor(1.0), rtol=0, atol=2e-2)
        torch.testing.assert_close(w, raw / sigma_raw, rtol=0, atol=2e-2 * float(w.abs().max()))
    _, plain = _pair(32, spectral_norm=False)
    assert _sn_layers(plain) == []
    g_sn, _ = _pair(32, spectral_norm=True)
    assert len(_sn_layers(g_sn)) == sum(isinstance(m, (nn.Conv2d, nn.Linear)) for m in g_sn.modules())


def test_conditional_batch_norm_formula() -> None:
    """gamma_y * (x - mu_B) / sqrt(var_B + eps) + beta_y; gains start at 1, biases at 0; soft labels mix rows."""
    torch.manual_seed(0)
    cbn = ConditionalBatchNorm2d(3, 4)
    torch.testing.assert_close(cbn.gain, torch.ones(4, 3))
    torch.testing.assert_close(cbn.bias, torch.zeros(4, 3))
    with torch.no_grad():
        cbn.gain.normal_()
        cbn.bias.normal_()
    x, y = torch.randn(6, 3, 2, 2) * 3 + 1, torch.tensor([0, 1, 2, 3, 1, 0])
    oh = torch.nn.functional.one_hot(y, 4).float()
    mu, var = x.mean(dim=(0, 2, 3), keepdim=True), x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
    want = cbn.gain[y][:, :, None, None] * (x - mu) / torch.sqrt(var + 1e-5) + cbn.bias[y][:, :, None, None]
    torch.testing.assert_close(cbn(x, oh), want)
    soft = torch.full((6, 4), 0.25)
    torch.testing.assert_close(cbn(x, soft), cbn.gain.mean(0)[:, None, None] * (x - mu) / torch.sqrt(var + 1e-5)
                               + cbn.bias.mean(0)[:, None, None])


def test_generator_uses_the_labels_gains() -> None:
    """Changing class 3's gain in one block changes exactly the samples labelled 3 (eval mode: no batch mixing)."""
    torch.manual_seed(0)
    g, _ = _pair(16, n_classes=5)
    g.eval()
    z, c = torch.randn(10, 16), torch.arange(10) % 5
    before = g(z, c)
    torch.testing.assert_close(g(z, torch.nn.functional.one_hot(c, 5).float()), before)  # soft == int labels
    with torch.no_grad():
        g.blocks[0].bn2.gain[3] *= 1.5
    after = g(z, c)
    changed = (after - before).flatten(1).abs().amax(1) > 1e-4
    assert changed.tolist() == (c == 3).tolist()
    assert torch.equal(after[c != 3], before[c != 3])
    with pytest.raises(ValueError, match="conditional"):
        g(z)


def test_self_attention_identity_at_zero_gamma_and_its_formula() -> None:
    """SAGAN eqs. 1-3: s_ij = f(x_i)^T g(x_j), beta_ji = exp(s_ij) / sum_i exp(s_ij),
    o_j = v(sum_i beta_ji h(x_i)), y_j = x_j + gamma o_j."""
    torch.manual_seed(0)
    att = SelfAttention(16, sn=False)
    x = torch.randn(2, 16, 3, 4)
    assert float(att.gamma.detach()) == 0.0
    assert torch.equal(att(x), x)
    with torch.no_grad():
        att.gamma.fill_(0.7)

    def conv1x1(m, t):  # (N, C, P) -> (N, C', P)
        return torch.einsum("oc,ncp->nop", m.weight[:, :, 0, 0], t) + m.bias[None, :, None]

    xs = x.flatten(2).double()
    att = att.double()
    f, gg, h = conv1x1(att.f, xs), conv1x1(att.g, xs), conv1x1(att.h, xs)
    p = xs.shape[2]
    want = torch.empty_like(xs)
    for n in range(2):
        for j in range(p):
            s = torch.stack([f[n, :, i] @ gg[n, :, j] for i in range(p)])
            beta = torch.exp(s - s.max()) / torch.exp(s - s.max()).sum()
            o = sum(beta[i] * h[n, :, i] for i in range(p))
            want[n, :, j] = xs[n, :, j] + 0.7 * (att.v.weight[:, :, 0, 0] @ o + att.v.bias)
    torch.testing.assert_close(att(x.double()), want.reshape(x.shape))


def test_projection_critic_contract() -> None:
    """D(x, y) = w^T phi(x) + b + <V y, phi(x)>, phi = ReLU then global sum pooling of the last block."""
    torch.manual_seed(0)
    _, d = _pair(16, n_classes=4, spectral_norm=False)
    x, c = torch.randn(5, 1, 16, 16), torch.tensor([0, 1, 2, 3, 3])
    h = d.features(x, c)
    torch.testing.assert_close(h, torch.relu(d.blocks(x)).sum(dim=(2, 3)))
    torch.testing.assert_close(d(x, c), d.head(h, c))
    torch.testing.assert_close(d(x, c), d.out(h) + (d.project.weight.T[c] * h).sum(1, keepdim=True))
    torch.testing.assert_close(d(x, torch.nn.functional.one_hot(c, 4).float()), d(x, c))
    with pytest.raises(ValueError, match="conditional"):
        d(x)
    d4 = build_net("resnet", in_shape=(3, 16, 16), out_shape=(4,), ch=4).eval()  # eval: no power iteration
    x3 = torch.randn(2, 3, 16, 16)
    torch.testing.assert_close(d4(x3), d4.head(d4.features(x3)))
    assert d4(x3).shape == (2, 4)


def test_residual_blocks_add_their_shortcut() -> None:
    """An up block is F(x) + conv1x1(upsample(x)); zeroing the residual branch's last conv leaves the shortcut."""
    torch.manual_seed(0)
    g, d = _pair(16, spectral_norm=False)
    block = g.blocks[0]
    x = torch.randn(2, block.conv1.in_channels, 4, 4)
    with torch.no_grad():
        block.conv2.weight.zero_()
        block.conv2.bias.zero_()
    up = torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest")
    torch.testing.assert_close(block(x), block.shortcut(up))
    first = d.blocks[0]  # the optimized block: shortcut is avg-pool then conv1x1
    xi = torch.randn(2, 1, 16, 16)
    with torch.no_grad():
        first.conv2.weight.zero_()
        first.conv2.bias.zero_()
    torch.testing.assert_close(first(xi), first.shortcut(torch.nn.functional.avg_pool2d(xi, 2)))


RUN = {
    "name": "resnet-tiny",
    "data": {"name": "digits", "resolution": 16, "limit": 64},
    "game": {"name": "gan", "z_dim": 8, "conditional": True},
    "objective": {"name": "hinge"},
    "penalties": {"r1-lazy": {"weight": 0.1, "every": 4}, "orthogonal": 1.0e-4},
    "nets": {"g": {"name": "resnet", "ch": 4, "attention": 8}, "d": {"name": "resnet", "ch": 4, "attention": 8}},
    "optim": {"g": {"name": "adam", "lr": 2e-4, "betas": [0.0, 0.9]},
              "d": {"name": "adam", "lr": 2e-4, "betas": [0.0, 0.9]}},
    "train": {"steps": 30, "batch_size": 8, "threads": 1, "log_every": 1, "device": "cpu"},
    "eval": {"every": 0, "n": 16, "samples": False},
    "checkpoint": {"every": 15, "keep": 3},
}


def test_conditional_run_trains_and_resumes_exactly(tmp_path) -> None:
    """30 steps of a conditional hinge SNGAN with attention, lazy R1 (k = 4) and orthogonal reg: the critic's
    loss falls and lazy R1 shows up on steps 0, 4, 8, ... only; resumed from its step-15 checkpoint (the run
    killed after it), the run redoes steps 16-30 bit for bit."""
    import shutil

    from ganforge.config import load_config
    from ganforge.training import checkpoint as ckpt
    from ganforge.training.trainer import Trainer

    Trainer(load_config(None, base=RUN), tmp_path / "whole", quiet=True).fit()
    shutil.copytree(tmp_path / "whole", tmp_path / "cut")
    (kept, last) = [p for _, p in ckpt.list_checkpoints(tmp_path / "cut")]
    last.unlink()
    tr = Trainer.resume(tmp_path / "cut", quiet=True)
    assert tr.step == 15 and kept.name.endswith("15.pt")
    tr.fit()
    whole = read_records(tmp_path / "whole")
    assert whole == read_records(tmp_path / "cut")
    assert_same_state(ckpt.load_latest(tmp_path / "whole")[0], ckpt.load_latest(tmp_path / "cut")[0])
    assert len(whole) == 30
    d_loss = [r["d_loss"] for r in whole]
    assert sum(d_loss[-5:]) / 5 < sum(d_loss[:5]) / 5 - 0.5
    assert [r["step"] - 1 for r in whole if r["r1-lazy"] > 0] == list(range(0, 30, 4))
    assert all(r["orthogonal"] > 0 for r in whole)
