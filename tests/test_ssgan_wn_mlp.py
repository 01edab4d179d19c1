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


@pytest.mark.parametrize("params", [{"widths": []}, {"widths": [0]}, {"input_noise": -1.0}, {"layer_noise": -0.1}])
def test_bad_params_are_config_errors(params) -> None:
    with pytest.raises(ConfigError):
        build_net("wn-mlp", in_shape=(4,), out_shape=(2,), **params)
