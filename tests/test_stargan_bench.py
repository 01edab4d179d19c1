"""``ganforge bench stargan``'s summary: per-pair means over seeds, the gap to the CycleGAN, the targets' words."""

from __future__ import annotations

import pytest

from ganforge.bench.stargan_bench import markdown, summarise

DOMAINS = ("rgb", "tint", "fade+rgb")


def _pair(i: str, j: str, psnr: float, content: float) -> dict:
    return {"source": i, "target": j, "psnr": psnr, "l1": 0.1, "psnr_do_nothing": 14.0, "content": content,
            "probe": 1.0, "d_cls": 1.0}


def _star(seed: int, psnr: float, content: float = 0.8) -> dict:
    pairs = [_pair(i, j, psnr + (1.0 if (i, j) == ("rgb", "tint") else 0.0), content)
             for i in DOMAINS for j in DOMAINS if i != j]
    return {"model": "stargan", "seed": seed, "steps": 1600, "d_steps": 5, "cpu_s": 300.0, "pairs": pairs,
            "mean_psnr": sum(p["psnr"] for p in pairs) / len(pairs), "content_original": 0.947}


def _cyc(seed: int, psnr: float) -> dict:
    return {"model": "cyclegan", "seed": seed, "steps": 1600, "d_steps": 1, "cpu_s": 250.0,
            "pairs": [{**_pair("rgb", "tint", psnr, 0.86), "d_cls": None}], "mean_psnr": psnr,
            "content_original": 0.947}


def _result(star_psnr: float, content: float = 0.8):
    runs = [_star(0, star_psnr - 1, content), _cyc(0, 21.0), _star(1, star_psnr + 1, content), _cyc(1, 22.0)]
    return summarise(runs, quick=False, n_test=1000, workers=2, wall_seconds=600.0, note="Resumed: a note.")


def test_cells_and_summary_are_means_over_seeds() -> None:
    result = _result(20.0)
    assert result["domains"] == list(DOMAINS)
    star = [c for c in result["cells"] if c["model"] == "StarGAN"]
    assert len(star) == 6 and all(c["seeds"] == 2 for c in star)
    rgb_tint = next(c for c in star if (c["source"], c["target"]) == ("rgb", "tint"))
    assert rgb_tint["psnr"]["mean"] == pytest.approx(21.0)
    assert result["summary"]["stargan_mean_psnr"]["mean"] == pytest.approx(20.0 + 1.0 / 6)
    assert result["summary"]["stargan_pair_psnr"]["mean"] == pytest.approx(21.0)
    assert result["summary"]["cyclegan_pair_psnr"]["mean"] == pytest.approx(21.5)
    cyc = [c for c in result["cells"] if c["model"].startswith("CycleGAN")]
    assert len(cyc) == 1 and cyc[0]["d_cls"]["mean"] is None  # a CycleGAN has no domain head


@pytest.mark.parametrize(("star_psnr", "content", "gap_met", "content_met"),
                         [(20.0, 0.8, True, True), (19.5, 0.8, False, True), (20.5, 0.7, True, False)])
def test_targets_are_worded_from_the_means(star_psnr: float, content: float, gap_met: bool, content_met: bool) -> None:
    text = "\n".join(markdown(_result(star_psnr, content)))
    gap = 21.5 - (star_psnr + 1.0 / 6)
    assert f"CycleGAN minus StarGAN mean: {gap:.2f} dB" in text
    assert f"content >= 0.75 on every pair: {'met' if content_met else 'not met'};" in text
    assert f"within 1.5 dB of the CycleGAN: {'met' if gap_met else 'not met'}." in text
    assert "Resumed: a note." in text and "1 thread" in text and "total CPU-s of the bench's training: 1100" in text
