"""Optimizers by name: SGD, Adam, RMSprop (separate settings per optimizer group)."""

from __future__ import annotations

import torch

from ganforge.errors import ConfigError
from ganforge.registry import OPTIMIZERS


def _lr(lr: float) -> None:
    if lr <= 0:
        raise ConfigError(f"learning rate must be > 0, got {lr}")


@OPTIMIZERS.register("adam")
def adam(params, *, lr: float = 2e-4, betas: list[float] = (0.5, 0.999), eps: float = 1e-8,
         weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """Adam (Kingma & Ba 2015); GAN default betas (0.5, 0.999) as in DCGAN."""
    _lr(lr)
    if len(betas) != 2 or not all(0 <= b < 1 for b in betas):
        raise ConfigError(f"adam betas must be two numbers in [0, 1), got {betas}")
    return torch.optim.Adam(params, lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay)


@OPTIMIZERS.register("sgd")
def sgd(params, *, lr: float = 1e-2, momentum: float = 0.0, weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """SGD with optional momentum (Goodfellow et al. 2014 used momentum)."""
    _lr(lr)
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)


@OPTIMIZERS.register("rmsprop")
def rmsprop(params, *, lr: float = 5e-5, alpha: float = 0.99, eps: float = 1e-8,
            momentum: float = 0.0) -> torch.optim.Optimizer:
    """RMSprop (the WGAN paper's choice, lr 5e-5)."""
    _lr(lr)
    return torch.optim.RMSprop(params, lr=lr, alpha=alpha, eps=eps, momentum=momentum)


def linear_decay(start: int | None, steps: int):
    """CycleGAN's schedule as an lr factor of the step: 1 until ``start``, then linearly to 0 over ``steps``."""

    def factor(step: int) -> float:
        if start is None or step < start:
            return 1.0
        return max(0.0, 1.0 - (step - start) / steps) if steps > 0 else 0.0

    return factor


def build_schedulers(optimizers: dict[str, torch.optim.Optimizer], train_cfg) -> dict:
    """One LambdaLR per optimizer group when ``train.lr_decay_start`` is set (stepped once per training step).

    Game-agnostic: every group decays alike. Their state (the step count) goes into checkpoints.
    """
    if train_cfg.lr_decay_start is None:
        return {}
    if train_cfg.lr_decay_steps < 1:
        raise ConfigError(f"train.lr_decay_start is set ({train_cfg.lr_decay_start}) but train.lr_decay_steps is "
                          f"{train_cfg.lr_decay_steps}: give the number of steps the decay to 0 takes (>= 1)")
    fn = linear_decay(train_cfg.lr_decay_start, train_cfg.lr_decay_steps)
    return {k: torch.optim.lr_scheduler.LambdaLR(o, fn) for k, o in optimizers.items()}
