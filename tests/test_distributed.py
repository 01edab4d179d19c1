"""Data-parallel training on CPU: 2 gloo processes against one process with the same global batch."""

from __future__ import annotations

import json
import os
import socket
import types

import pytest
import torch
import torch.multiprocessing as mp

from ganforge.config import load_config
from ganforge.data.base import BatchStream, Dataset, make_stream
from ganforge.training import checkpoint as ckpt
from ganforge.training.distributed import Distributed
from ganforge.training.trainer import Trainer

# no batch norm, no penalties: a step's gradient is the mean of per-sample gradients
SMALL = {
    "name": "ddp",
    "data": {"name": "ring", "n": 512},
    "game": {"name": "gan", "z_dim": 3},
    "objective": {"name": "ns"},
    "nets": {"g": {"name": "mlp", "hidden": 16, "depth": 2, "norm": "none"},
             "d": {"name": "mlp", "hidden": 16, "depth": 2, "norm": "none"}},
    "optim": {"g": {"name": "adam", "lr": 1e-3}, "d": {"name": "adam", "lr": 1e-3}},
    "train": {"steps": 4, "batch_size": 16, "d_steps": 2, "threads": 1, "log_every": 1, "device": "cpu",
              "tensorboard": False},
    "eval": {"every": 0, "n": 64, "samples": False},
    "checkpoint": {"every": 2, "keep": 10},
}


def _global_noise(trainer: Trainer) -> None:
    """Make the game's training noise the same whatever the world size: each call draws the *global*
    batch's codes from a generator seeded by (step, call) and takes this rank's slice. Only the test
    does this (the library seeds each rank's noise separately); it isolates gradient averaging and
    data sharding from the noise streams."""
    game, d = trainer.game, trainer.dist
    original = game.noise
    counter = {"step": -1, "call": 0}

    def noise(self, n, dim, *, generator=None, latent="normal"):
        if generator is not None:  # evaluation noise: untouched
            return original(n, dim, generator=generator, latent=latent)
        if counter["step"] != self.step:
            counter.update(step=self.step, call=0)
        counter["call"] += 1
        g = torch.Generator().manual_seed(self.step * 1000 + counter["call"])
        z = torch.randn(n * d.world_size, dim, generator=g)
        return z[d.rank * n:(d.rank + 1) * n]

    game.noise = types.MethodType(noise, game)


def _train(run_dir, steps, *, global_noise=False, resume=False):
    if resume:
        t = Trainer.resume(run_dir, {"train.steps": steps}, quiet=True)
    else:
        t = Trainer(load_config(None, [f"--train.steps={steps}"], base=SMALL), run_dir, quiet=True)
    if global_noise:
        _global_noise(t)
    t.fit()
    return t


def _worker(rank: int, world: int, port: int, root: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    t = _train(f"{root}/ddp", 4, global_noise=True)
    assert t.dist.world_size == world and t.dist.rank == rank and t.local_batch == 8
    _train(f"{root}/full", 4)                       # per-rank noise, uninterrupted
    _train(f"{root}/split", 2)                      # ... stopped at step 2
    _train(f"{root}/split", 4, resume=True)         # ... and resumed by both ranks
    with open(f"{root}/rank{rank}.json", "w") as f:
        json.dump({"rank": rank, "files_ok": True}, f)
    torch.distributed.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _weights(run_dir, step):
    return ckpt.load(ckpt.checkpoint_path(run_dir, step))


@pytest.fixture(scope="module")
def ddp_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp")
    # fork, not spawn: the ranks inherit the imported torch and ganforge instead of importing them
    # again (measured: ~7 CPU-seconds per rank with spawn, ~2 with fork). Safe here: the ranks run one
    # intra-op thread and the parent holds no process group.
    mp.start_processes(_worker, args=(2, _free_port(), str(root)), nprocs=2, join=True, start_method="fork")
    return root


def test_two_gloo_processes_match_one_process_with_the_same_global_batch(ddp_runs, tmp_path):
    single = _train(tmp_path / "single", 4, global_noise=True)
    assert single.dist.world_size == 1 and single.local_batch == 16
    a, b = _weights(ddp_runs / "ddp", 4), _weights(tmp_path / "single", 4)
    assert not any(".module." in k for k in a["game"])  # saved unwrapped: interchangeable checkpoints
    assert a["game"].keys() == b["game"].keys()
    for k in a["game"]:
        torch.testing.assert_close(a["game"][k], b["game"][k], rtol=1e-5, atol=1e-6, msg=k)
    # logged losses are averaged over the ranks: the single process's full-batch means
    la = [json.loads(ln) for ln in (ddp_runs / "ddp" / "losses.jsonl").read_text().splitlines()]
    lb = [json.loads(ln) for ln in (tmp_path / "single" / "losses.jsonl").read_text().splitlines()]
    assert [r["step"] for r in la] == [1, 2, 3, 4]  # written once, by rank 0
    for ra, rb in zip(la, lb, strict=True):
        for key in ("d_loss", "g_loss"):
            assert ra[key] == pytest.approx(rb[key], rel=1e-5, abs=1e-6)


def test_ddp_resume_is_exact_and_rank0_writes(ddp_runs):
    full, split = _weights(ddp_runs / "full", 4), _weights(ddp_runs / "split", 4)
    for k in full["game"]:
        assert torch.equal(full["game"][k], split["game"][k]), k
    assert len(full["rng_ranks"]) == 2  # every rank's RNG state is in the checkpoint
    assert not torch.equal(full["rng_ranks"][0]["torch"], full["rng_ranks"][1]["torch"])  # per-rank noise seeds
    assert sorted(p.name for p in ddp_runs.glob("rank*.json")) == ["rank0.json", "rank1.json"]
    assert [p.name for p in (ddp_runs / "full" / "checkpoints").iterdir()] != []
    assert len((ddp_runs / "full" / "metrics.jsonl").read_text().splitlines()) == 1


def test_batch_shards_are_disjoint_and_make_the_global_batch():
    data = Dataset("pts", torch.arange(40, dtype=torch.float32)[:, None])
    full = BatchStream(data, 8, seed=3)
    shards = [BatchStream(data, 8, seed=3, rank=r, world_size=2) for r in range(2)]
    for _ in range(12):  # across epochs
        whole = full.next_indices()
        parts = [s.next_indices() for s in shards]
        assert torch.equal(torch.cat(parts), whole)
        assert len(parts[0]) == len(parts[1]) == 4
    assert make_stream(data, 8, 3, rank=1, world_size=2).next_indices().tolist() == \
        BatchStream(data, 8, seed=3).next_indices()[4:].tolist()


def test_global_batch_must_divide_over_ranks():
    from ganforge.errors import ConfigError

    with pytest.raises(ConfigError, match="global batch and must divide evenly over 3 processes"):
        Distributed(rank=0, world_size=3).local_batch(16)
    assert Distributed().local_batch(16) == 16 and not Distributed().active
