"""Shared fixtures: a tiny toy run config and helpers to compare runs bit for bit."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch

torch.set_num_threads(1)

#: A run small enough to train in well under a second on one CPU thread.
TINY: dict = {
    "name": "tiny",
    "data": {"name": "ring", "n": 2048},
    "game": {"name": "gan", "z_dim": 4},
    "objective": {"name": "ns"},
    "nets": {"g": {"name": "mlp", "hidden": 16, "depth": 2}, "d": {"name": "mlp", "hidden": 16, "depth": 2}},
    "optim": {"g": {"name": "adam", "lr": 1e-3}, "d": {"name": "adam", "lr": 1e-3}},
    "train": {"steps": 6, "batch_size": 32, "threads": 1, "log_every": 1, "device": "cpu"},
    "eval": {"every": 0, "n": 256, "samples": False},
    "checkpoint": {"every": 3, "keep": 10},
}


#: Fixed critic scores (logits) at which the objectives' closed forms are checked.
REAL = torch.tensor([-3.0, -0.5, 0.0, 0.7, 2.5, 6.0], dtype=torch.float64)
FAKE = torch.tensor([-4.0, -1.2, 0.3, 1.1, 3.0], dtype=torch.float64)


def sigmoid(v):
    """The logistic function on numpy arrays (reference computations)."""
    return 1.0 / (1.0 + np.exp(-v))


def close64(a, b, rtol: float = 1e-10, atol: float = 1e-12) -> None:
    """Two-sided closeness in float64 of tensors, arrays or numbers."""
    torch.testing.assert_close(torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64),
                               rtol=rtol, atol=atol)


@pytest.fixture
def tiny_cfg() -> dict:
    """A fresh deep copy of ``TINY`` (tests may mutate it)."""
    return copy.deepcopy(TINY)


def with_overrides(raw: dict, **sections) -> dict:
    """``raw`` deep-copied; ``train``/``eval``/``checkpoint`` keys updated, other sections replaced.

    ``with_overrides(TINY, train={"steps": 4}, objective={"name": "hinge"})``
    """
    out = copy.deepcopy(raw)
    for sec, vals in sections.items():
        if sec in ("train", "eval", "checkpoint"):
            out[sec] = {**out.get(sec, {}), **vals}
        else:
            out[sec] = copy.deepcopy(vals)
    return out


def read_records(run_dir: str | Path, name: str = "losses.jsonl") -> list[dict]:
    """A run's jsonl records without the wall-clock ``time`` field (the only non-deterministic one)."""
    recs = [json.loads(ln) for ln in (Path(run_dir) / name).read_text().splitlines() if ln.strip()]
    for r in recs:
        r.pop("time", None)
    return recs


def assert_same_state(a, b, path: str = "") -> None:
    """Nested dicts/lists of tensors and plain values are equal bit for bit."""
    if torch.is_tensor(a):
        assert torch.is_tensor(b) and a.dtype == b.dtype and a.shape == b.shape, path
        assert torch.equal(a, b), f"tensors differ at {path}"
    elif isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), f"keys differ at {path}: {set(a) ^ set(b)}"
        for k in a:
            if not (path == "" and k == "elapsed"):  # a checkpoint's wall-clock seconds, the one timing field
                assert_same_state(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same_state(x, y, f"{path}[{i}]")
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


SMALL = {"name": "mlp", "hidden": 12, "depth": 1}

#: One tiny config per game (and per objective family for gan), for the phase and resume tests.
GAMES = {
    "gan-ns": with_overrides(TINY),
    "gan-wgan-gp": with_overrides(TINY, objective={"name": "wgan-gp"}),
    "gan-wgan-clip": with_overrides(TINY, objective={"name": "wgan", "clip": 0.05}),
    "gan-mmd": with_overrides(TINY, objective={"name": "mmd", "features": 4}),
    "gan-ebgan": with_overrides(TINY, objective={"name": "ebgan"}, penalties={"pull-away": 0.1},
                                nets={"g": SMALL, "d": {"name": "ae", "hidden": 12, "depth": 1, "code": 4}}),
    "gan-r1-1d": with_overrides(TINY, data={"name": "mixture-1d", "n": 512}, penalties={"r1": 1.0},
                                  game={"name": "gan", "z_dim": 3}),
    "bigan": with_overrides(TINY, game={"name": "bigan", "z_dim": 2}, nets={"g": SMALL, "e": SMALL, "d": SMALL},
                            optim={"d": {"name": "adam", "lr": 1e-3}, "ge": {"name": "adam", "lr": 1e-3}}),
    "cyclegan": with_overrides(TINY, game={"name": "cyclegan"},
                               data={"name": "unpaired", "a": {"name": "ring", "n": 256},
                                     "b": {"name": "grid", "n": 256}},
                               nets={r: SMALL for r in ("g_ab", "g_ba", "d_a", "d_b")}),
}
