"""Latent-space tools (C8): interpolation, latent arithmetic, class sweeps.

Pure functions on latent codes (``lerp``, ``slerp``, ``mean_latent``,
``arithmetic``) and functions that render them through a trained game's
generator (``render``, ``interpolation_rows``, ``class_sweep``). A game here
is any game with a generator ``nets["g"]`` taking (z, c=None), ``z_dim`` and
``noise(n, dim, generator=, latent=)`` (``games.gan.GAN``).

Spherical interpolation (Shoemake 1985; White 2016, "Sampling generative
networks") follows the great circle between z0 and z1:
slerp(t) = sin((1 - t) w) / sin(w) z0 + sin(t w) / sin(w) z1 with
cos w = <z0, z1> / (|z0| |z1|); for Gaussian latents it keeps the
intermediate codes at the norms the generator was trained on, where a linear
path passes through the low-norm middle.
"""

from __future__ import annotations

import torch

from ganforge.errors import ConfigError


def _ts(steps: int, like: torch.Tensor) -> torch.Tensor:
    if steps < 2:
        raise ConfigError(f"interpolation needs steps >= 2 (both end points), got {steps}")
    return torch.linspace(0.0, 1.0, steps, dtype=like.dtype, device=like.device)


def lerp(z0: torch.Tensor, z1: torch.Tensor, steps: int) -> torch.Tensor:
    """Linear path: (d,), (d,) -> (steps, d) with rows (1 - t) z0 + t z1, t = 0 .. 1."""
    t = _ts(steps, z0)[:, None]
    return (1 - t) * z0[None] + t * z1[None]


def slerp(z0: torch.Tensor, z1: torch.Tensor, steps: int, eps: float = 1e-6) -> torch.Tensor:
    """Spherical path: (d,), (d,) -> (steps, d); linear where z0 and z1 are (anti)parallel within ``eps``."""
    t = _ts(steps, z0)[:, None]
    cos = torch.dot(z0, z1) / (z0.norm() * z1.norm()).clamp_min(1e-12)
    omega = torch.arccos(cos.clamp(-1.0, 1.0))
    so = torch.sin(omega)
    if so.abs() < eps:
        return lerp(z0, z1, steps)
    return (torch.sin((1 - t) * omega) / so) * z0[None] + (torch.sin(t * omega) / so) * z1[None]


def interpolate(z0: torch.Tensor, z1: torch.Tensor, steps: int, spherical: bool = False) -> torch.Tensor:
    """``slerp`` when ``spherical`` else ``lerp``."""
    return slerp(z0, z1, steps) if spherical else lerp(z0, z1, steps)


def mean_latent(z: torch.Tensor, indices: list[int] | None = None) -> torch.Tensor:
    """Mean of the chosen rows of z (N, d) -> (d,): the latent of a visual concept (Radford et al. 2016, 6.3)."""
    if indices is not None:
        if not indices:
            raise ConfigError("latent arithmetic needs at least one sample index per term")
        bad = [i for i in indices if not -len(z) <= i < len(z)]
        if bad:
            raise ConfigError(f"sample index {bad[0]} is out of range: there are {len(z)} samples (0..{len(z) - 1})")
        z = z[list(indices)]
    return z.mean(dim=0)


def arithmetic(z: torch.Tensor, terms: list[tuple[int, list[int]]]) -> torch.Tensor:
    """sum_i sign_i * mean_latent(z, indices_i): e.g. [(+1, man_smiling), (-1, man), (+1, woman)] -> (d,)."""
    if not terms:
        raise ConfigError("latent arithmetic needs at least one term")
    out = torch.zeros_like(z[0])
    for sign, idx in terms:
        if sign not in (1, -1):
            raise ConfigError(f"a term's sign must be +1 or -1, got {sign}")
        out = out + sign * mean_latent(z, idx)
    return out


def parse_terms(expr: str) -> list[tuple[int, list[int]]]:
    """"3,7,9 - 1,4 + 12" -> [(1, [3, 7, 9]), (-1, [1, 4]), (1, [12])]: sample indices per term."""
    terms: list[tuple[int, list[int]]] = []
    sign, token = 1, ""
    for ch in expr + "+":
        if ch in "+-" and token.strip():
            try:
                terms.append((sign, [int(s) for s in token.replace(" ", "").split(",") if s]))
            except ValueError:
                raise ConfigError(f"cannot read latent arithmetic {expr!r}: terms are comma-separated sample "
                                  "indices joined by + and -, e.g. '3,7,9 - 1,4 + 12'") from None
            token = ""
            sign = 1 if ch == "+" else -1
        elif ch in "+-":
            sign = sign * (1 if ch == "+" else -1)
        else:
            token += ch
    if not terms:
        raise ConfigError(f"latent arithmetic {expr!r} names no samples; e.g. '3,7,9 - 1,4 + 12'")
    return terms


# ------------------------------------------------------------------ rendering through a game
def codes(game, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(z (n, z_dim), labels (n,) or None) drawn as ``game.sample(n, generator=seeded)`` draws them.

    For n <= the sampling batch (1024) ``render(game, *codes(game, n, s))`` equals
    ``game.sample(n, generator=torch.Generator().manual_seed(s))``, so sample indices
    seen on a grid name the same codes in latent arithmetic.
    """
    gen = torch.Generator().manual_seed(seed)
    c = game.labels(n, gen).cpu() if getattr(game, "conditional", False) else None
    z = game.noise(n, game.z_dim, generator=gen, latent=game.latent).cpu()
    return z, c


def sampling_generator(game) -> torch.nn.Module:
    """The generator exactly as ``game.sample`` uses it (eval mode, standing batch-norm statistics)."""
    if hasattr(game, "sampling_net"):
        labels = getattr(game, "labels", lambda m, gen: None)  # unconditional games (bigan, ssgan) have none
        return game.sampling_net("g", lambda m, gen: (game.noise(m, game.z_dim, generator=gen, latent=game.latent),
                                                      labels(m, gen)))
    return game.nets["g"].eval()


@torch.no_grad()
def render(game, z: torch.Tensor, c: torch.Tensor | None = None, batch_size: int = 256) -> torch.Tensor:
    """G(z, c) as ``game.sample`` computes it, on CPU: (N, z_dim) -> (N, C, H, W)."""
    g = sampling_generator(game)
    dev = game.device
    out = [g(z[i:i + batch_size].to(dev), None if c is None else c[i:i + batch_size].to(dev)).cpu()
           for i in range(0, len(z), batch_size)]
    return torch.cat(out)


def interpolation_rows(game, steps: int, rows: int = 8, seed: int = 0, spherical: bool = False) -> torch.Tensor:
    """``rows`` paths between pairs of seeded latents, ``steps`` images each: (rows * steps, C, H, W).

    A conditional model keeps each row's label (the first end point's) fixed, so that only z moves.
    """
    z, c = codes(game, 2 * rows, seed)
    path = torch.cat([interpolate(z[2 * r], z[2 * r + 1], steps, spherical) for r in range(rows)])
    cs = None if c is None else c[0::2].repeat_interleave(steps)
    return render(game, path, cs)


def class_sweep(game, per_class: int = 8, seed: int = 0) -> torch.Tensor:
    """One row per class, the same ``per_class`` latents in every row: (K * per_class, C, H, W).

    Along a column only the label changes, so a column shows one "style" across classes.
    """
    k = getattr(game.nets["g"], "n_classes", 0) if getattr(game, "conditional", False) else 0
    if k < 2:
        raise ConfigError("a class sweep needs a conditional model (game.conditional=true on labelled data)")
    z = codes(game, per_class, seed)[0].repeat(k, 1)
    c = torch.arange(k).repeat_interleave(per_class)
    return render(game, z, c)


def arithmetic_row(game, expr: str, n: int = 64, seed: int = 0) -> torch.Tensor:
    """Latent arithmetic over the ``n`` seeded samples (indices as on ``ganforge sample --grid``).

    Returns one image per term, G(mean latent of the term's samples), then
    G(sum of signed means). A conditional model renders every image with the
    first chosen sample's label.
    """
    z, c = codes(game, n, seed)
    terms = parse_terms(expr)
    means = [mean_latent(z, idx) for _, idx in terms]
    result = arithmetic(z, terms)
    cs = None if c is None else c[terms[0][1][0]].repeat(len(terms) + 1)
    return render(game, torch.stack([*means, result]), cs)


def figure_images(game, *, n: int = 64, seed: int = 0, interpolate_steps: int | None = None, spherical: bool = False,
                  sweep: bool = False, expr: str | None = None) -> tuple[torch.Tensor, int]:
    """The images of one ``ganforge sample --grid`` figure and its images per row.

    At most one mode: interpolation rows (``n`` rows clipped to 16), a class sweep, latent
    arithmetic, or (none) the first ``n`` seeded samples (``game.sample``'s, rejection sampling included
    where the game uses it; the latent figures render their codes without rejection).
    """
    modes = [m for m, on in (("--interpolate", interpolate_steps is not None), ("--class-sweep", sweep),
                             ("--arithmetic", expr is not None)) if on]
    if len(modes) > 1:
        raise ConfigError(f"choose one of --interpolate, --class-sweep, --arithmetic; got {' and '.join(modes)}")
    if spherical and interpolate_steps is None:
        raise ConfigError("--slerp changes --interpolate: add --interpolate STEPS")
    if not hasattr(game, "z_dim"):
        # translation games (cyclegan, stargan, pix2pix, srgan) map images to images: no latent to walk
        if modes:
            raise ConfigError(f"{modes[0]} walks a generator's latent space, and this run's game "
                              f"({type(game).__name__}) translates images instead: it has none. A plain --grid "
                              "shows its translations")
        x = game.sample(n, generator=torch.Generator().manual_seed(seed))
        return x.cpu(), 8
    if interpolate_steps is not None:
        return interpolation_rows(game, interpolate_steps, min(n, 16), seed, spherical), interpolate_steps
    if sweep:
        return class_sweep(game, 8, seed), 8
    if expr is not None:
        images = arithmetic_row(game, expr, n, seed)
        return images, len(images)
    if getattr(game, "drs", False):  # rejection sampling keeps some codes and drops others: show what it keeps
        return game.sample(n, generator=torch.Generator().manual_seed(seed)).cpu(), 8
    z, c = codes(game, n, seed)
    return render(game, z, c), 8


# ------------------------------------------------------------------ edit directions
def class_direction(z: torch.Tensor, labels: torch.Tensor, a: int, b: int) -> torch.Tensor:
    """mean z of class b minus mean z of class a: (N, d), (N,) -> (d,); moving along it turns a towards b."""
    za, zb = z[labels == a], z[labels == b]
    for k, zk in ((a, za), (b, zb)):
        if len(zk) == 0:
            raise ConfigError(f"no latent of class {k} among the {len(z)} labelled samples: a class direction "
                              "needs samples of both classes (draw more, or pick other classes)")
    return zb.mean(0) - za.mean(0)


def edit_path(z: torch.Tensor, d: torch.Tensor, ts: torch.Tensor) -> torch.Tensor:
    """z + t d for every row of z and every t: (N, dim), (dim,), (T,) -> (N * T, dim), row-major by image."""
    if d.shape != z.shape[1:]:
        raise ConfigError(f"the direction has shape {tuple(d.shape)} but latents have {z.shape[1]} dimensions")
    return (z[:, None, :] + ts[None, :, None] * d[None, None, :]).reshape(-1, z.shape[1])
