"""``ganforge inpaint RUN IMAGES --mask M --out DIR``: semantic inpainting by latent optimisation (Yeh et al. 2017)."""

from __future__ import annotations

from ganforge.errors import ConfigError


def register(sub) -> None:
    s = sub.add_parser("inpaint", help="fill holes in images with a trained generator (Yeh et al. 2017)",
                       description="Per image, Adam on z minimises the L1 distance of G(z) to the known pixels "
                                   "(weighted towards the hole's rim, Yeh et al. 2017 Eq. 2) + lam x the critic's "
                                   "generator loss log(1 - D(G(z))), from several restarts, keeping the best; "
                                   "then the known pixels are kept exactly and the hole is filled from G(z) "
                                   "(pasted, or Poisson-blended). Writes completed.npy (uint8), completed/*.png, "
                                   "grid.png (rows: masked input, G(z), completion), latents.npy, mask.npy "
                                   "(1 = hole) and losses.json into --out.")
    s.add_argument("run_dir", metavar="RUN", help="a run folder written by `ganforge train` (or a checkpoint .pt)")
    s.add_argument("images", metavar="IMAGES", help="a .npy array (N, C, H, W) or (N, H, W) of the run's size, "
                                                    "uint8 or floats in [-1, 1], or a folder of images (resized)")
    s.add_argument("--mask", required=True, metavar="center|random|FILE.npy",
                   help="center: hide the central square of half the side (a quarter of the image); random: hide "
                        "each pixel with probability --missing; FILE.npy: nonzero marks the hole, (H, W) or (N, H, W)")
    s.add_argument("--out", required=True, help="a new (or empty) folder for the results")
    s.add_argument("--missing", type=float, default=0.8, help="with --mask random: fraction hidden (default 0.8)")
    s.add_argument("--lam", type=float, default=0.003, help="weight of the prior loss (default 0.003, the paper's)")
    s.add_argument("--prior", default="minimax", choices=("minimax", "ns", "none"),
                   help="prior loss on D's logit: minimax log(1 - D) (the paper's), ns -log D, or none")
    s.add_argument("--weighting", default="window", choices=("window", "uniform"),
                   help="contextual weights: window (Yeh et al. Eq. 2) or uniform over known pixels")
    s.add_argument("--window", type=int, default=7, help="odd window size of the weighting (default 7)")
    s.add_argument("--blend", default="paste", choices=("paste", "poisson"),
                   help="fill the hole by pasting G(z), or by Poisson blending (Yeh et al. Sec. 3.3)")
    s.add_argument("--restarts", type=int, default=4, help="starts per image, the best kept (default 4)")
    s.add_argument("--steps", type=int, default=300, help="Adam steps per start (default 300)")
    s.add_argument("--lr", type=float, default=0.05, help="Adam's learning rate on z (default 0.05)")
    s.add_argument("--seed", type=int, default=0, help="seed of the random starts and random masks (default 0)")
    s.set_defaults(run=run)


def run(args) -> int:
    import torch
    from PIL import Image

    from ganforge.commands.project import load_run, new_out_dir, pairs_grid, save_json, save_npy
    from ganforge.imaging import save_grid, to_uint8
    from ganforge.projection import inpaint, load_images, make_mask, psnr_in

    if args.window < 1 or args.window % 2 == 0:
        raise ConfigError(f"--window must be an odd number >= 1, got {args.window}")
    _, model = load_run(args.run_dir)
    x = load_images(args.images, model.image_shape)
    known = make_mask(args.mask, model.image_shape, len(x), missing=args.missing, seed=args.seed)
    out = new_out_dir(args.out)
    res = inpaint(model, x, known, lam=args.lam, prior=args.prior, weighting=args.weighting, window=args.window,
                  restarts=args.restarts, steps=args.steps, lr=args.lr, blend_with=args.blend, seed=args.seed)
    done = to_uint8(res["completed"])
    save_npy(out, "completed.npy", done.numpy())
    save_npy(out, "generated.npy", to_uint8(res["x_hat"]).numpy())
    save_npy(out, "latents.npy", res["z"].numpy())
    save_npy(out, "mask.npy", (known[:, 0] == 0).numpy().astype("uint8"))
    (out / "completed").mkdir()
    for i, im in enumerate(done):
        arr = im[0].numpy() if im.shape[0] == 1 else im.permute(1, 2, 0).numpy()
        Image.fromarray(arr).save(out / "completed" / f"{i:04d}.png")
    shown = torch.where(known.expand_as(x) > 0, x, torch.zeros_like(x))  # the hole in mid grey
    images, nrow = pairs_grid([shown, res["x_hat"], res["completed"]])
    save_grid(images, out / "grid.png", nrow=nrow, scale=2 if max(x.shape[-2:]) < 64 else 1)
    known_psnr = psnr_in(res["x_hat"], x, known)
    save_json(out, "losses.json", {
        "contextual": res["contextual"].tolist(), "prior": res["prior"].tolist(), "loss": res["loss"].tolist(),
        "psnr_known_pixels_of_G_db": known_psnr.tolist(), "hidden_fraction": float(1 - known.mean()),
        "mask": args.mask, "lam": args.lam, "prior_form": args.prior, "weighting": args.weighting,
        "window": args.window, "blend": args.blend, "restarts": args.restarts, "steps": args.steps, "lr": args.lr,
        "seed": args.seed, "images": str(args.images), "run": str(args.run_dir)})
    print(f"inpainted {len(x)} images ({100 * float(1 - known.mean()):.0f} % of pixels hidden); G(z) matches the "
          f"known pixels at {float(known_psnr.mean()):.2f} dB; wrote {out}/completed.npy, completed/, grid.png")
    return 0
