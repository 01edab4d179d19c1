"""Metric speed against the peer: ganforge vs torchmetrics computing FID and KID from the same features.

Both run in this process on identical float64 features (n real x n fake, d =
the fmnist-cnn feature width), interleaved, best of ``repeats``; torchmetrics
gets an identity "feature extractor" so that only its statistics and math are
timed (its ``update`` accumulates the covariance, its ``compute`` does the
rest). Also measured: extractor throughput (images/s) on this CPU. torchmetrics
is a test/bench dependency, imported here lazily.

    ganforge bench metrics [--quick] [--out benchmarks/results/metrics.json]
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganforge.registry import BENCHMARKS


def _best(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    best, value = float("inf"), None
    for _ in range(repeats):
        # Let torch's OpenMP workers stop spin-waiting first: otherwise they steal the cores from the
        # next BLAS call (numpy's OpenBLAS), and whichever side runs second is timed on a busy machine.
        time.sleep(0.5)
        t = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - t)
    return best, value


def _features(n: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Correlated Gaussian features with a mean shift: a realistic, well-conditioned covariance."""
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(d, d)) / np.sqrt(d)
    real = rng.normal(size=(n, d)) @ mix
    fake = rng.normal(size=(n, d)) @ (mix * 1.1) + 0.05
    return real, fake


def _torchmetrics_scores(real: np.ndarray, fake: np.ndarray, subsets: int, subset_size: int):
    from torch import nn
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import KernelInceptionDistance

    class Identity(nn.Module):
        def __init__(self, d: int) -> None:
            super().__init__()
            self.num_features = d

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    r, f = torch.from_numpy(real), torch.from_numpy(fake)

    def tm_fid() -> float:
        m = FrechetInceptionDistance(feature=Identity(real.shape[1]))
        m.update(r, real=True)
        m.update(f, real=False)
        return float(m.compute())

    def tm_kid() -> tuple[float, float]:
        with torch.random.fork_rng():  # torchmetrics draws subsets from the global RNG; leave it untouched
            torch.manual_seed(0)
            m = KernelInceptionDistance(feature=Identity(real.shape[1]), subsets=subsets, subset_size=subset_size)
            m.update(r, real=True)
            m.update(f, real=False)
            mean, std = m.compute()
        return float(mean), float(std)

    return tm_fid, tm_kid


def _throughput(name: str, images: torch.Tensor, repeats: int, **params: Any) -> dict[str, Any]:
    from ganforge.metrics.extractors import build_extractor

    ex = build_extractor(name, **params)
    ex.extract(images[:8], batch_size=8)  # warm-up: first-call allocations
    s, _ = _best(lambda: ex.extract(images, batch_size=min(500, len(images))), repeats)
    return {"extractor": name, "images": len(images), "input": list(images.shape[1:]), "seconds": s,
            "images_per_s": len(images) / s}


@BENCHMARKS.register("metrics")
def run(*, quick: bool = False, out: str | None = None) -> dict[str, Any]:
    """FID/KID time vs torchmetrics on the same features, and extractor images/s on CPU."""
    from ganforge.metrics.fmnist_cnn import FEATURE_DIM
    from ganforge.metrics.math import fid, kid

    n = 2000 if quick else 10000
    subsets, subset_size = (10, 1000) if quick else (100, 1000)
    repeats = 1 if quick else 5
    real, fake = _features(n, FEATURE_DIM, seed=0)
    tm_fid, tm_kid = _torchmetrics_scores(real, fake, subsets, subset_size)
    rows = []
    for metric, ours, theirs in (
        ("fid", lambda: fid(real, fake), tm_fid),
        ("kid", lambda: kid(real, fake, subsets=subsets, subset_size=subset_size, seed=0), tm_kid),
    ):
        # Interleave so that a slow spell on a shared machine hits both sides alike.
        t_ours, t_theirs, v_ours, v_theirs = float("inf"), float("inf"), None, None
        for _ in range(repeats):
            s, v_ours = _best(ours, 1)
            t_ours = min(t_ours, s)
            s, v_theirs = _best(theirs, 1)
            t_theirs = min(t_theirs, s)
        rows.append({"metric": metric, "n_real": n, "n_fake": n, "dim": FEATURE_DIM, "ganforge_s": t_ours,
                     "torchmetrics_s": t_theirs, "ratio": t_ours / t_theirs, "ganforge_value": v_ours,
                     "torchmetrics_value": v_theirs})

    throughput = []
    try:
        from ganforge.data.fmnist import fmnist

        imgs = fmnist(split="test", limit=500 if quick else 2000).x
        throughput.append(_throughput("fmnist-cnn", imgs, repeats))
    except Exception as e:  # data or weights absent: report, don't fail the timing above
        throughput.append({"extractor": "fmnist-cnn", "error": str(e).splitlines()[0]})
    result = {
        "benchmark": "metrics",
        "quick": quick,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), numpy {np.__version__}",
        "kid_subsets": subsets,
        "kid_subset_size": subset_size,
        "repeats": repeats,
        "rows": rows,
        "extractor_throughput": throughput,
    }
    if out:
        write(result, out)
    return result


def _fmt(v: Any) -> str:
    if isinstance(v, (tuple, list)):
        return " +- ".join(f"{x:.6g}" for x in v)
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def write(result: dict[str, Any], out: str) -> None:
    """JSON to ``out`` and a markdown table to the same name with ``.md``."""
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        f"# Metric speed: ganforge vs torchmetrics ({'quick' if result['quick'] else 'full'})",
        "",
        f"Machine: {result['machine']}. Same float64 features for both, interleaved, best of {result['repeats']} "
        "(0.5 s pause before each timed call), "
        f"KID {result['kid_subsets']} subsets of {result['kid_subset_size']}.",
        "",
        "| metric | n real x n fake | d | ganforge s | torchmetrics s | ratio (ours/theirs) | ganforge value "
        "| torchmetrics value |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        lines.append(f"| {r['metric']} | {r['n_real']} x {r['n_fake']} | {r['dim']} | {r['ganforge_s']:.3f} | "
                     f"{r['torchmetrics_s']:.3f} | {r['ratio']:.2f} | {_fmt(r['ganforge_value'])} | "
                     f"{_fmt(r['torchmetrics_value'])} |")
    lines += ["", "| extractor | images | input | images/s |", "|---|---|---|---|"]
    for t in result["extractor_throughput"]:
        if "error" in t:
            lines.append(f"| {t['extractor']} | - | - | not run: {t['error']} |")
        else:
            lines.append(f"| {t['extractor']} | {t['images']} | {t['input']} | {t['images_per_s']:.0f} |")
    path.with_suffix(".md").write_text("\n".join(lines) + "\n")
