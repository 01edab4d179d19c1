"""The one training loop. It runs any game's phases and never branches on a game's name.

Per phase run: only the phase's optimizer group may have gradients
(requires_grad toggled), zero_grad, loss, backward, optional clipping,
step, the phase's after_step hook, EMA. Around the loop: logs, evaluation,
atomic checkpoints, exact resume, a progress bar, signal handling.
"""

from __future__ import annotations

import json
import logging
import math
import random
import signal
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch

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


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class Trainer:
    """Owns a run directory; ``fit()`` trains to ``train.steps``; ``Trainer.resume(dir)`` continues."""

    def __init__(self, cfg: Config, run_dir: str | Path, *, quiet: bool = False, _state: dict | None = None):
        self.cfg, self.run_dir, self.quiet = cfg, Path(run_dir), quiet
        tc = cfg.train
        if tc.threads:
            torch.set_num_threads(tc.threads)
        self.dist = distributed.setup(tc.device)  # a no-op unless launched by torchrun with WORLD_SIZE > 1
        if self.dist.is_main:
            self._prepare_dir()
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
        self._stop = None
        self._metrics_fn, self._figure_fn = find_evaluator(self.game.eval_reference())
        if _state is not None:
            self._load_state(_state)
        if self.dist.is_main:
            self.config_path().write_text(cfg.to_yaml())
        self.hooks = build_hooks(self) if self.dist.is_main else []

    # ------------------------------------------------------------------ run directory
    def _prepare_dir(self) -> None:
        try:
            for sub in ("checkpoints", "samples"):
                (self.run_dir / sub).mkdir(parents=True, exist_ok=True)
            probe = self.run_dir / ".write-test"
            probe.write_text("ok")
            probe.unlink()
        except OSError as e:
            raise ConfigError(f"cannot write to the run directory {self.run_dir}: {e.strerror or e}") from None
        if not log.handlers or not any(getattr(h, "_ganforge", None) == str(self.run_dir) for h in log.handlers):
            h = logging.FileHandler(self.run_dir / "train.log")
            h._ganforge = str(self.run_dir)
            h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
            log.addHandler(h)
            log.setLevel(logging.INFO)

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
        }

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
        self.precision.load_state_dict(s.get("precision"))
        self.dist.restore_rng(s, self.cfg.train.seed)
        if self.dist.is_main:
            self._truncate_logs(self.step)

    def _truncate_logs(self, step: int) -> None:
        """Drop log records written after the checkpoint (a killed run logged steps it then lost)."""
        for name in ("losses.jsonl", "metrics.jsonl"):
            p = self.run_dir / name
            if p.exists():
                keep = [ln for ln in p.read_text().splitlines() if ln.strip() and json.loads(ln)["step"] <= step]
                p.write_text("".join(ln + "\n" for ln in keep))

    def save(self) -> Path:
        path = ckpt.checkpoint_path(self.run_dir, self.step)
        state = self.state_dict()  # on every rank: it gathers the ranks' RNG states
        if self.dist.is_main:
            ckpt.save_atomic(state, path)
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

        ``overrides`` may change only what does not alter the computation so far:
        train.steps, train.log_every, eval.*, checkpoint.*.
        """
        from ganforge.config import resolve

        state, path = ckpt.load_latest(run_dir)
        raw = json.loads(json.dumps(state["config"]))
        for key, value in (overrides or {}).items():
            sec, _, k = key.partition(".")
            if not (key in ("train.steps", "train.log_every") or sec in ("eval", "checkpoint")):
                raise ConfigError(f"cannot change {key} when resuming (it would not continue the same run). "
                                  f"Allowed: train.steps, train.log_every, eval.*, checkpoint.*")
            raw.setdefault(sec, {})[k] = value
        cfg = resolve(raw)
        log.info("resuming from %s (step %d)", path, state["step"])
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

    def _nonfinite(self, phase: str) -> None:
        # counted per phase: a critic whose loss is always NaN must stop the run even if G's loss is fine
        n = self.nonfinite[phase] = self.nonfinite.get(phase, 0) + 1
        self.skipped += 1
        log.warning("non-finite %s loss at step %d: update skipped (%d in a row)", phase, self.step, n)
        if n >= self.cfg.train.max_nonfinite:
            raise TrainingStopped(f"{n} non-finite {phase} losses in a row at step {self.step}; the last "
                                  f"good checkpoint is in {self.run_dir / 'checkpoints'}. Lower the learning "
                                  f"rate or add a penalty.")

    def fit(self) -> dict:
        """Train until ``train.steps``; returns the last evaluation's metrics."""
        tc, ec, cc = self.cfg.train, self.cfg.eval, self.cfg.checkpoint
        bar = self._bar(tc.steps)
        acc: dict[str, list[float]] = {}
        t0, last = time.time(), {}
        old = self._install_signals()
        self._call("on_start")
        try:
            while self.step < tc.steps:
                self.game.step = self.step  # the game may schedule by step (e.g. instance-noise annealing)
                for ph in self.phases:
                    for k, v in self._run_phase(ph).items():
                        acc.setdefault(k, []).append(v)
                self.step += 1
                for sch in self.schedulers.values():
                    sch.step()
                if bar is not None:
                    bar.update(1)
                if self.step % tc.log_every == 0 or self.step == tc.steps:
                    means = self.dist.mean({k: sum(v) / len(v) for k, v in acc.items()})  # over ranks too
                    rec = {"step": self.step, "time": round(time.time() - t0, 3), **means}
                    self._append("losses.jsonl", rec)
                    self._call("on_log", rec)
                    if bar is not None:
                        bar.set_postfix({k: f"{v:.3g}" for k, v in means.items()}, refresh=False)
                    acc = {}
                if ec.every and self.step % ec.every == 0 and self.step != tc.steps:
                    last = self.evaluate()
                if cc.every and self.step % cc.every == 0 and self.step != tc.steps:
                    self.save()
                if self.dist.any(self._stop is not None):  # every rank stops at the same step
                    self._stop = self._stop or "a signal to another process"
                    self.save()
                    raise TrainingStopped(f"stopped by {self._stop} at step {self.step}; checkpoint saved. "
                                          f"Continue with: ganforge train --resume {self.run_dir}")
            last = self.evaluate()
            self.save()
        finally:
            if bar is not None:
                bar.close()
            self._restore_signals(old)
            self._call("on_end")
        log.info("finished at step %d in %.1fs; metrics %s", self.step, time.time() - t0, last)
        return last

    def _bar(self, total: int):
        if self.quiet or not sys.stderr.isatty() or not self.dist.is_main:
            return None
        from tqdm.auto import tqdm

        return tqdm(total=total, initial=self.step, desc=self.cfg["name"], dynamic_ncols=True, unit="step")

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
            self._figure_fn(ref, x, self.run_dir / "samples" / f"step_{self.step:07d}.png", title)
        log.info("eval step %d: %s", self.step, metrics)
        return metrics

    def _append(self, name: str, rec: dict) -> None:
        if not self.dist.is_main:
            return
        with open(self.run_dir / name, "a") as f:
            f.write(json.dumps(rec) + "\n")
