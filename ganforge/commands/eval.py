"""``ganforge eval``: score a trained run, a folder of images or a ``.npy`` array against a reference.

    ganforge eval runs/fmnist-dcgan                       # latest checkpoint (EMA generator if any)
    ganforge eval samples.npy --ref fmnist-test --metrics fid,kid --n 5000
    ganforge eval my_images/ --extractor inception-v3 --weights pt_inception-2015-12-05-6726825d.pth

Writes JSON ``{"source", "scores", "protocol"}`` (to ``--out``; a run directory's default is
RUN_DIR/eval.json) and prints a table. The protocol record (extractor and weights hash, input
conversions, n_real, n_fake, reference, seed, ganforge version) is what makes two numbers comparable.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path
from typing import Any

from ganforge.commands import add_rejection_args, rejection_arg
from ganforge.errors import ConfigError

DEFAULT_METRICS = "fid,kid,pr,dc,is"
# evaluate() keys -> (label, key of its spread) for the printed table.
_ROWS = [("fid", "FID", None), ("kid", "KID", "kid_std"), ("precision", "precision", None),
         ("recall", "recall", None), ("density", "density", None), ("coverage", "coverage", None),
         ("is", "IS", "is_std"), ("classes_covered", "classes covered", None), ("class_kl", "class KL", None)]


def register(sub) -> None:
    """Add ``ganforge eval`` to the CLI's sub-parsers."""
    p = sub.add_parser("eval", help="score a run, an image folder or a .npy array (FID, KID, P/R, D/C, IS)",
                       description="Score generated images against a reference set; writes JSON with the "
                                   "scores and their protocol record, and prints a table.")
    p.add_argument("source", help="a run directory (or one checkpoint .pt), a folder of .png/.jpg images, "
                                  "or a .npy array (N, C, H, W) / (N, H, W, C)")
    p.add_argument("--ref", help="reference: <dataset>-<split> (e.g. fmnist-test) or a folder/.npy of real "
                                 "images (default: a run's own dataset's test split; else fmnist-test)")
    p.add_argument("--metrics", default=DEFAULT_METRICS,
                   help=f"comma-separated: fid, kid, pr, dc, is, classes (default {DEFAULT_METRICS})")
    p.add_argument("--n", type=int, default=10000, help="images per side (default 10000)")
    p.add_argument("--extractor", default="fmnist-cnn", help="feature extractor (ganforge list extractors)")
    p.add_argument("--weights", help="weights file of the extractor (fmnist-cnn, inception-v3)")
    p.add_argument("--out", help="JSON file (default RUN_DIR/eval.json for a run; none otherwise)")
    p.add_argument("--seed", type=int, default=0, help="seed of a run's sampling noise and KID's subsets")
    p.add_argument("--range", default="-1,1", dest="value_range", metavar="LO,HI",
                   help="value range of float images in files, 'lo,hi' (default -1,1; uint8 is 0..255)")
    p.add_argument("--ref-resolution", type=int,
                   help="resolution of a named reference (default: the samples' own, so both sides go "
                        "through the same conversion)")
    p.add_argument("--no-ema", action="store_true", help="use a run's raw generator, not its EMA copy")
    add_rejection_args(p)
    p.add_argument("--batch-size", type=int, default=500, help="images per forward pass of the extractor (default 500)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    p.add_argument("--no-cache", action="store_true",
                   help="recompute reference features and decode the reference data again (no disk caches)")
    p.set_defaults(run=run)


def parse_metrics(text: str) -> list[str]:
    """'fid,kid' -> ['fid', 'kid'], checked against the valid names."""
    from ganforge.metrics.evaluate import VALID_METRICS

    names = [m.strip().lower() for m in text.split(",") if m.strip()]
    bad = [m for m in names if m not in VALID_METRICS]
    if bad or not names:
        raise ConfigError(f"unknown metric(s) {', '.join(bad) or '(none given)'} in --metrics {text!r}. "
                          f"Valid metrics: {', '.join(VALID_METRICS)}")
    return list(dict.fromkeys(names))


def _extractor_params(name: str, weights: str | None) -> dict[str, Any]:
    import ganforge.components  # noqa: F401
    from ganforge.registry import EXTRACTORS

    EXTRACTORS.get(name)  # unknown name: ConfigError listing the valid ones
    if name == "module":
        raise ConfigError("extractor 'module' wraps a Python nn.Module; use the Python API: "
                          "ganforge.metrics.evaluate(fake, extractor=my_module)")
    if weights is None:
        return {}
    if "weights" not in EXTRACTORS.params(name):
        with_weights = [n for n in EXTRACTORS.names() if "weights" in EXTRACTORS.params(n)]
        raise ConfigError(f"extractor {name!r} takes no weights file. Extractors with --weights: "
                          f"{', '.join(with_weights)}")
    return {"weights": weights}


def _parse_range(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise ConfigError(f"--range must be 'lo,hi' (e.g. -1,1 or 0,1 or 0,255), got {text!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi)) or not hi > lo:
        raise ConfigError(f"--range needs lo < hi, both finite numbers; got {text!r}")
    return lo, hi


def is_run(path: Path) -> bool:
    """A run directory (checkpoints/ or config.yaml inside) or a checkpoint file."""
    return (path.is_dir() and ((path / "checkpoints").is_dir() or (path / "config.yaml").is_file())) or \
        (path.is_file() and path.suffix == ".pt")


def _from_run(path: Path, n: int, seed: int, use_ema: bool, device: str, rejection: bool | float = True):
    """(images, source record, default reference) from a run's latest checkpoint."""
    import torch

    from ganforge import api
    from ganforge.training import checkpoint as ckpt
    from ganforge.training.eval_metrics import reference_for

    if path.is_dir() and not ckpt.list_checkpoints(path):
        raise ConfigError(f"{path} is a run directory without checkpoints (nothing in {path / 'checkpoints'}); "
                          "train it first, or give a folder of images / a .npy file")
    game, cfg, step = api.load_game(path, device=device, use_ema=use_ema, rejection=rejection)
    ema = bool(use_ema and cfg.train.ema and game.ema_roles)
    with torch.no_grad():
        x = game.sample(n, generator=torch.Generator().manual_seed(seed))
    if x.dim() != 4:
        raise ConfigError(f"run {path} generates vectors of shape {tuple(x.shape[1:])}, not images; "
                          "`ganforge eval` scores images (toy runs log their metrics in metrics.jsonl)")
    checkpoint = str(ckpt.list_checkpoints(path)[-1][1]) if path.is_dir() else str(path)
    source = {"kind": "run", "path": str(path), "checkpoint": checkpoint, "step": step,
              "generator": "ema" if ema else "raw",
              "rejection": bool(getattr(game, "drs", False)), "sample_seed": seed, "data": dict(cfg["data"])}
    if source["rejection"]:
        source["rejection_quantile"] = game.drs_quantile
    # The reference the trainer's own evaluations use: the data's test split at its resolution, or the data.
    return x, source, reference_for(game.eval_reference())


def _resolve_ref(args, fake, default) -> tuple[Any, dict[str, Any] | None, str]:
    """(ref for evaluate, dataset params, description) from --ref, the run's data, or fmnist-test."""
    from ganforge.metrics.evaluate import load_images
    from ganforge.registry import DATASETS

    if args.ref and (args.ref.endswith(".npy") or "/" in args.ref or Path(args.ref).is_dir()):
        if not Path(args.ref).exists():
            raise ConfigError(f"reference {args.ref} not found (a reference is <dataset>-<split>, e.g. "
                              "fmnist-test, or a folder / .npy file of real images)")
        return load_images(args.ref), None, f"images from {args.ref}"
    if args.ref:
        # The run's own reference named explicitly keeps the run's data parameters (resolution, root).
        same = default is not None and isinstance(default[0], str) and default[0] == args.ref
        ref, params = args.ref, (default[1] if same else None)
    elif default is not None:
        ref, params = default[0], default[1]
        if not isinstance(ref, str):
            return ref, None, default[2]
    else:
        ref, params = "fmnist-test", None
    params = dict(params or {})
    name = ref.rpartition("-")[0]
    if args.no_cache and name in DATASETS and "cache" in DATASETS.params(name):
        params["cache"] = False  # --no-cache bypasses every disk cache, the decoded data's too
    if name in DATASETS and "resolution" in DATASETS.params(name):
        if args.ref_resolution is not None:
            params["resolution"] = args.ref_resolution
        elif "resolution" not in params and fake.shape[-1] == fake.shape[-2]:
            params["resolution"] = int(fake.shape[-1])  # the samples' size: same conversion on both sides
    return ref, params, ref


def _check_file_range(x, lo: float, hi: float, path: str) -> None:
    """Floats far outside --range would be clamped into noise: say which range to pass instead."""
    if x.is_floating_point() and len(x):
        a, b = float(x.min()), float(x.max())
        slack = 0.5 * (hi - lo)
        if a < lo - slack or b > hi + slack:
            raise ConfigError(f"{path}: float values span [{a:.3g}, {b:.3g}], far outside --range {lo:g},{hi:g}; "
                              "pass the range the images use, e.g. --range 0,1 or --range 0,255")


def run(args: argparse.Namespace) -> int:
    """The command: load or sample images, score them, write JSON, print a table."""
    import torch

    from ganforge.metrics.evaluate import evaluate, load_images

    metrics = parse_metrics(args.metrics)
    ex_params = _extractor_params(args.extractor, args.weights)
    if args.n < 2 or args.batch_size < 1:
        raise ConfigError(f"--n must be >= 2 and --batch-size >= 1, got {args.n} and {args.batch_size}")
    lo, hi = _parse_range(args.value_range)
    if args.out and Path(args.out).is_dir():
        raise ConfigError(f"--out {args.out} is a folder; give the path of a .json file to write")
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {device}: CUDA is not available here; use --device cpu (or auto)")
    src = Path(args.source)
    if not src.exists():
        raise ConfigError(f"{src} not found. Give a run directory (with checkpoints/), a checkpoint .pt, "
                          "a folder of .png/.jpg images, or a .npy array of images")
    run_dir = src if is_run(src) and src.is_dir() else None
    out_path = Path(args.out) if args.out else (src / "eval.json" if run_dir is not None else None)
    if out_path is not None and run_dir is not None and _in_folder(out_path, run_dir):
        from ganforge import rundir

        rundir.check(run_dir, out_path)  # a link in the run folder: refused before the scores are computed
    default = None
    if is_run(src):
        fake, source, default = _from_run(src, args.n, args.seed, not args.no_ema, device,
                                           rejection_arg(args))
        lo, hi = -1.0, 1.0  # generators emit the model range; values beyond it are clamped (recorded)
    else:
        fake = load_images(src)[: args.n]
        _check_file_range(fake, lo, hi, str(src))
        source = {"kind": "npy" if src.suffix == ".npy" else "folder", "path": str(src)}
    ref, ref_params, ref_desc = _resolve_ref(args, fake, default)
    out = evaluate(fake, ref=ref, metrics=metrics, n=args.n, extractor=args.extractor, extractor_params=ex_params,
                   seed=args.seed, batch_size=args.batch_size, device=device, input_range=(lo, hi),
                   cache=not args.no_cache, ref_params=ref_params or None)
    protocol = out.pop("protocol")
    if not isinstance(ref, str):
        protocol["reference"] = ref_desc
    if fake.is_floating_point():
        protocol["fake_out_of_range"] = float(((fake < lo) | (fake > hi)).float().mean())
    record = {"source": source, "scores": out, "protocol": protocol}
    if out_path is not None:
        _write_record(out_path, record, run_dir)
    print(format_table(record))
    if out_path is not None:
        print(f"wrote {out_path}")
    return 0


def _in_folder(path: Path, folder: Path) -> bool:
    """Whether ``path`` names a file directly in ``folder`` (its last component not followed)."""
    return path.absolute().parent.resolve() == folder.resolve()


def _write_record(path: Path, record: dict[str, Any], run_dir: Path | None) -> None:
    """Write the JSON record: through ``rundir`` (no links followed) inside a run folder, else by a temporary
    file and a rename. A failure keeps the scores: they are in the error message."""
    from ganforge import rundir

    text = json.dumps(record, indent=2) + "\n"
    try:
        if run_dir is not None and _in_folder(path, run_dir):
            rundir.write_text(run_dir, path, text)
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
        try:
            tmp.write_text(text)
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()
    except (OSError, ConfigError) as e:
        why = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise ConfigError(f"cannot write the scores to {path}: {why}; pick another --out (the scores were:\n"
                          + format_table(record) + ")") from None


def format_table(record: dict[str, Any]) -> str:
    """The scores as a two-column text table under a one-line protocol summary."""
    s, p, src = record["scores"], record["protocol"], record["source"]
    kept = f", rejection-sampled at quantile {src.get('rejection_quantile', '?')}" if src.get("rejection") else ""
    what = src["path"] + (f" (step {src['step']}, {src['generator']} generator{kept})" if src["kind"] == "run" else "")
    ex = p["extractor"]
    sha = (ex.get("weights_sha256") or "")[:12] or "none"
    lines = [f"{what} vs {p['reference']}: extractor {ex['name']} (weights sha256 {sha}), "
             f"n_real {p['n_real']}, n_fake {p['n_fake']}, seed {p['seed']}",
             f"{'metric':<16} value"]
    for key, label, spread in _ROWS:
        if key in s:
            v = s[key]
            text = f"{v:.6g}" if isinstance(v, float) else str(v)
            if spread and spread in s:
                text += f" +- {s[spread]:.3g}"
            lines.append(f"{label:<16} {text}")
    for m, why in p.get("skipped", {}).items():
        lines.append(f"{m:<16} skipped: {why}")
    return "\n".join(lines)
