"""Conditional GAN (Mirza & Osindero 2014) with DCGAN nets: the ``gan`` game with ``conditional=True``.

G(z, c) and D(x, c) both take the class label; real pairs (x, y) come from the
data and fake pairs (G(z, c), c) use labels drawn from the data's class
frequencies. Everything else (objectives, penalties, stabilisers, k critic
steps) is the ``gan`` game's: this file only fixes ``conditional`` and names the
game, so ``ganforge train`` and ``ganforge bench cgan`` share one name. Its
config parameters are exactly the ``gan`` game's, less ``conditional``.
"""

from __future__ import annotations

import inspect

from ganforge.games.gan import GAN
from ganforge.registry import GAMES


@GAMES.register("cgan")
class CGAN(GAN):
    """Conditional GAN: G(z, c), D(x, c) on labelled data (recipe: configs/cgan/fmnist.yaml, DCGAN nets)."""

    def __init__(self, **params) -> None:
        super().__init__(conditional=True, **params)

    @classmethod
    def default_nets(cls) -> dict[str, dict]:
        """DCGAN nets for roles the config leaves out."""
        return {"g": {"name": "dcgan"}, "d": {"name": "dcgan"}}


# The config layer reads a game's parameters from its signature: the gan game's, without `conditional`.
_sig = inspect.signature(GAN.__init__)
CGAN.__signature__ = inspect.Signature([p for n, p in _sig.parameters.items() if n not in ("self", "conditional")])
