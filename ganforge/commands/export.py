"""``ganforge export RUN_DIR --out DIR``: the generator (EMA if kept) as safetensors plus its config."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("export", help="write a run's generator (EMA weights if kept) as safetensors + config",
                       description="Write model.safetensors, config.yaml and manifest.json; load them with "
                                   "ganforge.load(DIR), which samples, interpolates and encodes.")
    p.add_argument("run_dir", help="run directory (its newest readable checkpoint) or a checkpoint file")
    p.add_argument("--out", required=True,
                   help="folder to write: new, empty, or an earlier export (replaced); never a folder of other files")
    p.add_argument("--no-ema", action="store_true", help="export the raw generator weights, not the EMA copy")
    p.set_defaults(run=_run)


def _run(args) -> int:
    import json

    from ganforge.export import MANIFEST, export

    out = export(args.run_dir, args.out, use_ema=not args.no_ema)
    m = json.loads((out / MANIFEST).read_text())
    print(f"exported {m['game']['name']} roles {', '.join(m['roles'])} at step {m['step']} "
          f"({'EMA' if m['ema'] else 'raw'} weights, {m['weights']['parameters']:,} values) to {out}")
    return 0
