"""``ganforge train RECIPE [--section.key=value ...]``: train, then say what came out and what to run next."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from ganforge.commands import invoked_as
from ganforge.errors import ConfigError

EXAMPLES = """\
examples:
  {g} train configs/toy/ring.yaml
  {g} train configs/toy/ring.yaml --train.steps=2000 --objective.name=hinge --out runs/ring-hinge
  {g} train configs/fmnist/dcgan.yaml --optim.d.lr=1e-4 --nets.g.base=32 --eval.every=0
  {g} train configs/toy/ring.yaml --penalties.r1=10 --dry-run     # print the resolved config, train nothing
  {g} train --resume runs/ring-ns-20260101-120000 --train.steps=8000 --train.threads=1
"""


class _OverridesHelp(argparse.Action):
    """-h/--help: the override rules and the config's sections are built only when asked for."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        parser.epilog = overrides_help()
        parser.print_help()
        parser.exit()


def overrides_help() -> str:
    """How ``--section.key=value`` works, with examples and every section (typed ones with their keys)."""
    import dataclasses

    from ganforge.config import SECTIONS

    typed = "\n".join(f"  {sec:<11} {', '.join(f.name for f in dataclasses.fields(cls))}"
                      for sec, cls in SECTIONS.items())
    return (
        "overrides: after the recipe, any number of --SECTION.KEY=VALUE change it (no spaces around '='). The\n"
        "value is read as YAML: 2000, 1e-4, true, null, [0.5, 0.999], hinge. An unknown key, a wrong type or an\n"
        "out-of-range value is an error (exit 2) that names the valid choices. --dry-run prints the result.\n\n"
        "sections:\n"
        "  name        the run's name (default run folder runs/NAME-DATE-TIME)\n"
        "  game        game.name and its parameters          (`ganforge list games`)\n"
        "  data        data.name and its parameters          (`ganforge list datasets`)\n"
        "  objective   objective.name and its parameters     (`ganforge list objectives`)\n"
        "  nets.ROLE   per network, e.g. nets.g.base=32      (`ganforge list nets`)\n"
        "  optim.GROUP per optimizer, e.g. optim.d.lr=1e-4   (`ganforge list optimizers`)\n"
        "  penalties   name: weight, e.g. penalties.r1=10    (`ganforge list penalties`)\n"
        f"{typed}\n\n"
        "With --resume the run keeps its recipe; only settings that do not change what was computed so far may\n"
        "be given (more train.steps, threads, device, and how often it logs, evaluates and checkpoints).\n\n"
        + EXAMPLES.format(g=invoked_as())
    )


def register(sub) -> None:
    t = sub.add_parser("train", add_help=False, help="train from a YAML recipe; --section.key=value overrides it",
                       description="Train a GAN from a YAML recipe into a run folder (config.yaml, losses.jsonl, "
                                   "metrics.jsonl, samples/, checkpoints/, train.log).",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("-h", "--help", action=_OverridesHelp, help="show this help, the override rules and the "
                                                                 "config sections, and exit")
    t.add_argument("config", nargs="?", metavar="RECIPE", help="YAML recipe, e.g. configs/toy/ring.yaml")
    t.add_argument("--out", metavar="RUN_DIR", help="run folder to create (default runs/<name>-<date>-<time>)")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue a run exactly from its last checkpoint")
    t.add_argument("--overwrite", action="store_true", help="if --out exists and is not empty, move it aside to "
                                                            "RUN_DIR.old-<time> first (nothing is deleted)")
    t.add_argument("--quiet", action="store_true", help="no progress bar and no per-evaluation lines")
    t.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    t.add_argument("--json", action="store_true", help="end with one JSON line (run_dir, step, seconds, "
                                                       "cpu_seconds, threads, metrics) instead of the summary")
    t.set_defaults(run=run, takes_overrides=True)


def run(args, extra: list[str]) -> int:
    bad = [e for e in extra if not (e.startswith("--") and "=" in e)]
    if bad:
        pairs = [f"{a}={b}" for a, b in zip(bad, bad[1:], strict=False) if a.startswith("--") and "=" not in a
                 and not b.startswith("-")]
        example = f" (here: {pairs[0]})" if pairs else ""
        raise ConfigError(f"unexpected argument(s) {' '.join(bad)}; overrides look like --section.key=value"
                          f"{example}, see `{invoked_as()} train --help`")
    if args.resume and args.dry_run:
        raise ConfigError("--dry-run prints a new run's config; a resumed run's is in RUN_DIR/config.yaml")
    if not args.config and not args.resume:
        raise ConfigError("train needs a config file (e.g. configs/toy/ring.yaml) or --resume RUN_DIR")
    if args.config and not Path(args.config).is_file():  # a typo answers before torch is imported
        where = Path(args.config)
        raise ConfigError(f"config file not found: {where}" + (" (it is a directory)" if where.is_dir() else ""))
    from ganforge import api  # torch: only once the arguments are known to be well formed

    if args.dry_run:
        print(api.make_config(args.config, extra).to_yaml(), end="")
        return 0
    cpu0 = time.process_time()
    res = api.train(args.config, overrides=extra, out=args.out, resume=args.resume, quiet=args.quiet,
                    overwrite=args.overwrite)
    cpu = time.process_time() - cpu0
    threads = sys.modules["torch"].get_num_threads()
    if args.json:
        print(json.dumps({"run_dir": str(res.run_dir), "step": res.step, "seconds": round(res.seconds, 3),
                          "cpu_seconds": round(cpu, 3), "threads": threads, "metrics": res.metrics}))
    else:
        print(summary(res.run_dir, res.step, res.metrics, wall=res.seconds, cpu=cpu, threads=threads))
    return 0


def _duration(s: float) -> str:
    if s < 60:
        return f"{s:.1f} s"
    m, s = divmod(round(s), 60)
    return f"{m} min {s:02d} s" if m < 60 else f"{m // 60} h {m % 60:02d} min"


_IMAGE_KEYS = {"fid", "kid", "is", "precision", "recall", "density", "coverage", "classes_covered"}
_VECTOR_KEYS = {"modes", "hq", "rkl", "nll"}
#: Games whose product is a classifier (domain adaptation), not samples: no sample/eval commands to suggest.
_CLASSIFIER_GAMES = {"dann", "adda"}


def summary(run_dir: Path, step: int, metrics: dict, *, wall: float, cpu: float, threads: int,
            argv0: str | None = None) -> str:
    """What a finished run made, where it is, and the commands to run next (with the executable the user ran)."""
    import yaml

    from ganforge.training.progress import metrics_text

    run_dir = Path(run_dir)
    try:
        cfg = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        cfg = {}
    n = (cfg.get("eval") or {}).get("n")
    g = invoked_as(argv0)
    grids = sorted((run_dir / "samples").glob("step_*.png"))
    ckpts = sorted((run_dir / "checkpoints").glob("step_*.pt"))
    logs = [f for f in ("losses.jsonl", "metrics.jsonl", "train.log") if (run_dir / f).is_file()]
    lines = [f"finished {cfg.get('name', run_dir.name)}: step {step} in {_duration(wall)} wall, "
             f"{_duration(cpu)} CPU ({threads} thread{'s' if threads != 1 else ''})"]
    if metrics:
        lines.append(f"final metrics at step {step} ({'n=' + str(n) + ' samples' if n else 'n unknown'}): "
                     f"{metrics_text(metrics)}")
    else:
        lines.append("no metrics were recorded (with eval.metrics empty an image run's evaluations draw sample "
                     "figures only; `eval` below scores it)")
    lines.append(f"  run folder:       {run_dir}")
    if grids:
        lines.append(f"  last samples:     {grids[-1]}")
    if ckpts:
        lines.append(f"  checkpoint:       {ckpts[-1]}")
    if logs:
        lines.append(f"  logs:             {', '.join(str(run_dir / f) for f in logs)}")
    keys = set(metrics or {})
    image = bool(keys & _IMAGE_KEYS) or (not keys & _VECTOR_KEYS and bool((cfg.get("eval") or {}).get("metrics")))
    vector = bool(keys & _VECTOR_KEYS)
    steps = (cfg.get("train") or {}).get("steps", step)
    more = max(int(steps) if isinstance(steps, int) else step, step) * 2
    game = (cfg.get("game") or {}).get("name")
    lines.append("next:")
    if game == "gain":
        lines.append(f"  {g} impute TABLE.csv --run {run_dir} --out completed.csv   # fill a table's missing cells")
    elif game not in _CLASSIFIER_GAMES:
        if not vector:
            only = "" if image else " (image models only)"
            lines.append(f"  {g} eval {run_dir}   # FID, KID, precision/recall, IS on 10000 samples -> eval.json{only}")
            lines.append(f"  {g} sample {run_dir} --grid grid.png   # a PNG grid of new samples{only}")
        lines.append(f"  {g} sample {run_dir} --n 1000 --out samples.npy")
    lines.append(f"  {g} report {run_dir}   # one HTML page: curves, samples, metrics")
    lines.append(f"  {g} train --resume {run_dir} --train.steps={more}   # train longer")
    return "\n".join(lines)
