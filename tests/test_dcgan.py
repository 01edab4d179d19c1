"""DCGAN nets: the paper's architecture rules, every resolution, conditioning, the critic contract, a training step."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ganforge.errors import ConfigError
from ganforge.nets import build_net
from ganforge.nets.dcgan import DCGANDiscriminator, DCGANGenerator, plan


def _pair(shape, n_classes=0, base=8, **kw):
    g = build_net("dcgan", in_shape=(16,), out_shape=shape, n_classes=n_classes, base=base, **kw)
    d = build_net("dcgan", in_shape=shape, out_shape=(1,), n_classes=n_classes, base=base, **kw)
    return g, d


@pytest.mark.parametrize("shape,expected", [((1, 28, 28), (7, 7, 2)), ((3, 32, 32), (4, 4, 3)),
                                            ((3, 64, 64), (4, 4, 4)), ((1, 128, 128), (4, 4, 5)),
                                            ((3, 48, 80), (6, 10, 3))])
def test_plan_and_shapes(shape, expected) -> None:
    assert plan(shape) == expected
    g, d = _pair(shape)
    assert isinstance(g, DCGANGenerator) and isinstance(d, DCGANDiscriminator)
    x = g(torch.randn(3, 16))
    assert x.shape == (3, *shape)
    assert x.abs().max() <= 1.0  # tanh output
    assert d(x).shape == (3, 1)
    h0, w0, n = expected
    assert d.features(x).shape == (3, 8 * 2 ** (n - 1) * h0 * w0)


def test_bad_resolution_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"multiples of 4 and >= 16; got 30x30.*--data.resolution=32"):
        build_net("dcgan", in_shape=(3, 30, 30), out_shape=(1,))
    with pytest.raises(ConfigError, match=r"dcgan maps a latent vector.*got in_shape \(16,\) -> out_shape \(2,\)"):
        build_net("dcgan", in_shape=(16,), out_shape=(2,))
    with pytest.raises(ConfigError, match="unknown norm 'bn'. Valid: none, batch"):
        build_net("dcgan", in_shape=(16,), out_shape=(1, 28, 28), norm="bn")
    with pytest.raises(ConfigError, match="conditioning must be one of projection, concat"):
        build_net("dcgan", in_shape=(1, 28, 28), out_shape=(1,), conditioning="add")


def test_architecture_rules() -> None:
    """Radford et al. section 3: no pooling, no hidden FC, strided / transposed convs, BN placement, activations."""
    g, d = _pair((3, 64, 64), base=16)
    for net in (g, d):
        assert not any(isinstance(m, (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d)) for m in net.modules())
    # G: only transposed convolutions, BN + ReLU after each but the last, tanh output.
    layers = list(g.net)
    convs = [m for m in layers if isinstance(m, nn.Module) and isinstance(m, (nn.Conv2d, nn.Linear))]
    assert convs == []
    tconvs = [i for i, m in enumerate(layers) if isinstance(m, nn.ConvTranspose2d)]
    assert len(tconvs) == 5  # the 1x1 -> 4x4 projection and 4 doublings
    for i in tconvs[:-1]:
        assert isinstance(layers[i + 1], nn.BatchNorm2d) and isinstance(layers[i + 2], nn.ReLU)
    assert isinstance(layers[-1], nn.Tanh) and not any(isinstance(m, nn.BatchNorm2d) for m in layers[tconvs[-1]:])
    assert all(layers[i].stride == (2, 2) for i in tconvs[1:])
    # D: stride-2 convolutions, no BN on the input layer, BN on the others, LeakyReLU(0.2); one output Linear.
    body = list(d.body)
    dconvs = [i for i, m in enumerate(body) if isinstance(m, nn.Conv2d)]
    assert len(dconvs) == 4 and all(body[i].stride == (2, 2) for i in dconvs)
    assert not isinstance(body[dconvs[0] + 1], nn.BatchNorm2d)
    assert all(isinstance(body[i + 1], nn.BatchNorm2d) for i in dconvs[1:])
    lrelu = [m for m in body if isinstance(m, nn.LeakyReLU)]
    assert len(lrelu) == 4 and all(m.negative_slope == 0.2 for m in lrelu)
    assert [m for m in d.modules() if isinstance(m, nn.Linear)] == [d.out]
    assert not any(isinstance(m, nn.ReLU) for m in d.modules())


def test_init_is_normal_0_002() -> None:
    torch.manual_seed(0)
    g, d = _pair((3, 64, 64), base=32)
    w = torch.cat([m.weight.flatten() for net in (g, d) for m in net.modules()
                   if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))])
    torch.testing.assert_close(w.std(), torch.tensor(0.02), atol=2e-4, rtol=0)
    torch.testing.assert_close(w.mean(), torch.tensor(0.0), atol=2e-4, rtol=0)
    bn = torch.cat([m.weight for m in g.modules() if isinstance(m, nn.BatchNorm2d)])
    torch.testing.assert_close(bn.mean(), torch.tensor(1.0), atol=0.01, rtol=0)


def test_norm_and_spectral_norm_by_name() -> None:
    g, d = _pair((1, 28, 28), norm="none", spectral_norm=True)
    assert not any(isinstance(m, nn.BatchNorm2d) for net in (g, d) for m in net.modules())
    assert all(hasattr(m, "parametrizations") for m in d.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))
    g, _ = _pair((1, 28, 28), norm="layer")
    assert any(isinstance(m, nn.GroupNorm) for m in g.modules())


@pytest.mark.parametrize("conditioning", ["projection", "concat"])
def test_critic_contract_and_conditioning(conditioning: str) -> None:
    torch.manual_seed(0)
    g, d = _pair((1, 28, 28), n_classes=10, conditioning=conditioning)
    d.eval()
    z, c = torch.randn(6, 16), torch.arange(6)
    x = g(z, c)
    h = d.features(x, c)
    assert h.shape == (6, d.n_features)
    torch.testing.assert_close(d(x, c), d.head(h, c))
    # soft (one-hot float) labels give the same as integer labels
    oh = torch.nn.functional.one_hot(c, 10).float()
    torch.testing.assert_close(g(z, oh), x)
    torch.testing.assert_close(d(x, oh), d(x, c))
    # the label changes both networks' outputs
    assert not torch.allclose(g(z, (c + 1) % 10), x)
    assert not torch.allclose(d(x, (c + 1) % 10), d(x, c))
    if conditioning == "projection":  # Miyato & Koyama: D(x, y) = w.phi(x) + b + <V y, phi(x)>
        v = d.project.weight.T[c]  # (N, F): the class embeddings
        torch.testing.assert_close(d(x, c), d.out(h) + (v * h).sum(1, keepdim=True))
    with pytest.raises(ValueError, match="conditional"):
        d(x)


def test_unconditional_critic_contract_multi_output() -> None:
    d = build_net("dcgan", in_shape=(3, 32, 32), out_shape=(4,), base=8)
    x = torch.randn(5, 3, 32, 32)
    torch.testing.assert_close(d(x), d.head(d.features(x)))
    assert d(x).shape == (5, 4)


def test_one_gan_step_moves_only_its_phase(tmp_path) -> None:
    """One trainer step of a DCGAN game on tiny images: finite losses, D's phase leaves G untouched."""
    from ganforge.config import load_config
    from ganforge.data.base import Dataset
    from ganforge.training.build import build_game, build_optimizers

    cfg = load_config(None, base={
        "data": {"name": "digits", "resolution": 16, "limit": 64},
        "game": {"name": "gan", "z_dim": 8, "conditional": True},
        "nets": {"g": {"name": "dcgan", "base": 8}, "d": {"name": "dcgan", "base": 8}},
        "train": {"batch_size": 16, "threads": 1, "device": "cpu"},
    })
    data = Dataset("tiny", x=torch.randint(0, 256, (32, 1, 16, 16), dtype=torch.uint8),
                   y=torch.arange(32) % 4, n_classes=4)
    game = build_game(cfg, data)
    opts = build_optimizers(cfg, game)
    d_phase, g_phase = game.phases()
    before = {k: v.clone() for k, v in game.nets["g"].state_dict().items()}
    batch = {"x": data.to_model(data.x[:16]), "y": data.y[:16]}
    game.nets["g"].requires_grad_(False)
    loss, logs = d_phase.loss(batch)
    assert torch.isfinite(loss) and "d_loss" in logs
    loss.backward()
    opts["d"].step()
    for k, v in game.nets["g"].state_dict().items():
        if "running" not in k and "num_batches" not in k:  # BN statistics may update in train mode
            assert torch.equal(v, before[k]), k
    game.nets["g"].requires_grad_(True)
    loss, _ = g_phase.loss(batch)
    assert torch.isfinite(loss)


def test_minibatch_stddev_channel() -> None:
    """mbstd_group: the last feature map gets one more channel, the mean std over each group of samples
    (Karras et al. 2018), so in eval mode a sample's score depends on its group-mates and only on them."""
    torch.manual_seed(0)
    d = build_net("dcgan", in_shape=(1, 28, 28), out_shape=(1,), base=8, mbstd_group=2).eval()
    plain = build_net("dcgan", in_shape=(1, 28, 28), out_shape=(1,), base=8).eval()
    assert d.n_features == plain.n_features + 7 * 7  # 16 channels + 1 at 7x7
    x = torch.randn(4, 1, 28, 28)  # groups (strided): samples {0, 2} and {1, 3}
    h = d.features(x).reshape(4, 17, 7, 7)
    body = d.body(x)
    for members in ([0, 2], [1, 3]):
        std = body[members].std(dim=0, unbiased=False).mean()
        torch.testing.assert_close(h[members, 16], torch.full((2, 7, 7), float(std)), rtol=1e-4, atol=1e-5)
    x2 = x.clone()
    x2[2] = torch.randn(1, 28, 28)  # change a group-mate of sample 0, not of samples 1 and 3
    out, out2 = d(x), d(x2)
    assert not torch.allclose(out[0], out2[0])
    torch.testing.assert_close(out[[1, 3]], out2[[1, 3]])
    torch.testing.assert_close(plain(x)[[0, 1, 3]], plain(x2)[[0, 1, 3]])  # without it: per sample
    for bad in (-1, 1.5, True):
        with pytest.raises(ConfigError, match="mbstd_group must be an integer >= 0"):
            build_net("dcgan", in_shape=(1, 28, 28), out_shape=(1,), mbstd_group=bad)
    with pytest.raises(ConfigError, match="discriminator option.*nets.d"):
        build_net("dcgan", in_shape=(16,), out_shape=(1, 28, 28), mbstd_group=4)
