"""Thread use of the metric math and the thread count the metrics bench records for every row."""

from __future__ import annotations

import json

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

import ganforge.metrics.math as M
from ganforge.bench.metrics_bench import write


def _blas_threads() -> list[int]:
    return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]


def test_small_feature_widths_run_blas_on_one_thread_and_restore_it():
    M.mean_cov(np.ones((3, 2)))  # numpy's and scipy's BLAS are loaded
    with threadpool_limits(limits=2, user_api="blas"):
        before = _blas_threads()
        assert before
        with M.serial_blas(M.SERIAL_BLAS_MAX_DIM):
            assert _blas_threads() == [1] * len(before)
        assert _blas_threads() == before  # restored
        with M.serial_blas(M.SERIAL_BLAS_MAX_DIM + 1):  # wide enough to gain from threads: untouched
            assert _blas_threads() == before


def test_fid_on_one_blas_thread_equals_fid_on_two(monkeypatch):
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(400, 64)), rng.normal(size=(400, 64)) @ rng.normal(size=(64, 64)) / 8 + 0.1
    with threadpool_limits(limits=2, user_api="blas"):
        serial, (mu1, c1), (mu2, c2) = M.fid(x, y), M.mean_cov(x), M.mean_cov(y)
        assert M.fid_from_stats(mu1, c1, mu2, c2) == serial  # the same path, the same thread
        monkeypatch.setattr(M, "SERIAL_BLAS_MAX_DIM", 0)  # now on every thread BLAS has
        threaded, (_, c1_threaded) = M.fid(x, y), M.mean_cov(x)
    assert threaded == pytest.approx(serial, rel=1e-12)
    np.testing.assert_allclose(c1, c1_threaded, rtol=1e-13)  # bit-identical with OpenBLAS
    xc = x - x.mean(0)
    np.testing.assert_allclose(c1, xc.T @ xc / 399, rtol=1e-12)


def test_every_bench_row_names_its_thread_count_and_clock(tmp_path):
    rows = [{"metric": m, "threads": t, "clock": "cpu" if t == 1 else "wall", "dim": 128, "n_real": 10, "n_fake": 10,
             "repeats": 1, "kid_subsets": 2 if m == "kid" else None, "load_1min": 0.5, "ganforge_s": 0.1,
             "ganforge_value": 1.0 if m == "fid" else [1.0, 0.1], "torchmetrics_s": 0.2,
             "torchmetrics_value": 1.0 if m == "fid" else [1.0, 0.1], "ratio_vs_torchmetrics": 0.5,
             "torch-fidelity_s": "not installable beside the CPU torch wheel"}
            for t in (1, 2) for m in ("fid", "kid")]
    result = {"quick": True, "command": "ganforge bench metrics --quick", "machine": "test",
              "threads": {"default": 2, "measured": [1, 2], "OMP_NUM_THREADS": None}, "kid_subset_size": 5,
              "rows": rows, "extractor_throughput": [{"extractor": "fmnist-cnn", "error": "absent"}],
              "load_average_at_start": [0.1, 0.2, 0.3], "load_average_at_end": [0.4, 0.5, 0.6]}
    write(result, str(tmp_path / "m.json"))
    assert json.loads((tmp_path / "m.json").read_text())["rows"] == rows
    table = [ln for ln in (tmp_path / "m.md").read_text().splitlines() if ln.startswith(("| fid", "| kid"))]
    assert [ln.split(" | ")[1] for ln in table] == ["1 (cpu)", "1 (cpu)", "2 (wall)", "2 (wall)"]
    assert all(ln.split(" | ")[2] == "0.5" for ln in table)  # the load while the row ran
