"""`ganforge report`: one self-contained HTML file; every figure embedded, nothing fetched."""

from __future__ import annotations

import base64
import json
from html.parser import HTMLParser

import pytest
from conftest import TINY, with_overrides

import ganforge
from ganforge.cli import main
from ganforge.report import pick_samples, series


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def _parse(path):
    p = _Collect()
    p.feed(path.read_text(encoding="utf-8"))
    return p


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("report")
    runs = []
    for obj in ("ns", "hinge"):
        raw = with_overrides(TINY, objective={"name": obj}, train={"steps": 6, "log_every": 1},
                             eval={"every": 2, "n": 256, "samples": True})
        runs.append(ganforge.train(raw, out=base / obj).run_dir)
    return runs


def test_report_is_self_contained_and_embeds_every_figure(two_runs, tmp_path, capsys):
    out = tmp_path / "page" / "report.html"
    assert main(["report", *map(str, two_runs), "--out", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    page = _parse(out)
    imgs = [a for t, a in page.tags if t == "img"]
    # per run: loss curves, metric curves, 3 sample figures (steps 2, 4, 6); plus 2 overlaid comparisons
    assert len(imgs) == 2 * (2 + 3) + 2
    for a in imgs:
        src = a["src"]
        assert src.startswith("data:image/png;base64,"), src[:60]
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
        assert a.get("alt")
    # nothing that would be fetched: no scripts, no external style sheets, no remote sources anywhere
    for tag, attrs in page.tags:
        assert tag not in ("script", "link", "iframe", "object", "embed"), tag
        for k, v in attrs.items():
            if k in ("src", "href", "srcset", "data", "poster", "action") and v:
                assert not v.startswith(("http:", "https:", "//", "file:")), (tag, k, v[:80])
    text = " ".join(page.text)
    assert "url(" not in out.read_text() and "@import" not in out.read_text()
    # the content: both runs, their config, their final metrics and a comparison
    for run in two_runs:
        final = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
        assert run.name in text
        assert f"{final['nll']:.4g}" in text
    assert "Config keys that differ" in text and "objective.name" in text and "hinge" in text
    assert "Resolved config" in text and "Samples over time" in text


def test_one_run_default_location_and_bad_input(two_runs, tmp_path, capsys):
    assert main(["report", str(two_runs[0])]) == 0
    assert (two_runs[0] / "report.html").is_file()
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert "run directory not found" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty")]) == 2
    assert "is not a run directory (no config.yaml)" in capsys.readouterr().err


def test_protocol_records_are_shown(two_runs, tmp_path):
    import shutil

    from ganforge.report import write_report

    run = tmp_path / "run"
    shutil.copytree(two_runs[0], run)
    rec = {"step": 6, "fid": 12.5, "protocol": {"extractor": {"name": "fmnist-cnn"}, "n_real": 2500}}
    with open(run / "metrics.jsonl", "a") as f:
        f.write(json.dumps(rec) + "\n")
    text = " ".join(_parse(write_report([run], tmp_path / "r.html")).text)
    assert "Protocol of these metrics" in text and "fmnist-cnn" in text and "12.5" in text
    # the trainer's image metrics keep their protocol in eval_protocol.json instead
    (run / "metrics.jsonl").write_text(json.dumps({"step": 6, "fid": 13.5}) + "\n")
    (run / "eval_protocol.json").write_text(json.dumps({"step": 6, "protocol": {"n_fake": 777}}))
    text = " ".join(_parse(write_report([run], tmp_path / "r.html")).text)
    assert "eval_protocol.json, step 6" in text and "777" in text and "13.5" in text


def test_helpers():
    recs = [{"step": 1, "a": 1.0, "b": float("nan")}, {"step": 2, "a": 2.0, "b": 3.0, "p": {"x": 1}}]
    assert series(recs) == {"a": ([1, 2], [1.0, 2.0]), "b": ([2], [3.0])}
    items = [(i, None) for i in range(20)]
    picked = [s for s, _ in pick_samples(items, 6)]
    assert len(picked) == 6 and picked[0] == 0 and picked[-1] == 19


def test_scores_from_ganforge_eval_are_shown_with_their_protocol(two_runs, tmp_path):
    import shutil

    from ganforge.report import write_report

    run = tmp_path / "run"
    shutil.copytree(two_runs[0], run)
    record = {"source": {"kind": "run", "path": str(run), "step": 6, "generator": "ema"},
              "scores": {"fid": 4.321, "kid": 0.00125, "kid_std": 0.0002},
              "protocol": {"extractor": {"name": "fmnist-cnn"}, "n_real": 10000, "n_fake": 9876}}
    (run / "eval.json").write_text(json.dumps(record))
    text = " ".join(_parse(write_report([run], tmp_path / "r.html")).text)
    assert "Scores from ganforge eval (eval.json, step 6, generator ema)" in text
    two = " ".join(_parse(write_report([run, two_runs[1]], tmp_path / "two.html")).text)
    assert "Scores from ganforge eval (eval.json)" in two and "4.321" in two  # the comparison's table too
    assert "4.321" in text and "0.00125" in text and "Protocol of these scores" in text and "9876" in text
    # a file that is not what `ganforge eval` writes is left out, not shown half-read
    (run / "eval.json").write_text("[1, 2]")
    text = " ".join(_parse(write_report([run], tmp_path / "r.html")).text)
    assert "Scores from ganforge eval" not in text and "9876" not in text
