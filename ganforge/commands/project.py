"""``ganforge project RUN IMAGES --out DIR``: find latents z with G(z) close to given images; edit along a direction."""

from __future__ import annotations

import json
from pathlib import Path

from ganforge.errors import ConfigError


def register(sub) -> None:
    s = sub.add_parser("project", help="find latents z with G(z) close to given images (and edit along a direction)",
                       description="Projection by latent optimisation: per image, Adam on mean (G(z) - x)^2 "
                                   "(+ prior-weight * mean z^2) from several restarts, keeping the best (a BiGAN "
                                   "run's encoder E(x) is one of the starts). Writes latents.npy, "
                                   "reconstructions.png (rows: images, then G(z)) and mse.json into --out; with "
                                   "--edit also edit.png: G(z + t d) for t over --t-range.")
    s.add_argument("run_dir", metavar="RUN", help="a run folder written by `ganforge train` (or a checkpoint .pt)")
    s.add_argument("images", metavar="IMAGES", help="a .npy array (N, C, H, W) or (N, H, W) of the run's size, "
                                                    "uint8 or floats in [-1, 1], or a folder of images (resized)")
    s.add_argument("--out", required=True, help="a new (or empty) folder for the results")
    s.add_argument("--restarts", type=int, default=4, help="starts per image, the best kept (default 4)")
    s.add_argument("--steps", type=int, default=300, help="Adam steps per start (default 300)")
    s.add_argument("--lr", type=float, default=0.05, help="Adam's learning rate on z (default 0.05)")
    s.add_argument("--prior-weight", type=float, default=0.0, help="weight of mean z^2 in the loss (default 0)")
    s.add_argument("--seed", type=int, default=0, help="seed of the random starts (default 0)")
    s.add_argument("--edit", action="store_true", help="also write edit.png: each image's z moved along --direction")
    s.add_argument("--direction", metavar="SPEC", help="with --edit: classes:A,B (mean latent of class B minus "
                                                       "class A among 2000 generated samples; classes by index or "
                                                       "name) or a .npy vector of the latent size")
    s.add_argument("--t-range", default="-1,2", metavar="LO,HI",
                   help="with --edit: the range of t (default -1,2; a negative LO needs the = form: --t-range=-2,2)")
    s.add_argument("--t-steps", type=int, default=7, help="with --edit: values of t, evenly spaced (default 7)")
    s.set_defaults(run=run)


# ------------------------------------------------------------------ shared with `ganforge inpaint`
def new_out_dir(path: str) -> Path:
    """``path`` as a new or empty folder (made now); an existing non-empty one is refused, never overwritten."""
    from ganforge.commands import check_writable

    out = check_writable(path, "output folder", folder=True)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; give a new folder")
    if out.is_dir() and any(out.iterdir()):
        raise ConfigError(f"--out {out} already exists and is not empty; give a new folder (nothing is overwritten)")
    out.mkdir(parents=True, exist_ok=True)
    return out


def save_npy(out: Path, name: str, arr) -> Path:
    import numpy as np

    from ganforge.rundir import write_with

    return write_with(out, out / name, lambda tmp: np.save(tmp, arr), durable=False)


def save_json(out: Path, name: str, obj) -> Path:
    from ganforge.rundir import write_text

    return write_text(out, out / name, json.dumps(obj, indent=2) + "\n", durable=False)


def load_run(run_dir: str):
    """(game, Model) of a trained run; a missing path is a ConfigError."""
    from ganforge import api
    from ganforge.projection import model_of

    if not Path(run_dir).exists():
        raise ConfigError(f"run {run_dir} does not exist: give a run folder written by `ganforge train`")
    game, _, _ = api.load_game(run_dir)
    return game, model_of(game)


def pairs_grid(rows: list, per_row: int = 8):
    """Interleave equally long image stacks in blocks of ``per_row``: images 0-7 of each, then 8-15 of each."""
    import torch

    n = len(rows[0])
    return torch.cat([r[i:i + per_row] for i in range(0, n, per_row) for r in rows]), min(per_row, n)


# ------------------------------------------------------------------ directions
def _class_index(name: str, names: list[str]) -> int:
    if name.strip().lstrip("-").isdigit():
        k = int(name)
        if not 0 <= k < len(names):
            raise ConfigError(f"class {k} is out of range: there are {len(names)} classes (0..{len(names) - 1})")
        return k
    low = [n.lower() for n in names]
    if name.strip().lower() not in low:
        raise ConfigError(f"unknown class {name!r}; valid: {', '.join(names)}")
    return low.index(name.strip().lower())


def direction(spec: str, game, model, *, n: int = 2000, seed: int = 0):
    """(d (z_dim,), a description) from ``classes:A,B`` or a .npy file."""
    import numpy as np
    import torch

    from ganforge.latent import class_direction
    from ganforge.projection import render

    if not spec.startswith("classes:"):
        p = Path(spec)
        if p.suffix != ".npy" or not p.is_file():
            raise ConfigError(f"--direction {spec!r}: give classes:A,B or an existing .npy file")
        d = torch.from_numpy(np.load(p, allow_pickle=False).astype(np.float32)).reshape(-1)
        if d.numel() != model.z_dim:
            raise ConfigError(f"--direction {p} has {d.numel()} values; the run's latents have {model.z_dim}")
        return d, f"from {p}"
    parts = spec[len("classes:"):].split(",")
    if len(parts) != 2:
        raise ConfigError(f"--direction {spec!r}: write classes:A,B, e.g. classes:0,7 or classes:sandal,sneaker")
    gen = torch.Generator().manual_seed(seed)
    z = model.noise(n, gen)
    if model.n_classes:  # a conditional model: the label each sample was drawn with
        labels = game.labels(n, gen).cpu()
        names = list(game.data.class_names or range(model.n_classes))
        how = "the labels the samples were generated with"
    elif model.image_shape == (1, 28, 28):
        from ganforge.bench.translation import Judge

        _, logits = Judge().ex.extract(render(model, z))
        labels = torch.from_numpy(logits).argmax(1)
        from ganforge.data.fmnist import CLASS_NAMES as names  # noqa: N811
        how = "the shipped fmnist-cnn classifier's labels of the samples"
    else:
        raise ConfigError("classes:A,B needs a conditional run or 28x28 greyscale images (labelled by the shipped "
                          "fmnist-cnn classifier); give a .npy direction instead")
    names = [str(x) for x in names]
    a, b = _class_index(parts[0], names), _class_index(parts[1], names)
    d = class_direction(z, labels, a, b)
    return d, (f"mean latent of class {names[b]} minus class {names[a]} over {n} generated samples, labelled by "
               f"{how} ({int((labels == a).sum())} and {int((labels == b).sum())} samples)")


def run(args) -> int:
    import torch

    from ganforge.imaging import save_grid
    from ganforge.latent import edit_path
    from ganforge.projection import load_images, project, psnr_in, render

    if args.edit and not args.direction:
        raise ConfigError("--edit needs --direction classes:A,B or --direction FILE.npy")
    if args.direction and not args.edit:
        raise ConfigError("--direction is used by --edit: add --edit")
    try:
        lo, hi = (float(v) for v in args.t_range.split(","))
    except ValueError:
        raise ConfigError(f"--t-range {args.t_range!r}: write LO,HI, e.g. -1,2") from None
    if args.t_steps < 2:
        raise ConfigError(f"--t-steps must be >= 2, got {args.t_steps}")
    game, model = load_run(args.run_dir)
    x = load_images(args.images, model.image_shape)
    d = desc = None
    if args.edit:
        d, desc = direction(args.direction, game, model, seed=args.seed)
    out = new_out_dir(args.out)
    res = project(model, x, restarts=args.restarts, steps=args.steps, lr=args.lr, prior_weight=args.prior_weight,
                  seed=args.seed)
    save_npy(out, "latents.npy", res["z"].numpy())
    if res["c"] is not None:
        save_npy(out, "labels.npy", res["c"].numpy())
    images, nrow = pairs_grid([x, res["x_hat"]])
    scale = 2 if max(x.shape[-2:]) < 64 else 1
    save_grid(images, out / "reconstructions.png", nrow=nrow, scale=scale)
    psnr = psnr_in(res["x_hat"], x, torch.ones_like(x[:, :1]))
    report = {"mse": res["mse"].tolist(), "mean_mse": float(res["mse"].mean()), "psnr_db": psnr.tolist(),
              "mean_psnr_db": float(psnr.mean()), "loss": res["loss"].tolist(), "restarts": args.restarts,
              "steps": args.steps, "lr": args.lr, "prior_weight": args.prior_weight, "seed": args.seed,
              "encoder_start": model.encode is not None, "images": str(args.images), "run": str(args.run_dir)}
    if args.edit:
        ts = torch.linspace(lo, hi, args.t_steps)
        zs = edit_path(res["z"], d, ts)
        cs = None if res["c"] is None else res["c"].repeat_interleave(len(ts))
        save_grid(render(model, zs, cs), out / "edit.png", nrow=len(ts), scale=scale)
        save_npy(out, "direction.npy", d.numpy())
        report["edit"] = {"direction": desc, "t": ts.tolist(), "direction_norm": float(d.norm())}
    save_json(out, "mse.json", report)
    print(f"projected {len(x)} images: mean MSE {report['mean_mse']:.4f}, mean PSNR {report['mean_psnr_db']:.2f} dB; "
          f"wrote {out}/latents.npy, reconstructions.png, mse.json{', edit.png' if args.edit else ''}")
    return 0
