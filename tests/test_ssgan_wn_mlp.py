"""The SSGAN recipe's discriminator: weight-normalised MLP with Gaussian noise (Salimans et al. 2016)."""

import pytest
import torch

from ganforge.errors import ConfigError
from ganforge.nets import build_net
from ganforge.nets.wn_mlp import WNLinear


def test_weight_norm_formula_and_scale_invariance() -> None:
    torch.manual_seed(0)
    lin = WNLinear(5, 3, gain=2.0)
    x = torch.randn(4, 5)
    w = lin.v / lin.v.norm(dim=1, keepdim=True) * lin.g[:, None]  # Salimans & Kingma 2016, eq. 2
    torch.testing.assert_close(lin(x), x @ w.T + lin.b)
    torch.testing.assert_close(lin.weight().norm(dim=1), torch.full((3,), 2.0))
    before = lin(x)
    with torch.no_grad():
        lin.v.mul_(7.0)  # the direction alone matters
    torch.testing.assert_close(lin(x), before)


def test_noise_only_in_training_and_features_feed_the_head() -> None:
    torch.manual_seed(0)
    net = build_net("wn-mlp", in_shape=(1, 6, 6), out_shape=(4,), widths=[8, 7], input_noise=0.6, layer_noise=0.5)
    x = torch.randn(5, 1, 6, 6)
    net.eval()
    assert torch.equal(net(x), net(x))  # deterministic in eval mode
    h = net.features(x)
    assert h.shape == (5, 7) and (h >= 0).all()  # the last hidden layer, after its ReLU
    torch.testing.assert_close(net(x), net.head(h))
    net.train()
    assert not torch.equal(net(x), net(x))  # noise on input and hidden layers
    quiet = build_net("wn-mlp", in_shape=(1, 6, 6), out_shape=(4,), widths=[8, 7], input_noise=0.0, layer_noise=0.0)
    quiet.train()
    assert torch.equal(quiet(x), quiet(x))


def test_input_noise_has_the_configured_std() -> None:
    torch.manual_seed(0)
    net = build_net("wn-mlp", in_shape=(4,), out_shape=(2,), widths=[3], input_noise=0.6, layer_noise=0.0)
    net.train()
    x = torch.zeros(20000, 4)
    torch.testing.assert_close(net.input_noise(x).std(), torch.tensor(0.6), atol=0.01, rtol=0)


@pytest.mark.parametrize("params", [{"widths": []}, {"widths": [0]}, {"input_noise": -1.0}, {"layer_noise": -0.1},
                                    {"input_dropout": 1.0}, {"layer_dropout": -0.1}, {"feature_layer": 5},
                                    {"feature_layer": -6}])
def test_bad_params_are_config_errors(params) -> None:
    with pytest.raises(ConfigError, match=r"wn-mlp (needs|feature_layer must index)"):
        build_net("wn-mlp", in_shape=(4,), out_shape=(2,), **params)


def test_dropout_zeroes_a_fraction_p_in_training_only_and_keeps_the_module_keys() -> None:
    torch.manual_seed(0)
    kw = {"in_shape": (4,), "out_shape": (2,), "widths": [3, 3], "input_noise": 0.0, "layer_noise": 0.0}
    net = build_net("wn-mlp", input_dropout=0.2, layer_dropout=0.5, **kw)
    x = torch.ones(20000, 4)
    net.train()
    h = net.input_noise(x)
    assert (h == 0).float().mean().item() == pytest.approx(0.2, abs=0.01)
    torch.testing.assert_close(h[h != 0], torch.full_like(h[h != 0], 1 / 0.8))  # inverted dropout: same mean
    net.eval()
    assert torch.equal(net.input_noise(x), x) and torch.equal(net(x[:3]), net(x[:3]))
    # a net without dropout has the same parameter names (earlier checkpoints load into either)
    assert list(build_net("wn-mlp", **kw).state_dict()) == list(net.state_dict())


def test_feature_layer_picks_the_hidden_layer_feature_matching_compares() -> None:
    torch.manual_seed(0)
    kw = {"in_shape": (4,), "out_shape": (2,), "widths": [5, 3, 6], "input_noise": 0.0, "layer_noise": 0.0}
    x = torch.randn(7, 4)
    first = build_net("wn-mlp", feature_layer=0, **kw)
    lin0 = first.body[0]
    torch.testing.assert_close(first.features(x), torch.relu(x @ lin0.weight().T + lin0.b))  # first hidden layer
    assert first.feature_dim == 5 and first(x).shape == (7, 2)
    last = build_net("wn-mlp", **kw)
    assert last.feature_dim == 6 and build_net("wn-mlp", feature_layer=1, **kw).features(x).shape == (7, 3)
    last.load_state_dict(first.state_dict())  # the same net; only what features() returns differs
    torch.testing.assert_close(last(x), first(x))
    torch.testing.assert_close(last(x), last.head(last.features(x)))


def _pre_activations(net, x: torch.Tensor) -> list[torch.Tensor]:
    """The input of every WNLinear's ReLU (and the head's logits) on ``x``, recorded by forward hooks."""
    seen: list[torch.Tensor] = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: seen.append(out)) for m in net.modules()
             if isinstance(m, WNLinear)]
    net(x)
    for h in hooks:
        h.remove()
    return seen


def test_data_dependent_init_standardises_every_layer_on_its_batch() -> None:
    torch.manual_seed(0)
    net = build_net("wn-mlp", in_shape=(1, 5, 5), out_shape=(3,), widths=[9, 6], input_noise=0.0, layer_noise=0.0,
                    data_init=True)
    x = torch.rand(64, 1, 5, 5) * 3 + 1  # far from zero mean / unit scale
    v_before = [m.v.clone() for m in net.modules() if isinstance(m, WNLinear)]
    net.init_from_data(x)
    pre = _pre_activations(net, x)
    assert len(pre) == 3
    for t in pre:  # Salimans & Kingma 2016, sec. 3: each unit's pre-activation has mean 0 and std 1 on the batch
        torch.testing.assert_close(t.mean(0), torch.zeros(t.shape[1]), atol=1e-5, rtol=0)
        torch.testing.assert_close(t.std(0), torch.ones(t.shape[1]), atol=1e-4, rtol=0)
    for m, v in zip([m for m in net.modules() if isinstance(m, WNLinear)], v_before, strict=True):
        assert torch.equal(m.v, v)  # only g and b move: the directions stay random


def test_data_init_is_off_by_default_and_the_ssgan_game_applies_it() -> None:
    from ganforge import objectives
    from ganforge.data.base import Dataset
    from ganforge.games.ssgan import SSGAN

    torch.manual_seed(0)
    net = build_net("wn-mlp", in_shape=(4,), out_shape=(2,), widths=[3])
    before = {k: v.clone() for k, v in net.state_dict().items()}
    net.init_from_data(torch.randn(16, 4) * 5)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    lab = Dataset(name="lab", x=torch.randn(30, 4) * 2 + 3, y=torch.arange(30) % 3, n_classes=3)
    unl = Dataset(name="unl", x=torch.randn(50, 4))
    data = Dataset(name="semi", x=unl.x, info={"parts": {"labelled": lab, "unlabelled": unl}})
    game = SSGAN(z_dim=2)
    game.build(data, {"g": {"name": "mlp", "hidden": 8, "depth": 1},
                      "d": {"name": "wn-mlp", "widths": [8], "input_noise": 0.0, "layer_noise": 0.0,
                            "data_init": True}}, objectives.get("ns"), [])
    first = _pre_activations(game.nets["d"], lab.x)[0]  # the game initialised D on the labelled images
    torch.testing.assert_close(first.mean(0), torch.zeros(8), atol=1e-5, rtol=0)
    torch.testing.assert_close(first.std(0), torch.ones(8), atol=1e-4, rtol=0)


def _tiny_ssgan(**params):
    from ganforge import objectives
    from ganforge.data.base import Dataset
    from ganforge.games.ssgan import SSGAN

    torch.manual_seed(0)
    lab = Dataset(name="lab", x=torch.randn(12, 4), y=torch.arange(12) % 3, n_classes=3)
    unl = Dataset(name="unl", x=torch.randn(20, 4))
    data = Dataset(name="semi", x=unl.x, info={"parts": {"labelled": lab, "unlabelled": unl}})
    game = SSGAN(z_dim=2, **params)
    game.build(data, {"g": {"name": "mlp", "hidden": 8, "depth": 1},
                      "d": {"name": "wn-mlp", "widths": [8, 6], "input_noise": 0.0, "layer_noise": 0.0}},
               objectives.get("ns"), [])
    z = torch.rand(20, 2) * 2 - 1
    game.noise = lambda n, dim, **_: z[:n]  # the same fakes for the game and the formula below
    return game, lab, unl, z


def test_fm_distance_l1_is_the_mean_absolute_feature_gap() -> None:
    game, _, unl, z = _tiny_ssgan(fm_distance="l1")
    loss, _ = game.g_loss({"unlabelled": {"x": unl.x}})
    d = game.nets["d"]
    gap = d.features(unl.x).mean(0) - d.features(game.nets["g"](z)).mean(0)
    torch.testing.assert_close(loss, gap.abs().mean())  # Salimans et al.'s MNIST code: mean |m_real - m_fake|
    assert not torch.allclose(loss, gap.pow(2).mean())  # not the squared (l2, default) distance
    with pytest.raises(ConfigError, match="fm_distance must be l2 .* or l1"):
        _tiny_ssgan(fm_distance="l3")


def test_labelled_batch_uses_the_first_labelled_images_and_every_unlabelled_one() -> None:
    import torch.nn.functional as F

    game, lab, unl, z = _tiny_ssgan(labelled_batch=5)
    loss, logs = game.d_loss({"labelled": {"x": lab.x, "y": lab.y}, "unlabelled": {"x": unl.x}})
    d = game.nets["d"]
    with torch.no_grad():
        fake = game.nets["g"](z)  # as many fakes as unlabelled images (20), not labelled ones
    sup = F.cross_entropy(d(lab.x[:5]), lab.y[:5])
    unsup = F.softplus(-torch.logsumexp(d(unl.x), 1)).mean() + F.softplus(torch.logsumexp(d(fake), 1)).mean()
    torch.testing.assert_close(loss, sup + unsup)
    assert logs["lab_acc"] * 5 == pytest.approx(round(logs["lab_acc"] * 5))  # an accuracy over 5 images
    with pytest.raises(ConfigError, match="labelled_batch >= 0"):
        _tiny_ssgan(labelled_batch=-1)
