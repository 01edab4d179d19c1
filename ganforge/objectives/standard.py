"""The non-f objectives: Goodfellow's two generator losses, Wasserstein, hinge, least squares.

All work on raw critic scores v (logits), larger = more real:
log D = logsigmoid(v) = -softplus(-v) and log(1 - D) = -softplus(v).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.errors import ConfigError
from ganforge.objectives.base import Objective
from ganforge.registry import OBJECTIVES


def _check_smoothing(smoothing: float) -> None:
    if not 0.0 <= smoothing < 0.5:
        raise ConfigError(f"smoothing must lie in [0, 0.5), got {smoothing}")


class _Logistic(Objective):
    """The discriminator's cross-entropy, with optional one-sided label smoothing.

    With smoothing s the real target is 1 - s and the fake target stays 0
    (Salimans et al. 2016, Sec. 3.4): d_loss = (1-s) softplus(-v_r) + s softplus(v_r) + softplus(v_f).
    """

    def __init__(self, *, smoothing: float = 0.0) -> None:
        _check_smoothing(smoothing)
        self.smoothing = smoothing

    def d_loss(self, *, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        s = self.smoothing
        real_term = F.softplus(-real) if s == 0 else (1 - s) * F.softplus(-real) + s * F.softplus(real)
        return real_term.mean() + F.softplus(fake).mean()


@OBJECTIVES.register("minimax")
class Minimax(_Logistic):
    """Goodfellow et al. 2014, eq. 1: the zero-sum game; G minimises log(1 - D(G(z))) (saturates)."""

    name = "minimax"

    def g_loss(self, *, fake: torch.Tensor, real: torch.Tensor | None = None) -> torch.Tensor:
        return -F.softplus(fake).mean()


@OBJECTIVES.register("ns")
class NonSaturating(_Logistic):
    """Goodfellow et al. 2014, Sec. 3: non-saturating G loss -log D(G(z))."""

    name = "ns"

    def g_loss(self, *, fake: torch.Tensor, real: torch.Tensor | None = None) -> torch.Tensor:
        return F.softplus(-fake).mean()


OBJECTIVES.explain("vanilla", "'vanilla' is ambiguous, so it is not a name: say which one you mean, 'minimax' "
                   "(the zero-sum game, saturating G loss) or 'ns' (non-saturating G loss).")


@OBJECTIVES.register("wgan")
class Wasserstein(Objective):
    """Arjovsky et al. 2017: critic maximises E[D(x)] - E[D(G(z))]; weights clipped to [-clip, clip]."""

    name = "wgan"

    def __init__(self, *, clip: float | None = 0.01) -> None:
        if clip is not None and clip <= 0:
            raise ConfigError(f"clip must be > 0 (or null for no clipping), got {clip}")
        self.clip = clip

    def d_loss(self, *, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return fake.mean() - real.mean()

    def g_loss(self, *, fake: torch.Tensor, real: torch.Tensor | None = None) -> torch.Tensor:
        return -fake.mean()

    @torch.no_grad()
    def constrain(self, critic: nn.Module) -> None:
        if self.clip is not None:
            for p in critic.parameters():
                p.clamp_(-self.clip, self.clip)


@OBJECTIVES.register("wgan-gp")
class WassersteinGP(Wasserstein):
    """Gulrajani et al. 2017: the Wasserstein loss plus a gradient penalty (penalty 'gp', weight 10)."""

    name = "wgan-gp"
    default_penalties = {"gp": 10.0}

    def __init__(self) -> None:
        super().__init__(clip=None)


@OBJECTIVES.register("hinge")
class Hinge(Objective):
    """Lim & Ye 2017 / Miyato et al. 2018: d = relu(1 - v_r) + relu(1 + v_f), g = -v_f."""

    name = "hinge"

    def d_loss(self, *, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()

    def g_loss(self, *, fake: torch.Tensor, real: torch.Tensor | None = None) -> torch.Tensor:
        return -fake.mean()


@OBJECTIVES.register("lsgan")
class LeastSquares(Objective):
    """Mao et al. 2017, eq. 2: d = 1/2 (v_r - b)^2 + 1/2 (v_f - a)^2, g = 1/2 (v_f - c)^2.

    Defaults a=0, b=1, c=1; a=-1, b=1, c=0 minimises the Pearson chi^2 divergence (their eq. 8).
    """

    name = "lsgan"

    def __init__(self, *, a: float = 0.0, b: float = 1.0, c: float = 1.0) -> None:
        if a == b:
            raise ConfigError(f"lsgan targets a (fake) and b (real) must differ, got a=b={a}")
        self.a, self.b, self.c = a, b, c

    def d_loss(self, *, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((real - self.b) ** 2).mean() + 0.5 * ((fake - self.a) ** 2).mean()

    def g_loss(self, *, fake: torch.Tensor, real: torch.Tensor | None = None) -> torch.Tensor:
        return 0.5 * ((fake - self.c) ** 2).mean()
