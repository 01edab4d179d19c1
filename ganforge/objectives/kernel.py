"""Objectives whose critic is not a single score: MMD-GAN and the energy-based GAN."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.errors import ConfigError
from ganforge.objectives.base import Objective
from ganforge.registry import OBJECTIVES


def rbf_mixture_kernel(x: torch.Tensor, y: torch.Tensor, sigmas: tuple[float, ...]) -> torch.Tensor:
    """k(x, y) = sum_s exp(-||x - y||^2 / (2 s^2)); x (n, d), y (m, d) -> (n, m)."""
    d2 = torch.cdist(x, y).pow(2)
    return sum(torch.exp(-d2 / (2.0 * s * s)) for s in sigmas)


def mmd2_unbiased(x: torch.Tensor, y: torch.Tensor, sigmas: tuple[float, ...]) -> torch.Tensor:
    """Unbiased MMD^2 (Gretton et al. 2012, eq. 3): diagonal terms of k(x,x), k(y,y) excluded."""
    n, m = x.shape[0], y.shape[0]
    if n < 2 or m < 2:
        raise ValueError("the unbiased MMD needs at least 2 samples on each side")
    kxx, kyy, kxy = rbf_mixture_kernel(x, x, sigmas), rbf_mixture_kernel(y, y, sigmas), rbf_mixture_kernel(x, y, sigmas)
    sxx = (kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1))
    syy = (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
    return sxx + syy - 2 * kxy.mean()


def median_distance(x: torch.Tensor, y: torch.Tensor, max_n: int = 128) -> torch.Tensor:
    """Median pairwise Euclidean distance (i < j) over the pooled first ``max_n`` rows of x and of y,
    detached: the median heuristic bandwidth (Gretton et al. 2012, Sec. 8). A floor of 1e-6 keeps a
    collapsed sample finite."""
    z = torch.cat([x[:max_n], y[:max_n]]).detach()
    return torch.pdist(z).median().clamp_min(1e-6)


BANDWIDTHS = ("fixed", "median")


@OBJECTIVES.register("mmd")
class MMD(Objective):
    """MMD-GAN (Li et al. 2017): a kernel two-sample test on critic features.

    The critic outputs ``features`` numbers per sample; the critic maximises the
    unbiased MMD^2 between real and fake features under a mixture of RBF kernels,
    the generator minimises it. ``bandwidth="fixed"`` uses ``sigmas`` as they are
    (the paper's {1, 2, 4, 8, 16}, meant for features of that scale) with weight
    clipping (``clip``) keeping the critic bounded, as in the paper.
    ``bandwidth="median"`` multiplies each of ``sigmas`` by the median pairwise
    distance of the batch's features (detached), so the kernel follows the
    features' scale: the MMD is then invariant to rescaling the features and the
    critic needs no clipping. With clip 0.01 and fixed bandwidths a small MLP's
    features shrink until every kernel value is ~1 and both losses are ~0.
    """

    name = "mmd"
    g_needs_real = True

    def __init__(self, *, sigmas: list[float] = (1.0, 2.0, 4.0, 8.0, 16.0), features: int = 16,
                 clip: float | None = 0.01, bandwidth: str = "fixed") -> None:
        if not sigmas or any(s <= 0 for s in sigmas):
            raise ConfigError(f"sigmas must be a non-empty list of positive bandwidths, got {sigmas}")
        if features < 1:
            raise ConfigError(f"features must be >= 1, got {features}")
        if bandwidth not in BANDWIDTHS:
            raise ConfigError(f"bandwidth must be one of {', '.join(BANDWIDTHS)}, got {bandwidth!r}")
        if clip is not None and clip <= 0:
            raise ConfigError(f"clip must be > 0 (or null for no clipping), got {clip}")
        self.sigmas = tuple(float(s) for s in sigmas)
        self.critic_outputs = features
        self.clip = clip
        self.bandwidth = bandwidth

    def _flat(self, v: torch.Tensor) -> torch.Tensor:
        return v.reshape(v.shape[0], -1)

    def mmd2(self, *, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """Unbiased MMD^2 between the two feature sets under this objective's kernel."""
        x, y = self._flat(real), self._flat(fake)
        sigmas: tuple = self.sigmas
        if self.bandwidth == "median":
            med = median_distance(x, y)
            sigmas = tuple(s * med for s in self.sigmas)
        return mmd2_unbiased(x, y, sigmas)

    def d_loss(self, *, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return -self.mmd2(real=real, fake=fake)

    def g_loss(self, *, fake: torch.Tensor, real: torch.Tensor | None = None) -> torch.Tensor:
        if real is None:
            raise ValueError("mmd.g_loss needs the critic's features of a real batch (real=...)")
        return self.mmd2(real=real, fake=fake)

    @torch.no_grad()
    def constrain(self, critic: nn.Module) -> None:
        if self.clip is not None:
            for p in critic.parameters():
                p.clamp_(-self.clip, self.clip)


@OBJECTIVES.register("ebgan")
class EnergyBased(Objective):
    """Energy-based GAN (Zhao et al. 2017, eqs. 1-2) with margin m.

    The discriminator is an auto-encoder (net ``ae``) whose score is minus its
    energy, the per-sample reconstruction error: v = -E(x). So
    d_loss = E(x) + relu(m - E(G(z))) = -v_r + relu(m + v_f), g_loss = E(G(z)) = -v_f.
    The pull-away term is the generator penalty ``pull-away``.
    """

    name = "ebgan"

    def __init__(self, *, margin: float = 1.0) -> None:
        if margin <= 0:
            raise ConfigError(f"margin must be > 0, got {margin}")
        self.margin = margin

    def d_loss(self, *, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return (-real).mean() + F.relu(self.margin + fake).mean()

    def g_loss(self, *, fake: torch.Tensor, real: torch.Tensor | None = None) -> torch.Tensor:
        return (-fake).mean()
