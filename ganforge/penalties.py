"""Regularisers as weighted terms that a config lists: ``penalties: {gp: 10, r1: {weight: 1}}``.

Each penalty is a pure function of (critic, real, fake[, c]) returning a scalar,
plus the phase it joins ("d" for the critic's loss, "g" for the generator's).
The configured weight multiplies the returned value; each docstring says the
convention so that weights match the papers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.errors import ConfigError
from ganforge.registry import PENALTIES
from ganforge.stabilisers.augment import diff_augment, parse_policy


def _grad_norm(critic: nn.Module, x: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
    """Per-sample ||d critic(x) / dx||_2, with a graph for double backprop. Shape (N,)."""
    x = x.detach().requires_grad_(True)
    out = critic(x, c) if c is not None else critic(x)
    (g,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    return g.reshape(g.shape[0], -1).norm(2, dim=1)


def _check_every(name: str, every) -> int:
    """The interval k of a lazy penalty (evaluated on every k-th step, times k): an int >= 1."""
    if not isinstance(every, int) or isinstance(every, bool) or every < 1:
        raise ConfigError(f"{name} every must be an int >= 1 (steps between evaluations), got {every!r}")
    return every


class Penalty:
    """phase: "d" (joins the critic's loss) or "g". wants: extra keywords the game passes to __call__,
    any of "generator" (the game's nets["g"]), "step" (the training step) and "game"."""

    phase = "d"
    wants: tuple[str, ...] = ()

    def __call__(self, critic: nn.Module, *, real: torch.Tensor, fake: torch.Tensor,
                 c: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError


@PENALTIES.register("gp")
class GradientPenalty(Penalty):
    """WGAN-GP (Gulrajani et al. 2017, eq. 3): E[(||grad D(x_hat)|| - 1)^2] at random interpolates.

    x_hat = e x_real + (1 - e) x_fake, e ~ U[0, 1] per sample. ``one_sided`` penalises
    only norms above 1: E[relu(||grad|| - 1)^2]. Weight = lambda (10 in the paper).
    """

    def __init__(self, *, one_sided: bool = False, target: float = 1.0) -> None:
        if target <= 0:
            raise ConfigError(f"gp target norm must be > 0, got {target}")
        self.one_sided = one_sided
        self.target = target

    def __call__(self, critic, *, real, fake, c=None):
        e = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device, dtype=real.dtype)
        x_hat = e * real.detach() + (1 - e) * fake.detach()
        gap = _grad_norm(critic, x_hat, c) - self.target
        if self.one_sided:
            gap = F.relu(gap)
        return gap.pow(2).mean()


@PENALTIES.register("r1")
class R1(Penalty):
    """R1 (Mescheder et al. 2018, eq. 9): 1/2 E_real[||grad D(x)||^2]. Weight = gamma."""

    def __call__(self, critic, *, real, fake, c=None):
        return 0.5 * _grad_norm(critic, real, c).pow(2).mean()


@PENALTIES.register("r2")
class R2(Penalty):
    """R2 (Mescheder et al. 2018, eq. 10): 1/2 E_fake[||grad D(x)||^2]. Weight = gamma."""

    def __call__(self, critic, *, real, fake, c=None):
        return 0.5 * _grad_norm(critic, fake, c).pow(2).mean()


@PENALTIES.register("drift")
class Drift(Penalty):
    """Drift (Karras et al. 2018, Appendix A.1): E_real[D(x)^2]. Weight = epsilon_drift (0.001 in the paper).

    Keeps a Wasserstein critic's scores from drifting far from 0 (the loss only sees their differences).
    """

    def __call__(self, critic, *, real, fake, c=None):
        out = critic(real, c) if c is not None else critic(real)
        return out.pow(2).mean()


@PENALTIES.register("pull-away")
class PullAway(Penalty):
    """EBGAN's pull-away term (Zhao et al. 2017, eq. 4), a generator penalty.

    PT = 1/(N(N-1)) sum_{i != j} cos^2(s_i, s_j) over the critic's embeddings
    s = critic.embed(G(z)) of a fake batch; the critic must have ``embed``.
    """

    phase = "g"

    def __call__(self, critic, *, real, fake, c=None):
        if not hasattr(critic, "embed"):
            raise ConfigError("penalty 'pull-away' needs a critic with an embedding (net 'ae')")
        s = critic.embed(fake, c) if c is not None else critic.embed(fake)
        s = F.normalize(s.reshape(s.shape[0], -1), dim=1)
        n = s.shape[0]
        cos2 = (s @ s.t()).pow(2)
        return (cos2.sum() - cos2.diagonal().sum()) / (n * (n - 1))


def build_penalties(spec: dict, objective=None) -> list[tuple[str, float, Penalty]]:
    """``{name: weight}`` or ``{name: {weight: w, **params}}`` -> [(name, weight, penalty)].

    The objective's ``default_penalties`` (WGAN-GP's gp: 10) come first; the
    config can override their weight or set it to 0 to switch one off.
    """
    merged: dict[str, dict] = {}
    for name, w in (getattr(objective, "default_penalties", {}) or {}).items():
        merged[name] = {"weight": w}
    for name, val in (spec or {}).items():
        entry = dict(val) if isinstance(val, dict) else {"weight": val}
        merged[name] = {**merged.get(name, {}), **entry}
    out = []
    for name, entry in merged.items():
        entry = dict(entry)
        weight = entry.pop("weight", None)
        if weight is None:
            raise ConfigError(f"penalty {name!r} needs a weight, e.g. penalties: {{{name}: 10}}")
        try:
            weight = float(weight)
        except (TypeError, ValueError):
            raise ConfigError(f"penalty {name!r} weight must be a number, got {weight!r}") from None
        if weight < 0:
            raise ConfigError(f"penalty {name!r} weight must be >= 0, got {weight}")
        if weight > 0:
            out.append((name, weight, PENALTIES.build(name, **entry)))
    return out


@PENALTIES.register("r1-lazy")
class LazyR1(R1):
    """Lazy R1 (Karras et al. 2020, StyleGAN2, Sec. 3.1): R1 times k on every k-th step, else 0.

    k = ``every``; the factor keeps R1's average weight per step unchanged. Weight = gamma, as for ``r1``.

    On the other steps it returns a zero tensor and computes no gradient (the saving is the point).
    Steps are the trainer's (0, k, 2k, ... are evaluated); every critic update of such a step gets it.
    """

    wants = ("step",)

    def __init__(self, *, every: int = 16) -> None:
        self.every = _check_every("r1-lazy", every)

    def __call__(self, critic, *, real, fake, c=None, step: int = 0):
        if step % self.every:
            return torch.zeros((), device=real.device, dtype=real.dtype)
        return self.every * super().__call__(critic, real=real, fake=fake, c=c)


@PENALTIES.register("cr")
class ConsistencyRegularisation(Penalty):
    """Consistency regularisation (Zhang et al. 2020, CR-GAN, eq. 1): E_real ||D(x) - D(T(x))||^2 over the
    critic's outputs, T a random augmentation (``policy``, DiffAugment's transforms; "translation" by default).

    ``fakes``: the same on the generated batch too (balanced CR, Zhao et al. 2021). ``every`` k > 1: lazy, as
    ``r1-lazy``: k times the term on every k-th step, 0 (nothing computed) on the others. Weight = lambda
    (10 in the paper). Images only (N, C, H, W).
    """

    wants = ("step",)

    def __init__(self, *, policy: str = "translation", fakes: bool = False, every: int = 1) -> None:
        self.policy = parse_policy(policy)
        if not self.policy:
            raise ConfigError("cr needs an augmentation policy, e.g. policy: translation (valid transforms: "
                              "translation, cutout, color)")
        self.fakes, self.every = bool(fakes), _check_every("cr", every)

    def _gap(self, critic: nn.Module, x: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        x = x.detach()
        if x.dim() != 4:
            raise ConfigError(f"penalty 'cr' augments images (N, C, H, W); got samples of shape {tuple(x.shape[1:])}")
        both = torch.cat([x, diff_augment(x, self.policy)])
        out = critic(both, torch.cat([c, c])) if c is not None else critic(both)
        out = out.reshape(2, len(x), -1)
        return (out[0] - out[1]).pow(2).sum(1).mean()

    def __call__(self, critic, *, real, fake, c=None, step: int = 0):
        if step % self.every:
            return torch.zeros((), device=real.device, dtype=real.dtype)
        total = self._gap(critic, real, c)
        if self.fakes:
            total = total + self._gap(critic, fake, c)
        return self.every * total


def _weights(net: nn.Module) -> list[torch.Tensor]:
    """Weights of a net's Linear and conv layers (the raw parameter under spectral norm)."""
    out = []
    for m in net.modules():
        if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d)):
            p = m.parametrizations.weight.original if hasattr(m, "parametrizations") else m.weight
            out.append(p)
    return out


@PENALTIES.register("orthogonal")
class Orthogonal(Penalty):
    """BigGAN's orthogonal regularisation (Brock et al. 2019, eq. 3), a generator penalty.

    sum over G's Linear/conv weights W, as (out, -1) matrices, of ||W W^T ⊙ (1 - I)||_F^2: the
    filters are pushed towards mutual orthogonality, their norms are left free (the filters are W's
    rows, as in the authors' code). Weight = beta (1e-4 in the paper). Embeddings and normalisation
    gains are not Linear/conv layers and are left out, as in BigGAN.
    """

    phase = "g"
    wants = ("generator",)

    def __call__(self, critic, *, real, fake, c=None, generator: nn.Module | None = None):
        if generator is None:
            raise ConfigError("penalty 'orthogonal' regularises the generator; this game has none (nets.g)")
        total = torch.zeros((), device=fake.device)
        for w in _weights(generator):
            w = w.reshape(w.shape[0], -1)
            gram = w @ w.t()
            total = total + (gram - torch.diag(gram.diagonal())).pow(2).sum()
        return total


@PENALTIES.register("path-length")
class PathLength(Penalty):
    """StyleGAN2 path-length regularisation (Karras et al. 2020, Sec. 3.2, eq. 4), a generator penalty.

    E_{w,y}[(||J_w^T y||_2 - a)^2] at w = f(z) for ``len(fake) // batch_shrink`` fresh z ~ N(0, I), with
    y ~ N(0, I) / sqrt(H W) image-shaped and J_w^T y from one backward pass of <G(w), y>; every layer of
    the synthesis network takes that w (the official code takes the gradient per layer, mixing included,
    and an RMS over layers: with no mixing the two agree up to that RMS). a is an EMA of the mean length,
    a <- a + decay (mean ||J_w^T y|| - a), updated before the penalty is taken (as in the official code).
    Lazy (Sec. 3.1): evaluated on every ``every``-th step (0, k, 2k, ...) and multiplied by k there, 0
    (and no gradient) on the others. Weight = w_pl (2 in the paper's configs).

    a lives in the generator, as its buffer ``pl_mean`` (net ``stylegan``): a penalty is not a module, so
    state kept here would miss checkpoints and resume would restart a from 0; on the generator it goes
    into every checkpoint with the weights. The generator must expose ``images_and_w(z, c)``.
    """

    phase = "g"
    wants = ("generator", "step")

    def __init__(self, *, every: int = 4, decay: float = 0.01, batch_shrink: int = 2) -> None:
        checks = [
            (isinstance(every, int) and every >= 1, f"path-length every must be an int >= 1, got {every!r}"),
            (0 < decay <= 1, f"path-length decay (of the running mean length) must be in (0, 1], got {decay}"),
            (isinstance(batch_shrink, int) and batch_shrink >= 1,
             f"path-length batch_shrink must be an int >= 1, got {batch_shrink!r}"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ConfigError(msg)
        self.every, self.decay, self.batch_shrink = every, decay, batch_shrink

    def __call__(self, critic, *, real, fake, c=None, generator: nn.Module | None = None, step: int = 0):
        g = getattr(generator, "module", generator)  # a DistributedDataParallel wrapper
        if not callable(getattr(g, "images_and_w", None)) or not isinstance(getattr(g, "pl_mean", None),
                                                                               torch.Tensor):
            name = "none" if g is None else type(g).__name__
            raise ConfigError(f"penalty 'path-length' needs a generator with a mapping network (net 'stylegan'); "
                              f"this game's generator is {name}")
        if step % self.every:
            return torch.zeros((), device=fake.device, dtype=fake.dtype)
        n = max(1, fake.shape[0] // self.batch_shrink)
        z = torch.randn(n, g.z_dim, device=fake.device)
        images, w = g.images_and_w(z, None if c is None else c[:n])
        y = torch.randn_like(images) * (images.shape[2] * images.shape[3]) ** -0.5
        (grad,) = torch.autograd.grad((images * y).sum(), w, create_graph=True)
        lengths = grad.float().square().sum(1).sqrt()
        with torch.no_grad():
            g.pl_mean.copy_(g.pl_mean.lerp(lengths.mean(), self.decay))
        return self.every * (lengths - g.pl_mean).square().mean()
