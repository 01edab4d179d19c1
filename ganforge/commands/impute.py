"""``ganforge impute CSV --out FILE``: fill a table's missing cells with GAIN (trained on it, or a trained run)."""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from ganforge.commands import check_writable, invoked_as
from ganforge.errors import ConfigError

EXAMPLES = """\
examples:
  {g} impute table.csv --out table-filled.csv                       # train GAIN on the table, write it completed
  {g} impute table.csv --out filled.csv --steps 4000 --train.threads=1 --optim.g.lr=5e-4
  {g} impute table.csv --out filled.csv --config configs/gain/breast_cancer.yaml --save-run runs/gain-table
  {g} impute new.csv --out new-filled.csv --run runs/gain-table     # reuse a trained run (same columns)

Missing cells are empty or NA, NaN, ?, null, none. Observed cells are written back exactly as read, the header
row is kept, and an existing --out is never replaced without --overwrite.
"""


def register(sub) -> None:
    s = sub.add_parser("impute", help="fill a CSV's missing cells with GAIN (Yoon et al. 2018)",
                       description="Train GAIN on a CSV of numeric columns (or load a trained gain run) and write "
                                   "the table with its missing cells filled. Any --section.key=value overrides the "
                                   "training recipe.",
                       epilog=EXAMPLES.format(g=invoked_as()), formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("csv", metavar="CSV", help="table to complete: numeric columns, a header row, empty/NA cells")
    s.add_argument("--out", required=True, metavar="FILE", help="completed CSV to write (refused if it exists)")
    s.add_argument("--config", metavar="RECIPE", help="training recipe (default: the gain defaults of "
                                                      "configs/gain/breast_cancer.yaml); its data section is "
                                                      "replaced by the CSV")
    s.add_argument("--steps", type=int, metavar="N", help="training steps (shorthand for --train.steps=N)")
    s.add_argument("--run", dest="from_run", metavar="RUN_DIR",
                   help="impute with this trained gain run instead of training (the CSV must have the run's columns)")
    s.add_argument("--save-run", metavar="DIR", help="keep the training run in DIR (default: a temporary folder)")
    s.add_argument("--seed", type=int, default=0, help="seed of the noise G's input gets at imputation (default 0)")
    s.add_argument("--delimiter", default=",", help="field delimiter of the CSV (default ',')")
    s.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(run=run, takes_overrides=True)


def _check_args(args, extra: list[str]) -> Path:
    bad = [e for e in extra if not (e.startswith("--") and "=" in e)]
    if bad:
        raise ConfigError(f"unexpected argument(s) {' '.join(bad)}; overrides look like --section.key=value")
    if args.from_run and (extra or args.config or args.steps is not None or args.save_run):
        raise ConfigError("--run imputes with a trained run: --config, --steps, --save-run and overrides "
                          "belong to training a new one")
    if args.steps is not None and args.steps < 1:
        raise ConfigError(f"--steps must be >= 1, got {args.steps}")
    if any(e.startswith("--data.") for e in extra):
        raise ConfigError("the data is the CSV: --data.* overrides are not taken (use --delimiter for the format)")
    if args.config and not Path(args.config).is_file():
        raise ConfigError(f"config file not found: {args.config}")
    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise ConfigError(f"{out} exists; give another --out or add --overwrite to replace it")
    if Path(args.csv).exists() and out.exists() and out.resolve() == Path(args.csv).resolve():
        raise ConfigError(f"--out {out} is the input CSV; write the completed table to another file")
    return check_writable(out, "output CSV")


def run(args, extra: list[str]) -> int:
    out = _check_args(args, extra)
    from ganforge.data.tabular import read_csv  # numpy only; torch comes with training

    table = read_csv(args.csv, args.delimiter)
    n_miss = int(table.missing.sum())
    if n_miss == 0:
        raise ConfigError(f"{args.csv} has no missing cells: nothing to impute")
    import torch

    gen = torch.Generator().manual_seed(args.seed)
    cpu0 = time.process_time()
    if args.from_run:
        game, step = _load_run(args.from_run, table)
        completed = game.impute_values(table.values, generator=gen)
        how = f"the gain run {args.from_run} (step {step})"
    else:
        trainer, kept = _train(args, extra, table)
        with trainer.sampling_context() as game:  # the EMA generator when the recipe keeps one
            completed = game.impute_values(table.values, generator=gen)
        how = f"GAIN trained for {trainer.step} steps" + (f" (run kept in {kept})" if kept else "")
    from ganforge.data.tabular import write_csv

    write_csv(out, table, completed)
    print(f"imputed {n_miss} missing cells of {args.csv} ({len(table.values)} rows x {len(table.columns)} columns) "
          f"with {how} ({time.process_time() - cpu0:.1f} CPU-s); wrote {out}")
    return 0


def _train(args, extra: list[str], table):
    """Train GAIN on the CSV itself (only its own missing cells are missing): (trainer, kept run folder or None)."""
    from ganforge.api import make_config
    from ganforge.config import read_yaml
    from ganforge.games.gain import DEFAULT_RECIPE
    from ganforge.training.trainer import Trainer

    raw = read_yaml(args.config) if args.config else {**DEFAULT_RECIPE, "name": "impute"}
    raw["data"] = {"name": "tabular", "table": str(Path(args.csv).resolve()), "missing_rate": 0.0, "seed": 0,
                   "delimiter": args.delimiter}
    if not args.config:  # the default batch, as large as the table allows
        raw["train"] = {**raw["train"], "batch_size": min(raw["train"]["batch_size"], len(table.values))}
    forced = ["--eval.every=0", "--eval.samples=false", "--checkpoint.every=0", "--checkpoint.keep=1",
              "--train.tensorboard=false"]
    steps = [f"--train.steps={args.steps}"] if args.steps is not None else []
    cfg = make_config(raw, [*extra, *steps, *forced])
    if cfg["game"]["name"] != "gain":
        raise ConfigError(f"impute trains game gain; the recipe's game is {cfg['game']['name']!r}")
    keep = args.save_run is not None
    run_dir = Path(args.save_run) if keep else Path(tempfile.mkdtemp(prefix="ganforge-impute-"))
    try:
        trainer = Trainer(cfg, run_dir, quiet=args.quiet)
        trainer.fit()
    finally:
        if not keep:
            shutil.rmtree(run_dir, ignore_errors=True)
    trainer.game.eval()
    return trainer, run_dir if keep else None


def _load_run(run_dir: str, table):
    from ganforge.api import load_game
    from ganforge.games.gain import GAIN

    game, _, step = load_game(run_dir)
    if not isinstance(game, GAIN):
        raise ConfigError(f"{run_dir} is a {type(game).__name__} run; impute needs a gain run")
    info = game.data.info
    cols = info["columns"]
    if len(cols) != len(table.columns):
        raise ConfigError(f"{run_dir} was trained on {len(cols)} columns; {table.source} has {len(table.columns)}")
    if table.header and info.get("header", True) and list(table.columns) != list(cols):
        diff = [f"{a!r} (run: {b!r})" for a, b in zip(table.columns, cols, strict=True) if a != b]
        raise ConfigError(f"{table.source}'s columns differ from those {run_dir} was trained on: {', '.join(diff)}")
    return game, step
