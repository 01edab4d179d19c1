"""The objective interface.

Convention, stated once: a discriminator/critic returns raw scores (logits),
larger means "more real". Every loss is a pure function of those scores,
keyword-only, averaged over the batch, and minimised:

    d_loss(*, real, fake) -> scalar     the critic's loss
    g_loss(*, fake, real=None) -> scalar the generator's loss

``real`` is passed to ``g_loss`` only for objectives that declare
``g_needs_real = True`` (MMD-GAN compares feature sets).
"""

from __future__ import annotations

import torch
from torch import nn


class Objective:
    """Base class. Subclasses implement ``d_loss`` and ``g_loss``."""

    name: str = ""
    #: the generator loss needs the critic's scores on real data too
    g_needs_real: bool = False
    #: penalties this objective implies, {penalty name: weight} (WGAN-GP -> {"gp": 10})
    default_penalties: dict[str, float] = {}
    #: number of critic outputs per sample the objective expects (MMD uses a feature vector)
    critic_outputs: int = 1

    def d_loss(self, *, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def g_loss(self, *, fake: torch.Tensor, real: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    def constrain(self, critic: nn.Module) -> None:
        """Called after every critic update (weight clipping for WGAN); default: nothing."""

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({params})"
