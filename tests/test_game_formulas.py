"""Every loss term a game computes equals its formula, written out here independently (issue 13, item 6).

Each game is built on tiny seeded nets and fixed small tensors; its losses are
computed through its own phase callables (what the trainer calls) and compared
with the paper's formula spelled out with plain torch: logistic losses as
-log sigmoid(v) and -log(1 - sigmoid(v)), least squares as 1/2 (v - t)^2, L1 as
mean |.|. Random draws inside a game (noise, labels, target domains) are
replaced by fixed tensors, so both sides see the same inputs. A finiteness
check would let a dropped cycle term, a flipped sign, uninverted BiGAN labels
or a reconstruction to the wrong domain through; these tests do not.
"""

from __future__ import annotations

import math

import pytest
import torch
from conftest import assert_same_state
from torch.testing import assert_close

from ganforge import objectives
from ganforge.config import load_config
from ganforge.data.base import Dataset
from ganforge.games.bigan import BiGAN
from ganforge.games.cgan import CGAN
from ganforge.games.cyclegan import CycleGAN
from ganforge.games.dann import DANN
from ganforge.games.gan import GAN
from ganforge.games.srgan import SRGAN
from ganforge.games.ssgan import SSGAN
from ganforge.games.stargan import StarGAN
from ganforge.penalties import build_penalties
from ganforge.training.trainer import Trainer

MLP = {"name": "mlp", "hidden": 8, "depth": 1}


def _phases(game) -> dict:
    return {p.name: p for p in game.phases()}


def _fix_noise(game, z: torch.Tensor) -> None:
    """game.noise(n, dim) returns the first n rows of z: the game's latent draws become fixed inputs."""
    game.noise = lambda n, dim, **kw: z[:n, :dim]


def neg_log_sig(v: torch.Tensor) -> torch.Tensor:
    """-log D with D = sigmoid(v): the logistic loss of a sample labelled real."""
    return -torch.log(torch.sigmoid(v)).mean()


def neg_log_one_minus_sig(v: torch.Tensor) -> torch.Tensor:
    """-log(1 - D): the logistic loss of a sample labelled fake."""
    return -torch.log(1 - torch.sigmoid(v)).mean()


def cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """-log softmax(logits)_y, averaged."""
    p = torch.exp(logits) / torch.exp(logits).sum(1, keepdim=True)
    return -torch.log(p[torch.arange(len(y)), y]).mean()


def _vectors(n: int, d: int, seed: int, classes: int = 0) -> Dataset:
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(classes, (n,), generator=g) if classes else None
    return Dataset(name=f"v{seed}", x=torch.randn(n, d, generator=g), y=y, n_classes=classes)


# -- gan / cgan ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("conditional", [False, True])
def test_gan_losses_are_goodfellows(conditional: bool) -> None:
    torch.manual_seed(0)
    data = _vectors(8, 2, 1, classes=3 if conditional else 0)
    game = CGAN(z_dim=3) if conditional else GAN(z_dim=3)
    game.build(data, {"g": MLP, "d": MLP}, objectives.get("ns"), [])
    z = torch.randn(8, 3)
    _fix_noise(game, z)
    c_fake = torch.tensor([2, 0, 1, 1, 0, 2, 2, 0])
    game.labels = lambda n, generator=None: c_fake[:n] if conditional else None
    g, d, x, y = game.nets["g"], game.nets["d"], data.x, data.y
    ph = _phases(game)
    loss, _ = ph["d"].loss({"x": x, "y": y} if conditional else {"x": x})
    # D: real pairs (x, y) labelled real; fakes G(z, y) with the batch's labels labelled fake.
    expected = neg_log_sig(d(x, y)) + neg_log_one_minus_sig(d(g(z, y), y))
    assert_close(loss, expected)
    loss, _ = ph["g"].loss({"n": 8})
    # G (non-saturating): -log D(G(z, c), c) with labels drawn from the data's frequencies.
    c = c_fake if conditional else None
    assert_close(loss, neg_log_sig(d(g(z, c), c)))


# -- cyclegan -----------------------------------------------------------------------------------------------
def _cyclegan(b_dim: int, identity: float = 5.0) -> CycleGAN:
    torch.manual_seed(0)
    a, b = _vectors(6, 3, 1), _vectors(6, b_dim, 2)
    data = Dataset(name="ab", x=a.x, info={"parts": {"a": a, "b": b}})
    game = CycleGAN(cycle=10.0, identity=identity, pool_size=0)
    game.build(data, {r: MLP for r in CycleGAN.roles}, objectives.get("lsgan"), [])
    return game


@pytest.mark.parametrize("b_dim", [3, 2])
def test_cyclegan_generator_loss_has_both_cycles_and_identities(b_dim: int) -> None:
    game = _cyclegan(b_dim)
    n, (a, b) = game.nets, (game.data.info["parts"][p].x for p in "ab")
    loss, logs = _phases(game)["g"].loss({"a": {"x": a}, "b": {"x": b}})
    # Zhu et al. 2017, eq. 1-3 with lsgan's 1/2 (D(G(x)) - 1)^2.
    adv = 0.5 * ((n["d_b"](n["g_ab"](a)) - 1) ** 2).mean() + 0.5 * ((n["d_a"](n["g_ba"](b)) - 1) ** 2).mean()
    cycle_a = (n["g_ba"](n["g_ab"](a)) - a).abs().mean()  # a -> b -> a
    cycle_b = (n["g_ab"](n["g_ba"](b)) - b).abs().mean()  # b -> a -> b
    expected = adv + 10.0 * (cycle_a + cycle_b)
    assert_close(torch.tensor(logs["cycle"]), (cycle_a + cycle_b).detach())
    if b_dim == 3:  # identity terms only when A and B have one shape
        idt = (n["g_ab"](b) - b).abs().mean() + (n["g_ba"](a) - a).abs().mean()
        assert_close(torch.tensor(logs["identity"]), idt.detach())
        expected = expected + 5.0 * idt
    else:
        assert "identity" not in logs
    assert_close(loss, expected)


def test_cyclegan_critics_lsgan_loss() -> None:
    game = _cyclegan(3)
    n, (a, b) = game.nets, (game.data.info["parts"][p].x for p in "ab")
    loss, _ = _phases(game)["d"].loss({"a": {"x": a}, "b": {"x": b}})
    # D_b: real b -> 1, G_ab(a) -> 0; D_a: real a -> 1, G_ba(b) -> 0 (pool of size 0: the fakes themselves).
    expected = (0.5 * ((n["d_b"](b) - 1) ** 2).mean() + 0.5 * (n["d_b"](n["g_ab"](a)) ** 2).mean()
                + 0.5 * ((n["d_a"](a) - 1) ** 2).mean() + 0.5 * (n["d_a"](n["g_ba"](b)) ** 2).mean())
    assert_close(loss, expected)


# -- ssgan --------------------------------------------------------------------------------------------------
def _ssgan(**params) -> SSGAN:
    torch.manual_seed(0)
    lab, unl = _vectors(6, 4, 1, classes=3), _vectors(8, 4, 2)
    data = Dataset(name="semi", x=unl.x, info={"parts": {"labelled": lab, "unlabelled": unl}})
    game = SSGAN(z_dim=3, **params)
    game.build(data, {"g": MLP, "d": MLP}, objectives.get("ns"), [])
    _fix_noise(game, torch.rand(8, 3) * 2 - 1)
    return game


def test_ssgan_discriminator_supervised_and_unsupervised_terms() -> None:
    game = _ssgan(unsup_weight=0.7)
    lab, unl = game.data.info["parts"]["labelled"], game.data.info["parts"]["unlabelled"]
    batch = {"labelled": {"x": lab.x, "y": lab.y}, "unlabelled": {"x": unl.x}}
    loss, logs = _phases(game)["d"].loss(batch)
    d, fake = game.nets["d"], game.nets["g"](game.noise(8, 3))
    sup = cross_entropy(d(lab.x), lab.y)  # the K real classes
    # Salimans et al. 2016, sec. 5: K logits, the (K+1)-th (fake) fixed at 0, so with Z = sum_k exp(l_k):
    # D(x) = Z / (Z + 1); real data pays -log D, fakes pay -log(1 - D) = -log(1 / (Z + 1)).
    z_u, z_f = torch.exp(d(unl.x)).sum(1), torch.exp(d(fake)).sum(1)
    unsup = -torch.log(z_u / (z_u + 1)).mean() - torch.log(1 / (z_f + 1)).mean()
    # The same thing as a (K+1)-way softmax with a zero logit for "fake".
    p_fake = lambda v: torch.softmax(torch.cat([v, torch.zeros(len(v), 1)], 1), 1)[:, -1]
    assert_close(unsup, -torch.log(1 - p_fake(d(unl.x))).mean() - torch.log(p_fake(d(fake))).mean())
    assert_close(torch.tensor(logs["sup_loss"]), sup.detach())
    assert_close(torch.tensor(logs["unsup_loss"]), unsup.detach())
    assert_close(loss, sup + 0.7 * unsup)


@pytest.mark.parametrize("feature_matching", [True, False])
def test_ssgan_generator_loss(feature_matching: bool) -> None:
    game = _ssgan(feature_matching=feature_matching)
    unl = game.data.info["parts"]["unlabelled"]
    loss, _ = _phases(game)["g"].loss({"unlabelled": {"x": unl.x}})
    d, fake = game.nets["d"], game.nets["g"](game.noise(8, 3))
    if feature_matching:  # sec. 3.1: squared distance of mean features, averaged over the feature axis
        expected = ((d.features(unl.x).mean(0) - d.features(fake).mean(0)) ** 2).mean()
    else:  # non-saturating: -log D(G(z)) = -log(Z / (Z + 1))
        z_f = torch.exp(d(fake)).sum(1)
        expected = -torch.log(z_f / (z_f + 1)).mean()
    assert_close(loss, expected)



def test_ssgan_conditional_entropy_closed_form() -> None:
    # p = (1, 2, 3) / 6 and the uniform p = 1/3: H = -sum p log p, by hand
    out = torch.tensor([[0.0, math.log(2.0), math.log(3.0)], [5.0, 5.0, 5.0]])
    h1 = -sum(p * math.log(p) for p in (1 / 6, 2 / 6, 3 / 6))
    assert_close(SSGAN.conditional_entropy(out), torch.tensor((h1 + math.log(3.0)) / 2))


def test_ssgan_entropy_and_manifold_terms_in_the_d_loss() -> None:
    game = _ssgan(unsup_weight=0.7)
    lab, unl = game.data.info["parts"]["labelled"], game.data.info["parts"]["unlabelled"]
    batch = {"labelled": {"x": lab.x, "y": lab.y}, "unlabelled": {"x": unl.x}}
    base, _ = _phases(game)["d"].loss(batch)
    game.entropy_weight, game.manifold_weight, game.manifold_eps, game.manifold_eta = 0.3, 0.2, 1.5, 0.1
    torch.manual_seed(5)
    loss, logs = _phases(game)["d"].loss(batch)
    d, g, z = game.nets["d"], game.nets["g"], game.noise(8, 3)
    # Dai et al. 2017: H(p(y|x)) on the unlabelled batch, p the softmax of the K real-class logits
    p = torch.softmax(d(unl.x), 1)
    ent = -(p * torch.log(p)).sum(1).mean()
    # Lecouat et al. 2018: a step of 1.5 in image space along r = G(z + 0.1 d/|d|) - G(z) (the same draw of d);
    # sum over K of |logit change|, averaged over z
    torch.manual_seed(5)
    step = torch.randn(8, 3)
    r = g(z + 0.1 * step / step.norm(dim=1, keepdim=True)) - g(z)
    moved = g(z) + 1.5 * r / r.norm(dim=1, keepdim=True)
    man = (d(g(z)) - d(moved)).abs().sum(1).mean()
    assert_close(torch.tensor(logs["entropy"]), ent.detach())
    assert_close(torch.tensor(logs["manifold"]), man.detach())
    assert_close(loss, base + 0.3 * ent + 0.2 * man)


def test_ssgan_manifold_term_is_zero_for_a_constant_d() -> None:
    game = _ssgan()

    class Constant(torch.nn.Module):
        def forward(self, x):
            return torch.tensor([[1.0, -2.0, 0.5]]).expand(len(x), 3) + 0 * x.sum(1, keepdim=True)

    game.nets["d"] = Constant()
    z = torch.rand(8, 3) * 2 - 1
    assert game.manifold_penalty(z).item() == 0.0
    assert game.nets["d"].training  # restored after the eval-mode evaluation


def test_ssgan_manifold_probe_leaves_g_batch_norm_statistics() -> None:
    game = _ssgan()
    game.nets["g"] = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 4))
    bn = game.nets["g"][1]
    before = (bn.running_mean.clone(), bn.running_var.clone(), int(bn.num_batches_tracked))
    game.manifold_penalty(torch.rand(8, 3) * 2 - 1)
    assert torch.equal(bn.running_mean, before[0]) and torch.equal(bn.running_var, before[1])
    assert int(bn.num_batches_tracked) == before[2] and game.nets["g"].training
    game.nets["g"](torch.randn(8, 3))  # a training pass does move them (the check above can fail)
    assert not torch.equal(bn.running_mean, before[0])

# -- bigan --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("rec_weight", [0.0, 0.5])
def test_bigan_labels_for_d_and_inverted_for_g_and_e(rec_weight: float) -> None:
    torch.manual_seed(0)
    data = _vectors(8, 3, 1)
    game = BiGAN(z_dim=2, rec_weight=rec_weight)
    game.build(data, {"g": MLP, "e": MLP, "d": MLP}, objectives.get("ns"), [])
    z = torch.randn(8, 2)
    _fix_noise(game, z)
    g, e, x = game.nets["g"], game.nets["e"], data.x
    joint = lambda xx, zz: game.nets["d"].inner(torch.cat([xx, zz], 1))  # D on [x, z]
    real_pair, fake_pair = joint(x, e(x)), joint(g(z), z)
    ph = _phases(game)
    d_loss, _ = ph["d"].loss({"x": x})
    ge_loss, _ = ph["ge"].loss({"x": x})
    # D: (x, E(x)) is real, (G(z), z) is fake. G and E: the same loss with the labels swapped.
    assert_close(d_loss, neg_log_sig(real_pair) + neg_log_one_minus_sig(fake_pair))
    expected = neg_log_sig(fake_pair) + neg_log_one_minus_sig(real_pair)
    if rec_weight:  # ALICE's explicit cycle term (Li et al. 2017): mean (G(E(x)) - x)^2
        expected = expected + rec_weight * ((g(e(x)) - x) ** 2).mean()
    assert_close(ge_loss, expected)


# -- stargan ------------------------------------------------------------------------------------------------
def _stargan() -> tuple[StarGAN, torch.Tensor, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    x_u8 = torch.randint(0, 256, (6, 1, 8, 8), generator=g, dtype=torch.uint8)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    data = Dataset(name="domains", x=x_u8, y=y, n_classes=3)
    game = StarGAN(cls=1.0, rec=10.0)
    obj = objectives.get("wgan-gp")
    game.build(data, {"g": {"name": "resnet-gen", "ngf": 4, "n_blocks": 1, "n_down": 1},
                      "d": {"name": "patchgan", "ndf": 4, "n_layers": 2}}, obj, build_penalties({}, obj))
    c_trg = (y + 1) % 3  # every target differs from the original domain
    game.targets = lambda n, generator=None: c_trg[:n]
    return game, data.to_model(x_u8), y, c_trg


def test_stargan_generator_reconstructs_to_the_original_domain() -> None:
    game, x, c_org, c_trg = _stargan()
    g, d = game.nets["g"], game.nets["d"]
    loss, logs = _phases(game)["g"].loss({"x": x, "y": c_org})
    fake = g(x, c_trg)
    adv = -d(fake).mean()  # Wasserstein G loss
    cls = cross_entropy(d.classify(fake), c_trg)  # eq. 4: G wants D to see the *target* domain
    rec = (x - g(fake, c_org)).abs().mean()  # eq. 5: back to the ORIGINAL domain c_org
    assert_close(torch.tensor(logs["rec"]), rec.detach())
    assert_close(torch.tensor(logs["g_cls"]), cls.detach())
    assert_close(loss, adv + 1.0 * cls + 10.0 * rec)
    wrong = (x - g(fake, c_trg)).abs().mean()  # the same G, the wrong domain: a different number
    assert not torch.allclose(rec, wrong)


def test_stargan_critic_classification_and_gradient_penalty() -> None:
    game, x, c_org, c_trg = _stargan()
    g, d = game.nets["g"], game.nets["d"]
    torch.manual_seed(5)  # the penalty's interpolation weights come from the global RNG
    loss, logs = _phases(game)["d"].loss({"x": x, "y": c_org})
    torch.manual_seed(5)
    eps = torch.rand(6, 1, 1, 1)
    fake = g(x, c_trg).detach()
    adv = d(fake).mean() - d(x).mean()
    cls = cross_entropy(d.classify(x), c_org)  # eq. 3: D classifies real images by their own domain
    x_hat = (eps * x + (1 - eps) * fake).requires_grad_(True)  # Gulrajani et al. 2017, eq. 3
    (grad,) = torch.autograd.grad(d(x_hat).sum(), x_hat)
    gp = ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
    assert_close(torch.tensor(logs["d_cls"]), cls.detach())
    assert_close(torch.tensor(logs["gp"]), gp)
    assert_close(loss, adv + 1.0 * cls + 10.0 * gp)


# -- srgan --------------------------------------------------------------------------------------------------
def test_srgan_pixel_content_and_adversarial_terms() -> None:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    hr, lr = torch.rand(4, 1, 28, 28, generator=g) * 2 - 1, torch.rand(4, 1, 14, 14, generator=g) * 2 - 1
    data = Dataset(name="sr", x=hr, info={"paired": {"lr": lr}, "scale": 2})
    game = SRGAN(pixel=0.5, content=2.0, adversarial=1e-3)
    game.build(data, {"g": {"name": "srresnet", "channels": 4, "n_blocks": 1},
                      "d": {"name": "srgan-d", "ndf": 4, "n_blocks": 2, "hidden": 8}}, objectives.get("ns"), [])
    ph = _phases(game)
    loss, logs = ph["g"].loss({"x": hr, "lr": lr})
    sr, d, phi = game.nets["g"](lr), game.nets["d"], game._phi  # phi: the frozen classifier's feature maps
    pixel, content = ((sr - hr) ** 2).mean(), ((phi(sr) - phi(hr)) ** 2).mean()  # Ledig et al. eq. 4-5
    assert_close(torch.tensor(logs["content"]), content.detach())
    assert_close(loss, 0.5 * pixel + 2.0 * content + 1e-3 * neg_log_sig(d(sr)))  # eq. 3, 6
    loss, _ = ph["d"].loss({"x": hr, "lr": lr})
    assert_close(loss, neg_log_sig(d(hr)) + neg_log_one_minus_sig(d(sr)))


# -- dann ---------------------------------------------------------------------------------------------------
def _dann(step: int, ramp_steps: int = 10, lam: float = 1.0) -> DANN:
    torch.manual_seed(0)
    src, tgt = _vectors(6, 4, 1, classes=3), _vectors(5, 4, 2)
    data = Dataset(name="adapt", x=tgt.x, n_classes=3, info={"parts": {"source": src, "target": tgt}})
    game = DANN(features=5, lam=lam, ramp_steps=ramp_steps)
    game.build(data, {"f": MLP, "c": MLP, "d": MLP}, objectives.get("ns"), [])
    game.counter.count.fill_(step)
    return game


@pytest.mark.parametrize("step,lam", [(0, 0.0), (3, 2 / (1 + math.exp(-3.0)) - 1), (10, 2 / (1 + math.exp(-10.0)) - 1),
                                      (25, 2 / (1 + math.exp(-10.0)) - 1)])
def test_dann_gradient_reversal_follows_the_papers_schedule(step: int, lam: float) -> None:
    # Ganin et al. 2016, sec. 5.2.2: lambda_p = 2 / (1 + exp(-10 p)) - 1, p = step / ramp_steps (capped at 1).
    game = _dann(step)
    f, c, d = game.nets["f"], game.nets["c"], game.nets["d"]
    src, tgt = game.data.info["parts"]["source"], game.data.info["parts"]["target"]
    loss, logs = _phases(game)["dann"].loss({"source": {"x": src.x, "y": src.y}, "target": {"x": tgt.x}})
    assert_close(logs["lambda"], lam)
    h = f(torch.cat([src.x, tgt.x]))
    cls = cross_entropy(c(h[:6]), src.y)
    dom = d(h).reshape(-1)
    domain = neg_log_sig(dom[:6]) + neg_log_one_minus_sig(dom[6:])  # source = 1, target = 0
    assert_close(loss, cls + domain)
    # Gradients: c and d descend their own losses; f descends cls and *ascends* lambda * domain.
    params = {r: list(game.nets[r].parameters()) for r in ("f", "c", "d")}
    got = torch.autograd.grad(loss, [p for r in params for p in params[r]])
    want = (torch.autograd.grad(cls - lam * domain, params["f"], retain_graph=True)
            + torch.autograd.grad(cls, params["c"], retain_graph=True) + torch.autograd.grad(domain, params["d"]))
    for a, b in zip(got, want, strict=True):
        assert_close(a, b)


def test_dann_lambda_scale_and_constant_schedule() -> None:
    assert_close(_dann(4, lam=0.5).current_lambda(), 0.5 * (2 / (1 + math.exp(-4.0)) - 1))
    assert _dann(4, ramp_steps=0, lam=0.3).current_lambda() == 0.3


# -- adda ---------------------------------------------------------------------------------------------------
def test_adda_source_encoder_frozen_and_losses(tmp_path) -> None:
    """Through the trainer: after the critic and target phases, e_s and c are bit-identical (buffers too)."""
    enc = {"name": "conv-encoder", "width": 4, "depth": 2, "hidden": 0}
    digits = {"name": "digits", "cache": False}
    raw = {"name": "adda-formula", "game": {"name": "adda", "features": 6, "pretrain_steps": 2},
           "data": {"name": "adaptation", "source": {**digits, "limit": 32}, "target": {**digits, "limit": 32}},
           "nets": {"e_s": enc, "e_t": enc, "c": MLP, "d": MLP},
           "train": {"steps": 1, "batch_size": 8, "threads": 1, "log_every": 1, "device": "cpu"},
           "eval": {"every": 0, "n": 8, "samples": False}}
    tr = Trainer(load_config(None, [], base=raw), tmp_path / "run", quiet=True)
    game = tr.game
    ph = {p.name: p for p in tr.phases}
    for _ in range(2):
        tr._run_phase(ph["pretrain"])
    assert game.adapting and ph["pretrain"].repeat == 0 and ph["t"].repeat == 1
    frozen = {r: {k: v.clone() for k, v in game.nets[r].state_dict().items()} for r in ("e_s", "c")}
    e_t_before = [p.clone() for p in game.nets["e_t"].parameters()]
    batch = tr.stream.next()
    xs, xt = batch["source"]["x"], batch["target"]["x"]
    e_s, e_t, d = game.nets["e_s"], game.nets["e_t"], game.nets["d"]
    loss, _ = ph["d"].loss(batch)
    with torch.no_grad():
        hs = e_s.eval()(xs)  # the frozen source encoder runs in eval mode: its batch-norm statistics stay put
    e_s.train()
    assert_close(loss, neg_log_sig(d(hs)) + neg_log_one_minus_sig(d(e_t(xt))))
    loss, _ = ph["t"].loss(batch)
    assert_close(loss, neg_log_sig(d(e_t(xt))))  # Tzeng et al. eq. 9: inverted labels for the target encoder
    for name in ("d", "t", "d", "t"):
        tr._run_phase(ph[name])
    for r in ("e_s", "c"):
        assert_same_state(game.nets[r].state_dict(), frozen[r])
    assert not all(torch.equal(a, b) for a, b in zip(e_t_before, game.nets["e_t"].parameters(), strict=True))
