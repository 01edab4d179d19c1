"""Shared plumbing of the lab experiments: figures, JSON results, tiny MLPs, 1D densities.

Every experiment is ``run(*, out, quick, seed=0) -> dict`` and ends with
``finish(out, name, fig, result, t0)``, which writes ``NAME.png`` and ``NAME.json``
(the numbers plus ``seconds``) and returns the dict. matplotlib is imported
lazily, with the Agg backend, so importing the lab stays cheap.
"""

from __future__ import annotations

import contextlib
import json
import math
import pathlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from ganforge.registry import LABS


def lab(name: str) -> Callable:
    """Register ``run`` under ``name`` in ``LABS`` (its docstring's first line is the help)."""
    return LABS.register(name)


def figure(ncols: int = 1, nrows: int = 1, *, width: float = 4.2, height: float = 3.4):
    """A matplotlib (fig, axes) pair with the Agg backend; axes is a flat array."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False)
    return fig, axes.ravel()


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.ndarray, torch.Tensor)):
        return _jsonable(x.tolist())
    if isinstance(x, (np.floating, float)):
        x = float(x)
        return x if math.isfinite(x) else str(x)  # JSON has no inf / nan
    if isinstance(x, np.integer):
        return int(x)
    return x


def finish(out: pathlib.Path, name: str, fig: Any, result: dict, t0: float) -> dict:
    """Save ``NAME.png`` and ``NAME.json`` into ``out``; return ``result`` with ``seconds``."""
    import matplotlib.pyplot as plt

    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out / f"{name}.png", dpi=110)
    plt.close(fig)
    result = dict(result, experiment=name, seconds=round(time.perf_counter() - t0, 3))
    (out / f"{name}.json").write_text(json.dumps(_jsonable(result), indent=2) + "\n")
    return result


def mlp(width: int = 64, depth: int = 2, d_in: int = 1, d_out: int = 1) -> nn.Sequential:
    """A small LeakyReLU MLP, the critic / generator of the toy experiments."""
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Linear(d_in if i == 0 else width, width), nn.LeakyReLU(0.2)]
    layers.append(nn.Linear(width if depth else d_in, d_out))
    return nn.Sequential(*layers)


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run tiny-network training on one intra-op thread (on a busy 2-core machine, 2 threads
    made a 64-wide MLP step 30x slower); the previous setting is restored."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def seed_all(seed: int) -> torch.Generator:
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def gauss(mean: float, std: float):
    """A 1D Gaussian as a ``GaussianMixture`` (exact log_prob, cdf, sample)."""
    from ganforge.data.toy import GaussianMixture

    return GaussianMixture([[float(mean)]], float(std))


def log_density(d: Any, x: np.ndarray) -> np.ndarray:
    """log p(x) on a numpy grid for anything ``divergences.as_density`` accepts."""
    from ganforge.lab.divergences import as_density

    return as_density(d).logpdf(np.asarray(x, dtype=np.float64))
