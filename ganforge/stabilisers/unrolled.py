"""Unrolled GAN (Metz et al. 2017): the generator's loss through k look-ahead critic updates.

theta_D^0 = theta_D, theta_D^{j+1} = theta_D^j - eta * update(d L_D / d theta_D^j) (their eq. 4, written
for a minimised critic loss), and G minimises f(theta_G, theta_D^k). The graph of every look-ahead
step is kept (``create_graph``), so dL_G / d theta_G includes the terms through the unrolling
(their eq. 8's second term). The real critic is not changed: the look-ahead runs on copies of its
parameters with ``torch.func.functional_call``, and its buffers (batch-norm statistics, spectral
norm's power-iteration vectors) are cloned so that nothing in it moves.

update = the gradient itself ("sgd"), or a fresh Adam (bias-corrected moments started at 0, as an
optimiser built at theta_D would do; sqrt(v_hat + eps^2) instead of sqrt(v_hat) + eps keeps the
second derivative finite where a gradient is 0).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.func import functional_call

from ganforge.errors import ConfigError

UNROLL_OPTIMIZERS = ("adam", "sgd")

#: loss(critic_call) -> scalar, where critic_call(x, c) evaluates the critic with the unrolled state
CriticLoss = Callable[[Callable[..., torch.Tensor]], torch.Tensor]


def _caller(critic: nn.Module, state: dict[str, torch.Tensor]) -> Callable[..., torch.Tensor]:
    def call(x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        return functional_call(critic, state, (x, c))

    return call


def unroll(critic: nn.Module, d_loss: CriticLoss, *, steps: int, lr: float, optimizer: str = "adam",
           betas: tuple[float, float] = (0.5, 0.999), eps: float = 1e-8) -> Callable[..., torch.Tensor]:
    """Run ``steps`` differentiable critic updates on ``d_loss``; return the unrolled critic x, c -> scores.

    ``d_loss`` gets a callable critic and returns the critic's loss (on samples that keep their
    graph to G, so that the unrolled parameters are functions of theta_G).
    """
    if steps < 0 or lr <= 0:
        raise ConfigError(f"unrolling needs steps >= 0 and lr > 0, got steps={steps}, lr={lr}")
    if optimizer not in UNROLL_OPTIMIZERS:
        raise ConfigError(f"unrolled optimizer must be one of {', '.join(UNROLL_OPTIMIZERS)}, got {optimizer!r}")
    params = {n: p.detach().requires_grad_(True) for n, p in critic.named_parameters()}
    buffers = {n: b.detach().clone() for n, b in critic.named_buffers()}
    names = list(params)
    m = {n: torch.zeros_like(p) for n, p in params.items()}
    v = {n: torch.zeros_like(p) for n, p in params.items()}
    b1, b2 = betas
    for t in range(1, steps + 1):
        loss = d_loss(_caller(critic, {**params, **buffers}))
        grads = torch.autograd.grad(loss, [params[n] for n in names], create_graph=True, allow_unused=True)
        new = {}
        for n, g in zip(names, grads, strict=True):
            if g is None:
                new[n] = params[n]
                continue
            if optimizer == "sgd":
                new[n] = params[n] - lr * g
            else:
                m[n] = b1 * m[n] + (1 - b1) * g
                v[n] = b2 * v[n] + (1 - b2) * g * g
                m_hat, v_hat = m[n] / (1 - b1 ** t), v[n] / (1 - b2 ** t)
                new[n] = params[n] - lr * m_hat / (v_hat + eps * eps).sqrt()
        params = new
    return _caller(critic, {**params, **buffers})
