"""``ganforge sample RUN_DIR``: new samples from a trained run, as an array file or a PNG figure."""

from __future__ import annotations

from pathlib import Path

from ganforge.commands import add_rejection_args, check_writable, rejection_arg
from ganforge.errors import ConfigError


def register(sub) -> None:
    s = sub.add_parser("sample", help="draw samples from a trained run (.npy/.csv array or a PNG grid)",
                       description="Draw samples from a run's latest checkpoint (its EMA generator when it has "
                                   "one). The same seed and checkpoint give the same samples.")
    s.add_argument("run_dir", metavar="RUN_DIR", help="a run folder written by `ganforge train` (or a checkpoint .pt)")
    s.add_argument("--n", type=int, help="samples (default 1000; 64 on a --grid)")
    s.add_argument("--seed", type=int, default=0, help="seed of the latent noise (default 0)")
    s.add_argument("--out", default="samples.npy", help="array file to write, .npy or .csv (default samples.npy)")
    s.add_argument("--grid", metavar="FILE", help="image models: write a PNG grid instead of --out")
    s.add_argument("--interpolate", type=int, metavar="STEPS", help="with --grid: rows of latent interpolations")
    s.add_argument("--slerp", action="store_true", help="with --interpolate: spherical instead of linear")
    s.add_argument("--class-sweep", action="store_true", help="with --grid: one row per class (conditional)")
    s.add_argument("--arithmetic", metavar="EXPR", help="with --grid: latent arithmetic on grid indices, '3,7-1+12'")
    s.add_argument("--truncation", type=float, default=1.0, metavar="PSI",
                   help="truncation trick w' = w_avg + PSI (w - w_avg), for generators with a mapping network "
                        "(net stylegan); 1 (default): none, 0: the average image; other nets accept only 1")
    s.add_argument("--style-mix", type=int, metavar="LAYER",
                   help="with --grid (net stylegan): a style-mixing figure; each cell takes its row's styles "
                        "before style input LAYER and its column's from it on (small LAYER: only coarse styles "
                        "from the row)")
    add_rejection_args(s)
    s.set_defaults(run=run)


def run(args) -> int:
    from ganforge import api

    if args.grid:
        out = check_writable(args.grid, "grid file")
        if out.suffix.lower() != ".png":
            raise ConfigError(f"grid files are PNG: give a path ending in .png, got {str(out)!r}")
    else:
        if args.interpolate is not None or args.slerp or args.class_sweep or args.arithmetic \
                or args.style_mix is not None:
            raise ConfigError("--interpolate, --slerp, --class-sweep, --arithmetic and --style-mix draw a "
                              "figure: add --grid FILE.png")
        out = check_writable(args.out, "sample file")
        if out.suffix not in (".npy", ".csv"):
            raise ConfigError(f"unknown sample file type {out.suffix!r}. Valid: .npy, .csv")
    try:
        if args.grid:
            path = api.sample_grid(args.run_dir, out, n=args.n or 64, seed=args.seed, interpolate=args.interpolate,
                                   spherical=args.slerp, class_sweep=args.class_sweep, arithmetic=args.arithmetic,
                                   truncation=args.truncation, style_mix=args.style_mix,
                                   rejection=rejection_arg(args))
            print(f"wrote {path}")
            return 0
        x = api.sample(args.run_dir, args.n or 1000, seed=args.seed, truncation=args.truncation,
                       rejection=rejection_arg(args))
        print(f"wrote {len(x)} samples to {api.save_samples(x, out)}")
    except OSError as e:
        target = Path(e.filename) if e.filename else None
        if target is None or target == out or target in out.parents:
            raise ConfigError(f"cannot write {out}: {e.strerror or e}") from None
        raise ConfigError(f"cannot read {target}: {e.strerror or e}") from None
    return 0
