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


def load_game(path: str | Path, *, device: str = "cpu", use_ema: bool = True, rejection: bool | float = True):
    """Rebuild a trained game from a run directory or a checkpoint file, weights loaded, eval mode.

    rejection: True samples as the run was configured. False: a run trained with discriminator rejection
    sampling (game.drs) samples its generator directly instead (an error for a run without it: there is
    nothing to turn off). A number q in [0, 1): sample through rejection sampling with gamma at quantile q of
    F (``game.drs_quantile``), also for an unconditional ``gan`` run trained without it (the critic it trained
    is all rejection sampling needs).
    """
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
    if rejection is not True and rejection is not False:
        _rejection_on(game, cfg, rejection)
    elif not rejection:
        if not getattr(game, "drs", False):
            raise ConfigError(f"{path} does not sample through rejection (its game has no game.drs: true): "
                              "leave out --no-rejection")
        game.drs = False
    return game, cfg, int(state["step"])


def _rejection_on(game, cfg: Config, quantile: float) -> None:
    """Turn on discriminator rejection sampling at ``quantile`` for a loaded G-vs-D game."""
    import math

    name = cfg.data.get("game", {}).get("name", "?")
    if not hasattr(game, "drs_quantile"):
        raise ConfigError(f"--rejection samples through a G-vs-D game's critic (game gan); this run's game is "
                          f"{name!r}. Leave --rejection out")
    if getattr(game, "conditional", False):
        raise ConfigError("--rejection needs an unconditional gan run: rejecting samples would change the "
                          "labels asked for. Leave --rejection out")
    if not (math.isfinite(quantile) and 0 <= quantile < 1):
        raise ConfigError(f"--rejection Q is the quantile of F that sets gamma, in [0, 1) (e.g. 0.95), got "
                          f"{quantile}")
    game.drs, game.drs_quantile = True, float(quantile)


def sample(path: str | Path, n: int = 1000, *, seed: int = 0, device: str = "cpu",
           truncation: float = 1.0, rejection: bool | float = True) -> torch.Tensor:
    """n samples from a trained run; the same seed and checkpoint give the same samples.

    truncation: psi of the truncation trick, for generators that support it (see ``set_truncation``);
    rejection=False: draw G directly in a run that samples through rejection; a number q: rejection sampling
    at quantile q (see ``load_game``).
    """
    if n < 1:
        raise ConfigError(f"n must be >= 1, got {n}")
    game, cfg, _ = load_game(path, device=device, rejection=rejection)
    set_truncation(game, cfg, truncation)
    return game.sample(n, generator=torch.Generator().manual_seed(seed))


def set_truncation(game, cfg: Config, psi: float) -> None:
    """Sample ``game``'s generator with the truncation trick w' = w_avg + psi (w - w_avg) (Karras et al. 2019).

    Generators with an average latent to truncate towards have a ``truncation`` attribute (net stylegan);
    psi = 1 leaves sampling unchanged for every net; another psi on another net is an error (BigGAN's
    truncated z would change what a seed means for nets trained on untruncated z, so it is not offered).
    """
    import math

    if psi == 1:
        return
    if not math.isfinite(psi):
        raise ConfigError(f"--truncation must be a finite number, got {psi}")
    g = game.nets["g"] if "g" in game.nets else None
    if g is None or not hasattr(g, "truncation"):
        name = (cfg.data.get("nets", {}).get("g") or {}).get("name", "none")
        raise ConfigError(f"--truncation needs a generator with an average style to truncate towards (net "
                          f"stylegan); this run's generator is net {name!r}. Leave --truncation out (or 1)")
    g.truncation = float(psi)


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
                device: str = "cpu", truncation: float = 1.0, style_mix: int | None = None,
                rejection: bool | float = True) -> Path:
    """A PNG grid from a trained image model: n samples, interpolations, a class sweep or latent arithmetic.

    interpolate: STEPS per row between pairs of seeded latents (``spherical`` for slerp); class_sweep:
    one row per class; arithmetic: e.g. "3,7 - 1 + 12" over the sample indices of the plain grid;
    style_mix: the crossover layer of a style-mixing figure (net stylegan, ``_style_mixing``).
    """
    from ganforge.imaging import save_grid
    from ganforge.latent import figure_images

    if n < 1:
        raise ConfigError(f"n must be >= 1, got {n}")
    game, cfg, _ = load_game(path, device=device, rejection=rejection)
    set_truncation(game, cfg, truncation)
    if game.data is None or not game.data.is_image:
        raise ConfigError(f"{path} is not an image model: grids need image data. Use --out FILE.npy instead")
    if style_mix is not None:
        if interpolate is not None or spherical or class_sweep or arithmetic is not None:
            raise ConfigError("--style-mix draws its own figure: leave out --interpolate, --slerp, --class-sweep "
                              "and --arithmetic")
        images, nrow = _style_mixing(game, cfg, n, seed, style_mix)
    else:
        images, nrow = figure_images(game, n=n, seed=seed, interpolate_steps=interpolate, spherical=spherical,
                                     sweep=class_sweep, expr=arithmetic)
    return save_grid(images, out, nrow=nrow, scale=2 if max(images.shape[-2:]) < 64 else 1)


def _style_mixing(game, cfg: Config, n: int, seed: int, cutoff: int) -> tuple[torch.Tensor, int]:
    """Karras et al. 2019's Fig. 3 for k = floor(sqrt(n)) - 1 (at least 1) seeded codes per source, as
    (images, images per row): the top row from the first k codes, the left column from the next k, each
    cell the row's styles before layer ``cutoff`` and the column's from it on."""
    from ganforge.latent import codes, sampling_generator
    from ganforge.nets.stylegan import style_mixing_figure

    g = sampling_generator(game)
    if not hasattr(g, "num_ws"):
        name = (cfg.data.get("nets", {}).get("g") or {}).get("name", "none")
        raise ConfigError(f"--style-mix needs a style-based generator (net stylegan); this run's generator is "
                          f"net {name!r}")
    k = max(1, int(n ** 0.5) - 1)
    z, c = codes(game, 2 * k, seed)
    dev = game.device
    images = style_mixing_figure(g, z.to(dev), k, cutoff, None if c is None else c.to(dev))
    return images.cpu(), k + 1
