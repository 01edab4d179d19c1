"""Instance noise (Sønderby et al. 2017; Arjovsky & Bottou 2017): Gaussian noise on D's inputs.

Adding N(0, sigma^2 I) to real and fake samples alike makes the two distributions
overlap, so the critic's task is never trivially separable early in training;
sigma is annealed towards 0 so that the game ends on the clean data.
"""

from __future__ import annotations

import math

import torch

from ganforge.errors import ConfigError

NOISE_SCHEDULES = ("linear", "exp")


def instance_noise_sigma(step: int, sigma0: float, anneal: int = 0, schedule: str = "linear") -> float:
    """sigma at training step ``step``.

    anneal = 0: constant sigma0. linear: sigma0 * max(0, 1 - step / anneal) (zero from step ``anneal`` on).
    exp: sigma0 * exp(-step / anneal) (``anneal`` is the e-folding time in steps).
    """
    if sigma0 < 0 or anneal < 0:
        raise ConfigError(f"instance noise needs sigma0 >= 0 and anneal >= 0, got {sigma0}, {anneal}")
    if schedule not in NOISE_SCHEDULES:
        raise ConfigError(f"instance_noise_schedule must be one of {', '.join(NOISE_SCHEDULES)}, got {schedule!r}")
    if sigma0 == 0 or anneal == 0:
        return float(sigma0)
    if schedule == "linear":
        return sigma0 * max(0.0, 1.0 - step / anneal)
    return sigma0 * math.exp(-step / anneal)


def add_instance_noise(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """x + sigma * eps, eps ~ N(0, I) drawn fresh per call; x itself when sigma is 0."""
    return x if sigma <= 0 else x + sigma * torch.randn_like(x)
