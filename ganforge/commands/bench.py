"""``ganforge bench NAME``: run a benchmark (JSON + markdown table); ``bench compare RECIPE``: a seeded sweep."""

from __future__ import annotations

from pathlib import Path

from ganforge.commands import check_writable
from ganforge.errors import ConfigError


def register(sub) -> None:
    b = sub.add_parser("bench", help="run a benchmark (writes JSON and a markdown table)",
                       description="Benchmarks are measurements, not tests: each writes its results to "
                                   "benchmarks/results/NAME.json and a .md table beside it.")
    b.add_argument("name", help="benchmark name (`ganforge list benchmarks`), or `compare RECIPE`")
    b.add_argument("config", nargs="*", metavar="RECIPE",
                   help="compare only: the YAML recipe every cell starts from (several: each recipe x the grid)")
    b.add_argument("--quick", action="store_true", help="a smoke-sized version (under a minute)")
    b.add_argument("--out", help="JSON file (a .md table is written beside it); compare: the sweep's folder")
    b.add_argument("--seeds", type=int, default=3, help="compare only: seeds per cell (train.seed = 0..N-1)")
    b.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2", help="compare only: a swept key")
    b.add_argument("--metric", action="append", default=[], help="compare only: metric(s) to tabulate (default all)")
    b.add_argument("--cpu-budget", type=float, metavar="SECONDS",
                   help="compare only: train every cell for this many CPU-seconds per run (its train.steps "
                        "from its measured CPU cost per step) instead of the recipe's train.steps")
    b.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="compare only: train N runs at once in worker processes, each with its share of the CPUs "
                        "(default 1: one after another)")
    b.set_defaults(run=run)


def run(args) -> int:
    import ganforge.components  # noqa: F401
    from ganforge.registry import BENCHMARKS

    if args.name == "compare":
        from ganforge.bench.compare import compare

        out = args.out or f"runs/compare-{'-vs-'.join(Path(c).stem for c in args.config) or 'x'}"
        check_writable(out, "sweep folder", folder=True)
        compare(args.config, seeds=args.seeds, grid=args.grid, out=out, metrics=args.metric,
                cpu_budget=args.cpu_budget, jobs=args.jobs)
        print(f"wrote {Path(out) / 'compare.json'} and {Path(out) / 'compare.md'}")
        return 0
    if args.config or args.grid or args.metric or args.cpu_budget is not None or args.jobs != 1:
        raise ConfigError(f"a config, --grid, --metric, --cpu-budget and --jobs belong to `bench compare`, not "
                          f"`bench {args.name}`")
    bench = BENCHMARKS.get(args.name)  # an unknown name: an error listing the valid ones
    out = args.out or f"benchmarks/results/{args.name}{'-quick' if args.quick else ''}.json"
    check_writable(out, "benchmark result file")  # before minutes of work, not after
    result = bench(quick=args.quick, out=out)
    print(f"wrote {out} and {Path(out).with_suffix('.md')}")
    return 0 if result is not None else 1
