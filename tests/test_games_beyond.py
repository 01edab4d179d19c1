"""Games beyond G vs D (issue 7): cGAN, semi-supervised GAN, BiGAN on images, DANN, ADDA.

Each game: one training step on tiny nets with finite losses; every phase moves
only its own optimizer group's parameters; a run resumed from a checkpoint ends
bit-identical to the uninterrupted run. Plus the gradient reversal identity,
the data sources' invariants and the error messages of bad configs.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
from conftest import assert_same_state, read_records

from ganforge.config import load_config
from ganforge.data import build_dataset
from ganforge.errors import ConfigError
from ganforge.games.adaptation import grad_reverse
from ganforge.training.trainer import Trainer

ENC = {"name": "conv-encoder", "width": 4, "depth": 2, "hidden": 16}
GEN = {"name": "dcgan", "base": 4}
FEAT_MLP = {"name": "mlp", "hidden": 8, "depth": 1}
ADAPT = {"name": "adaptation", "source": {"name": "fmnist", "limit": 64},
         "target": {"name": "fmnist-m", "start": 64, "limit": 64, "textures": 4},
         "test": {"name": "fmnist-m", "split": "test", "limit": 32, "textures": 4}}
COMMON = {"train": {"steps": 1, "batch_size": 8, "threads": 1, "log_every": 1, "device": "cpu"},
          "eval": {"every": 0, "n": 16, "samples": False}, "checkpoint": {"every": 2, "keep": 10}}

GAMES = {
    "cgan": {"game": {"name": "cgan", "z_dim": 8}, "data": {"name": "fmnist", "limit": 64},
             "nets": {"g": GEN, "d": {"name": "dcgan", "base": 4}}},
    "ssgan": {"game": {"name": "ssgan", "z_dim": 8},
              "data": {"name": "semi", "data": {"name": "fmnist", "limit": 200}, "labels_per_class": 1},
              "nets": {"g": GEN, "d": ENC}},
    "bigan": {"game": {"name": "bigan", "z_dim": 8, "d_features": 8, "joint_hidden": 8},
              "data": {"name": "fmnist", "limit": 64}, "nets": {"g": GEN, "e": ENC, "d": ENC}},
    "dann": {"game": {"name": "dann", "features": 8, "ramp_steps": 4}, "data": ADAPT,
             "nets": {"f": ENC, "c": FEAT_MLP, "d": FEAT_MLP}},
    "adda": {"game": {"name": "adda", "features": 8, "pretrain_steps": 3}, "data": ADAPT,
             "nets": {"e_s": ENC, "e_t": ENC, "c": FEAT_MLP, "d": FEAT_MLP}},
}


def raw(game: str, **train) -> dict:
    r = copy.deepcopy({"name": f"tiny-{game}", **GAMES[game], **COMMON})
    r["train"].update(train)
    return r


def cfg(game: str, **train):
    return load_config(None, [], base=raw(game, **train))


def test_grad_reverse_forward_identity_backward_negated():
    x = torch.randn(5, 3, requires_grad=True)
    w = torch.randn(5, 3)
    y = grad_reverse(x, 0.7)
    torch.testing.assert_close(y, x, rtol=0, atol=0)
    (y * w).sum().backward()
    torch.testing.assert_close(x.grad, -0.7 * w, rtol=0, atol=0)
    x.grad = None
    (grad_reverse(x, 0.0) * w).sum().backward()
    torch.testing.assert_close(x.grad, torch.zeros_like(w), rtol=0, atol=0)


@pytest.mark.parametrize("game", sorted(GAMES))
def test_one_step_phases_isolated(game, tmp_path):
    """One step of every phase: losses finite, the phase's group moves, every other parameter is bit-identical."""
    tr = Trainer(cfg(game, steps=1), tmp_path / game, quiet=True)
    if game == "adda":  # the adaptation phases only run after pretraining: finish it first
        pretrain = next(ph for ph in tr.phases if ph.name == "pretrain")
        for _ in range(3):
            tr._run_phase(pretrain)
        assert tr.game.adapting
        assert_same_state(tr.game.nets["e_t"].state_dict(), tr.game.nets["e_s"].state_dict())
    ran = 0
    for ph in tr.phases:
        if ph.repeat == 0:
            continue
        before = {r: [p.detach().clone() for p in n.parameters()] for r, n in tr.game.nets.items()}
        logs = tr._run_phase(ph)
        ran += 1
        assert logs and all(math.isfinite(v) for v in logs.values()), (ph.name, logs)
        for role, net in tr.game.nets.items():
            same = [torch.equal(a, b) for a, b in zip(before[role], net.parameters(), strict=True)]
            if role in tr.game.groups[ph.group]:
                assert not all(same), f"{game}: phase {ph.name} did not move {role}"
            else:
                assert all(same), f"{game}: phase {ph.name} moved {role}, outside its group {ph.group}"
    assert ran >= 1


@pytest.mark.parametrize("game", sorted(GAMES))
def test_exact_resume(game, tmp_path):
    """4 steps straight == 2 steps, checkpoint, resume, 2 more (ADDA switches stage after the resume)."""
    a = Trainer(cfg(game, steps=4), tmp_path / "a", quiet=True)
    a.fit()
    b = Trainer(cfg(game, steps=2), tmp_path / "b", quiet=True)
    b.fit()
    b = Trainer.resume(tmp_path / "b", {"train.steps": 4}, quiet=True)
    b.fit()
    assert_same_state(a.game.state_dict(), b.game.state_dict())
    assert_same_state({k: o.state_dict() for k, o in a.optimizers.items()},
                      {k: o.state_dict() for k, o in b.optimizers.items()})
    assert read_records(tmp_path / "a") == read_records(tmp_path / "b")


def test_adda_stages_follow_the_step_counter(tmp_path):
    tr = Trainer(cfg("adda", steps=4), tmp_path / "r", quiet=True)
    tr.fit()
    recs = read_records(tmp_path / "r")
    assert "cls_loss" in recs[0] and "t_loss" not in recs[0]
    assert "t_loss" in recs[-1] and "cls_loss" not in recs[-1]
    assert int(tr.game.counter) == 4  # 3 pretraining steps + 1 adaptation step
    pred = tr.game.sample(10)
    assert pred.shape == (10, 1)
    metrics = [r for r in read_records(tmp_path / "r", "metrics.jsonl")]
    assert 0.0 <= metrics[-1]["target_acc"] <= 1.0


def test_dann_lambda_schedule(tmp_path):
    tr = Trainer(cfg("dann", steps=1), tmp_path / "r", quiet=True)
    g = tr.game
    assert g.current_lambda() == 0.0
    g.counter.count.fill_(2)
    torch.testing.assert_close(g.current_lambda(), 2 / (1 + math.exp(-5)) - 1)
    g.counter.count.fill_(100)
    torch.testing.assert_close(g.current_lambda(), 2 / (1 + math.exp(-10)) - 1)


def test_ssgan_labels_only_row_with_entropy_minimisation_runs_and_uses_the_term(monkeypatch):
    """bench ssgan's "labels + entropy, no generator" row: the same classifier, plus the entropy of D's class
    posterior on an unlabelled batch of train.batch_size images in every update (none without the weight)."""
    from ganforge.bench.games_beyond import _supervised_only
    from ganforge.games.ssgan import SSGAN

    c = load_config(None, [], base=raw("ssgan", lr_decay_start=None))
    test = build_dataset("fmnist", split="test", limit=64)
    seen = []
    entropy = SSGAN.conditional_entropy
    monkeypatch.setattr(SSGAN, "conditional_entropy", staticmethod(lambda out: seen.append(out.shape) or entropy(out)))
    plain = _supervised_only(c, 6, 0, test)
    assert seen == []
    ent = _supervised_only(c, 6, 0, test, entropy_weight=5.0)
    assert seen == [(c.train.batch_size, 10)] * 6  # one unlabelled batch per update, K = 10 class logits
    assert all(0 <= r[k] <= 1 for r in (plain, ent) for k in ("acc", "train_acc"))


def test_ssgan_implicit_fake_class():
    """logit D(x) = logsumexp(l): the K+1-class softmax with the fake logit fixed at 0."""
    l = torch.randn(6, 10)
    p_real = 1 - torch.softmax(torch.cat([l, torch.zeros(6, 1)], 1), 1)[:, -1]
    torch.testing.assert_close(torch.sigmoid(torch.logsumexp(l, 1)), p_real)


def test_fmnist_m_is_seeded_sliceable_and_blended():
    a = build_dataset("fmnist-m", limit=40, textures=8)
    b = build_dataset("fmnist-m", start=10, limit=20, textures=8)
    assert a.x.shape == (40, 3, 28, 28) and a.x.dtype == torch.uint8
    assert torch.equal(a.x[10:30], b.x) and torch.equal(a.y[10:30], b.y)
    c = build_dataset("fmnist-m", limit=40, textures=8, seed=1)
    assert not torch.equal(a.x, c.x)
    plain = build_dataset("fmnist", limit=40)
    grey = build_dataset("fmnist-m", limit=40, texture=False)
    assert torch.equal(grey.x, plain.x.repeat(1, 3, 1, 1))
    # |patch - image| <= max(patch, image): where the garment is white (255) the output is 255 - patch
    assert (a.x.int() - plain.x.int()).abs().float().mean() > 20


def test_adaptation_and_semi_data():
    d = build_dataset("adaptation", source={"name": "fmnist", "limit": 20},
                      target={"name": "fmnist-m", "limit": 20, "textures": 4})
    src = d.info["parts"]["source"]
    assert src.x.shape == (20, 3, 28, 28) and torch.equal(src.x[:, 0], src.x[:, 2])
    s = build_dataset("semi", data={"name": "fmnist", "limit": 500}, labels_per_class=5, seed=3)
    lab, unl = s.info["parts"]["labelled"], s.info["parts"]["unlabelled"]
    assert len(lab) == 50 and torch.equal(torch.bincount(lab.y), torch.full((10,), 5))
    assert unl.y is None and s.y is None and len(unl) == 500
    full = build_dataset("fmnist", limit=500)
    assert torch.equal(lab.x, full.x[lab.info["indices"]]) and torch.equal(lab.y, full.y[lab.info["indices"]])


@pytest.mark.parametrize("section, message", [
    ({"game": {"name": "dann"}, "data": {"name": "fmnist", "limit": 64}}, "needs data with parts source and target"),
    ({"game": {"name": "ssgan"}, "data": {"name": "fmnist", "limit": 64}}, "needs data with parts labelled"),
    ({"game": {"name": "ssgan", "entropy_weight": -1.0}}, "entropy_weight >= 0"),
    ({"game": {"name": "ssgan", "manifold_weight": 1.0, "manifold_eps": 0.0}}, "manifold_eps > 0"),
    ({"game": {"name": "cgan"}, "data": {"name": "ring"}}, "needs labelled data"),
    ({"data": {"name": "semi", "labels_per_class": 0}}, "labels_per_class must be >= 1"),
    ({"data": {"name": "fmnist-m", "split": "val"}}, "split must be one of"),
])
def test_bad_configs_name_what_is_valid(section, message, tmp_path):
    base = raw("ssgan" if section.get("game", {}).get("name") == "ssgan" else "dann")
    base = {**base, **section}
    if base["game"]["name"] == "cgan":
        base["nets"] = {"g": {"name": "mlp"}, "d": {"name": "mlp"}}
    with pytest.raises(ConfigError, match=message):
        Trainer(load_config(None, [], base=base), tmp_path / "r", quiet=True)


def test_bigan_images_encode_and_reconstruct(tmp_path):
    tr = Trainer(cfg("bigan", steps=1), tmp_path / "r", quiet=True)
    x = tr.data.to_model(tr.data.x[:5])
    assert tr.game.encode(x).shape == (5, 8)
    assert tr.game.reconstruct(x).shape == (5, 1, 28, 28)


def test_bigan_alice_reconstruction_term_and_features(tmp_path):
    """rec_weight w: G/E pay the inverted-label BiGAN loss + w * mean (G(E(x)) - x)^2 (ALICE's explicit l2 term)."""
    raw_cfg = raw("bigan", steps=1)
    raw_cfg["game"] = {**raw_cfg["game"], "rec_weight": 0.5, "dropout": 0.0}
    tr = Trainer(load_config(None, [], base=raw_cfg), tmp_path / "r", quiet=True)
    game, x = tr.game, tr.data.to_model(tr.data.x[:6])
    game.eval()  # no dropout, batch norm from running statistics: both sides see the same nets
    z = torch.randn(6, 8)
    game.noise = lambda n, dim, **kw: z[:n, :dim]
    ge = next(ph for ph in tr.phases if ph.name == "ge")
    loss, logs = ge.loss({"x": x})
    g, e, d = game.nets["g"], game.nets["e"], game.nets["d"]
    real, fake = d(x, e(x)), d(g(z), z)
    adv = -torch.log(torch.sigmoid(fake)).mean() - torch.log(1 - torch.sigmoid(real)).mean()
    rec = ((g(e(x)) - x) ** 2).mean()
    torch.testing.assert_close(loss, adv + 0.5 * rec)
    torch.testing.assert_close(torch.tensor(logs["rec_loss"]), rec.detach())
    torch.testing.assert_close(torch.tensor(logs["ge_loss"]), adv.detach())
    game.rec_weight = 0.0  # plain BiGAN: no reconstruction term at all
    loss0, logs0 = ge.loss({"x": x})
    torch.testing.assert_close(loss0, adv)
    assert "rec_loss" not in logs0
    # features(x): E's pre-final layer (the conv-encoder's hidden units), eval mode
    torch.testing.assert_close(game.features(x), e.features(x))
    assert game.features(x).shape == (6, ENC["hidden"])


def test_conv_encoder_layer_noise_only_in_training():
    from ganforge.nets.encoders import ConvEncoder

    torch.manual_seed(0)
    net = ConvEncoder(in_shape=(1, 8, 8), out_shape=(3,), width=64, depth=1, hidden=0, norm="none",
                      layer_noise=0.5)
    x = torch.randn(32, 1, 8, 8)
    net.eval()
    with torch.no_grad():
        clean = net.features(x)
        torch.testing.assert_close(net.features(x), clean, rtol=0, atol=0)
        net.train()
        diff = net.features(x) - clean  # depth 1, no hidden layer: exactly the last layer's N(0, 0.5^2) noise
    assert abs(float(diff.std()) - 0.5) < 0.02 and abs(float(diff.mean())) < 0.02
    with pytest.raises(ConfigError, match="layer_noise >= 0"):
        ConvEncoder(in_shape=(1, 8, 8), out_shape=(3,), layer_noise=-1.0)
