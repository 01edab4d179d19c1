"""The f-GAN table (Nowozin et al. 2016): generators, conjugates, activations, both G losses,
stability at |v| = 50, the variational bound at the optimal critic, and the Lambert W it needs.

Reference values are written out here independently (Table 1's generator column, Table 6's
conjugates) and computed in float64 numpy/scipy, never by calling the code under test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import FAKE, REAL
from conftest import close64 as _close
from conftest import sigmoid as _sig
from numpy.testing import assert_allclose
from scipy import integrate, special, stats

from ganforge import objectives
from ganforge.errors import ConfigError
from ganforge.objectives.fgan import F_NAMES, FGAN
from ganforge.objectives.lambertw import lambertw, lambertw_exp, w_plus_inv_w_exp

R, FK = REAL.numpy(), FAKE.numpy()


# ------------------------------------------------------------------------ the f-GAN table
PI = 0.3
ALPHAS = (-0.5, 0.5, 2.0, 3.0)


def _wjs_f(u, pi=PI):
    m = 1 - pi + pi * u
    return pi * special.xlogy(u, u) - special.xlogy(m, m)


def _alpha_f(a):
    return lambda u: (u ** a - 1 - a * (u - 1)) / (a * (a - 1))


def _alpha_conj(a):
    return lambda t: ((1 + (a - 1) * t) ** (a / (a - 1)) - 1) / a


#: Nowozin et al. 2016, Table 1, generator column (f(u), u = p/q), written out here independently.
GENERATORS = {
    "tv": lambda u: 0.5 * np.abs(u - 1),
    "kl": lambda u: special.xlogy(u, u),
    "rkl": lambda u: -np.log(u),
    "pearson": lambda u: (u - 1) ** 2,
    "neyman": lambda u: (1 - u) ** 2 / u,
    "hellinger": lambda u: (np.sqrt(u) - 1) ** 2,
    "jeffrey": lambda u: (u - 1) * np.log(u),
    "js": lambda u: -(u + 1) * np.log((1 + u) / 2) + special.xlogy(u, u),
    "wjs": _wjs_f,
    "gan": lambda u: special.xlogy(u, u) - (u + 1) * np.log(u + 1),
}

#: The conjugates f*(t) of Nowozin et al. 2016, Table 6 (on dom f*), independently.
CONJUGATES = {
    "tv": lambda t: t,
    "kl": lambda t: np.exp(t - 1),
    "rkl": lambda t: -1 - np.log(-t),
    "pearson": lambda t: 0.25 * t * t + t,
    "neyman": lambda t: 2 - 2 * np.sqrt(1 - t),
    "hellinger": lambda t: t / (1 - t),
    "jeffrey": lambda t: np.real(special.lambertw(np.exp(1 - t))) + 1 / np.real(special.lambertw(np.exp(1 - t)))
    + t - 2,
    "js": lambda t: -np.log(2 - np.exp(t)),
    "wjs": lambda t: (1 - PI) * np.log((1 - PI) / (1 - PI * np.exp(t / PI))),
    "gan": lambda t: -np.log(1 - np.exp(t)),
}


def _cases():
    """(id, objective, generator f, conjugate f*, params) for every row, alpha both below and above 1."""
    out = []
    for name in F_NAMES:
        if name == "alpha":
            for a in ALPHAS:
                out.append((f"alpha={a}", objectives.get("alpha", alpha=a), _alpha_f(a), _alpha_conj(a), {"alpha": a}))
        elif name == "wjs":
            out.append(("wjs", objectives.get("wjs", pi=PI), GENERATORS["wjs"], CONJUGATES["wjs"], {"pi": PI}))
        else:
            out.append((name, objectives.get(name), GENERATORS[name], CONJUGATES[name], {}))
    return out


CASES = _cases()
CASE_IDS = [c[0] for c in CASES]
U = np.exp(np.linspace(-4.0, 4.0, 81))  # likelihood ratios p/q from 0.018 to 55


def test_every_row_is_registered_and_covered():
    assert set(F_NAMES) == {"tv", "kl", "rkl", "pearson", "neyman", "hellinger", "jeffrey", "js", "wjs", "gan",
                            "alpha"}
    assert set(F_NAMES) <= set(objectives.names())
    assert {c[0].split("=")[0] for c in CASES} == set(F_NAMES)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_f_matches_generator_column(case):
    name, obj, f, _, _ = case
    u = torch.as_tensor(U)
    assert_allclose(obj.f(u).numpy(), f(U), rtol=1e-10, atol=1e-12)
    # f(1) = 0, so D_f(P||P) = 0; the paper's GAN row is 2 JS - log 4, so its f(1) = -log 4
    f1 = -math.log(4) if name == "gan" else 0.0
    assert float(obj.f(torch.ones(1, dtype=torch.float64))) == pytest.approx(f1, abs=1e-12)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_f_prime_is_the_derivative_of_f(case):
    _, obj, f, _, _ = case
    u = U[np.abs(U - 1) > 1e-3]  # TV's f is not differentiable at 1
    h = 1e-6 * u
    numeric = (f(u + h) - f(u - h)) / (2 * h)
    assert_allclose(obj.f_prime(torch.as_tensor(u)).numpy(), numeric, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_conjugate_matches_closed_form_and_fenchel_young(case):
    """f*(f'(u)) = u f'(u) - f(u) (equality in Fenchel-Young), and t u - f(u) <= f*(t) everywhere."""
    name, obj, f, conj, _ = case
    u = torch.as_tensor(U)
    t = obj.f_prime(u)
    if name == "tv":  # f' is +-1/2 away from u = 1, so test f*(t) = t on the whole closed domain
        ts = np.linspace(-0.5, 0.5, 21)
        assert_allclose(obj.conjugate(torch.as_tensor(ts)).numpy(), ts, rtol=0, atol=1e-15)
        t = torch.as_tensor(ts)
    else:
        fy = (u * t - obj.f(u)).numpy()
        assert_allclose(obj.conjugate(t).numpy(), fy, rtol=1e-9, atol=1e-10)
    assert_allclose(obj.conjugate(t).numpy(), conj(t.numpy()), rtol=1e-9, atol=1e-10)
    # Fenchel-Young inequality on a grid of (u, t): the conjugate is the supremum of t u - f(u)
    uu = np.exp(np.linspace(-12, 12, 4001))[:, None]
    lhs = (t.numpy()[None, :] * uu - f(uu)).max(axis=0)
    fstar = obj.conjugate(t).numpy()
    assert (lhs <= fstar + 1e-9 * (1 + np.abs(fstar))).all()
    assert_allclose(lhs, fstar, rtol=1e-4, atol=1e-4)  # the grid's best u is nearly the arg sup


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_activation_maps_onto_dom_fstar_and_is_increasing(case):
    name, obj, _, _, _ = case
    lo, hi = obj.row.domain
    closed_lo, closed_hi = obj.row.closed
    v = torch.linspace(-30.0, 30.0, 1201, dtype=torch.float64)  # float64 still resolves open ends here
    t = obj.activation(v)
    assert torch.isfinite(t).all()
    assert ((t >= lo) if closed_lo else (t > lo)).all(), f"{name}: g_f leaves dom f* below"
    assert ((t <= hi) if closed_hi else (t < hi)).all(), f"{name}: g_f leaves dom f* above"
    mid = obj.activation(torch.linspace(-15.0, 15.0, 601, dtype=torch.float64))
    assert (torch.diff(mid) > 0).all(), f"{name}: g_f must increase (larger score = more real)"
    # onto: far out, the activation reaches the ends of dom f* (or runs off to -+infinity)
    far = obj.activation(torch.tensor([-1e7, 1e7], dtype=torch.float64))
    for end, value in ((lo, float(far[0])), (hi, float(far[1]))):
        if math.isinf(end):
            assert abs(value) > 100 and math.copysign(1, value) == math.copysign(1, end), (name, end, value)
        else:
            assert value == pytest.approx(end, abs=1e-6), (name, end, value)
    # the stable composite is the plain composition f*(g_f(v)), where the latter is well conditioned
    torch.testing.assert_close(obj.row.fstar_act(v[450:751]), obj.conjugate(obj.activation(v[450:751])),
                               rtol=1e-7, atol=1e-9)


def _fgan_ref(obj, f_conj, vr, vf):
    tr, tf = obj.activation(torch.as_tensor(vr)).numpy(), obj.activation(torch.as_tensor(vf)).numpy()
    return -(tr.mean() - f_conj(tf).mean()), tf


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_fgan_losses_at_fixed_logits(case):
    name, obj, _, conj, params = case
    d_ref, tf = _fgan_ref(obj, conj, R, FK)
    _close(obj.d_loss(real=REAL, fake=FAKE), d_ref, rtol=1e-9, atol=1e-10)
    _close(obj.bound(real=REAL, fake=FAKE), -d_ref, rtol=1e-9, atol=1e-10)
    alt = obj.g_loss(fake=FAKE)
    assert obj.g_form == "alt"
    _close(alt, -tf.mean(), rtol=1e-9, atol=1e-10)
    sat = FGAN(obj.row.name, g_form="saturating", **params)
    _close(sat.g_loss(fake=FAKE), -conj(tf).mean(), rtol=1e-9, atol=1e-10)


def test_activation_table_values():
    """g_f as chosen in the table (monotone increasing versions of Nowozin et al.'s Table 2)."""
    v = torch.as_tensor(R)
    expect = {
        "tv": 0.5 * np.tanh(R), "kl": R, "rkl": -np.exp(-R), "pearson": R, "neyman": 1 - np.exp(-R),
        "hellinger": 1 - np.exp(-R), "jeffrey": R, "js": math.log(2) - np.log1p(np.exp(-R)),
        "gan": -np.log1p(np.exp(-R)),
    }
    for name, ref in expect.items():
        assert_allclose(objectives.get(name).activation(v).numpy(), ref, rtol=1e-12, atol=1e-14, err_msg=name)
    assert_allclose(objectives.get("wjs", pi=PI).activation(v).numpy(),
                    PI * (np.log(_sig(R)) - math.log(PI)), rtol=1e-12)
    for a in ALPHAS:  # b = 1 + (a-1) t = softplus(v)^sign(a-1)
        b = np.log1p(np.exp(R)) ** np.sign(a - 1)
        assert_allclose(objectives.get("alpha", alpha=a).activation(v).numpy(), (b - 1) / (a - 1), rtol=1e-10)


def test_gan_row_recovers_goodfellow():
    """The 'gan' row: d_loss is the logistic loss; saturating G = minimax's, alt G = ns's."""
    gan = objectives.get("gan")
    _close(gan.d_loss(real=REAL, fake=FAKE), objectives.get("ns").d_loss(real=REAL, fake=FAKE))
    _close(gan.g_loss(fake=FAKE), objectives.get("ns").g_loss(fake=FAKE))
    _close(objectives.get("gan", g_form="saturating").g_loss(fake=FAKE),
           objectives.get("minimax").g_loss(fake=FAKE))
    with pytest.raises(ConfigError, match="g_form must be one of alt, saturating"):
        objectives.get("gan", g_form="sat")


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("g_form", ["alt", "saturating"])
def test_finite_values_and_gradients_at_abs_v_50_float32(case, g_form):
    name, obj, _, _, params = case
    obj = FGAN(obj.row.name, g_form=g_form, **params)
    for v0 in (-50.0, -20.0, 0.0, 20.0, 50.0):
        v = torch.full((4,), v0, dtype=torch.float32, requires_grad=True)
        w = torch.full((4,), -v0, dtype=torch.float32, requires_grad=True)
        loss = obj.d_loss(real=v, fake=w) + obj.g_loss(fake=w) + obj.d_loss(real=w, fake=v) + obj.g_loss(fake=v)
        gv, gw = torch.autograd.grad(loss, (v, w))
        assert loss.dtype == torch.float32
        assert torch.isfinite(loss), f"{name} {g_form}: loss {loss} at |v|={abs(v0)}"
        assert torch.isfinite(gv).all() and torch.isfinite(gw).all(), f"{name} {g_form}: grad at |v|={abs(v0)}"


# Gaussian pairs (P data, Q model) with every f-divergence here finite.
PAIRS = [((0.0, 1.0), (0.8, 1.2)), ((0.5, 1.1), (-0.4, 0.95))]
LOG_RATIO_MAX = 30.0  # beyond this, T* = f'(p/q) rounds onto the edge of dom f* in float64


def _quad(fn, lo, hi, points):
    return integrate.quad(fn, lo, hi, points=points, limit=400, epsabs=1e-13, epsrel=1e-11)[0]


def _support(P, Q, lo, hi):
    """The interval of [lo, hi] where |log p/q| <= LOG_RATIO_MAX, and the P and Q mass outside it."""
    x = np.linspace(lo, hi, 200_001)
    ok = np.abs(P.logpdf(x) - Q.logpdf(x)) <= LOG_RATIO_MAX
    idx = np.flatnonzero(ok)
    assert (np.diff(idx) == 1).all(), "the region must be one interval"
    a, b = x[idx[0]], x[idx[-1]]
    outside = max(D.cdf(a) + D.sf(b) for D in (P, Q))
    return a, b, outside


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("pair", PAIRS, ids=["pair0", "pair1"])
def test_variational_bound_is_tight_at_the_optimal_critic(case, pair):
    """E_P[T*] - E_Q[f*(T*)] with T* = f'(p/q) equals D_f(P||Q) = int q f(p/q) (quadrature, 1e-3 rel)."""
    name, obj, f, _, _ = case
    (mp, sp), (mq, sq) = pair
    P, Q = stats.norm(mp, sp), stats.norm(mq, sq)
    lo, hi, outside = _support(P, Q, min(mp - 14 * sp, mq - 14 * sq), max(mp + 14 * sp, mq + 14 * sq))
    assert outside * math.exp(LOG_RATIO_MAX) < 1e-6  # what is left out cannot move the values by 1e-6
    # where p = q (T* jumps there for TV): roots of the quadratic log p - log q
    a = 0.5 / sq**2 - 0.5 / sp**2
    b = mp / sp**2 - mq / sq**2
    c = 0.5 * mq**2 / sq**2 - 0.5 * mp**2 / sp**2 + math.log(sq / sp)
    roots = [float(r.real) for r in np.roots([a, b, c]) if abs(r.imag) < 1e-12 and lo < r.real < hi]
    points = sorted(roots + [mp, mq])

    def ratio(x):
        return math.exp(P.logpdf(x) - Q.logpdf(x))

    def t_star(x):
        return obj.f_prime(torch.tensor([ratio(x)], dtype=torch.float64))

    d_f = _quad(lambda x: Q.pdf(x) * float(f(np.array([ratio(x)]))[0]), lo, hi, points)
    e_p = _quad(lambda x: P.pdf(x) * float(t_star(x)), lo, hi, points)
    e_q = _quad(lambda x: Q.pdf(x) * float(obj.conjugate(t_star(x))), lo, hi, points)
    bound = e_p - e_q
    f1 = float(f(np.array([1.0]))[0])  # D_f(P||P); nonzero only for the GAN row (-log 4)
    assert d_f - f1 > 1e-3, f"{name}: the pair should be distinguishable"
    assert bound == pytest.approx(d_f, rel=1e-3), f"{name}: bound {bound:.8g} vs D_f {d_f:.8g}"


def _gauss_closed_forms(mp, sp, mq, sq) -> dict[str, float]:
    """D_f(N(mp, sp^2) || N(mq, sq^2)) in closed form for the rows that have one."""
    kl_pq = math.log(sq / sp) + (sp**2 + (mp - mq) ** 2) / (2 * sq**2) - 0.5
    kl_qp = math.log(sp / sq) + (sq**2 + (mp - mq) ** 2) / (2 * sp**2) - 0.5
    bc = math.sqrt(2 * sp * sq / (sp**2 + sq**2)) * math.exp(-((mp - mq) ** 2) / (4 * (sp**2 + sq**2)))
    a = 1 / sp**2 - 1 / (2 * sq**2)  # int p^2 / q = pref * int exp(-a x^2 + b x + c)
    b = 2 * mp / sp**2 - mq / sq**2
    c = -(mp**2) / sp**2 + mq**2 / (2 * sq**2)
    p2_over_q = sq / (math.sqrt(2 * math.pi) * sp**2) * math.sqrt(math.pi / a) * math.exp(b * b / (4 * a) + c)
    return {"kl": kl_pq, "rkl": kl_qp, "jeffrey": kl_pq + kl_qp, "hellinger": 2 - 2 * bc,
            "pearson": p2_over_q - 1}


@pytest.mark.parametrize("pair", PAIRS, ids=["pair0", "pair1"])
def test_quadrature_of_q_f_matches_gaussian_closed_forms(pair):
    """The reference D_f above is right: quadrature of q f(p/q) against closed forms (KL, chi^2, Hellinger)."""
    (mp, sp), (mq, sq) = pair
    P, Q = stats.norm(mp, sp), stats.norm(mq, sq)
    lo, hi, _ = _support(P, Q, min(mp - 14 * sp, mq - 14 * sq), max(mp + 14 * sp, mq + 14 * sq))
    for name, exact in _gauss_closed_forms(mp, sp, mq, sq).items():
        f = GENERATORS[name]
        d_f = _quad(lambda x, f=f: Q.pdf(x) * float(f(np.array([math.exp(P.logpdf(x) - Q.logpdf(x))]))[0]),
                    lo, hi, [mp, mq])
        assert d_f == pytest.approx(exact, rel=1e-8), name


def test_bound_below_divergence_for_a_suboptimal_critic():
    """Any critic gives a lower bound: here T = f'(p/q) + 0.3 for KL, P=N(0,1), Q=N(1,1), KL = 1/2."""
    obj = objectives.get("kl")
    P, Q = stats.norm(0, 1), stats.norm(1, 1)

    def t(x):
        return 1 + (P.logpdf(x) - Q.logpdf(x)) + 0.3

    e_p = integrate.quad(lambda x: P.pdf(x) * t(x), -15, 16)[0]
    e_q = integrate.quad(lambda x: Q.pdf(x) * float(obj.conjugate(torch.tensor(t(x)))), -15, 16)[0]
    # E_P[T] - E_Q[e^(T-1)] = (1/2 + 1.3) - e^0.3  < 1/2
    assert e_p - e_q == pytest.approx(1.8 - math.exp(0.3), rel=1e-8)
    assert e_p - e_q < 0.5


# ------------------------------------------------------------------------ Lambert W
def test_lambertw_matches_scipy():
    x = np.concatenate([np.logspace(-12, 300, 400), [1e-300, 0.5, 1.0, math.e, 10.0]])
    ours = lambertw(torch.as_tensor(x)).numpy()
    assert_allclose(ours, np.real(special.lambertw(x)), rtol=1e-12, atol=1e-300)
    assert_allclose(ours * np.exp(ours), x, rtol=1e-11)


def test_lambertw_exp_beyond_float_range_and_gradient():
    s = torch.tensor([-700.0, -30.0, -1.0, 0.0, 1.0, 30.0, 700.0, 1e5], dtype=torch.float64)
    w = lambertw_exp(s)
    torch.testing.assert_close(w + torch.log(w), s, rtol=1e-13, atol=1e-12)  # w e^w = e^s in log form
    assert float(w[3]) == pytest.approx(float(np.real(special.lambertw(1.0))), rel=1e-14)
    s = torch.tensor([-5.0, -0.3, 0.0, 2.0, 40.0], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambertw_exp, (s,))
    assert torch.autograd.gradcheck(w_plus_inv_w_exp, (s,))
    s32 = torch.tensor([-60.0, 60.0], requires_grad=True)
    y = w_plus_inv_w_exp(s32).sum()
    (g,) = torch.autograd.grad(y, s32)
    assert torch.isfinite(y) and torch.isfinite(g).all()
