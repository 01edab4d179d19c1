"""Data-parallel training under torchrun: DistributedDataParallel per network, one run directory.

    torchrun --nproc_per_node=4 -m ganforge train configs/fmnist/dcgan.yaml --out runs/dcgan

Each process (rank) holds the whole game. What the trainer does differently
when ``WORLD_SIZE`` > 1 (see docs/distributed.md):

- process group from torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK,
  MASTER_ADDR, MASTER_PORT): NCCL on CUDA (one GPU per local rank), gloo on CPU;
- ``train.batch_size`` is the *global* batch: every rank draws the same seeded
  permutation and takes its own contiguous slice of each global batch
  (``BatchStream(rank=, world_size=)``), so a recipe means the same thing on
  1 or N processes;
- every trainable network is wrapped in DistributedDataParallel; the wrappers
  are swapped into ``game.nets`` only while a phase computes its loss and
  backward (:meth:`Distributed.phase`), so checkpoints, EMA, sampling and
  evaluation see the plain networks (no ``module.`` key prefixes); networks
  outside the phase's group do not synchronise gradients (``no_sync``);
- the noise RNGs are seeded per rank (``seed * 1_000_003 + rank``) after the
  networks are built, so ranks draw different latent codes;
- loss records are averaged over ranks; a non-finite loss on any rank skips the
  update on all ranks; a stop signal on any rank stops all of them at the same step;
- rank 0 alone writes the run directory (config, logs, evaluations,
  checkpoints); a checkpoint stores every rank's RNG state, so a resume with the
  same number of processes continues exactly.
"""

from __future__ import annotations

import atexit
import datetime
import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch import nn

from ganforge.errors import ConfigError

log = logging.getLogger("ganforge")


class _DDP(nn.parallel.DistributedDataParallel):
    """DDP that forwards unknown attributes to the wrapped net (games read e.g. ``net.z_dim``)."""

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.module, name)


@dataclass
class Distributed:
    """This process's place in the job; ``world_size == 1`` (the default) makes every method a no-op."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None
    wrappers: dict[str, nn.Module] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # ------------------------------------------------------------------ set-up
    def shard(self) -> dict[str, int]:
        """Keyword arguments for ``make_stream``: this rank's slice of every global batch."""
        return {"rank": self.rank, "world_size": self.world_size} if self.active else {}

    def local_batch(self, global_batch: int) -> int:
        if global_batch % self.world_size:
            raise ConfigError(f"train.batch_size={global_batch} is the global batch and must divide evenly over "
                              f"{self.world_size} processes; use a multiple of {self.world_size}")
        return global_batch // self.world_size

    def rank_seed(self, seed: int) -> int:
        return seed * 1_000_003 + self.rank

    def wrap(self, game, device: torch.device) -> None:
        """A DDP wrapper for every net some optimizer group trains (DDP broadcasts rank 0's weights)."""
        if not self.active:
            return
        trained = {r for roles in game.groups.values() for r in roles}
        ids = [torch.cuda.current_device()] if device.type == "cuda" else None
        for role, net in game.nets.items():
            if role in trained and any(p.requires_grad for p in net.parameters()):
                self.wrappers[role] = _DDP(net, device_ids=ids)

    @contextmanager
    def phase(self, game, group: set[str]):
        """Inside: ``game.nets[role]`` is the DDP wrapper; only nets in ``group`` all-reduce gradients."""
        if not self.wrappers:
            yield
            return
        plain = {r: game.nets[r] for r in self.wrappers}
        for r, w in self.wrappers.items():
            w.require_backward_grad_sync = r in group
            game.nets[r] = w
        try:
            yield
        finally:
            for r, m in plain.items():
                game.nets[r] = m

    def restore_rng(self, state: dict, seed: int) -> None:
        """This rank's RNG state from a checkpoint; exact when the checkpoint came from as many ranks."""
        from ganforge.training import checkpoint as ckpt

        ranks = state.get("rng_ranks")
        saved = len(ranks) if ranks else 1
        if saved == self.world_size:
            ckpt.set_rng_state(ranks[self.rank] if ranks else state["rng"])
            return
        log.warning("checkpoint written by %d process(es), resumed with %d: the RNG streams are reseeded, so the "
                    "continuation is not bit-identical to an uninterrupted run", saved, self.world_size)
        ckpt.set_rng_state(state["rng"])
        torch.manual_seed(self.rank_seed(seed) + int(state["step"]))

    # ------------------------------------------------------------------ agreement between ranks
    def all_finite(self, loss: torch.Tensor) -> bool:
        """True when the loss is finite on every rank (all ranks then skip or step together)."""
        ok = torch.isfinite(loss.detach()).all()
        if not self.active:
            return bool(ok)
        flag = ok.to(torch.float32).reshape(1).to(self._comm_device(loss.device))
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
        return bool(flag.item() > 0)

    def any(self, flag: bool) -> bool:
        if not self.active:
            return flag
        t = torch.tensor([float(flag)], device=self._comm_device())
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item() > 0)

    def mean(self, values: dict[str, float]) -> dict[str, float]:
        """Average logged scalars over ranks (every rank logs the same keys)."""
        if not self.active or not values:
            return values
        keys = sorted(values)
        t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=self._comm_device())
        dist.all_reduce(t)
        return {k: float(v) / self.world_size for k, v in zip(keys, t.tolist(), strict=True)}

    def gather(self, obj):
        """Every rank's ``obj`` as a list indexed by rank."""
        if not self.active:
            return [obj]
        out = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def _comm_device(self, device: torch.device | None = None) -> torch.device:
        if self.backend == "nccl":
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")


def _env_int(name: str, default: int) -> int:
    v = os.environ.get(name)
    if v is None or v == "":
        return default
    try:
        return int(v)
    except ValueError:
        raise ConfigError(f"environment variable {name}={v!r} must be an integer") from None


def setup(device_name: str) -> Distributed:
    """Join the job torchrun started (or the process group a caller already initialised).

    ``device_name`` is train.device: on CUDA each process takes the GPU numbered by its
    LOCAL_RANK and the backend is NCCL; on CPU the backend is gloo.
    """
    if dist.is_available() and dist.is_initialized():
        backend = dist.get_backend()
        return Distributed(dist.get_rank(), dist.get_world_size(), _env_int("LOCAL_RANK", 0), backend)
    world = _env_int("WORLD_SIZE", 1)
    if world <= 1:
        return Distributed()
    if not dist.is_available():
        raise ConfigError("WORLD_SIZE > 1 but this PyTorch build has no torch.distributed")
    rank, local = _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    for var in ("MASTER_ADDR", "MASTER_PORT"):
        if var not in os.environ:
            raise ConfigError(f"WORLD_SIZE={world} but {var} is not set; start the job with torchrun "
                              f"(e.g. torchrun --nproc_per_node={world} -m ganforge train ...)")
    if device_name.startswith("cuda:"):
        raise ConfigError(f"train.device={device_name!r} under torchrun: use cuda or auto; each process takes "
                          f"the GPU numbered by its LOCAL_RANK")
    cuda = device_name == "cuda" or (device_name == "auto" and torch.cuda.is_available())
    if cuda:
        if local >= torch.cuda.device_count():
            raise ConfigError(f"LOCAL_RANK={local} but only {torch.cuda.device_count()} GPU(s) are visible; "
                              f"use --nproc_per_node <= the GPU count")
        torch.cuda.set_device(local)
    backend = "nccl" if cuda else "gloo"
    # generous timeout: the other ranks wait at their next collective while rank 0 evaluates and checkpoints
    dist.init_process_group(backend=backend, init_method="env://", rank=rank, world_size=world,
                            timeout=datetime.timedelta(minutes=60))
    atexit.register(_teardown)
    log.info("distributed: rank %d of %d (local rank %d), backend %s", rank, world, local, backend)
    return Distributed(rank, world, local, backend)


def _teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()

