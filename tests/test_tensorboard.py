"""TensorBoard event files mirror a run: losses, metrics, learning rates, gradient norms, sample figures."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import with_overrides

from ganforge.training.tensorboard import image_grid

pytest.importorskip("tensorboard")


def _events(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir / "tb"), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    return acc


def test_events_hold_scalars_and_sample_figures(tmp_path, tiny_cfg):
    from ganforge.api import train

    raw = with_overrides(tiny_cfg, train={"steps": 6, "grad_clip": 100.0, "log_every": 2},
                         eval={"every": 3, "n": 256, "samples": True})
    res = train(raw, out=tmp_path / "run")
    acc = _events(res.run_dir)
    tags = acc.Tags()
    for tag in ("loss/d_loss", "loss/g_loss", "grad_norm/d_gnorm", "grad_norm/g_gnorm", "lr/d", "lr/g",
                "metrics/modes", "metrics/hq", "metrics/nll"):
        assert tag in tags["scalars"], (tag, tags["scalars"])
    # the scalars equal the jsonl records (the source of truth), step for step
    losses = [json.loads(ln) for ln in (res.run_dir / "losses.jsonl").read_text().splitlines()]
    tb = acc.Scalars("loss/d_loss")
    assert [e.step for e in tb] == [r["step"] for r in losses] == [2, 4, 6]
    torch.testing.assert_close(torch.tensor([e.value for e in tb]), torch.tensor([r["d_loss"] for r in losses]))
    assert [e.value for e in acc.Scalars("lr/g")] == pytest.approx([1e-3] * 3)
    metrics = [json.loads(ln) for ln in (res.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [e.step for e in acc.Scalars("metrics/modes")] == [r["step"] for r in metrics] == [3, 6]
    # one image per sample figure the trainer wrote (step 3 and the final one at step 6)
    assert "samples/figure" in tags["images"]
    imgs = acc.Images("samples/figure")
    assert [e.step for e in imgs] == [3, 6]
    assert imgs[0].width > 100 and imgs[0].height > 100


def test_resume_purges_events_after_the_checkpoint(tmp_path, tiny_cfg):
    from ganforge.api import train

    raw = with_overrides(tiny_cfg, train={"steps": 6}, checkpoint={"every": 3, "keep": 10})
    run = tmp_path / "run"
    train(raw, out=run)
    # pretend the run died at step 6 after checkpoint 3: drop the last checkpoint and resume
    (run / "checkpoints" / "step_000000006.pt").unlink()
    train(resume=run, overrides=["--train.steps=6"])
    steps = [e.step for e in _events(run).Scalars("loss/g_loss")]
    assert steps == [1, 2, 3, 4, 5, 6]  # no duplicates from the first run's steps 4-6


def test_switch_off_writes_nothing(tmp_path, tiny_cfg):
    from ganforge.api import train

    res = train(with_overrides(tiny_cfg, train={"steps": 2, "tensorboard": False}), out=tmp_path / "run")
    assert not (res.run_dir / "tb").exists()


def test_image_grid_layout():
    x = torch.full((10, 1, 4, 5), -1.0)
    x[3] = 1.0
    g = image_grid(x, nrow=4)
    assert g.shape == (3, 3 * 6 + 2, 4 * 7 + 2) and g.dtype.name == "uint8"
    # image 3 sits in row 0, column 3, fully white; its neighbours black
    assert (g[:, 2:6, 2 + 3 * 7: 2 + 3 * 7 + 5] == 255).all()
    assert (g[:, 2:6, 2 + 2 * 7: 2 + 2 * 7 + 5] == 0).all()


def test_without_tensorboard_the_run_warns_once_and_goes_on(tmp_path, tiny_cfg, monkeypatch):
    import sys

    import ganforge.training.tensorboard as tbmod
    from ganforge.api import train

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import now raises ImportError
    monkeypatch.setattr(tbmod, "_warned", False)
    with pytest.warns(UserWarning, match="tensorboard package is not installed"):
        res = train(with_overrides(tiny_cfg, train={"steps": 2}), out=tmp_path / "a")
    assert res.step == 2 and not (res.run_dir / "tb").exists()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second run does not warn again
        train(with_overrides(tiny_cfg, train={"steps": 2}), out=tmp_path / "b")


def test_image_runs_get_a_grid_of_the_evaluation_samples(tmp_path, tiny_cfg):
    from ganforge.api import train

    raw = with_overrides(tiny_cfg, train={"steps": 2}, eval={"every": 0, "n": 20, "samples": True})
    raw["data"] = {"name": "digits"}
    res = train(raw, out=tmp_path / "run")
    acc = _events(res.run_dir)
    grids = acc.Images("samples/grid")
    assert [e.step for e in grids] == [2]
    # 20 samples of 8x8 in rows of 8: 3 rows, 8 columns, 2-pixel gaps
    assert (grids[0].height, grids[0].width) == (3 * 10 + 2, 8 * 10 + 2)
    assert [e.step for e in acc.Images("samples/figure")] == [2]
