"""Regularisers as weighted terms that a config lists: ``penalties: {gp: 10, r1: {weight: 1}}``.

Each penalty is a pure function of (critic, real, fake[, c]) returning a scalar,
plus the phase it joins ("d" for the critic's loss, "g" for the generator's).
The configured weight multiplies the returned value; each docstring says the
convention so that weights match the papers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.errors import ConfigError
from ganforge.registry import PENALTIES


def _grad_norm(critic: nn.Module, x: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
    """Per-sample ||d critic(x) / dx||_2, with a graph for double backprop. Shape (N,)."""
    x = x.detach().requires_grad_(True)
    out = critic(x, c) if c is not None else critic(x)
    (g,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    return g.reshape(g.shape[0], -1).norm(2, dim=1)


class Penalty:
    phase = "d"

    def __call__(self, critic: nn.Module, *, real: torch.Tensor, fake: torch.Tensor,
                 c: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError


@PENALTIES.register("gp")
class GradientPenalty(Penalty):
    """WGAN-GP (Gulrajani et al. 2017, eq. 3): E[(||grad D(x_hat)|| - 1)^2] at random interpolates.

    x_hat = e x_real + (1 - e) x_fake, e ~ U[0, 1] per sample. ``one_sided`` penalises
    only norms above 1: E[relu(||grad|| - 1)^2]. Weight = lambda (10 in the paper).
    """

    def __init__(self, *, one_sided: bool = False, target: float = 1.0) -> None:
        if target <= 0:
            raise ConfigError(f"gp target norm must be > 0, got {target}")
        self.one_sided = one_sided
        self.target = target

    def __call__(self, critic, *, real, fake, c=None):
        e = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device, dtype=real.dtype)
        x_hat = e * real.detach() + (1 - e) * fake.detach()
        gap = _grad_norm(critic, x_hat, c) - self.target
        if self.one_sided:
            gap = F.relu(gap)
        return gap.pow(2).mean()


@PENALTIES.register("r1")
class R1(Penalty):
    """R1 (Mescheder et al. 2018, eq. 9): 1/2 E_real[||grad D(x)||^2]. Weight = gamma."""

    def __call__(self, critic, *, real, fake, c=None):
        return 0.5 * _grad_norm(critic, real, c).pow(2).mean()


@PENALTIES.register("r2")
class R2(Penalty):
    """R2 (Mescheder et al. 2018, eq. 10): 1/2 E_fake[||grad D(x)||^2]. Weight = gamma."""

    def __call__(self, critic, *, real, fake, c=None):
        return 0.5 * _grad_norm(critic, fake, c).pow(2).mean()


@PENALTIES.register("pull-away")
class PullAway(Penalty):
    """EBGAN's pull-away term (Zhao et al. 2017, eq. 4), a generator penalty.

    PT = 1/(N(N-1)) sum_{i != j} cos^2(s_i, s_j) over the critic's embeddings
    s = critic.embed(G(z)) of a fake batch; the critic must have ``embed``.
    """

    phase = "g"

    def __call__(self, critic, *, real, fake, c=None):
        if not hasattr(critic, "embed"):
            raise ConfigError("penalty 'pull-away' needs a critic with an embedding (net 'ae')")
        s = critic.embed(fake, c) if c is not None else critic.embed(fake)
        s = F.normalize(s.reshape(s.shape[0], -1), dim=1)
        n = s.shape[0]
        cos2 = (s @ s.t()).pow(2)
        return (cos2.sum() - cos2.diagonal().sum()) / (n * (n - 1))


def build_penalties(spec: dict, objective=None) -> list[tuple[str, float, Penalty]]:
    """``{name: weight}`` or ``{name: {weight: w, **params}}`` -> [(name, weight, penalty)].

    The objective's ``default_penalties`` (WGAN-GP's gp: 10) come first; the
    config can override their weight or set it to 0 to switch one off.
    """
    merged: dict[str, dict] = {}
    for name, w in (getattr(objective, "default_penalties", {}) or {}).items():
        merged[name] = {"weight": w}
    for name, val in (spec or {}).items():
        entry = dict(val) if isinstance(val, dict) else {"weight": val}
        merged[name] = {**merged.get(name, {}), **entry}
    out = []
    for name, entry in merged.items():
        entry = dict(entry)
        weight = entry.pop("weight", None)
        if weight is None:
            raise ConfigError(f"penalty {name!r} needs a weight, e.g. penalties: {{{name}: 10}}")
        try:
            weight = float(weight)
        except (TypeError, ValueError):
            raise ConfigError(f"penalty {name!r} weight must be a number, got {weight!r}") from None
        if weight < 0:
            raise ConfigError(f"penalty {name!r} weight must be >= 0, got {weight}")
        if weight > 0:
            out.append((name, weight, PENALTIES.build(name, **entry)))
    return out
