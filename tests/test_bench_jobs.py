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
