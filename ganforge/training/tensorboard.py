"""TensorBoard mirror of a run: event files in RUN_DIR/tb (``train.tensorboard``, on by default).

Scalars: every loss record (``loss/<name>``; gradient norms ``*_gnorm`` as
``grad_norm/<name>``), every evaluation metric (``metrics/<name>``) and each
optimizer group's learning rate (``lr/<group>``). Images: each sample figure
the trainer writes to RUN_DIR/samples (``samples/figure``) and, for image
data, a grid of the evaluation samples (``samples/grid``). losses.jsonl and
metrics.jsonl stay the source of truth; this hook only mirrors them.

    tensorboard --logdir runs/

A resumed run passes ``purge_step`` so TensorBoard drops the events a killed
run wrote after its last checkpoint. Without the ``tensorboard`` package the
hook warns once and the run goes on without it.
"""

from __future__ import annotations

import logging
import math
import re
import warnings
from pathlib import Path

import numpy as np
import torch

from ganforge import rundir
from ganforge.training.hooks import HOOK_FACTORIES, Hook

log = logging.getLogger("ganforge")
_FIGURE = re.compile(r"^step_(\d+)\.png$")
_warned = False


def _is_rank0(trainer) -> bool:
    rank = getattr(trainer, "rank", None)
    if rank is not None:
        return int(rank) == 0
    dist = torch.distributed
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def image_grid(x: torch.Tensor, nrow: int = 8) -> np.ndarray:
    """(N, C, H, W) images in [-1, 1] or uint8 -> one (3, H', W') uint8 grid with 2-pixel gaps."""
    x = x.detach().cpu()
    if x.dtype != torch.uint8:
        x = ((x.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    x = x[:, :3]
    n, c, h, w = x.shape
    rows = math.ceil(n / nrow)
    cols = min(n, nrow)
    grid = np.zeros((c, rows * (h + 2) + 2, cols * (w + 2) + 2), dtype=np.uint8)
    for i in range(n):
        r, k = divmod(i, nrow)
        grid[:, 2 + r * (h + 2): 2 + r * (h + 2) + h, 2 + k * (w + 2): 2 + k * (w + 2) + w] = x[i].numpy()
    return grid


class TensorBoardHook(Hook):
    """Writes RUN_DIR/tb event files; see the module docstring for the tags."""

    def __init__(self, writer, run_dir: Path) -> None:
        self.writer = writer
        self.samples_dir = Path(run_dir) / "samples"
        self._figures_done: set[str] = set()

    def on_start(self, trainer) -> None:
        # figures from before a resume are already in the old event files
        if self.samples_dir.is_dir():
            self._figures_done |= {p.name for p in self.samples_dir.glob("step_*.png")
                                   if (m := _FIGURE.match(p.name)) and int(m.group(1)) <= trainer.step}

    def on_log(self, trainer, record: dict) -> None:
        step = int(record["step"])
        for k, v in record.items():
            if k in ("step", "time") or not _is_number(v):
                continue
            tag = f"grad_norm/{k}" if k.endswith("_gnorm") else f"loss/{k}"
            self.writer.add_scalar(tag, float(v), step)
        for group, opt in trainer.optimizers.items():
            for i, pg in enumerate(opt.param_groups):
                suffix = f"_{i}" if len(opt.param_groups) > 1 else ""
                self.writer.add_scalar(f"lr/{group}{suffix}", float(pg["lr"]), step)
        if "time" in record and _is_number(record["time"]):
            self.writer.add_scalar("time/seconds", float(record["time"]), step)
        self._figures()

    def on_eval(self, trainer, record: dict, samples) -> None:
        step = int(record["step"])
        for k, v in record.items():
            if k != "step" and _is_number(v):
                self.writer.add_scalar(f"metrics/{k}", float(v), step)
        if torch.is_tensor(samples) and samples.dim() == 4 and samples.shape[1] in (1, 3):
            self.writer.add_image("samples/grid", image_grid(samples[:64]), step, dataformats="CHW")
        self._figures()

    def on_checkpoint(self, trainer, path) -> None:
        # the trainer draws an evaluation's figure after on_eval; pick it up at the next event
        self._figures()
        self.writer.flush()

    def on_end(self, trainer) -> None:
        self._figures()
        self.writer.close()

    def _figures(self) -> None:
        if not self.samples_dir.is_dir():
            return
        for p in sorted(self.samples_dir.glob("step_*.png")):
            m = _FIGURE.match(p.name)
            if not m or p.name in self._figures_done:
                continue
            try:
                from PIL import Image

                with Image.open(p) as im:
                    arr = np.asarray(im.convert("RGB"))
            except OSError as e:  # a figure still being written, or damaged: try at the next event
                log.debug("tensorboard: cannot read %s yet: %s", p, e)
                continue
            self.writer.add_image("samples/figure", arr, int(m.group(1)), dataformats="HWC")
            self._figures_done.add(p.name)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def make_tensorboard_hook(trainer) -> TensorBoardHook | None:
    """The hook for ``trainer`` (None when ``train.tensorboard`` is off, off rank 0, or not installed)."""
    global _warned
    if not trainer.cfg.train.tensorboard or not _is_rank0(trainer):
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        if not _warned:
            warnings.warn("train.tensorboard is on but the tensorboard package is not installed "
                          "(pip install tensorboard); continuing without event files", stacklevel=2)
            _warned = True
        return None
    purge = trainer.step + 1 if trainer.step > 0 else None  # steps after the checkpoint are redone
    tb = rundir.ensure_dir(trainer.run_dir, "tb")  # a tb/ that links out of the run folder is refused
    writer = SummaryWriter(log_dir=str(tb), purge_step=purge)
    return TensorBoardHook(writer, trainer.run_dir)


HOOK_FACTORIES.append(make_tensorboard_hook)
