"""Latent optimisation through a trained generator: projection and semantic inpainting.

Both search z by Adam on a per-image loss, with R restarts per image, and keep per image the z of
lowest loss seen over all restarts and steps (so more restarts are never worse than one: restart 0
is the same start in both). The generator is used exactly as ``game.sample`` uses it (eval mode,
standing batch-norm statistics), with its weights frozen; a conditional generator's label is
searched too (every class, every restart). Uniform latents are clamped to [-1, 1] after each step.

- Projection (Zhu et al. 2016, "Generative visual manipulation on the natural image manifold",
  Sec. 3.1, the optimisation route; Creswell & Bharath 2018, "Inverting the generator of a GAN"):
  loss(z) = mean_pixels (G(z) - x)^2 + prior_weight * mean(z^2). With a BiGAN encoder E, restart 0
  starts from E(x) (Donahue et al. 2017's inverse), the others from the prior.
- Inpainting (Yeh et al. 2017, "Semantic image inpainting with deep generative models", Eq. 2-5):
  loss(z) = ||W * (G(z) - y)||_1 + lam * prior(D(G(z))), summed over pixels. M = 1 on known pixels;
  W_i = M_i * sum_{j in N(i)} (1 - M_j) / |N(i)| over a ``window`` x ``window`` neighbourhood N(i)
  clipped to the image (Eq. 2: known pixels near the hole count most, far ones not at all), or W = M
  ("uniform"). The prior is the generator's loss of Eq. 4 on D's logit v: "minimax"
  log(1 - D) = -softplus(v) (the paper's form, lam = 0.003), or "ns" -log D = softplus(-v); both
  fall as D(G(z)) rises. A critic that cannot score one image alone (PacGAN's packing, several
  outputs) gives no prior: use lam = 0. The completion keeps the known pixels exactly: ``paste`` copies G(z) into
  the hole; ``poisson`` (the paper's Sec. 3.3) solves Laplace(f) = Laplace(G(z)) in the hole with f = y
  on the known pixels (Jacobi iterations; replicated borders).

Images are float (N, C, H, W) in [-1, 1], masks (N, 1, H, W) with 1 on known pixels.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ganforge.errors import ConfigError

PRIORS = ("minimax", "ns", "none")
WEIGHTINGS = ("window", "uniform")
BLENDS = ("paste", "poisson")


# ------------------------------------------------------------------ the model
@dataclass
class Model:
    """What latent optimisation needs of a trained game: a frozen G(z, c), and D and E when there are."""

    g: nn.Module
    z_dim: int
    latent: str
    n_classes: int = 0  # > 0: G takes a label, searched over all classes
    critic: Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor] | None = None
    encode: Callable[[torch.Tensor], torch.Tensor] | None = None
    image_shape: tuple[int, ...] = ()

    def noise(self, n: int, gen: torch.Generator) -> torch.Tensor:
        if self.latent == "uniform":
            return torch.rand(n, self.z_dim, generator=gen) * 2 - 1
        return torch.randn(n, self.z_dim, generator=gen)


def _frozen(net: nn.Module) -> nn.Module:
    for p in net.parameters():
        p.requires_grad_(False)
    return net.eval()


def model_of(game) -> Model:
    """A ``Model`` of a trained game with a generator G(z) on images (gan, cgan, bigan, ...)."""
    if "g" not in game.nets or not hasattr(game, "z_dim"):
        raise ConfigError(f"latent optimisation needs a game with a generator from noise, nets.g(z); game "
                          f"{type(game).__name__} has {', '.join(game.nets) or 'no nets'}")
    if game.data is None or not game.data.is_image:
        raise ConfigError("latent optimisation works on image models; this run's data are not images")
    k = getattr(game.nets["g"], "n_classes", 0) if getattr(game, "conditional", False) else 0

    def make_input(m, gen):
        z = game.noise(m, game.z_dim, generator=gen, latent=game.latent)
        return (z, game.labels(m, gen)) if hasattr(game, "labels") else (z,)

    g = game.sampling_net("g", make_input) if hasattr(game, "sampling_net") else game.nets["g"]
    critic = None
    d = game.nets["d"] if "d" in game.nets else None
    if d is not None and getattr(game.objective, "critic_outputs", 1) == 1 and getattr(game, "pack", 1) == 1:
        d = _frozen(copy.deepcopy(d))
        if hasattr(game, "encode"):  # BiGAN's joint critic scores (x, z)
            critic = lambda x, z, c: d(x, z).reshape(-1)  # noqa: E731
        elif hasattr(game, "real_logit"):  # SSGAN: K class logits, "real" through their logsumexp
            critic = lambda x, z, c, f=game.real_logit: f(d(x))  # noqa: E731
        else:
            critic = lambda x, z, c: d(x, c).reshape(-1)  # noqa: E731
    encode = game.encode if hasattr(game, "encode") else None
    return Model(_frozen(g), game.z_dim, game.latent, k, critic, encode, tuple(game.data.shape))


# ------------------------------------------------------------------ the search
def _starts(model: Model, x: torch.Tensor, restarts: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Start codes and labels for every (restart, class, image), restart-major: (R*K*N, d), (R*K*N,) or None.

    Restart r's random codes are the r-th of R seeded draws of N codes, so the first restarts of a longer
    run are those of a shorter one. With an encoder, restart 0 starts from E(x).
    """
    n, k = len(x), max(model.n_classes, 1)
    z = torch.stack([model.noise(n, gen) for _ in range(restarts)])[:, None].expand(-1, k, -1, -1).clone()
    if model.encode is not None:
        z[0] = model.encode(x).reshape(1, n, -1)
    c = torch.arange(k).reshape(1, k, 1).expand(restarts, k, n).reshape(-1) if model.n_classes else None
    return z.reshape(restarts * k * n, -1), c


def search(model: Model, x: torch.Tensor, loss_fn: Callable[[torch.Tensor, torch.Tensor | None, slice], torch.Tensor],
           *, restarts: int = 4, steps: int = 300, lr: float = 0.05, seed: int = 0,
           batch_images: int = 128) -> dict[str, torch.Tensor]:
    """Minimise ``loss_fn(z, c, images) -> (M,)`` from ``restarts`` starts per image.

    Images go in chunks of ``batch_images``; ``images`` is the chunk's slice of x, and row i of z belongs
    to image i % len(chunk) of it (see ``_tile``).

    Returns {"z": (N, d), "c": (N,) or None, "loss": (N,), "x_hat": G(z, c) (N, C, H, W)}: per image the
    lowest loss over all restarts (and classes) and steps, the loss at that z.
    """
    checks = [(restarts >= 1, f"restarts must be >= 1, got {restarts}"),
              (steps >= 0, f"steps must be >= 0, got {steps}"),
              (lr > 0, f"lr must be > 0, got {lr}"), (len(x) >= 1, "no images given")]
    for ok, msg in checks:
        if not ok:
            raise ConfigError(msg)
    gen = torch.Generator().manual_seed(seed)
    out: dict[str, list] = {"z": [], "c": [], "loss": []}
    for i in range(0, len(x), batch_images):
        xi = x[i:i + batch_images]
        z0, c = _starts(model, xi, restarts, gen)
        z = z0.clone().requires_grad_(True)
        opt = torch.optim.Adam([z], lr=lr)
        best_z, best = z0.clone(), torch.full((len(z0),), float("inf"))
        for step in range(steps + 1):
            loss = loss_fn(z, c, slice(i, i + len(xi)))
            with torch.no_grad():
                better = loss.detach() < best
                best = torch.where(better, loss.detach(), best)
                best_z[better] = z.detach()[better]
            if step == steps:
                break
            opt.zero_grad(set_to_none=True)
            loss.sum().backward()
            opt.step()
            if model.latent == "uniform":
                with torch.no_grad():
                    z.clamp_(-1, 1)
        pick = best.reshape(-1, len(xi)).argmin(0)  # per image: the best over restarts x classes
        rows = pick * len(xi) + torch.arange(len(xi))
        out["z"].append(best_z[rows])
        out["loss"].append(best[rows])
        out["c"].append(c[rows] if c is not None else None)
    z = torch.cat(out["z"])
    c = torch.cat(out["c"]) if model.n_classes else None
    with torch.no_grad():
        x_hat = render(model, z, c)
    return {"z": z, "c": c, "loss": torch.cat(out["loss"]), "x_hat": x_hat}


def render(model: Model, z: torch.Tensor, c: torch.Tensor | None = None, batch: int = 256) -> torch.Tensor:
    """G(z, c) in batches."""
    with torch.no_grad():
        return torch.cat([model.g(z[i:i + batch], None if c is None else c[i:i + batch]) if model.n_classes
                          else model.g(z[i:i + batch]) for i in range(0, len(z), batch)])


def _g(model: Model, z: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
    return model.g(z, c) if model.n_classes else model.g(z)


def _tile(t: torch.Tensor, m: int) -> torch.Tensor:
    """(N, ...) -> (m, ...) repeating rows: row i is t[i % N]."""
    return t.repeat(m // len(t), *([1] * (t.dim() - 1)))


# ------------------------------------------------------------------ projection
def project(model: Model, x: torch.Tensor, *, restarts: int = 4, steps: int = 300, lr: float = 0.05,
            prior_weight: float = 0.0, seed: int = 0) -> dict[str, torch.Tensor]:
    """z minimising mean (G(z) - x)^2 + prior_weight * mean z^2 per image; adds "mse" (N,) of G(z) vs x."""
    check_images(x, model.image_shape)
    if prior_weight < 0:
        raise ConfigError(f"the latent prior's weight must be >= 0, got {prior_weight}")

    def loss_fn(z, c, sl):
        return (_g(model, z, c) - _tile(x[sl], len(z))).pow(2).flatten(1).mean(1) + prior_weight * z.pow(2).mean(1)

    res = search(model, x, loss_fn, restarts=restarts, steps=steps, lr=lr, seed=seed)
    res["mse"] = (res["x_hat"] - x).pow(2).flatten(1).mean(1)
    return res


# ------------------------------------------------------------------ inpainting
def contextual_weights(known: torch.Tensor, window: int = 7, weighting: str = "window") -> torch.Tensor:
    """Yeh et al. 2017, Eq. 2: W_i = M_i * (sum of 1 - M_j over the window around i) / (pixels of that window
    inside the image); ``uniform``: W = M. known: (N, 1, H, W) in {0, 1}."""
    if weighting not in WEIGHTINGS:
        raise ConfigError(f"unknown weighting {weighting!r}; valid: {', '.join(WEIGHTINGS)}")
    if weighting == "uniform":
        return known.float()
    if window < 1 or window % 2 == 0:
        raise ConfigError(f"the contextual window must be an odd number >= 1, got {window}")
    frac = F.avg_pool2d(1 - known.float(), window, stride=1, padding=window // 2, count_include_pad=False)
    return known.float() * frac


def prior_loss(logits: torch.Tensor, form: str = "minimax") -> torch.Tensor:
    """Per-sample prior loss on D's logits: minimax log(1 - D) = -softplus(v); ns -log D = softplus(-v)."""
    if form == "minimax":
        return -F.softplus(logits)
    if form == "ns":
        return F.softplus(-logits)
    if form == "none":
        return torch.zeros_like(logits)
    raise ConfigError(f"unknown prior {form!r}; valid: {', '.join(PRIORS)}")


def blend(x: torch.Tensor, fill: torch.Tensor, known: torch.Tensor, how: str = "paste",
          iters: int = 2000) -> torch.Tensor:
    """Known pixels of x kept exactly; the hole from ``fill`` (``paste``) or Poisson-blended (``poisson``)."""
    k = known.float().expand_as(x)
    if how == "paste":
        return torch.where(k > 0, x, fill)
    if how != "poisson":
        raise ConfigError(f"unknown blend {how!r}; valid: {', '.join(BLENDS)}")
    kernel = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]).reshape(1, 1, 3, 3)

    def nsum(t):  # sum of the 4 neighbours, borders replicated (no flux through the image's edge)
        c = t.shape[1]
        return F.conv2d(F.pad(t, (1, 1, 1, 1), mode="replicate"), kernel.expand(c, 1, 3, 3), groups=c)

    lap_g = 4 * fill - nsum(fill)
    f = torch.where(k > 0, x, fill)
    for _ in range(iters):  # Jacobi: 4 f_i - sum_j f_j = 4 g_i - sum_j g_j inside the hole
        f = torch.where(k > 0, x, (nsum(f) + lap_g) / 4)
    return f


def inpaint(model: Model, x: torch.Tensor, known: torch.Tensor, *, lam: float = 0.003, prior: str = "minimax",
            weighting: str = "window", window: int = 7, restarts: int = 4, steps: int = 300, lr: float = 0.05,
            blend_with: str = "paste", seed: int = 0) -> dict[str, torch.Tensor]:
    """Semantic inpainting (Yeh et al. 2017): adds "completed" (N, C, H, W) and "contextual", "prior" (N,)."""
    check_images(x, model.image_shape)
    check_mask(known, x)
    if lam < 0:
        raise ConfigError(f"the prior weight lambda must be >= 0, got {lam}")
    if prior not in PRIORS:
        raise ConfigError(f"unknown prior {prior!r}; valid: {', '.join(PRIORS)}")
    if lam > 0 and prior != "none" and model.critic is None:
        raise ConfigError("this run's critic cannot score single images (a packed or multi-output critic, or "
                          "none): use --prior none or --lam 0")
    use_prior = lam > 0 and prior != "none"
    w = contextual_weights(known, window, weighting)

    def terms(z, c, xx, ww):
        fake = _g(model, z, c)
        ctx = (ww * (fake - xx)).abs().flatten(1).sum(1)
        pr = prior_loss(model.critic(fake, z, c), prior) if use_prior else torch.zeros_like(ctx)
        return ctx, pr

    def loss_fn(z, c, sl):
        ctx, pr = terms(z, c, _tile(x[sl], len(z)), _tile(w[sl], len(z)))
        return ctx + lam * pr

    res = search(model, x, loss_fn, restarts=restarts, steps=steps, lr=lr, seed=seed)
    with torch.no_grad():
        ctx, pr = terms(res["z"], res["c"], x, w)
    res.update(contextual=ctx, prior=pr, weights=w, completed=blend(x, res["x_hat"], known, blend_with))
    return res


# ------------------------------------------------------------------ masks and images
def make_mask(kind: str, shape: tuple[int, ...], n: int, *, missing: float = 0.8, seed: int = 0) -> torch.Tensor:
    """Known-pixel masks (n, 1, H, W): ``center`` hides the central square of side H // 2 (a quarter of the
    image), ``random`` hides each pixel with probability ``missing``, a ``.npy`` file marks the hole with
    nonzero values ((H, W) for every image, or (n, H, W) / (n, 1, H, W))."""
    _, h, w = shape
    if kind == "center":
        known = torch.ones(n, 1, h, w)
        sh, sw = h // 2, w // 2
        known[:, :, (h - sh) // 2:(h - sh) // 2 + sh, (w - sw) // 2:(w - sw) // 2 + sw] = 0
        return known
    if kind == "random":
        if not 0 < missing < 1:
            raise ConfigError(f"--missing (the fraction of hidden pixels) must be in (0, 1), got {missing}")
        gen = torch.Generator().manual_seed(seed)
        return (torch.rand(n, 1, h, w, generator=gen) >= missing).float()
    p = Path(kind)
    if p.suffix != ".npy":
        raise ConfigError(f"unknown mask {kind!r}: give center, random or a .npy file (nonzero = hole)")
    if not p.is_file():
        raise ConfigError(f"mask file {p} does not exist")
    try:
        m = np.load(p, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot read the mask {p}: {e}") from None
    if m.shape == (h, w):
        m = np.broadcast_to(m, (n, h, w))
    if m.shape == (n, 1, h, w):
        m = m[:, 0]
    if m.shape != (n, h, w):
        raise ConfigError(f"mask {p} has shape {m.shape}; it must be ({h}, {w}), ({n}, {h}, {w}) or ({n}, 1, {h}, "
                          f"{w}) for {n} images of {h}x{w}")
    return torch.from_numpy((np.asarray(m) == 0).astype(np.float32))[:, None]


def check_mask(known: torch.Tensor, x: torch.Tensor) -> None:
    if known.shape != (len(x), 1, *x.shape[2:]):
        raise ConfigError(f"a mask must have shape (N, 1, H, W) = {(len(x), 1, *x.shape[2:])}, "
                          f"got {tuple(known.shape)}")
    per = known.flatten(1).sum(1)
    if (per == known[0].numel()).any():
        raise ConfigError(f"the mask hides no pixel of image {int((per == known[0].numel()).nonzero()[0])}")
    if (per == 0).any():
        raise ConfigError(f"the mask hides every pixel of image {int((per == 0).nonzero()[0])}: nothing to match")


def check_images(x: torch.Tensor, shape: tuple[int, ...]) -> None:
    if tuple(x.shape[1:]) != tuple(shape):
        raise ConfigError(f"the images have shape {tuple(x.shape[1:])} but the run's data are {tuple(shape)}")


def load_images(path: str | Path, shape: tuple[int, ...]) -> torch.Tensor:
    """Images as the run's networks see them, float (N, C, H, W) in [-1, 1], from a ``.npy`` array (uint8 in
    [0, 255] or float in [-1, 1]; (N, C, H, W), or (N, H, W) for one channel) or a folder of image files
    (fitted to the run's resolution: centre crop, resize; greyscale for one channel)."""
    p = Path(path)
    c, h, w = shape
    if p.is_dir():
        from ganforge.data.images import bad_image_errors, read_image, scan_folder

        if h != w:
            raise ConfigError(f"image folders are fitted to square images; the run's data are {h}x{w}: give a .npy")
        files, _ = scan_folder(p)
        if not files:
            raise ConfigError(f"no image files under {p}")
        ims = []
        for f in files:
            try:
                im, _ = read_image(f, h, "center")
            except bad_image_errors() as e:
                raise ConfigError(f"cannot read the image {f}: {e}") from None
            arr = np.asarray(im.convert("L"))[None] if c == 1 else np.asarray(im).transpose(2, 0, 1)
            ims.append(arr)
        return torch.from_numpy(np.stack(ims)).float() / 127.5 - 1
    if not p.is_file():
        raise ConfigError(f"IMAGES {p} does not exist: give a .npy array or a folder of images")
    if p.suffix != ".npy":
        raise ConfigError(f"IMAGES {p} is not a .npy array or a folder of images")
    try:
        a = np.load(p, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot read {p}: {e}") from None
    if a.ndim == 3 and c == 1:
        a = a[:, None]
    if a.ndim != 4 or tuple(a.shape[1:]) != (c, h, w):
        raise ConfigError(f"{p} holds an array of shape {a.shape}, but the run's images are {c}x{h}x{w}: give "
                          f"(N, {c}, {h}, {w}){f' or (N, {h}, {w})' if c == 1 else ''}, or a folder of images "
                          "(those are resized)")
    if a.dtype == np.uint8:
        return torch.from_numpy(a.copy()).float() / 127.5 - 1
    if not np.issubdtype(a.dtype, np.floating):
        raise ConfigError(f"{p} holds {a.dtype} values: give uint8 in [0, 255] or floats in [-1, 1]")
    x = torch.from_numpy(a.astype(np.float32))
    if not torch.isfinite(x).all() or x.min() < -1.001 or x.max() > 1.001:
        raise ConfigError(f"{p}: float images must lie in [-1, 1] (the networks' range); these span "
                          f"[{float(x.min()):.3g}, {float(x.max()):.3g}]. Scale them, or save uint8 [0, 255]")
    return x.clamp(-1, 1)


def psnr_in(x: torch.Tensor, y: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR (dB, data range 2) over the pixels where ``region`` (N, 1, H, W) is 1."""
    r = region.float().expand_as(x)
    mse = ((x.clamp(-1, 1) - y) ** 2 * r).flatten(1).sum(1) / r.flatten(1).sum(1)
    return 10 * torch.log10(4.0 / mse.clamp_min(1e-12))
