"""Streaming float64 feature statistics and the on-disk reference-statistics cache.

``RunningStats`` accumulates mean and covariance batch by batch with the
pairwise update of Chan, Golub & LeVeque (1979): each batch contributes its
own mean and centred scatter matrix (``math.mean_scatter``, one GEMM), and
two accumulators merge exactly, so the result does not depend on the batch
size or on how the data was split across processes. Covariance divides by n - 1 (unbiased), like ``np.cov``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganforge.metrics.math import mean_scatter


class RunningStats:
    """Mean (d,) and unbiased covariance (d, d) of a stream of (b, d) feature batches, in float64."""

    def __init__(self, dim: int | None = None) -> None:
        self.n = 0
        self.dim = dim
        self._mean: np.ndarray | None = None
        self._m2: np.ndarray | None = None  # sum of outer products of deviations from the mean

    def _absorb(self, n: int, mean: np.ndarray, m2: np.ndarray) -> None:
        if self.n == 0:
            self.n, self._mean, self._m2, self.dim = n, mean.copy(), m2.copy(), mean.shape[0]
            return
        if mean.shape[0] != self.dim:
            raise ValueError(f"feature dim {mean.shape[0]} does not match the accumulated dim {self.dim}")
        total = self.n + n
        delta = mean - self._mean
        # Chan et al. eq. 2.1b: merge two centred scatter matrices.
        self._m2 += m2 + np.outer(delta, delta) * (self.n * n / total)
        self._mean += delta * (n / total)
        self.n = total

    def update(self, batch: np.ndarray | torch.Tensor) -> RunningStats:
        """Add a (b, d) batch of features."""
        if isinstance(batch, torch.Tensor):
            batch = batch.detach().cpu().double().numpy()
        x = np.asarray(batch, dtype=np.float64)
        if x.ndim != 2:
            raise ValueError(f"features must be (batch, dim), got shape {x.shape}")
        if len(x) == 0:
            return self
        self._absorb(len(x), *mean_scatter(x))
        return self

    def merge(self, other: RunningStats) -> RunningStats:
        """Fold another accumulator into this one (e.g. from another process)."""
        if other.n:
            self._absorb(other.n, other._mean, other._m2)
        return self

    @property
    def mean(self) -> np.ndarray:
        if self.n == 0:
            raise ValueError("no features accumulated yet")
        return self._mean.copy()

    @property
    def cov(self) -> np.ndarray:
        """Unbiased covariance: scatter / (n - 1)."""
        if self.n < 2:
            raise ValueError(f"covariance needs at least 2 samples, have {self.n}")
        return self._m2 / (self.n - 1)

    def state_dict(self) -> dict[str, Any]:
        return {"n": self.n, "dim": self.dim, "mean": self._mean, "m2": self._m2}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.n, self.dim = int(state["n"]), state["dim"]
        self._mean = None if state["mean"] is None else np.asarray(state["mean"], np.float64).copy()
        self._m2 = None if state["m2"] is None else np.asarray(state["m2"], np.float64).copy()


def stats_cache_dir() -> Path:
    """``$GANFORGE_CACHE/stats`` or ``~/.cache/ganforge/stats``."""
    base = os.environ.get("GANFORGE_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "ganforge")
    return Path(base) / "stats"


def reference_key(*, dataset: str, split: str, extractor: str, weights_sha256: str | None, n: int,
                  conversion: dict[str, Any], extra: dict[str, Any] | None = None) -> str:
    """A file-name-safe key: everything that changes reference features changes the key."""
    payload = json.dumps({"dataset": dataset, "split": split, "extractor": extractor, "weights": weights_sha256,
                          "n": n, "conversion": conversion, "extra": extra or {}}, sort_keys=True, default=str)
    digest = hashlib.sha256(payload.encode()).hexdigest()[:16]
    return f"{dataset}-{split}-{extractor}-n{n}-{digest}"


def save_reference(key: str, arrays: dict[str, np.ndarray], meta: dict[str, Any],
                   directory: Path | None = None) -> Path:
    """Write ``arrays`` (features, logits, labels, ...) plus JSON ``meta`` atomically as one ``.npz``."""
    directory = directory or stats_cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{key}.npz"
    fd, tmp = tempfile.mkstemp(dir=directory, suffix=".npz")
    with os.fdopen(fd, "wb") as fh:
        np.savez(fh, **arrays, meta=np.array(json.dumps(meta, default=str)))
    os.replace(tmp, path)
    return path


def load_reference(key: str, directory: Path | None = None) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
    """The cached arrays and meta for ``key``, or None when absent or unreadable (then it is recomputed)."""
    path = (directory or stats_cache_dir()) / f"{key}.npz"
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:  # no pickles: loading never runs code
            arrays = {k: z[k] for k in z.files if k != "meta"}
            meta = json.loads(str(z["meta"]))
    except (OSError, ValueError, KeyError):
        return None
    return arrays, meta
