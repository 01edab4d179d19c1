"""Equal-CPU comparisons (``bench compare --cpu-budget B``): each cell's train.steps from its measured cost.

Architectures differ in CPU per step, so a comparison at equal steps favours the expensive one. With a
budget of B CPU-seconds per run, every cell is timed first, in this process: a Trainer built from the
cell's seed-0 config runs ``WARMUP`` untimed steps, then ``ROUNDS`` rounds in which it runs ``STEPS`` steps
from each of ``POSITIONS`` points spread over its recipe's train.steps (a step's cost can depend on where
it is: progressive growing trains at 4x4 first), the cells interleaved round by round so that a busy
moment of a shared machine does not favour one of them. Per point the cheapest round's process CPU time
(all threads) per step counts; the cell's cost c is their mean, and it trains for floor(B / c) steps.
Schedules the recipe counts in steps (``train.lr_decay_start``, ``train.lr_decay_steps``) are scaled by
the same factor, so a decay over the second half stays over the second half. (A schedule counted in
absolute steps, such as progressive growing's phase_steps, is not rescaled: a cell that gets more steps
than its recipe spends them at the last stage, so its c is a slight underestimate there; the CPU-s
column shows what each run used.) Evaluations and checkpoints are not in c: the table shows every run's
measured CPU-seconds beside B.

The plan is written to ``DIR/budget.json`` and read back by a resumed sweep, so its runs keep their
lengths; a different budget or a different set of cells is an error (remove the folder or pick another).
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from pathlib import Path

from ganforge.config import Config
from ganforge.errors import ConfigError

WARMUP, STEPS, ROUNDS, POSITIONS = 2, 5, 2, 4


def step_costs(configs: dict[str, Config], *, warmup: int = WARMUP, steps: int = STEPS, rounds: int = ROUNDS,
               positions: int = POSITIONS) -> dict[str, float]:
    """CPU-seconds per training step of each config: the mean over ``positions`` points of its schedule of
    the cheapest of ``rounds`` interleaved timings of ``steps`` steps there."""
    from ganforge.training.trainer import Trainer

    best = {name: [math.inf] * positions for name in configs}
    with tempfile.TemporaryDirectory(prefix="ganforge-budget-") as tmp:
        trainers = {name: Trainer(cfg, Path(tmp) / f"cell{i}", quiet=True)
                    for i, (name, cfg) in enumerate(configs.items())}
        try:
            for t in trainers.values():
                _steps(t, 0, warmup)
            for _ in range(rounds):
                for name, t in trainers.items():
                    for i in range(positions):
                        at = int(t.cfg.train.steps * (i + 0.5) / positions)
                        c0 = time.process_time()
                        _steps(t, at, steps)
                        best[name][i] = min(best[name][i], (time.process_time() - c0) / steps)
        finally:
            for t in trainers.values():
                t._release()
    return {name: sum(b) / len(b) for name, b in best.items()}


def _steps(trainer, at: int, n: int) -> None:
    trainer.step = at
    for _ in range(n):
        trainer.run_step()


def scaled(cfg: Config, steps: int) -> list[str]:
    """Overrides that train ``cfg`` for ``steps`` steps, its step-counted lr schedule scaled alike."""
    tr = cfg["train"]
    f = steps / tr["steps"]
    out = [f"--train.steps={steps}"]
    if tr.get("lr_decay_start") is not None:
        out.append(f"--train.lr_decay_start={round(tr['lr_decay_start'] * f)}")
        out.append(f"--train.lr_decay_steps={round(tr['lr_decay_steps'] * f)}")
    return out


def plan(configs: dict[str, Config], budget: float, out: Path, *, quiet: bool = True) -> dict[str, dict]:
    """{cell: {"cost": CPU-s per step, "steps": floor(budget / cost)}}, measured once per sweep folder."""
    if not (budget > 0 and math.isfinite(budget)):
        raise ConfigError(f"--cpu-budget must be a positive number of CPU-seconds per run, got {budget}")
    path = out / "budget.json"
    if path.is_file():
        saved = json.loads(path.read_text())
        if saved.get("budget") != budget or set(saved.get("cells", {})) != set(configs):
            raise ConfigError(f"{out} holds a sweep planned for --cpu-budget {saved.get('budget')} and cells "
                              f"{sorted(saved.get('cells', {}))}; this call asks for {budget} and "
                              f"{sorted(configs)}: remove the folder or choose another --out")
        return saved["cells"]
    costs = step_costs(configs)
    cells = {}
    for name, c in costs.items():
        steps = int(budget // c)
        if steps < 1:
            raise ConfigError(f"--cpu-budget {budget} is less than one step of cell {name!r} ({c:.3g} CPU-s)")
        cells[name] = {"cost": c, "steps": steps}
        if not quiet:
            print(f"[compare] {name}: {c:.4g} CPU-s per step -> {steps} steps", flush=True)
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"budget": budget, "warmup": WARMUP, "steps": STEPS, "rounds": ROUNDS,
                                "positions": POSITIONS, "cells": cells}, indent=1) + "\n")
    return cells
