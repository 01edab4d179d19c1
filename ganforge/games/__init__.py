"""Games: each declares its networks, optimizer groups and phases (see ``base.Game``)."""

from ganforge.games import adda, bigan, cgan, cyclegan, dann, gain, gan, pix2pix, srgan, ssgan, stargan  # noqa: F401  (register)
from ganforge.games.base import Game, Phase
from ganforge.registry import GAMES

__all__ = ["Game", "Phase", "GAMES"]
