"""Datasets as tensors in memory, and a seeded, resumable batch stream over them.

Every dataset is small enough to hold decoded in memory (toy points as float32,
images as uint8). ``Dataset.to_model`` turns a stored batch into what the
networks see: float32, images scaled to [-1, 1].
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import torch


class Density(Protocol):
    """A distribution with an exact log-density (the toy data, the lab)."""

    dim: int

    def log_prob(self, x: torch.Tensor) -> torch.Tensor: ...

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor: ...


@dataclass
class Dataset:
    """Data in memory.

    x: (N, *shape); float32 for vectors, uint8 (N, C, H, W) for images.
    y: (N,) int64 labels, or None.
    density: the exact distribution the points were drawn from (toy data), or None.
    """

    name: str
    x: torch.Tensor
    y: torch.Tensor | None = None
    n_classes: int = 0
    density: Density | None = None
    class_names: list[str] | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one sample as the networks see it."""
        return tuple(self.x.shape[1:])

    @property
    def is_image(self) -> bool:
        return self.x.dim() == 4

    def __len__(self) -> int:
        return self.x.shape[0]

    def to_model(self, x: torch.Tensor) -> torch.Tensor:
        """Stored batch -> float32 network input (uint8 images -> [-1, 1])."""
        if x.dtype == torch.uint8:
            return x.float().div_(127.5).sub_(1.0)
        return x.float()

    def from_model(self, x: torch.Tensor) -> torch.Tensor:
        """Network output -> stored form (images back to uint8)."""
        if self.x.dtype == torch.uint8:
            return ((x.detach().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        return x.detach()


class BatchStream:
    """Endless minibatches: a fresh seeded permutation per epoch.

    The position (epoch, index) and seed are the whole state, so a resumed run
    draws exactly the batches the uninterrupted run would have drawn.

    Data-parallel training: ``batch_size`` is the global batch; every rank walks
    the same permutation and ``next_indices`` returns rank ``rank``'s contiguous
    slice of each global batch (1/world_size of it), so the ranks' shards are
    disjoint and together are the single-process batch.
    """

    def __init__(self, data: Dataset, batch_size: int, seed: int = 0, drop_last: bool = True, *,
                 rank: int = 0, world_size: int = 1) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, world_size={world_size}), got {rank}")
        self.rank, self.world_size = rank, world_size
        if drop_last and batch_size > len(data):
            # Not clamped: a silently smaller batch would change the run's meaning (and its learning dynamics).
            from ganforge.errors import ConfigError

            raise ConfigError(f"train.batch_size {batch_size} is larger than the dataset {data.name!r} "
                              f"({len(data)} samples); set --train.batch_size to at most {len(data)} "
                              "or give the data more samples")
        self.data = data
        self.batch_size = batch_size
        self.seed = seed
        self.drop_last = drop_last
        self.epoch = 0
        self.index = 0
        self._perm = self._permutation(0)

    def _permutation(self, epoch: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(len(self.data), generator=g)

    def next_indices(self) -> torch.Tensor:
        n = len(self.data)
        if self.index + self.batch_size > n and (self.drop_last or self.index >= n):
            self.epoch += 1
            self.index = 0
            self._perm = self._permutation(self.epoch)
        idx = self._perm[self.index : self.index + self.batch_size]
        self.index += len(idx)
        return idx.tensor_split(self.world_size)[self.rank] if self.world_size > 1 else idx

    def next(self) -> dict[str, torch.Tensor]:
        """The next batch: ``{"x": float32 tensor, "y": labels (if any)}``."""
        idx = self.next_indices()
        batch = {"x": self.data.to_model(self.data.x[idx])}
        if self.data.y is not None:
            batch["y"] = self.data.y[idx]
        for key, aligned in self.data.info.get("paired", {}).items():  # e.g. SR's low-res twin "lr"
            batch[key] = self.data.to_model(aligned[idx])
        return batch

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "index": self.index, "seed": self.seed, "batch_size": self.batch_size}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.seed = int(state["seed"])
        self.epoch = int(state["epoch"])
        self.index = int(state["index"])
        self._perm = self._permutation(self.epoch)


class MultiStream:
    """Independent streams over the parts of a multi-part dataset (unpaired A and B).

    Each part is shuffled with its own seed, so A and B are never paired.
    A batch is ``{part: {"x": ..., "y": ...}}``.
    """

    def __init__(self, parts: dict[str, Dataset], batch_size: int, seed: int = 0, **shard: int) -> None:
        self.streams = {k: BatchStream(d, batch_size, seed=seed * 7919 + i, **shard)
                        for i, (k, d) in enumerate(sorted(parts.items()))}
        self.batch_size = batch_size

    def next(self) -> dict[str, dict[str, torch.Tensor]]:
        return {k: s.next() for k, s in self.streams.items()}

    def state_dict(self) -> dict:
        return {k: s.state_dict() for k, s in self.streams.items()}

    def load_state_dict(self, state: dict) -> None:
        for k, s in self.streams.items():
            s.load_state_dict(state[k])


def make_stream(data: Dataset, batch_size: int, seed: int = 0, **shard: int) -> BatchStream | MultiStream:
    """A stream over ``data``; ``shard`` (rank=, world_size=) gives one rank's slice of each global batch."""
    parts = data.info.get("parts")
    if parts:
        return MultiStream(parts, batch_size, seed, **shard)
    return BatchStream(data, batch_size, seed, **shard)


def build_part(spec, label: str, *, kind: str = "data", example: str = "fmnist") -> Dataset:
    """A sub-dataset named inside a multi-part dataset: ``spec`` is ``{name: ..., **params}`` or a name."""
    from ganforge.errors import ConfigError
    from ganforge.registry import DATASETS

    if isinstance(spec, str):
        spec = {"name": spec}
    if not isinstance(spec, dict) or "name" not in spec:
        raise ConfigError(f"{kind}: {label} must be a dataset section like {{name: {example}}}, got {spec!r}")
    spec = dict(spec)
    try:
        return DATASETS.build(spec.pop("name"), **spec)
    except ConfigError as e:
        raise ConfigError(f"data.{label}: {e}") from None
