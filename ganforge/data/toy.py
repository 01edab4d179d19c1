"""Toy distributions with exact densities (C10).

The 2D ring and grid follow the PacGAN/VEEGAN protocol so that mode-coverage
numbers sit beside the published ones: ring = 8 Gaussians on a circle of
radius 1 with std 0.01; grid = 25 Gaussians at {-4,-2,0,2,4}^2 with std 0.05.
The spiral and swiss roll are defined as mixtures of many small Gaussians
along a curve, so their ``log_prob`` is exact for the distribution sampled.
"""

from __future__ import annotations

import math

import torch

from ganforge.data.base import Dataset
from ganforge.errors import ConfigError
from ganforge.registry import DATASETS


class GaussianMixture:
    """Isotropic Gaussian mixture: means (K, d), one std per component, weights (K,).

    Computations are in float64; ``sample`` returns float32.
    """

    def __init__(self, means, std, weights=None) -> None:
        self.means = torch.as_tensor(means, dtype=torch.float64)
        if self.means.dim() == 1:
            self.means = self.means[:, None]
        k, self.dim = self.means.shape
        std = torch.as_tensor(std, dtype=torch.float64)
        self.std = std.expand(k).clone() if std.dim() == 0 else std
        if (self.std <= 0).any():
            raise ConfigError(f"std must be > 0, got {std.tolist()}")
        w = (torch.full((k,), 1.0 / k, dtype=torch.float64) if weights is None
             else torch.as_tensor(weights, dtype=torch.float64))
        if w.shape != (k,) or (w < 0).any() or w.sum() <= 0:
            raise ConfigError(f"mixture weights must be {k} non-negative numbers, got {w.tolist()}")
        self.weights = w / w.sum()

    @property
    def n_modes(self) -> int:
        return self.means.shape[0]

    def component_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """(N, d) -> (N, K): log N(x; mu_k, std_k^2 I)."""
        x = torch.as_tensor(x, dtype=torch.float64).reshape(-1, self.dim)
        d2 = torch.cdist(x, self.means).pow(2)
        var = self.std.pow(2)
        return -0.5 * d2 / var - 0.5 * self.dim * torch.log(2 * math.pi * var)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x), float64, shape (N,)."""
        return torch.logsumexp(self.component_log_prob(x) + self.weights.log(), dim=1)

    def prob(self, x: torch.Tensor) -> torch.Tensor:
        return self.log_prob(x).exp()

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        comp = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        noise = torch.randn(n, self.dim, generator=generator, dtype=torch.float64)
        x = self.means[comp] + noise * self.std[comp, None]
        return x.float()

    def cdf(self, x: torch.Tensor) -> torch.Tensor:
        """CDF in 1D (float64)."""
        if self.dim != 1:
            raise ValueError("cdf is defined for 1D mixtures only")
        x = torch.as_tensor(x, dtype=torch.float64).reshape(-1, 1)
        z = (x - self.means[:, 0]) / self.std
        return (0.5 * (1 + torch.erf(z / math.sqrt(2))) * self.weights).sum(1)

    def mean(self) -> torch.Tensor:
        return (self.weights[:, None] * self.means).sum(0)


def ring_means(n_modes: int = 8, radius: float = 1.0) -> torch.Tensor:
    angles = torch.arange(n_modes, dtype=torch.float64) * (2 * math.pi / n_modes)
    return radius * torch.stack([angles.cos(), angles.sin()], dim=1)


def grid_means(side: int = 5, spacing: float = 2.0) -> torch.Tensor:
    ticks = (torch.arange(side, dtype=torch.float64) - (side - 1) / 2) * spacing
    return torch.cartesian_prod(ticks, ticks)


def curve_mixture(points: torch.Tensor, std: float) -> GaussianMixture:
    return GaussianMixture(points, std)


def _check(n: int, std: float) -> None:
    if n < 1:
        raise ConfigError(f"n (number of training points) must be >= 1, got {n}")
    if std <= 0:
        raise ConfigError(f"std must be > 0, got {std}")


def _dataset(name: str, density: GaussianMixture, n: int, seed: int, **info) -> Dataset:
    g = torch.Generator().manual_seed(seed)
    x = density.sample(n, generator=g)
    return Dataset(name=name, x=x, density=density, info=dict(info, n=n, seed=seed))


@DATASETS.register("gaussian-1d")
def gaussian_1d(*, mean: float = 0.0, std: float = 1.0, n: int = 100_000, seed: int = 0) -> Dataset:
    """1D Gaussian N(mean, std^2)."""
    _check(n, std)
    return _dataset("gaussian-1d", GaussianMixture([[mean]], std), n, seed, mean=mean, std=std)


@DATASETS.register("mixture-1d")
def mixture_1d(
    *, means: list[float] = (-2.0, 2.0), std: float = 0.5, weights: list[float] | None = None,
    n: int = 100_000, seed: int = 0,
) -> Dataset:
    """1D Gaussian mixture (default: two modes at -2 and 2, std 0.5)."""
    _check(n, std)
    dens = GaussianMixture([[float(m)] for m in means], std, weights)
    return _dataset("mixture-1d", dens, n, seed, means=list(means), std=std)


@DATASETS.register("ring")
def ring(*, n_modes: int = 8, radius: float = 1.0, std: float = 0.01, n: int = 100_000, seed: int = 0) -> Dataset:
    """2D ring: 8 Gaussians on a circle of radius 1, std 0.01 (PacGAN protocol)."""
    _check(n, std)
    if n_modes < 1:
        raise ConfigError(f"n_modes must be >= 1, got {n_modes}")
    return _dataset("ring", GaussianMixture(ring_means(n_modes, radius), std), n, seed,
                    n_modes=n_modes, radius=radius, std=std)


@DATASETS.register("grid")
def grid(*, side: int = 5, spacing: float = 2.0, std: float = 0.05, n: int = 100_000, seed: int = 0) -> Dataset:
    """2D grid: 25 Gaussians at {-4,-2,0,2,4}^2, std 0.05 (PacGAN protocol)."""
    _check(n, std)
    if side < 1:
        raise ConfigError(f"side must be >= 1, got {side}")
    return _dataset("grid", GaussianMixture(grid_means(side, spacing), std), n, seed,
                    side=side, spacing=spacing, std=std)


@DATASETS.register("spiral")
def spiral(*, turns: float = 1.5, scale: float = 1.0, std: float = 0.05, n: int = 100_000,
           seed: int = 0, resolution: int = 1000) -> Dataset:
    """2D two-armed spiral: Gaussians (std) centred on 'resolution' points along each arm."""
    _check(n, std)
    t = torch.linspace(0.05, 1.0, resolution // 2, dtype=torch.float64)
    theta = t * turns * 2 * math.pi
    arm = torch.stack([t * theta.cos(), t * theta.sin()], 1) * scale * 2
    pts = torch.cat([arm, -arm])
    return _dataset("spiral", curve_mixture(pts, std), n, seed, turns=turns, scale=scale, std=std)


@DATASETS.register("swiss-roll")
def swiss_roll(*, scale: float = 0.2, std: float = 0.05, n: int = 100_000, seed: int = 0,
               resolution: int = 1000) -> Dataset:
    """2D swiss roll (t cos t, t sin t), t in [1.5 pi, 4.5 pi], uniform along t; Gaussian noise std."""
    _check(n, std)
    t = torch.linspace(1.5 * math.pi, 4.5 * math.pi, resolution, dtype=torch.float64)
    pts = torch.stack([t * t.cos(), t * t.sin()], 1) * scale
    return _dataset("swiss-roll", curve_mixture(pts, std), n, seed, scale=scale, std=std)
