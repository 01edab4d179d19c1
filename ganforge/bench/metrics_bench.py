"""Metric speed against the peers: ganforge vs torchmetrics (and torch-fidelity) computing FID and KID.

All run in this process on identical float64 features (n real x n fake, at
d = 128, the fmnist-cnn feature width, and d = 2048, Inception's), interleaved
(ours, theirs, ours, ...), best of ``repeats``, once per thread count: 1 thread,
then the process's default (OpenBLAS and torch limited together through
threadpoolctl). At 1 thread the time is CPU seconds of this process (robust to
other jobs on a shared machine); with more threads it is wall-clock seconds
(CPU seconds there would count the workers' spin-waiting). torchmetrics gets an
identity "feature extractor" so that only its statistics and math are timed
(its ``update`` accumulates the covariance, its ``compute`` does the rest).
torch-fidelity's FID and KID functions are timed too when it imports; it is
not a dependency (0.4 needs torchvision at import time, which the CPU torch
wheel does not bring, so the table then says so). Also measured: extractor throughput (images/s) on this CPU.

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

PEERS = ("torchmetrics", "torch-fidelity")


def _timed(fn: Callable[[], Any], cpu_clock: bool) -> tuple[float, Any]:
    # Let torch's OpenMP workers stop spin-waiting first: otherwise they steal the cores from the
    # next BLAS call (numpy's OpenBLAS), and whichever side runs second is timed on a busy machine.
    time.sleep(0.5)
    clock = time.process_time if cpu_clock else time.perf_counter
    t = clock()
    value = fn()
    return clock() - t, value


def _features(n: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Correlated Gaussian features with a mean shift: a realistic, well-conditioned covariance."""
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(d, d)) / np.sqrt(d)
    real = rng.normal(size=(n, d)) @ mix
    fake = rng.normal(size=(n, d)) @ (mix * 1.1) + 0.05
    return real, fake


def _torchmetrics(real: np.ndarray, fake: np.ndarray, subsets: int, subset_size: int) -> dict[str, Callable]:
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

    def fid() -> float:
        m = FrechetInceptionDistance(feature=Identity(real.shape[1]))
        m.update(r, real=True)
        m.update(f, real=False)
        return float(m.compute())

    def kid() -> tuple[float, float]:
        with torch.random.fork_rng():  # torchmetrics draws subsets from the global RNG; leave it untouched
            torch.manual_seed(0)
            m = KernelInceptionDistance(feature=Identity(real.shape[1]), subsets=subsets, subset_size=subset_size)
            m.update(r, real=True)
            m.update(f, real=False)
            mean, std = m.compute()
        return float(mean), float(std)

    return {"fid": fid, "kid": kid}


def _torch_fidelity(real: np.ndarray, fake: np.ndarray, subsets: int, subset_size: int) -> dict[str, Callable]:
    """torch-fidelity's own feature -> metric functions (raises ImportError where it does not import)."""
    from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_features_to_statistics, fid_statistics_to_metric
    from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, KEY_METRIC_KID_STD, kid_features_to_metric

    r, f = torch.from_numpy(real), torch.from_numpy(fake)

    def fid() -> float:
        stats = fid_features_to_statistics(r), fid_features_to_statistics(f)
        return fid_statistics_to_metric(*stats, verbose=False)[KEY_METRIC_FID]

    def kid() -> tuple[float, float]:
        out = kid_features_to_metric(r, f, kid_subsets=subsets, kid_subset_size=subset_size, rng_seed=0,
                                     verbose=False)
        return out[KEY_METRIC_KID_MEAN], out[KEY_METRIC_KID_STD]

    return {"fid": fid, "kid": kid}


def _peer_fns(real, fake, subsets, subset_size) -> tuple[dict[str, dict[str, Callable]], dict[str, str]]:
    fns, missing = {"torchmetrics": _torchmetrics(real, fake, subsets, subset_size)}, {}
    try:
        fns["torch-fidelity"] = _torch_fidelity(real, fake, subsets, subset_size)
    except ImportError as e:
        # torch-fidelity 0.4 imports torchvision when imported, and no torchvision matches the CPU torch wheel;
        # installed without it (pip --no-deps), it also breaks ``import torchmetrics.image``, which imports it.
        missing["torch-fidelity"] = f"not installable beside the CPU torch wheel (here: {type(e).__name__}: {e})"
    return fns, missing


def _compare(d: int, n: int, subsets: int, subset_size: int, repeats: int, threads: int) -> list[dict[str, Any]]:
    from ganforge.metrics.math import fid, kid

    real, fake = _features(n, d, seed=0)
    peers, missing = _peer_fns(real, fake, subsets, subset_size)
    ours = {"fid": lambda: fid(real, fake),
            "kid": lambda: kid(real, fake, subsets=subsets, subset_size=subset_size, seed=0)}
    rows = []
    for metric in ("fid", "kid"):
        sides = {"ganforge": ours[metric], **{p: fns[metric] for p, fns in peers.items()}}
        best, values = dict.fromkeys(sides, float("inf")), {}
        for _ in range(repeats):  # interleaved: a slow spell on a shared machine hits every side alike
            for side, fn in sides.items():
                s, values[side] = _timed(fn, cpu_clock=threads == 1)
                best[side] = min(best[side], s)
        row = {"metric": metric, "threads": threads, "clock": "cpu" if threads == 1 else "wall", "dim": d,
               "n_real": n, "n_fake": n, "repeats": repeats, "kid_subsets": subsets if metric == "kid" else None,
               "load_1min": round(os.getloadavg()[0], 2),  # other jobs' demand on the cores while this row ran
               "ganforge_s": best["ganforge"],
               "ganforge_value": values["ganforge"]}
        for p in PEERS:
            if p in sides:
                row.update({f"{p}_s": best[p], f"{p}_value": values[p], f"ratio_vs_{p}": best["ganforge"] / best[p]})
            else:
                row[f"{p}_s"] = missing[p]
        rows.append(row)
    return rows


def _throughput(name: str, images: torch.Tensor, repeats: int, **params: Any) -> dict[str, Any]:
    from ganforge.metrics.extractors import build_extractor

    ex = build_extractor(name, **params)
    ex.extract(images[:8], batch_size=8)  # warm-up: first-call allocations
    cpu = torch.get_num_threads() == 1
    s = min(_timed(lambda: ex.extract(images, batch_size=min(500, len(images))), cpu)[0] for _ in range(repeats))
    return {"extractor": name, "images": len(images), "input": list(images.shape[1:]), "seconds": s,
            "clock": "cpu" if cpu else "wall", "threads": torch.get_num_threads(), "images_per_s": len(images) / s}


@BENCHMARKS.register("metrics")
def run(*, quick: bool = False, out: str | None = None) -> dict[str, Any]:
    """FID/KID time vs torchmetrics (and torch-fidelity) on the same features at 1 and default threads."""
    from threadpoolctl import threadpool_limits  # comes with scikit-learn

    n, subset_size = (2000, 1000) if quick else (10000, 1000)
    # (d, KID subsets, repeats). Every side pays the same per subset, so fewer subsets at d = 2048 (where one
    # costs ~1/4 s) change the time ratio by nothing but noise and keep the bench under ~15 min on 2 cores.
    cells = ((128, 10, 1), (512, 10, 1)) if quick else ((128, 100, 5), (2048, 20, 3))
    default_threads = torch.get_num_threads()
    load_at_start = [round(v, 2) for v in os.getloadavg()]
    rows = []
    for threads in sorted({1, default_threads}):
        torch.set_num_threads(threads)
        with threadpool_limits(limits=threads):
            for d, subsets, repeats in cells:
                rows += _compare(d, n, subsets, subset_size, repeats, threads)
    torch.set_num_threads(default_threads)

    throughput = []
    try:
        from ganforge.data.fmnist import fmnist

        imgs = fmnist(split="test", limit=500 if quick else 2000).x
        throughput.append(_throughput("fmnist-cnn", imgs, 1 if quick else 3))
    except (OSError, ValueError, RuntimeError) as e:  # data or weights absent: report, keep the timings above
        throughput.append({"extractor": "fmnist-cnn", "error": f"{type(e).__name__}: {str(e).splitlines()[0]}"})
    result = {
        "benchmark": "metrics",
        "command": f"ganforge bench metrics{' --quick' if quick else ''}" + (f" --out {out}" if out else ""),
        "quick": quick,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs (shared with other jobs), torch {torch.__version__}, "
        f"numpy {np.__version__}",
        "threads": {"default": default_threads, "measured": sorted({1, default_threads}),
                    "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")},
        "kid_subset_size": subset_size,
        "rows": rows,
        "extractor_throughput": throughput,
        "load_average_at_start": load_at_start,
        "load_average_at_end": [round(v, 2) for v in os.getloadavg()],
    }
    if out:
        write(result, out)
    return result


def _fmt(v: Any) -> str:
    if isinstance(v, (tuple, list)):
        return " +- ".join(f"{x:.10g}" for x in v)
    return f"{v:.10g}" if isinstance(v, float) else str(v)


def write(result: dict[str, Any], out: str) -> None:
    """JSON to ``out`` and a markdown table to the same name with ``.md``."""
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    th = result["threads"]
    reps = ", ".join(f"{k} at d = {d}" for d, k in sorted({(r["dim"], r["repeats"]) for r in result["rows"]}))
    subs = ", ".join(f"{k} at d = {d}" for d, k in sorted({(r["dim"], r["kid_subsets"]) for r in result["rows"]
                                                           if r["kid_subsets"]}))
    lines = [
        f"# Metric speed: ganforge vs torchmetrics and torch-fidelity ({'quick' if result['quick'] else 'full'})",
        "",
        f"Command: `{result['command']}`. Machine: {result['machine']}. Threads: {th['measured']} "
        f"(default {th['default']}, OMP_NUM_THREADS={th['OMP_NUM_THREADS']}). Same float64 features for all, "
        f"interleaved, best of {reps}; 0.5 s pause before each timed call; "
        f"KID subsets of {result['kid_subset_size']}: {subs}. Time: CPU seconds at 1 thread, "
        "wall seconds with more. KID values differ from the peers' only by their subset draws.",
        "",
        f"Load average (1, 5, 15 min) when the bench started: {result.get('load_average_at_start', 'not recorded')}"
        f", when it ended: {result.get('load_average_at_end', 'not recorded')}; each row gives the 1-minute load "
        "when it finished. With more threads than free cores, wall times measure the scheduler as much as the "
        "code: OpenBLAS threads wait for each other at every BLAS/LAPACK call. ganforge's FID therefore runs on "
        "one BLAS thread up to d = 512 (`ganforge.metrics.math.SERIAL_BLAS_MAX_DIM`), where the calls are too "
        "small to gain from more; at 1 thread compare CPU seconds.",
        "",
        "| metric | threads | load (1 min) | d | n real x n fake | ganforge s | torchmetrics s | ratio vs torchmetrics "
        "| torch-fidelity s | ratio vs torch-fidelity | ganforge value | torchmetrics value |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    notes = set()
    for r in result["rows"]:
        tf_s, tf_ratio = r["torch-fidelity_s"], r.get("ratio_vs_torch-fidelity")
        if isinstance(tf_s, str):
            notes.add(f"torch-fidelity: {tf_s}")
            tf_s, tf_ratio = "not installable", "-"
        else:
            tf_s, tf_ratio = f"{tf_s:.3f}", f"{tf_ratio:.2f}"
        lines.append(f"| {r['metric']} | {r['threads']} ({r['clock']}) | {r.get('load_1min', '-')} | {r['dim']} "
                     f"| {r['n_real']} x {r['n_fake']} "
                     f"| {r['ganforge_s']:.3f} | {r['torchmetrics_s']:.3f} | {r['ratio_vs_torchmetrics']:.2f} "
                     f"| {tf_s} | {tf_ratio} | {_fmt(r['ganforge_value'])} | {_fmt(r['torchmetrics_value'])} |")
    lines += [""] + sorted(notes) + ["", "| extractor | images | input | threads | images/s |", "|---|---|---|---|---|"]
    for t in result["extractor_throughput"]:
        if "error" in t:
            lines.append(f"| {t['extractor']} | - | - | - | not run: {t['error']} |")
        else:
            lines.append(f"| {t['extractor']} | {t['images']} | {t['input']} | {t['threads']} ({t['clock']}) "
                         f"| {t['images_per_s']:.0f} |")
    path.with_suffix(".md").write_text("\n".join(lines) + "\n")
