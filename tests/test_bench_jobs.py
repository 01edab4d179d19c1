"""bench.jobs: a benchmark resumes from the records its interrupted run left in .partial.jsonl."""

from __future__ import annotations

import json

from ganforge.bench.jobs import finish, partial_path, read_partial, run_jobs


def _never(job: dict) -> dict:  # pragma: no cover - every job is already done
    raise AssertionError(f"job {job} ran again")


def test_finished_jobs_are_read_back_in_job_order_and_not_rerun(tmp_path) -> None:
    partial = partial_path(str(tmp_path / "bench.json"))
    assert partial.name == "bench.partial.jsonl" and read_partial(partial, lambda r: r["k"]) == {}
    recs = [{"k": 2, "v": "b"}, {"k": 1, "v": "a"}]
    partial.write_text("".join(json.dumps(r) + "\n" for r in recs) + "\n")  # a blank line is skipped
    assert read_partial(partial, lambda r: r["k"]) == {2: recs[0], 1: recs[1]}
    out = run_jobs([{"k": 1}, {"k": 2}], _never, lambda r: r["k"], partial=partial, workers=1, report=str)
    assert out == [recs[1], recs[0]]
    finish(partial)
    assert not partial.exists()


def _threads(job: dict) -> dict:
    from ganforge.training.threads import set_threads

    return {"k": job["k"], "threads": set_threads(0)}  # train.threads: 0, as a recipe without a pin


def test_workers_default_to_their_share_of_the_cpus_unless_omp_num_threads_is_set(monkeypatch) -> None:
    """run_jobs(threads=n): a spawned worker's default torch thread count is n (bench compare --jobs passes
    cpu_share(jobs)); OMP_NUM_THREADS, when the user set it, wins."""
    import os

    from ganforge.bench import jobs

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    out = run_jobs([{"k": 1}, {"k": 2}], _threads, lambda r: r["k"], partial=None, workers=2, report=None,
                   threads=1)
    assert out == [{"k": 1, "threads": 1}, {"k": 2, "threads": 1}]
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    jobs._worker_init(1)
    assert os.environ["OMP_NUM_THREADS"] == "3"
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(5)), raising=False)
    assert [jobs.cpu_share(w) for w in (1, 2, 5, 8)] == [5, 2, 1, 1]
