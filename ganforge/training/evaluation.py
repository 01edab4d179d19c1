"""What the trainer measures and draws at each evaluation, chosen by the data.

Toy 2D mixtures: modes / hq / rkl (``metrics.modes``) and a scatter plot over
the true density's contours. Toy 1D: KL and JS to the true density and a
histogram over it. Other data kinds plug in through ``EVALUATORS``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ganforge.data.base import Dataset
from ganforge.data.toy import GaussianMixture
from ganforge.metrics.modes import density_gap_1d, mode_metrics

# (predicate(dataset), metrics(dataset, samples, eval_cfg) -> dict or None,
#  figure(dataset, samples, path, title) or None). Every matching entry's metrics are merged;
# the first matching figure is drawn. Image data and image metrics append their own entries.
EVALUATORS: list[tuple[Callable, Callable | None, Callable | None]] = []


def _is_mixture(dim: int) -> Callable[[Dataset], bool]:
    return lambda d: isinstance(d.density, GaussianMixture) and d.density.dim == dim


def _modes(data: Dataset, x: torch.Tensor, ecfg=None) -> dict:
    dens = data.density
    if dens.n_modes > 100:  # curves (spiral, swiss roll) are mixtures of many tiny modes: report NLL only
        return {"nll": float(-dens.log_prob(x).clamp_min(-1e6).mean())}
    m = mode_metrics(x, dens.means, dens.std)
    m["nll"] = float(-dens.log_prob(x).clamp_min(-1e6).mean())
    return m


def _gap_1d(data: Dataset, x: torch.Tensor, ecfg=None) -> dict:
    dens = data.density
    lo = float((dens.means[:, 0] - 5 * dens.std).min())
    hi = float((dens.means[:, 0] + 5 * dens.std).max())
    xs = x.reshape(-1)
    lo, hi = min(lo, float(xs.min())), max(hi, float(xs.max()))
    return density_gap_1d(x, dens.log_prob, lo=lo, hi=hi)


def _scatter_2d(data: Dataset, x: torch.Tensor, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dens = data.density
    ref = dens.means.numpy()
    pad = 4 * float(dens.std.max()) + 0.1 * float(np.ptp(ref) if ref.size > 2 else 1.0)
    lo, hi = ref.min(0) - pad, ref.max(0) + pad
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], 200), np.linspace(lo[1], hi[1], 200))
    grid = torch.as_tensor(np.stack([gx.ravel(), gy.ravel()], 1))
    lp = dens.log_prob(grid).numpy().reshape(gx.shape)
    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=100)
    ax.contour(gx, gy, np.exp(lp - lp.max()), levels=[0.011, 0.135, 0.6], colors="0.6", linewidths=0.8)
    xn = x.numpy()
    ax.scatter(xn[:, 0], xn[:, 1], s=2, alpha=0.5, color="tab:blue", linewidths=0)
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _hist_1d(data: Dataset, x: torch.Tensor, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dens = data.density
    lo = min(float((dens.means[:, 0] - 5 * dens.std).min()), float(x.min()))
    hi = max(float((dens.means[:, 0] + 5 * dens.std).max()), float(x.max()))
    grid = torch.linspace(lo, hi, 500, dtype=torch.float64)[:, None]
    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=100)
    ax.hist(x.numpy().ravel(), bins=100, range=(lo, hi), density=True, alpha=0.5, label="model samples")
    ax.plot(grid.numpy().ravel(), dens.log_prob(grid).exp().numpy(), "k-", lw=1.2, label="p_data")
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


EVALUATORS.append((_is_mixture(2), _modes, _scatter_2d))
EVALUATORS.append((_is_mixture(1), _gap_1d, _hist_1d))


def find_evaluator(data: Dataset):
    """(metrics(data, x, eval_cfg) -> dict, figure or None) for ``data``; metrics merges every match."""
    matches = [(m, f) for pred, m, f in EVALUATORS if pred(data)]
    fns = [m for m, _ in matches if m is not None]
    figure = next((f for _, f in matches if f is not None), None)
    if not fns:
        return None, figure

    def metrics(d: Dataset, x: torch.Tensor, ecfg=None) -> dict:
        out: dict = {}
        for fn in fns:
            out.update(fn(d, x, ecfg))
        return out

    return metrics, figure
