"""`ganforge` command line: parse, build, hand over to the API. User errors exit 2, no traceback."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ganforge.errors import CheckpointError, ConfigError

KINDS = {"objectives": "OBJECTIVES", "penalties": "PENALTIES", "nets": "NETS", "datasets": "DATASETS",
         "games": "GAMES", "optimizers": "OPTIMIZERS", "metrics": "METRICS", "extractors": "EXTRACTORS",
         "benchmarks": "BENCHMARKS", "labs": "LABS"}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ganforge", description="Train, evaluate and understand GANs.")
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train from a recipe; extra --section.key=value flags override it")
    t.add_argument("config", nargs="?", help="YAML recipe, e.g. configs/toy/ring.yaml")
    t.add_argument("--out", help="run directory (default runs/<name>-<time>)")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue a run exactly from its last checkpoint")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    s = sub.add_parser("sample", help="draw samples from a trained run")
    s.add_argument("run_dir")
    s.add_argument("--n", type=int, help="samples (default 1000; 64 on a --grid)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", default="samples.npy", help=".npy or .csv")
    s.add_argument("--grid", metavar="FILE", help="image models: write a PNG grid instead of --out")
    s.add_argument("--interpolate", type=int, metavar="STEPS", help="with --grid: rows of latent interpolations")
    s.add_argument("--slerp", action="store_true", help="with --interpolate: spherical instead of linear")
    s.add_argument("--class-sweep", action="store_true", help="with --grid: one row per class (conditional)")
    s.add_argument("--arithmetic", metavar="EXPR", help="with --grid: latent arithmetic on grid indices, '3,7-1+12'")
    ls = sub.add_parser("list", help="list registered components")
    ls.add_argument("kind", nargs="?", choices=sorted(KINDS), help="one kind (default: all)")
    b = sub.add_parser("bench", help="run a benchmark (writes JSON and a markdown table)")
    b.add_argument("name", help="benchmark name; `ganforge list benchmarks` shows them; or `compare CONFIG`")
    b.add_argument("config", nargs="?", help="compare only: the YAML recipe every cell starts from")
    b.add_argument("--quick", action="store_true", help="a smoke-sized version (under a minute)")
    b.add_argument("--out", help="JSON file (a .md table is written beside it); compare: the sweep's folder")
    b.add_argument("--seeds", type=int, default=3, help="compare only: seeds per cell (train.seed = 0..N-1)")
    b.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2", help="compare only: a swept key")
    b.add_argument("--metric", action="append", default=[], help="compare only: metric(s) to tabulate (default all)")
    lab = sub.add_parser("lab", help="theory lab: `ganforge lab list`, `ganforge lab NAME`")
    lab.add_argument("name")
    lab.add_argument("--out", default="lab-out", help="folder for NAME.png and NAME.json")
    lab.add_argument("--quick", action="store_true")
    lab.add_argument("--seed", type=int, default=0)
    _register_commands(sub)
    return p


def _register_commands(sub) -> None:
    """Subcommands living in ganforge/commands/ (one module each, ``register(sub)``)."""
    import importlib
    import pkgutil

    import ganforge.commands as pkg

    for mod in sorted(m.name for m in pkgutil.iter_modules(pkg.__path__)):
        importlib.import_module(f"ganforge.commands.{mod}").register(sub)


def _train(args, extra: list[str]) -> int:
    from ganforge import api

    bad = [e for e in extra if not (e.startswith("--") and "=" in e)]
    if bad:
        raise ConfigError(f"unexpected argument(s) {' '.join(bad)}; overrides look like --section.key=value")
    if args.dry_run:
        if args.resume:
            raise ConfigError("--dry-run prints a new run's config; a resumed run's is in RUN_DIR/config.yaml")
        if not args.config:
            raise ConfigError("train needs a config file, e.g. ganforge train configs/toy/ring.yaml")
        print(api.make_config(args.config, extra).to_yaml(), end="")
        return 0
    if not args.config and not args.resume:
        raise ConfigError("train needs a config file (e.g. configs/toy/ring.yaml) or --resume RUN_DIR")
    res = api.train(args.config, overrides=extra, out=args.out, resume=args.resume, quiet=args.quiet)
    print(f"run directory: {res.run_dir}  (step {res.step}, {res.seconds:.1f}s)")
    if res.metrics:
        print("metrics: " + json.dumps(res.metrics))
    return 0


def _sample(args) -> int:
    from ganforge import api

    if args.grid:
        path = api.sample_grid(args.run_dir, args.grid, n=args.n or 64, seed=args.seed, interpolate=args.interpolate,
                               spherical=args.slerp, class_sweep=args.class_sweep, arithmetic=args.arithmetic)
        print(f"wrote {path}")
        return 0
    if args.interpolate is not None or args.slerp or args.class_sweep or args.arithmetic:
        raise ConfigError("--interpolate, --slerp, --class-sweep and --arithmetic draw a figure: add --grid FILE.png")
    x = api.sample(args.run_dir, args.n or 1000, seed=args.seed)
    print(f"wrote {len(x)} samples to {api.save_samples(x, args.out)}")
    return 0


def _list(args) -> int:
    import ganforge.components  # noqa: F401
    from ganforge import registry

    for kind in [args.kind] if args.kind else sorted(KINDS):
        reg = getattr(registry, KINDS[kind])
        print(f"{kind}:")
        for name in reg.names():
            print(f"  {name:<14} {reg.help(name)}")
    return 0


def _bench(args) -> int:
    import ganforge.components  # noqa: F401
    from ganforge.registry import BENCHMARKS

    if args.name == "compare":
        from ganforge.bench.compare import compare

        out = args.out or f"runs/compare-{Path(args.config or 'x').stem}"
        compare(args.config, seeds=args.seeds, grid=args.grid, out=out, metrics=args.metric)
        print(f"wrote {Path(out) / 'compare.json'} and {Path(out) / 'compare.md'}")
        return 0
    if args.config or args.grid or args.metric:
        raise ConfigError(f"a config, --grid and --metric belong to `bench compare`, not `bench {args.name}`")
    out = args.out or f"benchmarks/results/{args.name}{'-quick' if args.quick else ''}.json"
    result = BENCHMARKS.get(args.name)(quick=args.quick, out=out)
    print(f"wrote {out} and {Path(out).with_suffix('.md')}")
    return 0 if result is not None else 1


def _lab(args) -> int:
    import ganforge.components  # noqa: F401
    from ganforge.registry import LABS

    if args.name == "list":
        for name in LABS.names():
            print(f"  {name:<14} {LABS.help(name)}")
        return 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    res = LABS.get(args.name)(out=out, quick=args.quick, seed=args.seed)
    print(f"wrote {out / (args.name + '.png')} and {out / (args.name + '.json')}")
    headline = {k: v for k, v in (res or {}).items() if isinstance(v, (int, float, str))}
    if headline:
        print(json.dumps(headline))
    return 0


def main(argv: list[str] | None = None) -> int:
    args, extra = _parser().parse_known_args(argv)
    from ganforge.training.trainer import TrainingStopped

    try:
        if args.cmd == "train":
            return _train(args, extra)
        if extra:
            raise ConfigError(f"unexpected argument(s): {' '.join(extra)}")
        if getattr(args, "run", None) is not None:
            return args.run(args)
        return {"sample": _sample, "list": _list, "bench": _bench, "lab": _lab}[args.cmd](args)
    except (ConfigError, CheckpointError) as e:
        print(f"ganforge: error: {e}", file=sys.stderr)
        return 2
    except TrainingStopped as e:
        print(f"ganforge: {e}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("ganforge: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
