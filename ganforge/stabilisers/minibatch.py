"""Minibatch discrimination and feature matching (Salimans et al. 2016, Sec. 3.1 and 3.2).

Both look at a critic's intermediate features. The contract every critic net
keeps: ``features(x, c=None) -> (N, F)`` and ``head(h, c=None)`` with
``forward(x, c) == head(features(x, c), c)``.
"""

from __future__ import annotations

import torch
from torch import nn

from ganforge.errors import ConfigError


def feature_matching_loss(real_features: torch.Tensor, fake_features: torch.Tensor) -> torch.Tensor:
    """|| E f(x) - E f(G(z)) ||_2^2 over a minibatch (Salimans et al. 2016, Sec. 3.1). Inputs (N, F)."""
    return (real_features.mean(0) - fake_features.mean(0)).pow(2).sum()


class MinibatchDiscrimination(nn.Module):
    """Salimans et al. 2016, Sec. 3.2: closeness of each sample to the rest of its minibatch.

    f (N, A) times the tensor T (A, B, C) gives M_i (B, C); c_b(x_i, x_j) = exp(-||M_i,b - M_j,b||_L1);
    o(x_i)_b = sum_j c_b(x_i, x_j), over all j of the minibatch (j = i included, as in the paper,
    which adds the constant 1). Returns o (N, B). Real and fake batches go through separately.
    """

    def __init__(self, in_features: int, kernels: int, kernel_dim: int = 5) -> None:
        super().__init__()
        if in_features < 1 or kernels < 1 or kernel_dim < 1:
            raise ConfigError(f"minibatch discrimination needs in_features, kernels, kernel_dim >= 1, got "
                              f"{in_features}, {kernels}, {kernel_dim}")
        self.kernels, self.kernel_dim = kernels, kernel_dim
        self.T = nn.Parameter(torch.randn(in_features, kernels, kernel_dim) * 0.05)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        m = torch.einsum("na,abc->nbc", f, self.T)                # (N, B, C)
        l1 = (m[:, None] - m[None, :]).abs().sum(-1)             # (N, N, B)
        return torch.exp(-l1).sum(dim=1)                         # (N, B)


class MinibatchCritic(nn.Module):
    """A critic with minibatch discrimination between its features and its head.

    features(x) = [h, o(h)] with h the wrapped critic's features; the head adds a linear
    map of o to the wrapped head's output: for a linear head W h + b this is exactly the
    next layer acting on the concatenation [h, o], as in the paper.
    """

    def __init__(self, critic: nn.Module, *, in_shape, n_classes: int = 0, kernels: int = 50,
                 kernel_dim: int = 5) -> None:
        super().__init__()
        for method in ("features", "head"):
            if not callable(getattr(critic, method, None)):
                raise ConfigError(f"minibatch discrimination needs a critic with features() and head(); "
                                  f"{type(critic).__name__} has no {method}()")
        self.critic = critic
        h, out = self._probe(critic, tuple(in_shape), n_classes)
        self.n_features = h.shape[1]
        self.out_shape = tuple(out.shape[1:])
        self.mbd = MinibatchDiscrimination(self.n_features, kernels, kernel_dim)
        self.extra = nn.Linear(kernels, out[0].numel(), bias=False)

    @staticmethod
    @torch.no_grad()
    def _probe(critic: nn.Module, in_shape: tuple, n_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Feature width and output shape from a 2-sample pass in eval mode (no running stats move)."""
        was = critic.training
        critic.eval()
        try:
            x = torch.zeros(2, *in_shape)
            c = torch.zeros(2, dtype=torch.long) if n_classes else None
            h = critic.features(x, c)
            return h, critic.head(h, c)
        finally:
            critic.train(was)

    def features(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        h = self.critic.features(x, c)
        return torch.cat([h, self.mbd(h)], dim=1)

    def head(self, h: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        base = self.critic.head(h[:, :self.n_features], c)
        return base + self.extra(h[:, self.n_features:]).reshape(base.shape)

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.features(x, c), c)
