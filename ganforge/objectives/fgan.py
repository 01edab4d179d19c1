"""The f-GAN family (Nowozin, Cseke, Tomioka 2016) as one table.

D_f(P || Q) = integral q(x) f(p(x) / q(x)) dx, P the data, Q the model; the
divergence is *defined* by its generator f (so ``js`` here is the generator
-(u+1) log((1+u)/2) + u log u of the lecture's table, which integrates to
2 JS(P||Q); ``wjs`` with pi = 1/2 gives JS itself).

Each row gives f, f' (for the optimal critic T* = f'(p/q)), the output
activation g_f mapping a raw score v in R into dom f*, the conjugate f*, and
the composition f*(g_f(v)) written in a numerically stable form. Two generic
formulas (eq. 6 of the paper) then give every loss:

    d_loss = -( mean g_f(v_real) - mean f*(g_f(v_fake)) )
    g_loss = -mean f*(g_f(v_fake))      g_form="saturating" (the minimax game)
    g_loss = -mean g_f(v_fake)          g_form="alt"        (the paper's alternative, Sec. 3.2)

The ``gan`` row with g_form="saturating" is Goodfellow's minimax game, with
g_form="alt" the non-saturating one.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.special import xlogy

from ganforge.errors import ConfigError
from ganforge.objectives.base import Objective
from ganforge.objectives.lambertw import w_plus_inv_w_exp
from ganforge.registry import OBJECTIVES

Fn = Callable[[torch.Tensor], torch.Tensor]
INF = math.inf


@dataclass(frozen=True)
class FRow:
    """One row of the f-divergence table."""

    name: str
    title: str
    f: Fn              # generator f(u), u = p/q > 0
    f_prime: Fn        # f'(u): the optimal critic is T* = f'(p/q)
    activation: Fn     # g_f: R -> dom f*
    conjugate: Fn      # f*(t) on dom f*
    fstar_act: Fn      # f*(g_f(v)), stable
    domain: tuple[float, float]  # dom f* (open unless the bound is attained, see closed)
    closed: tuple[bool, bool] = (False, False)


def _log(x):
    return torch.log(x)


def log_softplus(v: torch.Tensor) -> torch.Tensor:
    """log(softplus(v)) with finite value and gradient for very negative v.

    Below v = -15, log softplus(v) = v + log(1 - e^v/2 + ...) ~ v - e^v / 2; each
    branch only ever sees inputs on its own side, so no inf * 0 in the backward pass.
    """
    hi = v.clamp_min(-15.0)
    lo = v.clamp_max(-15.0)
    return torch.where(v > -15.0, torch.log(F.softplus(hi)), lo - 0.5 * torch.exp(lo))


def _rows(pi: float = 0.5, alpha: float = 0.5) -> dict[str, FRow]:
    sp, lsig = F.softplus, F.logsigmoid
    ln2 = math.log(2.0)
    rows = [
        FRow("tv", "total variation", lambda u: 0.5 * (u - 1).abs(), lambda u: 0.5 * torch.sign(u - 1),
             lambda v: 0.5 * torch.tanh(v), lambda t: t, lambda v: 0.5 * torch.tanh(v),
             (-0.5, 0.5), (True, True)),
        FRow("kl", "Kullback-Leibler", lambda u: xlogy(u, u), lambda u: 1 + _log(u),
             lambda v: v, lambda t: torch.exp(t - 1), lambda v: torch.exp(v - 1), (-INF, INF)),
        FRow("rkl", "reverse Kullback-Leibler", lambda u: -_log(u), lambda u: -1 / u,
             lambda v: -torch.exp(-v), lambda t: -1 - _log(-t), lambda v: v - 1, (-INF, 0.0)),
        FRow("pearson", "Pearson chi^2", lambda u: (u - 1) ** 2, lambda u: 2 * (u - 1),
             lambda v: v, lambda t: 0.25 * t * t + t, lambda v: 0.25 * v * v + v, (-INF, INF)),
        FRow("neyman", "Neyman chi^2", lambda u: (1 - u) ** 2 / u, lambda u: 1 - u ** -2,
             lambda v: 1 - torch.exp(-v), lambda t: 2 - 2 * torch.sqrt(1 - t),
             lambda v: 2 - 2 * torch.exp(-0.5 * v), (-INF, 1.0)),
        FRow("hellinger", "squared Hellinger", lambda u: (torch.sqrt(u) - 1) ** 2, lambda u: 1 - u ** -0.5,
             lambda v: 1 - torch.exp(-v), lambda t: t / (1 - t), lambda v: torch.expm1(v), (-INF, 1.0)),
        FRow("jeffrey", "Jeffrey", lambda u: (u - 1) * _log(u), lambda u: _log(u) + 1 - 1 / u,
             lambda v: v, lambda t: w_plus_inv_w_exp(1 - t) + t - 2,
             lambda v: w_plus_inv_w_exp(1 - v) + v - 2, (-INF, INF)),
        FRow("js", "Jensen-Shannon (x2, the table's generator)",
             lambda u: -xlogy(u + 1, (1 + u) / 2) + xlogy(u, u), lambda u: _log(2 * u / (1 + u)),
             lambda v: ln2 - sp(-v), lambda t: -_log(2 - torch.exp(t)), lambda v: sp(v) - ln2, (-INF, ln2)),
        FRow("wjs", f"weighted Jensen-Shannon (pi={pi})",
             lambda u: pi * xlogy(u, u) - xlogy(1 - pi + pi * u, 1 - pi + pi * u),
             lambda u: pi * _log(u / (1 - pi + pi * u)),
             lambda v: pi * (lsig(v) - math.log(pi)),
             lambda t: -(1 - pi) * _log((1 - pi * torch.exp(t / pi)) / (1 - pi)),
             lambda v: (1 - pi) * (sp(v) + math.log(1 - pi)), (-INF, -pi * math.log(pi))),
        FRow("gan", "GAN (2 JS - log 4)", lambda u: xlogy(u, u) - xlogy(u + 1, u + 1),
             lambda u: _log(u / (u + 1)), lambda v: lsig(v), lambda t: -_log(-torch.expm1(t)),
             lambda v: sp(v), (-INF, 0.0)),
    ]
    rows.append(_alpha_row(alpha))
    return {r.name: r for r in rows}


def _alpha_row(a: float) -> FRow:
    """alpha-divergence, f(u) = (u^a - 1 - a (u - 1)) / (a (a - 1)), a not in {0, 1}.

    dom f* is {t : 1 + (a-1) t > 0}. We write b = 1 + (a-1) t = softplus(v)^sign(a-1),
    so g_f(v) = (b - 1)/(a - 1) covers all of dom f*, and
    f*(g_f(v)) = (softplus(v)^(a/|a-1|) - 1)/a stays finite at |v| = 50 in
    float32 for a <= 0.95 and a >= 1.05 (the power grows like |v|^(a/|a-1|)).
    """
    if a in (0.0, 1.0) or not math.isfinite(a):
        raise ConfigError(f"alpha must be a finite number other than 0 and 1 (those are KL limits), got {a}")
    s = 1.0 if a > 1 else -1.0
    e = a / abs(a - 1)

    def act(v):
        return (torch.exp(s * log_softplus(v)) - 1) / (a - 1)

    def conj(t):
        return ((1 + (a - 1) * t) ** (a / (a - 1)) - 1) / a

    def fstar_act(v):
        return (torch.exp(e * log_softplus(v)) - 1) / a

    dom = (-1 / (a - 1), INF) if a > 1 else (-INF, 1 / (1 - a))
    return FRow("alpha", f"alpha-divergence (alpha={a})",
                lambda u: (u ** a - 1 - a * (u - 1)) / (a * (a - 1)),
                lambda u: (u ** (a - 1) - 1) / (a - 1), act, conj, fstar_act, dom)


def f_row(name: str, *, pi: float = 0.5, alpha: float = 0.5) -> FRow:
    """The table row for ``name`` (parameters: ``pi`` for wjs, ``alpha`` for alpha)."""
    if not 0.0 < pi < 1.0:
        raise ConfigError(f"pi must lie in (0, 1), got {pi}")
    rows = _rows(pi=pi, alpha=alpha) if name == "alpha" else _rows(pi=pi)
    if name not in rows:
        raise ConfigError(f"unknown f-divergence {name!r}. Valid: {', '.join(F_NAMES)}")
    return rows[name]


F_NAMES = ("tv", "kl", "rkl", "pearson", "neyman", "hellinger", "jeffrey", "js", "wjs", "gan", "alpha")
G_FORMS = ("alt", "saturating")


class FGAN(Objective):
    """f-GAN objective for one row of the table (Nowozin et al. 2016, eq. 6).

    g_form: "alt" (default) minimises -mean g_f(v_fake), the paper's
    alternative that does not saturate early; "saturating" minimises
    -mean f*(g_f(v_fake)), the true saddle-point objective.
    """

    def __init__(self, divergence: str, *, g_form: str = "alt", pi: float = 0.5, alpha: float = 0.5) -> None:
        if g_form not in G_FORMS:
            raise ConfigError(f"g_form must be one of {', '.join(G_FORMS)}, got {g_form!r}")
        self.row = f_row(divergence, pi=pi, alpha=alpha)
        self.name = divergence
        self.g_form = g_form

    # The table, exposed per objective.
    def f(self, u: torch.Tensor) -> torch.Tensor:
        return self.row.f(u)

    def f_prime(self, u: torch.Tensor) -> torch.Tensor:
        return self.row.f_prime(u)

    def activation(self, v: torch.Tensor) -> torch.Tensor:
        return self.row.activation(v)

    def conjugate(self, t: torch.Tensor) -> torch.Tensor:
        return self.row.conjugate(t)

    def bound(self, *, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """Variational lower bound E_P[g_f(v)] - E_Q[f*(g_f(v))] <= D_f(P||Q)."""
        return self.row.activation(real).mean() - self.row.fstar_act(fake).mean()

    def d_loss(self, *, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return -self.bound(real=real, fake=fake)

    def g_loss(self, *, fake: torch.Tensor, real: torch.Tensor | None = None) -> torch.Tensor:
        if self.g_form == "saturating":
            return -self.row.fstar_act(fake).mean()
        return -self.row.activation(fake).mean()

    def __repr__(self) -> str:
        return f"FGAN({self.row.title}, g_form={self.g_form!r})"


def _register(name: str) -> None:
    title = _rows()[name].title

    if name == "wjs":
        def factory(*, g_form: str = "alt", pi: float = 0.5) -> FGAN:
            return FGAN("wjs", g_form=g_form, pi=pi)
    elif name == "alpha":
        def factory(*, g_form: str = "alt", alpha: float = 0.5) -> FGAN:
            return FGAN("alpha", g_form=g_form, alpha=alpha)
    else:
        def factory(*, g_form: str = "alt", _name: str = name) -> FGAN:
            return FGAN(_name, g_form=g_form)

    OBJECTIVES.add(name, factory, help=f"f-GAN, {title}")


for _n in F_NAMES:
    _register(_n)
