"""Speed settings on CPU: bf16 autocast, channels_last, torch.compile, the prefetching stream."""

from __future__ import annotations

import functools
import json

import pytest
import torch

from ganforge.config import load_config
from ganforge.data.base import BatchStream, Dataset
from ganforge.errors import ConfigError
from ganforge.training.precision import Precision, Prefetcher
from ganforge.training.trainer import Trainer

IMAGES = {
    "name": "speed",
    "data": {"name": "digits", "resolution": 16, "limit": 128},
    "game": {"name": "gan", "z_dim": 8},
    "nets": {"g": {"name": "dcgan", "base": 8}, "d": {"name": "dcgan", "base": 8}},
    "train": {"steps": 3, "batch_size": 16, "threads": 1, "log_every": 1, "device": "cpu", "tensorboard": False},
    "eval": {"every": 0, "n": 32, "samples": False},
    "checkpoint": {"every": 0, "keep": 1},
}


def _trainer(tmp_path, *overrides, base=IMAGES):
    return Trainer(load_config(None, list(overrides), base=base), tmp_path / "run", quiet=True)


def _losses(t):
    return [json.loads(ln) for ln in (t.run_dir / "losses.jsonl").read_text().splitlines()]


def test_bf16_autocast_trains_with_finite_losses(tmp_path):
    t = _trainer(tmp_path, "--train.precision=bf16", "--train.channels_last=true")
    seen = []
    d = t.game.nets["d"]
    d.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    before = {k: v.clone() for k, v in t.game.state_dict().items()}
    t.fit()
    assert torch.bfloat16 in seen  # the critic ran under bf16 autocast during training
    recs = _losses(t)
    assert len(recs) == 3 and all(torch.isfinite(torch.tensor([r["d_loss"], r["g_loss"]])).all() for r in recs)
    after = t.game.state_dict()
    assert all(v.dtype == before[k].dtype for k, v in after.items())  # master weights stay float32
    assert any(not torch.equal(before[k], after[k]) for k in before if before[k].is_floating_point())
    assert t.skipped == 0


def test_channels_last_converts_weights_and_batches(tmp_path):
    t = _trainer(tmp_path, "--train.channels_last=true")
    convs = [p for p in t.game.parameters() if p.dim() == 4]
    assert convs and all(p.is_contiguous(memory_format=torch.channels_last) for p in convs)
    x = t.precision.layout(torch.randn(4, 3, 16, 16))  # (C = 1 is both layouts at once)
    assert x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    assert t.precision.layout(torch.randn(4, 2)).is_contiguous()  # vectors untouched
    t.fit()
    assert all(p.is_contiguous(memory_format=torch.channels_last) for p in t.game.parameters() if p.dim() == 4)


def test_fp16_on_cpu_and_unknown_precision_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="fp16 needs a CUDA GPU.*Use train.precision=bf16 on CPU"):
        _trainer(tmp_path, "--train.precision=fp16")
    with pytest.raises(ConfigError, match="train.precision must be one of fp32, bf16, fp16"):
        load_config(None, ["--train.precision=fp8"], base=IMAGES)
    with pytest.raises(ConfigError, match="fp16 needs a CUDA GPU"):
        Precision("fp16", torch.device("cpu"), ["d", "g"])


def test_compile_flag_builds_and_keeps_checkpoint_keys(tmp_path, monkeypatch):
    # Inductor's C++ code generation takes minutes on this shared 2-core CPU (measured: 123 s for one
    # nn.Linear), so the step runs through dynamo's graph capture with the "eager" backend: the same
    # tracing of the trainer's calls, without compiling kernels.
    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="eager"))
    plain = _trainer(tmp_path / "a")
    t = _trainer(tmp_path / "b", "--train.compile=true", "--train.steps=1")
    assert all(net._compiled_call_impl is not None for net in t.game.nets.values())
    assert t.game.state_dict().keys() == plain.game.state_dict().keys()  # compiled in place: no _orig_mod.
    t.fit()
    assert _losses(t)[0]["step"] == 1 and all(torch.isfinite(torch.tensor(_losses(t)[0]["d_loss"])).reshape(1))


def test_prefetcher_reports_the_state_before_its_held_batch():
    data = Dataset("pts", torch.arange(30, dtype=torch.float32)[:, None])
    plain, ahead = BatchStream(data, 4, seed=1), Prefetcher(BatchStream(data, 4, seed=1), torch.device("cpu"))
    for _ in range(9):  # crosses epochs
        torch.testing.assert_close(ahead.next()["x"], plain.next()["x"])
        assert ahead.state_dict() == plain.state_dict()
    state = ahead.state_dict()
    resumed = Prefetcher(BatchStream(data, 4, seed=5), torch.device("cpu"))
    resumed.load_state_dict(state)
    for _ in range(5):
        torch.testing.assert_close(resumed.next()["x"], plain.next()["x"])
