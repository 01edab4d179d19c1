"""Objectives (C2): each a pure function of raw critic scores, chosen by name.

Convention: D returns raw scores, larger = more real. Losses are keyword-only:
``d_loss(*, real, fake)`` and ``g_loss(*, fake)``. See ``base.Objective``.

    >>> from ganforge import objectives
    >>> obj = objectives.get("alpha", alpha=2.0)
"""

from ganforge.objectives import fgan, kernel, standard  # noqa: F401  (register)
from ganforge.objectives.base import Objective
from ganforge.objectives.fgan import F_NAMES, FGAN, f_row
from ganforge.registry import OBJECTIVES


def get(name: str, **params) -> Objective:
    """The objective registered as ``name``, built with ``params`` (validated)."""
    return OBJECTIVES.build(name, **params)


def names() -> list[str]:
    return OBJECTIVES.names()


__all__ = ["Objective", "FGAN", "F_NAMES", "f_row", "get", "names", "OBJECTIVES"]
