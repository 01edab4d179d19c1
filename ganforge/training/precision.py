"""Speed settings of the training loop: mixed precision, channels_last, torch.compile, batch prefetching.

``train.precision``:
- ``fp32`` (default): no autocast.
- ``bf16``: losses are computed under ``torch.autocast(dtype=torch.bfloat16)`` (CPU or CUDA);
  bfloat16 has float32's exponent range, so no loss scaling is needed.
- ``fp16``: CUDA only; autocast to float16 with one ``torch.amp.GradScaler`` per optimizer
  group (the loss is scaled before backward, gradients are unscaled before clipping,
  steps with inf/NaN gradients are skipped by the scaler and the scale lowered).
  Gradient penalties differentiate an unscaled critic output inside the loss; use
  bf16 when a penalty underflows in fp16.

Parameters and optimizer states stay float32 in every mode; backward runs outside autocast.

``train.channels_last``: the networks' 4D weights and every 4D input batch use the
NHWC memory layout (faster convolutions on tensor cores and oneDNN).

``train.compile``: ``nn.Module.compile()`` on every network (in place, so state_dict
keys keep their names and checkpoints stay interchangeable with uncompiled runs).

On CUDA, :class:`Prefetcher` copies the next batch to the GPU from pinned memory on
a side stream while the current step computes.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch

from ganforge.errors import ConfigError

PRECISIONS = ("fp32", "bf16", "fp16")
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def check(precision: str, device: torch.device) -> None:
    """A clear error for a precision this device cannot run."""
    if precision not in PRECISIONS:
        raise ConfigError(f"train.precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError(f"train.precision=fp16 needs a CUDA GPU (it relies on a gradient scaler); this run is on "
                          f"{device.type}. Use train.precision=bf16 on CPU, or run on a GPU")
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError("train.precision=bf16 is not supported by this GPU; use train.precision=fp16")


class Precision:
    """Autocast, loss scaling and memory layout for one run; fp32 makes every method a pass-through."""

    def __init__(self, precision: str, device: torch.device, groups, *, channels_last: bool = False) -> None:
        check(precision, device)
        self.precision, self.device, self.channels_last = precision, device, channels_last
        self.dtype = DTYPES.get(precision)
        self.scalers = {g: torch.amp.GradScaler(device.type) for g in groups} if precision == "fp16" else {}

    def autocast(self):
        if self.dtype is None:
            return nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def backward(self, loss: torch.Tensor, group: str) -> None:
        scaler = self.scalers.get(group)
        (scaler.scale(loss) if scaler else loss).backward()

    def unscale(self, opt: torch.optim.Optimizer, group: str) -> None:
        """Before gradient clipping: gradients back in their true units."""
        if group in self.scalers:
            self.scalers[group].unscale_(opt)

    def step(self, opt: torch.optim.Optimizer, group: str) -> None:
        scaler = self.scalers.get(group)
        if scaler is None:
            opt.step()
            return
        scaler.step(opt)
        scaler.update()

    def layout(self, x):
        """4D float tensors to channels_last when asked (labels and vectors are left alone)."""
        if self.channels_last and torch.is_tensor(x) and x.dim() == 4 and x.is_floating_point():
            return x.contiguous(memory_format=torch.channels_last)
        return x

    def prepare(self, game, *, compile: bool = False) -> None:
        """Convert the nets to channels_last and compile them, in place (parameters keep their identity)."""
        for net in game.nets.values():
            if self.channels_last:
                net.to(memory_format=torch.channels_last)
            if compile:
                net.compile()

    def state_dict(self) -> dict:
        return {g: s.state_dict() for g, s in self.scalers.items()}

    def load_state_dict(self, state: dict | None) -> None:
        for g, s in self.scalers.items():
            if state and g in state:
                s.load_state_dict(state[g])


def to_device(batch, device: torch.device, precision: Precision | None = None):
    """A (nested dict) batch on ``device`` (non-blocking copies), 4D inputs in the run's memory layout."""
    if isinstance(batch, dict):
        return {k: to_device(v, device, precision) for k, v in batch.items()}
    if not torch.is_tensor(batch):
        return batch
    batch = batch.to(device, non_blocking=True)
    return precision.layout(batch) if precision is not None else batch


class Prefetcher:
    """The next batch is copied to the device (pinned memory, side stream) while the current one trains.

    Wraps a BatchStream/MultiStream with the same ``next``/``state_dict``/``load_state_dict``:
    the state it reports is the stream's state *before* the batch held in advance,
    so checkpoints and resumes see exactly the batches an unprefetched run would.
    ``pin=False`` (CPU) keeps the one-ahead logic without pinning or streams.
    """

    def __init__(self, stream, device: torch.device, precision: Precision | None = None, *, pin: bool = True):
        self.stream, self.device, self.precision = stream, device, precision
        self.cuda = device.type == "cuda"
        self.pin = pin and self.cuda
        self.side = torch.cuda.Stream(device) if self.cuda else None
        self._pending = None  # (stream state before it, batch, ready event)
        self.batch_size = getattr(stream, "batch_size", None)

    def _pin(self, batch):
        if isinstance(batch, dict):
            return {k: self._pin(v) for k, v in batch.items()}
        return batch.pin_memory() if self.pin and torch.is_tensor(batch) else batch

    def _fetch(self):
        state = self.stream.state_dict()
        batch = self._pin(self.stream.next())
        if self.side is None:
            return state, to_device(batch, self.device, self.precision), None
        with torch.cuda.stream(self.side):
            out = to_device(batch, self.device, self.precision)
            ev = torch.cuda.Event()
            ev.record(self.side)
        return state, out, ev

    def next(self):
        if self._pending is None:
            self._pending = self._fetch()
        _, batch, ev = self._pending
        if ev is not None:
            torch.cuda.current_stream(self.device).wait_event(ev)
            _record(batch, torch.cuda.current_stream(self.device))
        self._pending = self._fetch()
        return batch

    def state_dict(self):
        return self._pending[0] if self._pending is not None else self.stream.state_dict()

    def load_state_dict(self, state) -> None:
        self.stream.load_state_dict(state)
        self._pending = None


def _record(batch, stream) -> None:
    """Tell the caching allocator the main stream uses tensors made on the side stream."""
    if isinstance(batch, dict):
        for v in batch.values():
            _record(v, stream)
    elif torch.is_tensor(batch) and batch.is_cuda:
        batch.record_stream(stream)
