"""Exponential moving average of selected networks (Karras et al. 2018; Yazici et al. 2019)."""

from __future__ import annotations

import copy
from contextlib import contextmanager

import torch
from torch import nn


class EMA(nn.Module):
    """Shadow copies of ``roles``; ``swap_in(game)`` lends them to the game for sampling."""

    def __init__(self, nets: nn.ModuleDict, roles: tuple[str, ...], decay: float) -> None:
        super().__init__()
        self.decay = decay
        self.shadow = nn.ModuleDict({r: copy.deepcopy(nets[r]).requires_grad_(False) for r in roles})

    @torch.no_grad()
    def update(self, nets: nn.ModuleDict, roles) -> None:
        for r in roles:
            if r not in self.shadow:
                continue
            for ps, p in zip(self.shadow[r].parameters(), nets[r].parameters(), strict=True):
                ps.lerp_(p, 1.0 - self.decay)
            for bs, b in zip(self.shadow[r].buffers(), nets[r].buffers(), strict=True):
                bs.copy_(b)

    @contextmanager
    def swap_in(self, game):
        saved = {r: game.nets[r] for r in self.shadow}
        try:
            for r, m in self.shadow.items():
                game.nets[r] = m
            yield game
        finally:
            for r, m in saved.items():
                game.nets[r] = m
