"""The Python API; the CLI is a thin layer over these functions.

    import ganforge
    run = ganforge.train("configs/toy/ring.yaml", overrides=["--train.steps=2000"], out="runs/ring")
    x = ganforge.sample(run.run_dir, n=1000, seed=0)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ganforge.config import Config, load_config, parse_overrides
from ganforge.errors import ConfigError


@dataclass
class RunResult:
    run_dir: Path
    step: int
    metrics: dict = field(default_factory=dict)
    seconds: float = 0.0


def default_run_dir(cfg: Config) -> Path:
    return Path("runs") / f"{cfg['name']}-{time.strftime('%Y%m%d-%H%M%S')}"


def make_config(config: str | Path | dict | Config | None, overrides: list[str] | None = None) -> Config:
    """A resolved config from a recipe path, a raw dict, or an existing Config, plus overrides."""
    if isinstance(config, Config):
        config = config.data
    if isinstance(config, dict):
        return load_config(None, overrides, base=config)
    return load_config(config, overrides)


def train(config: str | Path | dict | Config | None = None, *, overrides: list[str] | None = None,
          out: str | Path | None = None, resume: str | Path | None = None, quiet: bool = True,
          overwrite: bool = False) -> RunResult:
    """Train from a recipe (or continue ``resume``, a run directory); returns where it went and its metrics.

    ``out`` must be a new or empty folder (a ganforge run is continued with ``resume``); ``overwrite`` moves
    a non-empty ``out`` aside to ``OUT.old-<time>`` first. Nothing is ever deleted.
    """
    from ganforge.training.trainer import Trainer, is_out_of_memory

    t0 = time.time()
    if resume is not None and config is not None:
        raise ConfigError("give either a config or --resume RUN_DIR, not both (the run keeps its config)")
    if resume is not None and overwrite:
        raise ConfigError("--overwrite starts a new run in --out; it cannot be combined with --resume")
    if resume is None and config is None:
        raise ConfigError("no config given: pass a recipe file, e.g. configs/toy/ring.yaml")
    try:
        if resume is not None:
            ov = {".".join(k): v for k, v in parse_overrides(overrides or [])}
            trainer = Trainer.resume(resume, ov, quiet=quiet)
        else:
            cfg = make_config(config, overrides)
            trainer = Trainer(cfg, out or default_run_dir(cfg), quiet=quiet, overwrite=overwrite)
    except RuntimeError as e:  # out of memory while building the networks or the data
        if not is_out_of_memory(e):
            raise
        raise ConfigError(f"out of memory while building the run ({str(e).strip().splitlines()[0][:120]}): lower "
                          "train.batch_size, the networks' width (nets.<role>.hidden or .base) or the data "
                          "size") from None
    metrics = trainer.fit()
    return RunResult(trainer.run_dir, trainer.step, metrics, time.time() - t0)


def load_game(path: str | Path, *, device: str = "cpu", use_ema: bool = True):
    """Rebuild a trained game from a run directory or a checkpoint file, weights loaded, eval mode."""
    from ganforge.config import resolve
    from ganforge.training import checkpoint as ckpt
    from ganforge.training.build import build_game
    from ganforge.training.ema import EMA

    p = Path(path)
    state, _ = ckpt.load_latest(p) if p.is_dir() else (ckpt.load(p), p)
    cfg = resolve(state["config"])
    game = build_game(cfg, device=torch.device(device))
    game.load_state_dict(state["game"])
    if use_ema and state.get("ema"):
        ema = EMA(game.nets, game.ema_roles, cfg.train.ema or 0.999)
        ema.load_state_dict(state["ema"])
        for r, m in ema.shadow.items():
            game.nets[r] = m
    game.eval()
    return game, cfg, int(state["step"])


def sample(path: str | Path, n: int = 1000, *, seed: int = 0, device: str = "cpu") -> torch.Tensor:
    """n samples from a trained run; the same seed and checkpoint give the same samples."""
    if n < 1:
        raise ConfigError(f"n must be >= 1, got {n}")
    game, _, _ = load_game(path, device=device)
    return game.sample(n, generator=torch.Generator().manual_seed(seed))


def save_samples(x: torch.Tensor, out: str | Path) -> Path:
    """Write samples as .npy or .csv (vectors)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    arr = x.numpy()
    if out.suffix == ".npy":
        np.save(out, arr)
    elif out.suffix == ".csv":
        np.savetxt(out, arr.reshape(len(arr), -1), delimiter=",", fmt="%.7g")
    else:
        raise ConfigError(f"unknown sample file type {out.suffix!r}. Valid: .npy, .csv")
    return out


def sample_grid(path: str | Path, out: str | Path, *, n: int = 64, seed: int = 0, interpolate: int | None = None,
                spherical: bool = False, class_sweep: bool = False, arithmetic: str | None = None,
                device: str = "cpu") -> Path:
    """A PNG grid from a trained image model: n samples, interpolations, a class sweep or latent arithmetic.

    interpolate: STEPS per row between pairs of seeded latents (``spherical`` for slerp); class_sweep:
    one row per class; arithmetic: e.g. "3,7 - 1 + 12" over the sample indices of the plain grid.
    """
    from ganforge.imaging import save_grid
    from ganforge.latent import figure_images

    if n < 1:
        raise ConfigError(f"n must be >= 1, got {n}")
    game, _, _ = load_game(path, device=device)
    if game.data is None or not game.data.is_image:
        raise ConfigError(f"{path} is not an image model: grids need image data. Use --out FILE.npy instead")
    images, nrow = figure_images(game, n=n, seed=seed, interpolate_steps=interpolate, spherical=spherical,
                                 sweep=class_sweep, expr=arithmetic)
    return save_grid(images, out, nrow=nrow, scale=2 if max(images.shape[-2:]) < 64 else 1)
