"""Objectives: closed forms at fixed logits (Goodfellow, WGAN, hinge, LSGAN, MMD, EBGAN) and lookup errors.

Reference values are computed here independently in float64 numpy from the papers' formulas
(Goodfellow et al. 2014; Arjovsky et al. 2017; Mao et al. 2017; Zhao et al. 2017; Li et al. 2017),
never by calling the code under test. The f-GAN table is tested in test_fgan.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import FAKE, REAL
from conftest import close64 as _close
from conftest import sigmoid as _sig

from ganforge import objectives
from ganforge.errors import ConfigError

R, FK = REAL.numpy(), FAKE.numpy()


# ------------------------------------------------------------------------ non-f objectives
def test_minimax_and_ns_closed_forms():
    d_ref = -np.mean(np.log(_sig(R))) - np.mean(np.log(1 - _sig(FK)))
    for name in ("minimax", "ns"):
        _close(objectives.get(name).d_loss(real=REAL, fake=FAKE), d_ref)
    # minimax: G minimises E log(1 - D(G(z))); ns: G minimises -E log D(G(z))
    _close(objectives.get("minimax").g_loss(fake=FAKE), np.mean(np.log(1 - _sig(FK))))
    _close(objectives.get("ns").g_loss(fake=FAKE), -np.mean(np.log(_sig(FK))))


@pytest.mark.parametrize("name", ["minimax", "ns"])
def test_one_sided_label_smoothing_moves_only_the_real_target(name):
    s = 0.1
    obj = objectives.get(name, smoothing=s)
    ref = -np.mean((1 - s) * np.log(_sig(R)) + s * np.log(1 - _sig(R))) - np.mean(np.log(1 - _sig(FK)))
    _close(obj.d_loss(real=REAL, fake=FAKE), ref)
    # the fake term is the unsmoothed one: changing only the fake scores changes both losses equally
    plain = objectives.get(name)
    fake2 = FAKE + 0.37
    _close(obj.d_loss(real=REAL, fake=fake2) - obj.d_loss(real=REAL, fake=FAKE),
           plain.d_loss(real=REAL, fake=fake2) - plain.d_loss(real=REAL, fake=FAKE))
    # and the generator loss is untouched by smoothing
    _close(obj.g_loss(fake=FAKE), plain.g_loss(fake=FAKE))
    with pytest.raises(ConfigError, match=r"smoothing must lie in \[0, 0.5\)"):
        objectives.get(name, smoothing=0.7)


def test_logistic_losses_are_stable_at_extreme_logits():
    v = torch.tensor([-200.0, -50.0, 50.0, 200.0], requires_grad=True)
    for name in ("minimax", "ns"):
        obj = objectives.get(name, smoothing=0.1)
        total = obj.d_loss(real=v, fake=v) + obj.g_loss(fake=v)
        (g,) = torch.autograd.grad(total, v)
        assert torch.isfinite(total) and torch.isfinite(g).all()
    # a sigmoid + log implementation would return inf here; softplus gives the exact value
    _close(objectives.get("ns").g_loss(fake=torch.tensor([-200.0], dtype=torch.float64)), 200.0)


def test_wgan_closed_form_and_clipping():
    obj = objectives.get("wgan", clip=0.05)
    _close(obj.d_loss(real=REAL, fake=FAKE), FK.mean() - R.mean())
    _close(obj.g_loss(fake=FAKE), -FK.mean())
    critic = torch.nn.Linear(3, 1)
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([[0.5, -0.02, -0.3]]))
        critic.bias.fill_(-1.0)
    obj.constrain(critic)
    assert torch.equal(critic.weight, torch.tensor([[0.05, -0.02, -0.05]]))
    assert critic.bias.item() == pytest.approx(-0.05)
    with pytest.raises(ConfigError, match="clip must be > 0"):
        objectives.get("wgan", clip=-1.0)


def test_wgan_gp_is_wasserstein_plus_default_gradient_penalty():
    obj = objectives.get("wgan-gp")
    _close(obj.d_loss(real=REAL, fake=FAKE), FK.mean() - R.mean())
    _close(obj.g_loss(fake=FAKE), -FK.mean())
    assert obj.default_penalties == {"gp": 10.0}
    critic = torch.nn.Linear(2, 1)
    before = critic.weight.detach().clone()
    with torch.no_grad():
        critic.weight.mul_(100)
    obj.constrain(critic)  # no clipping in WGAN-GP
    assert torch.equal(critic.weight, before * 100)


def test_hinge_closed_form():
    obj = objectives.get("hinge")
    _close(obj.d_loss(real=REAL, fake=FAKE), np.maximum(0, 1 - R).mean() + np.maximum(0, 1 + FK).mean())
    _close(obj.g_loss(fake=FAKE), -FK.mean())


@pytest.mark.parametrize("abc", [(0.0, 1.0, 1.0), (-1.0, 1.0, 0.0), (0.2, 0.9, 0.5)])
def test_lsgan_closed_form(abc):
    a, b, c = abc
    obj = objectives.get("lsgan", a=a, b=b, c=c)
    _close(obj.d_loss(real=REAL, fake=FAKE), 0.5 * ((R - b) ** 2).mean() + 0.5 * ((FK - a) ** 2).mean())
    _close(obj.g_loss(fake=FAKE), 0.5 * ((FK - c) ** 2).mean())


def test_lsgan_rejects_equal_targets():
    with pytest.raises(ConfigError, match="must differ"):
        objectives.get("lsgan", a=1.0, b=1.0)


def _mmd2_loops(x: np.ndarray, y: np.ndarray, sigmas) -> float:
    """Unbiased MMD^2 (Gretton et al. 2012, eq. 3) by explicit sums."""
    def k(a, b):
        return sum(math.exp(-np.sum((a - b) ** 2) / (2 * s * s)) for s in sigmas)

    n, m = len(x), len(y)
    sxx = sum(k(x[i], x[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    syy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    sxy = sum(k(x[i], y[j]) for i in range(n) for j in range(m)) / (n * m)
    return sxx + syy - 2 * sxy


def test_mmd_unbiased_estimator_against_explicit_sums():
    g = torch.Generator().manual_seed(0)
    real = torch.randn(7, 3, generator=g, dtype=torch.float64)
    fake = torch.randn(5, 3, generator=g, dtype=torch.float64) + 0.5
    sigmas = [0.5, 1.0, 4.0]
    obj = objectives.get("mmd", sigmas=sigmas, features=3)
    ref = _mmd2_loops(real.numpy(), fake.numpy(), sigmas)
    _close(obj.g_loss(fake=fake, real=real), ref)
    _close(obj.d_loss(real=real, fake=fake), -ref)
    assert obj.g_needs_real and obj.critic_outputs == 3
    # unbiased: the estimate for two samples of one distribution averages to ~0 (can be negative)
    vals = [float(obj.g_loss(fake=torch.randn(20, 3, generator=g), real=torch.randn(20, 3, generator=g)))
            for _ in range(200)]
    assert min(vals) < 0 and abs(np.mean(vals)) < 3 * np.std(vals) / math.sqrt(len(vals))
    with pytest.raises(ValueError, match="real="):
        obj.g_loss(fake=fake)
    with pytest.raises(ConfigError, match="positive bandwidths"):
        objectives.get("mmd", sigmas=[1.0, -2.0])


def test_ebgan_closed_form():
    m = 1.5
    obj = objectives.get("ebgan", margin=m)
    energy_r, energy_f = -R, -FK  # the score is minus the energy (reconstruction error)
    _close(obj.d_loss(real=REAL, fake=FAKE), energy_r.mean() + np.maximum(0, m - energy_f).mean())
    _close(obj.g_loss(fake=FAKE), energy_f.mean())
    with pytest.raises(ConfigError, match="margin must be > 0"):
        objectives.get("ebgan", margin=0.0)


# ------------------------------------------------------------------------ lookup
def test_get_unknown_name_lists_the_valid_ones():
    with pytest.raises(ConfigError) as e:
        objectives.get("hingee")
    msg = str(e.value)
    assert "unknown objective 'hingee'" in msg and "Did you mean 'hinge'?" in msg
    for name in ("minimax", "ns", "wgan-gp", "jeffrey", "mmd", "ebgan"):
        assert name in msg


def test_vanilla_is_not_a_name():
    with pytest.raises(ConfigError) as e:
        objectives.get("vanilla")
    msg = str(e.value)
    assert "'minimax'" in msg and "'ns'" in msg and "ambiguous" in msg


def test_get_rejects_unknown_parameters():
    with pytest.raises(ConfigError, match=r"objective 'hinge' has no parameter 'margin'"):
        objectives.get("hinge", margin=1.0)
    with pytest.raises(ConfigError, match=r"Valid parameters: alpha, g_form"):
        objectives.get("alpha", pi=0.3)
    with pytest.raises(ConfigError, match="alpha must be a finite number other than 0 and 1"):
        objectives.get("alpha", alpha=1.0)
    with pytest.raises(ConfigError, match=r"pi must lie in \(0, 1\)"):
        objectives.get("wjs", pi=1.5)


def test_mmd_median_bandwidth_scales_with_the_features():
    """bandwidth="median": sigma_i = s_i * median pairwise distance, so MMD^2 is invariant to rescaling."""
    from ganforge.objectives.kernel import median_distance

    g = torch.Generator().manual_seed(1)
    real = torch.randn(6, 2, generator=g, dtype=torch.float64)
    fake = torch.randn(5, 2, generator=g, dtype=torch.float64) + 1.0
    z = np.concatenate([real.numpy(), fake.numpy()])
    dists = [np.linalg.norm(z[i] - z[j]) for i in range(len(z)) for j in range(i + 1, len(z))]
    med = float(np.median(dists))
    _close(median_distance(real, fake), med)
    obj = objectives.get("mmd", sigmas=[0.5, 2.0], features=2, bandwidth="median", clip=None)
    ref = _mmd2_loops(real.numpy(), fake.numpy(), [0.5 * med, 2.0 * med])
    _close(obj.g_loss(fake=fake, real=real), ref)
    _close(obj.d_loss(real=real, fake=fake), -ref)
    _close(obj.g_loss(fake=1e-3 * fake, real=1e-3 * real), ref)  # the clip-0.01 failure: features shrink
    fixed = objectives.get("mmd", features=2)
    assert abs(float(fixed.g_loss(fake=1e-3 * fake, real=1e-3 * real))) < 1e-5  # every kernel value ~1
    with pytest.raises(ConfigError, match="bandwidth must be one of fixed, median"):
        objectives.get("mmd", bandwidth="mean")
    with pytest.raises(ConfigError, match="clip must be > 0"):
        objectives.get("mmd", clip=0.0)
