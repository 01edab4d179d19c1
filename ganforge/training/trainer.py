"""The one training loop. It runs any game's phases and never branches on a game's name.

Per phase run: only the phase's optimizer group may have gradients
(requires_grad toggled), zero_grad, loss, backward, optional clipping,
step, the phase's after_step hook, EMA. Around the loop: logs, evaluation,
atomic checkpoints, exact resume, a progress bar, signal handling.

Schedule by step: before every training step the trainer sets ``game.step``
and calls ``set_step(step)`` on every module of the game that has one (e.g.
the progressive nets' level and fade-in). Such a module keeps what it derives
from the step in buffers, so checkpoints and EMA copies carry it.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import signal
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch

from ganforge import rundir
from ganforge.config import Config
from ganforge.data.base import make_stream
from ganforge.errors import ConfigError
from ganforge.training import checkpoint as ckpt
from ganforge.training import distributed
from ganforge.training.build import build
from ganforge.training.ema import EMA
from ganforge.training.evaluation import find_evaluator
from ganforge.training.hooks import build_hooks
from ganforge.training.optim import build_schedulers
from ganforge.training.precision import Precision, Prefetcher, to_device

log = logging.getLogger("ganforge")


class TrainingStopped(RuntimeError):
    """Raised after a signal or repeated non-finite losses; the last good checkpoint is on disk."""


def is_out_of_memory(e: BaseException) -> bool:
    text = str(e)
    return isinstance(e, torch.OutOfMemoryError) or "out of memory" in text.lower() or "DefaultCPUAllocator" in text


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


#: Settings a resume may change: they never alter the maths of the run (eval.* and checkpoint.* too).
RUNTIME_KEYS = ("train.steps", "train.log_every", "train.threads", "train.device", "train.tensorboard",
                "train.max_nonfinite", "data.cache")


class Trainer:
    """Owns a run directory; ``fit()`` trains to ``train.steps``; ``Trainer.resume(dir)`` continues."""

    def __init__(self, cfg: Config, run_dir: str | Path, *, quiet: bool = False, overwrite: bool = False,
                 _state: dict | None = None):
        self.cfg, self.run_dir, self.quiet = cfg, Path(run_dir), quiet
        tc = cfg.train
        from ganforge.training.threads import set_threads

        self.threads = set_threads(tc.threads)  # 0: the CPUs this process may use; train.log records it
        self.dist = distributed.setup(tc.device)  # a no-op unless launched by torchrun with WORLD_SIZE > 1
        self.lock: rundir.RunLock | None = None
        self._log_handler: logging.Handler | None = None
        with rundir.sigterm_unwinds():  # a SIGTERM while building still lets go of the folder (fit has its own handler)
            if self.dist.is_main:
                self._prepare_dir(resume=_state is not None, overwrite=overwrite)
            try:
                self._setup(_state)
            except BaseException:
                created = self.lock is not None and self.lock.created and _state is None
                self._release()
                if created:  # nothing was trained: don't leave a half-made folder behind
                    rundir.remove_unstarted(self.run_dir)
                raise

    def _setup(self, _state: dict | None) -> None:
        cfg = self.cfg
        tc = cfg.train
        seed_everything(tc.seed)
        b = build(cfg)
        self.data, self.game, self.optimizers, self.device = b.data, b.game, b.optimizers, b.device
        self.schedulers = build_schedulers(self.optimizers, tc)
        self.game.train()
        self.phases = self.game.phases(d_steps=tc.d_steps)
        for ph in self.phases:
            if ph.group not in self.optimizers:
                raise ConfigError(f"phase {ph.name!r} uses unknown optimizer group {ph.group!r}")
        self.ema = EMA(self.game.nets, self.game.ema_roles, tc.ema) if tc.ema and self.game.ema_roles else None
        self.precision = Precision(tc.precision, self.device, self.optimizers, channels_last=tc.channels_last)
        self.precision.prepare(self.game, compile=tc.compile)
        self.dist.wrap(self.game, self.device)
        if self.dist.active:
            seed_everything(self.dist.rank_seed(tc.seed))  # each rank draws its own noise
        self.local_batch = self.dist.local_batch(tc.batch_size)  # train.batch_size is the global batch
        self.stream = make_stream(self.data, tc.batch_size, seed=tc.seed, **self.dist.shard())
        if self.device.type == "cuda":
            self.stream = Prefetcher(self.stream, self.device, self.precision)
        self.step = 0
        self.nonfinite: dict[str, int] = {}  # per phase: non-finite losses in a row
        self.skipped = 0
        self.finished = False  # the final evaluation and checkpoint are done
        self._window: dict[str, list[float]] = {}  # losses since the last record (a checkpoint keeps them)
        self._elapsed0, self._t0 = 0.0, None  # training seconds before this session; this session's start
        self._stop = None
        self._metrics_fn, self._figure_fn = find_evaluator(self.game.eval_reference())
        if _state is not None:
            self._load_state(_state)
        elif self.dist.is_main:
            self._truncate_logs(0)  # a ganforge folder whose run never reached a checkpoint starts again
        if self.dist.is_main:
            rundir.write_text(self.run_dir, self.config_path(), cfg.to_yaml())
        self.hooks = build_hooks(self) if self.dist.is_main else []

    # ------------------------------------------------------------------ run directory
    def _prepare_dir(self, *, resume: bool, overwrite: bool = False) -> None:
        """Claim the run folder (new or empty unless resuming; locked; see ganforge.rundir) before building."""
        self.lock = rundir.claim(self.run_dir, resume=resume, overwrite=overwrite,
                                 has_checkpoints=lambda d: bool(ckpt.list_checkpoints(d)))
        try:
            rundir.check_tree(self.run_dir)
            for sub in ("checkpoints", "samples"):
                rundir.ensure_dir(self.run_dir, sub)
            self._attach_log()
        except BaseException:
            self._release()
            raise

    def _attach_log(self) -> None:
        """RUN_DIR/train.log, opened without following a link; detached again when the run lets go of the folder."""
        if self._log_handler is None:
            h = rundir.LogFile(self.run_dir, self.run_dir / "train.log")
            h._ganforge = str(self.run_dir)
            h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
            log.addHandler(h)
            log.setLevel(logging.INFO)
            self._log_handler = h

    def _release(self) -> None:
        """Let go of the run folder: the lock file and the train.log handler."""
        if self._log_handler is not None:
            log.removeHandler(self._log_handler)
            self._log_handler.close()
            self._log_handler = None
        if self.lock is not None:
            self.lock.release()

    def config_path(self) -> Path:
        return self.run_dir / "config.yaml"

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        return {
            "format": ckpt.FORMAT, "version": ckpt.VERSION,
            "config": self.cfg.data, "step": self.step,
            "game": self.game.state_dict(),
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "schedulers": {k: s.state_dict() for k, s in self.schedulers.items()},
            "ema": self.ema.state_dict() if self.ema else None,
            "data": self.stream.state_dict(),
            "rng": ckpt.rng_state(),
            "rng_ranks": self.dist.gather(ckpt.rng_state()) if self.dist.active else None,
            "precision": self.precision.state_dict(),
            "counters": {"skipped": self.skipped},
            "log_window": {k: list(v) for k, v in self._window.items()},  # a resume logs the same means
            "finished": self.finished,
            "elapsed": self.elapsed(),  # wall-clock training seconds: `time` in the logs goes on from here
        }

    def elapsed(self) -> float:
        """Seconds of training so far, over every session of this run."""
        return round(self._elapsed0 + (time.time() - self._t0 if self._t0 is not None else 0.0), 3)

    def _load_state(self, s: dict) -> None:
        self.game.load_state_dict(s["game"])
        for k, o in self.optimizers.items():
            o.load_state_dict(s["optimizers"][k])
        for k, sch in self.schedulers.items():
            sch.load_state_dict(s["schedulers"][k])
        if self.ema and s.get("ema"):
            self.ema.load_state_dict(s["ema"])
        self.stream.load_state_dict(s["data"])
        self.step = int(s["step"])
        self.skipped = int(s.get("counters", {}).get("skipped", 0))
        self._window = {k: [float(x) for x in v] for k, v in (s.get("log_window") or {}).items()}
        self.finished = bool(s.get("finished", False))
        self._elapsed0 = float(s.get("elapsed", 0.0))
        self.precision.load_state_dict(s.get("precision"))
        self.dist.restore_rng(s, self.cfg.train.seed)
        if self.dist.is_main:
            self._truncate_logs(self.step)

    def _truncate_logs(self, step: int) -> None:
        """Drop log records written after the checkpoint (a killed run logged steps it then lost)."""
        rundir.truncate_logs(self.run_dir, ("losses.jsonl", "metrics.jsonl"), step)

    def save(self) -> Path:
        path = ckpt.checkpoint_path(self.run_dir, self.step)
        state = self.state_dict()  # on every rank: it gathers the ranks' RNG states
        if self.dist.is_main:
            ckpt.save_atomic(state, path, self.run_dir)
            ckpt.prune(self.run_dir, self.cfg.checkpoint.keep)
            self._call("on_checkpoint", path)
        self.dist.barrier()  # when save returns, the checkpoint is on disk for every rank
        return path

    def _call(self, event: str, *args) -> None:
        for h in self.hooks:
            getattr(h, event)(self, *args)

    @classmethod
    def resume(cls, run_dir: str | Path, overrides: dict | None = None, *, quiet: bool = False) -> Trainer:
        """Continue a run exactly from its newest readable checkpoint.

        ``overrides`` may change only what does not alter the computation: train.steps (to go further)
        and the runtime-only settings in ``RUNTIME_KEYS`` (threads, device, cadences, TensorBoard) and
        the eval.* and checkpoint.* sections, so a slow run can always be rescued.
        """
        from ganforge.config import resolve

        owner = rundir.RunLock(run_dir).owner() if os.environ.get("RANK", "0") == "0" else None
        if owner is not None:  # say so before reading checkpoints another process is writing
            raise ConfigError(rundir.in_use_message(Path(run_dir), owner))
        state, path = ckpt.load_latest(run_dir)
        raw = json.loads(json.dumps(state["config"]))
        for key, value in (overrides or {}).items():
            sec, _, k = key.partition(".")
            if not (key in RUNTIME_KEYS or sec in ("eval", "checkpoint")):
                raise ConfigError(f"cannot change {key} when resuming (it would not continue the same run). "
                                  f"Allowed: {', '.join(RUNTIME_KEYS)}, eval.*, checkpoint.*")
            raw.setdefault(sec, {})[k] = value
        cfg = resolve(raw)
        at, steps = int(state["step"]), cfg.train.steps
        if steps < at or (steps == at and state.get("finished", True)):
            asked = (f"--train.steps={steps} would not train further" if "train.steps" in (overrides or {})
                     else f"it already finished (train.steps = {steps})")
            raise ConfigError(f"{run_dir} is already at step {at}: {asked}. To continue it, give --train.steps "
                              f"larger than {at}")
        log.info("resuming from %s (step %d)", path, at)
        return cls(cfg, run_dir, quiet=quiet, _state=state)

    # ------------------------------------------------------------------ the loop
    def _run_phase(self, ph) -> dict:
        logs: dict[str, float] = {}
        group = set(self.game.groups[ph.group])
        for role, net in self.game.nets.items():
            net.requires_grad_(role in group)
        opt, prec = self.optimizers[ph.group], self.precision
        with self.dist.phase(self.game, group):  # DDP wrappers in place; only the group syncs gradients
            for _ in range(ph.repeat):
                batch = to_device(self.stream.next(), self.device, prec) if ph.needs_batch else {"n": self.local_batch}
                opt.zero_grad(set_to_none=True)
                with prec.autocast():
                    loss, step_logs = ph.loss(batch)
                if not self.dist.all_finite(loss):
                    self._nonfinite(ph.name)
                    continue  # its logs (NaN) are dropped too
                logs = step_logs
                self.nonfinite[ph.name] = 0
                prec.backward(loss, ph.group)
                if self.cfg.train.grad_clip:
                    prec.unscale(opt, ph.group)
                    params = [p for r in group for p in self.game.nets[r].parameters()]
                    logs[f"{ph.name}_gnorm"] = float(torch.nn.utils.clip_grad_norm_(params, self.cfg.train.grad_clip))
                prec.step(opt, ph.group)
                if ph.after_step:
                    ph.after_step()
                if self.ema:
                    self.ema.update(self.game.nets, group)
        return logs

    def run_step(self) -> list[dict]:
        """One training step (every phase once), the step counter advanced; returns each phase's logs. The
        learning-rate schedules, logs, evaluations and checkpoints are ``fit``'s."""
        self.game.step = self.step  # the game may schedule by step (e.g. instance-noise annealing)
        for m in self.game.modules():  # so may any module (progressive growing's level and fade-in)
            if callable(getattr(m, "set_step", None)):
                m.set_step(self.step)
        logs = [self._run_phase(ph) for ph in self.phases]
        self.step += 1
        return logs

    def _nonfinite(self, phase: str) -> None:
        # counted per phase: a critic whose loss is always NaN must stop the run even if G's loss is fine
        n = self.nonfinite[phase] = self.nonfinite.get(phase, 0) + 1
        self.skipped += 1
        log.warning("non-finite %s loss at step %d: update skipped (%d in a row)", phase, self.step, n)
        if n >= self.cfg.train.max_nonfinite:
            raise TrainingStopped(f"{n} non-finite {phase} losses in a row at step {self.step}; "
                                  f"{self._last_good()}. Lower the learning rate or add a penalty.")

    def _last_good(self) -> str:
        return ckpt.last_good(self.run_dir / "checkpoints")

    def _out_of_memory(self, e: RuntimeError) -> str:
        """One sentence for an out-of-memory error: which settings to lower, and what is on disk."""
        widths = [f"nets.{role}.{k}={v}" for role, spec in (self.cfg.data.get("nets") or {}).items()
                  if isinstance(spec, dict) for k, v in spec.items() if k in ("hidden", "base", "width", "channels")]
        return (f"out of memory at step {self.step} ({str(e).strip().splitlines()[0][:120]}): lower "
                f"train.batch_size (now {self.cfg.train.batch_size}), the networks' width "
                f"({', '.join(widths) or 'nets.<role>.hidden or .base'}) or eval.n (now {self.cfg.eval.n}); "
                f"nothing was saved after the error, and {self._last_good()}")

    def fit(self) -> dict:
        """Train until ``train.steps``; returns the last evaluation's metrics."""
        tc, ec, cc = self.cfg.train, self.cfg.eval, self.cfg.checkpoint
        bar = self._bar(tc.steps)
        acc = self._window  # a resumed run continues the checkpoint's partial window
        t0 = self._t0 = time.time()
        last: dict = {}
        if self.dist.is_main and self.lock is not None and not self.lock.held:  # a second fit() of this trainer
            self.lock.acquire()
            self._attach_log()
        old = self._install_signals()
        self._call("on_start")
        try:
            while self.step < tc.steps:
                for logs in self.run_step():
                    for k, v in logs.items():
                        acc.setdefault(k, []).append(v)
                for sch in self.schedulers.values():
                    sch.step()
                if bar is not None:
                    bar.update(1)
                if self.step % tc.log_every == 0 or self.step == tc.steps:
                    means = self.dist.mean({k: sum(v) / len(v) for k, v in acc.items()})  # over ranks too
                    rec = {"step": self.step, "time": self.elapsed(), **means}
                    self._append("losses.jsonl", rec)
                    self._call("on_log", rec)
                    if bar is not None:
                        bar.losses(means)  # the postfix: these losses and the latest evaluation's metrics
                    acc = self._window = {}
                if ec.every and self.step % ec.every == 0 and self.step != tc.steps:
                    last = self.evaluate()
                    if bar is not None:
                        bar.evaluated(self.step, last)  # one readable line per evaluation
                if cc.every and self.step % cc.every == 0 and self.step != tc.steps:
                    self.save()
                if self.dist.any(self._stop is not None):  # every rank stops at the same step
                    self._stop = self._stop or "a signal to another process"
                    self.save()
                    raise TrainingStopped(f"stopped by {self._stop} at step {self.step}; checkpoint saved. "
                                          f"Continue with: ganforge train --resume {self.run_dir}")
            last = self.evaluate()
            self.finished = True
            self.save()
        except RuntimeError as e:  # torch.OutOfMemoryError is one; TrainingStopped and CheckpointError pass
            if not is_out_of_memory(e):
                raise
            raise ConfigError(self._out_of_memory(e)) from None
        except rundir.WriteError as e:  # a full disk while appending a record or writing a figure
            raise rundir.WriteError(f"{e}; {self._last_good()}", e.reason) from None
        finally:
            self._elapsed0, self._t0 = self.elapsed(), None
            if bar is not None:
                bar.close()
            self._restore_signals(old)
            try:
                self._call("on_end")
            finally:
                self._release()
        log.info("finished at step %d in %.1fs; metrics %s", self.step, time.time() - t0, last)
        return last

    def _bar(self, total: int):
        """The progress display (training.progress.Progress: a bar on a terminal, eval lines), or None."""
        log.info("training with %d CPU threads (train.threads=%s), device %s", self.threads, self.cfg.train.threads,
                 self.device)
        if self.quiet or not self.dist.is_main:
            return None
        from ganforge.training.progress import Progress

        return Progress(total, self.step, self.cfg["name"], self.cfg.eval.n)

    def _install_signals(self):
        def handler(signum, _frame):
            self._stop = signal.Signals(signum).name

        old = {}
        try:
            for s in (signal.SIGINT, signal.SIGTERM):
                old[s] = signal.signal(s, handler)
        except ValueError:  # not in the main thread
            pass
        return old

    def _restore_signals(self, old) -> None:
        for s, h in old.items():
            signal.signal(s, h)

    # ------------------------------------------------------------------ evaluation
    def sampling_context(self):
        return self.ema.swap_in(self.game) if self.ema else nullcontext(self.game)

    def evaluate(self) -> dict:
        if not self.dist.is_main:  # rank 0 evaluates; the others wait for it at their next collective
            return {}
        ec = self.cfg.eval
        gen = torch.Generator().manual_seed(ec.seed)
        with self.sampling_context():
            x = self.game.sample(ec.n, generator=gen)
        ref = self.game.eval_reference()
        metrics = {}
        if self._metrics_fn is not None:
            metrics = {k: (v if not isinstance(v, float) or math.isfinite(v) else None)
                       for k, v in self._metrics_fn(ref, x, ec).items()}
        rec = {"step": self.step, **metrics}
        self._append("metrics.jsonl", rec)
        self._call("on_eval", rec, x)
        if ec.samples and self._figure_fn is not None:
            title = f"{self.cfg['name']} step {self.step}  " + "  ".join(
                f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items())
            rundir.write_with(self.run_dir, self.run_dir / "samples" / f"step_{self.step:07d}.png",
                              lambda tmp: self._figure_fn(ref, x, tmp, title), durable=False)
        log.info("eval step %d: %s", self.step, metrics)
        return metrics

    def _append(self, name: str, rec: dict) -> None:
        if not self.dist.is_main:
            return
        rundir.append_text(self.run_dir, self.run_dir / name, json.dumps(rec) + "\n")
