"""BigGAN's generator conditioning in the resnet net (Brock et al. 2019): a shared class embedding that every
conditional BN reads, hierarchical latents (z chunk i reaches only up block i), linear conditional BN."""

from __future__ import annotations

import pytest
import torch
from conftest import read_records

from ganforge.errors import ConfigError
from ganforge.nets import build_net
from ganforge.nets.resnet import ConditionalBatchNorm2d, LinearConditionalBatchNorm2d, ResNetGenerator
from ganforge.penalties import _weights

K, D, Z = 5, 6, 16  # classes, shared embedding size, z_dim (4 chunks of 4 at 32 px: linear + 3 up blocks)


def _g(**kw) -> ResNetGenerator:
    opts = {"n_classes": K, "ch": 4, "shared_dim": D, "hier": True} | kw
    return build_net("resnet", in_shape=(Z,), out_shape=(1, 32, 32), **opts)


def _record_bn_inputs(g: ResNetGenerator) -> dict[str, torch.Tensor]:
    """Hooks storing the input of the first linear layer and of every BN gain map, by name."""
    seen: dict[str, torch.Tensor] = {}

    def keep(name):
        return lambda mod, args, out: seen.__setitem__(name, args[0].detach().clone())

    g.linear.register_forward_hook(keep("linear"))
    for i, b in enumerate(g.blocks):
        for j, bn in enumerate((b.bn1, b.bn2)):
            bn.gain.register_forward_hook(keep(f"block{i}.bn{j + 1}"))
    return seen


def test_chunk_i_of_z_reaches_only_block_i() -> None:
    """Changing z's chunk 0 changes only the linear layer's input; chunk i >= 1 only block i-1's BN inputs,
    and there only their first chunk-size columns (the rest is the label's embedding)."""
    torch.manual_seed(0)
    g = _g()
    assert g.chunk == Z // 4 and len(g.blocks) == 3
    seen = _record_bn_inputs(g)
    z, c = torch.randn(4, Z), torch.tensor([0, 1, 2, 3])
    g(z, c)
    base = dict(seen)
    assert base["linear"].shape == (4, 4) and base["block0.bn1"].shape == (4, 4 + D)
    for j in range(4):
        z2 = z.clone()
        z2[:, 4 * j:4 * (j + 1)] += 1.0
        g(z2, c)
        changed = {k for k in base if not torch.equal(seen[k], base[k])}
        want = {"linear"} if j == 0 else {f"block{j - 1}.bn1", f"block{j - 1}.bn2"}
        assert changed == want, (j, changed)
        for k in want - {"linear"}:
            torch.testing.assert_close(seen[k][:, :4], z2[:, 4 * j:4 * (j + 1)])
            assert torch.equal(seen[k][:, 4:], base[k][:, 4:])


def test_shared_embedding_is_one_parameter_read_by_every_bn() -> None:
    """One (K, d) parameter is G's only class-indexed weight; each BN's conditioning vector ends in its row for
    the label; orthogonal regularisation leaves it out (it is not a Linear/conv weight), as in BigGAN."""
    torch.manual_seed(0)
    g = _g()
    class_params = [n for n, p in g.named_parameters() if p.shape[0] == K]
    assert class_params == ["shared"] and g.shared.shape == (K, D)
    assert not any(isinstance(m, ConditionalBatchNorm2d) for m in g.modules())
    bns = [m for m in g.modules() if isinstance(m, LinearConditionalBatchNorm2d)]
    assert len(bns) == 2 * len(g.blocks)
    seen = _record_bn_inputs(g)
    z, c = torch.randn(4, Z), torch.tensor([4, 0, 4, 2])
    g(z, c).square().sum().backward()
    for i in range(len(g.blocks)):
        for j in (1, 2):
            torch.testing.assert_close(seen[f"block{i}.bn{j}"][:, 4:], g.shared.detach()[c])
    used = g.shared.grad.abs().sum(1) > 0
    assert used.tolist() == [True, False, True, False, True]  # the rows of labels 0, 2, 4 only
    assert all(w is not g.shared for w in _weights(g))
    # without hier, the embedding alone conditions every block
    g2 = _g(hier=False)
    assert g2.chunk == 0 and g2.linear.in_features == Z
    z0, conds = g2.block_inputs(z, c)
    assert torch.equal(z0, z) and all(torch.equal(s, g2.shared[c]) for s in conds)


def test_linear_conditional_bn_formula() -> None:
    """(1 + W_g s) * (x - mu_B) / sqrt(var_B + eps) + W_b s, W_g and W_b bias-free linear maps."""
    torch.manual_seed(0)
    bn = LinearConditionalBatchNorm2d(3, 5, sn=False)
    assert bn.gain.bias is None and bn.bias.bias is None
    x, s = torch.randn(6, 3, 2, 2) * 2 + 1, torch.randn(6, 5)
    mu, var = x.mean(dim=(0, 2, 3), keepdim=True), x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
    gain, bias = 1 + s @ bn.gain.weight.t(), s @ bn.bias.weight.t()
    want = gain[:, :, None, None] * (x - mu) / torch.sqrt(var + 1e-5) + bias[:, :, None, None]
    torch.testing.assert_close(bn(x, s), want)
    torch.testing.assert_close(bn(x, torch.zeros(6, 5)), (x - mu) / torch.sqrt(var + 1e-5))  # s = 0: plain BN


def test_biggan_generator_uses_the_labels_gains() -> None:
    """Changing class 3's embedding row changes exactly the samples labelled 3 (eval mode: no batch mixing);
    soft one-hot labels give the same images as int labels."""
    torch.manual_seed(0)
    g = _g().eval()
    z, c = torch.randn(10, Z), torch.arange(10) % K
    before = g(z, c)
    torch.testing.assert_close(g(z, torch.nn.functional.one_hot(c, K).float()), before)
    with torch.no_grad():
        g.shared[3] += 1.0
    after = g(z, c)
    changed = (after - before).flatten(1).abs().amax(1) > 1e-4
    assert changed.tolist() == (c == 3).tolist()
    assert torch.equal(after[c != 3], before[c != 3])


def test_hier_without_shared_and_defaults_unchanged() -> None:
    """hier alone: block i reads [z_i, one-hot y] (labelled) or z_i (unlabelled); neither option: the per-layer
    class tables and the plain z -> linear path of SNGAN."""
    torch.manual_seed(0)
    z, c = torch.randn(3, Z), torch.tensor([1, 0, 4])
    g = _g(shared_dim=0)
    z0, conds = g.block_inputs(z, c)
    assert torch.equal(z0, z[:, :4]) and torch.equal(conds[2], torch.cat([z[:, 12:], torch.eye(K)[c]], 1))
    u = _g(n_classes=0, shared_dim=0)
    assert [s.shape[1] for s in u.block_inputs(z)[1]] == [4, 4, 4] and u(z).shape == (3, 1, 32, 32)
    plain = _g(shared_dim=0, hier=False)
    assert isinstance(plain.blocks[0].bn1, ConditionalBatchNorm2d) and "shared" not in dict(plain.named_parameters())


def test_bad_biggan_options_are_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"z_dim must be a multiple of 4; got 18. Try z_dim: 16"):
        build_net("resnet", in_shape=(18,), out_shape=(1, 32, 32), n_classes=K, hier=True)
    with pytest.raises(ConfigError, match="shared_dim .* needs class labels"):
        build_net("resnet", in_shape=(16,), out_shape=(1, 32, 32), shared_dim=8)
    with pytest.raises(ConfigError, match="shared_dim and hier are generator options"):
        build_net("resnet", in_shape=(1, 32, 32), out_shape=(1,), n_classes=K, shared_dim=8)


def test_biggan_run_trains_with_orthogonal_reg(tmp_path) -> None:
    """A few steps of the cifar10/biggan recipe's G conditioning (shared embedding + hier, spectral norm,
    orthogonal reg) on tiny digits: finite losses, a positive orthogonal term, the embedding moves."""
    from ganforge.config import load_config
    from ganforge.training.trainer import Trainer

    run = {
        "name": "biggan-tiny", "data": {"name": "digits", "resolution": 16, "limit": 32},
        "game": {"name": "gan", "z_dim": 9, "conditional": True}, "objective": {"name": "hinge"},
        "penalties": {"orthogonal": 1.0e-4},
        "nets": {"g": {"name": "resnet", "ch": 4, "spectral_norm": True, "shared_dim": 4, "hier": True},
                 "d": {"name": "resnet", "ch": 4}},
        "train": {"steps": 4, "batch_size": 8, "threads": 1, "log_every": 1, "device": "cpu"},
        "eval": {"every": 0, "n": 16, "samples": False}, "checkpoint": {"every": 0},
    }
    tr = Trainer(load_config(None, base=run), tmp_path / "run", quiet=True)
    g = tr.game.nets["g"]
    start = g.shared.detach().clone()
    tr.fit()
    recs = read_records(tmp_path / "run")
    assert len(recs) == 4 and all(r["orthogonal"] > 0 for r in recs)
    assert all(torch.isfinite(torch.tensor([r["d_loss"], r["g_loss"]])).all() for r in recs)
    assert not torch.equal(g.shared.detach(), start)
