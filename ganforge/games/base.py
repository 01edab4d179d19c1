"""A game declares networks, optimizer groups and phases; the one trainer runs it.

A phase names the optimizer group it updates (and so the networks whose
parameters may move), the loss callable, and how many times it runs per
training step (k critic steps per generator step is ``repeat=k``). The
trainer does everything else: requires_grad toggling, zero_grad, backward,
clipping, step, logging. It never looks at a game's name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ganforge.data.base import Dataset
from ganforge.errors import ConfigError
from ganforge.nets import build_net

LossFn = Callable[[dict], "tuple[torch.Tensor, dict[str, float]]"]

LATENTS = ("normal", "uniform")


@dataclass
class Phase:
    """One update of one optimizer group.

    name: label used in logs ("d", "g").
    group: optimizer group (a key of ``Game.groups``); only its nets get gradients.
    loss: batch -> (scalar loss, {log name: float}).
    repeat: runs per training step (Goodfellow's k for the critic).
    needs_batch: draw a fresh real minibatch for each run.
    after_step: called after each optimizer step (e.g. WGAN weight clipping).
    """

    name: str
    group: str
    loss: LossFn
    repeat: int = 1
    needs_batch: bool = True
    after_step: Callable[[], None] | None = None


class Game(nn.Module):
    """Base class. A subclass sets ``roles`` and ``groups``, implements ``build`` and ``phases``.

    roles: {role: one-line description} of the networks the game needs.
    groups: {optimizer group: roles it updates}.
    ema_roles: roles that get an exponential moving average when train.ema is set.
    """

    roles: dict[str, str] = {}
    groups: dict[str, tuple[str, ...]] = {}
    ema_roles: tuple[str, ...] = ()

    def __init__(self) -> None:
        super().__init__()
        self.nets = nn.ModuleDict()
        self.data: Dataset | None = None
        self.objective = None
        self.penalties: list = []

    # -- set-up -------------------------------------------------------------------------
    @classmethod
    def default_nets(cls) -> dict[str, dict]:
        """Net config per role when the user gives none (the config layer fills these in)."""
        return {role: {"name": "mlp"} for role in cls.roles}

    def build(self, data: Dataset, nets: dict[str, dict], objective, penalties: list) -> None:
        """Create ``self.nets`` for ``data``; ``nets`` maps role -> {name, **params}."""
        raise NotImplementedError

    def phases(self, *, d_steps: int = 1) -> list[Phase]:
        raise NotImplementedError

    def _net(self, role: str, spec: dict, *, in_shape, out_shape, n_classes: int = 0) -> nn.Module:
        spec = dict(spec)
        name = spec.pop("name")
        try:
            return build_net(name, in_shape=in_shape, out_shape=out_shape, n_classes=n_classes, **spec)
        except ConfigError as e:
            raise ConfigError(f"nets.{role}: {e}") from None

    # -- sampling -----------------------------------------------------------------------
    def noise(self, n: int, dim: int, *, generator: torch.Generator | None = None,
              latent: str = "normal") -> torch.Tensor:
        """Latent codes on the game's device. With ``generator`` (CPU), the global RNG is untouched."""
        dev = self.device
        if latent == "normal":
            z = torch.randn(n, dim, generator=generator, device="cpu" if generator is not None else dev)
        else:
            z = torch.rand(n, dim, generator=generator, device="cpu" if generator is not None else dev) * 2 - 1
        return z.to(dev)

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None, c: torch.Tensor | None = None,
               batch_size: int = 1024) -> torch.Tensor:
        """n samples from the model (eval mode), on CPU."""
        raise NotImplementedError

    def sampling_net(self, role: str, make_input: Callable[[int, torch.Generator], tuple], *,
                     batches: int = 16, batch_size: int = 256) -> nn.Module:
        """The net ``role`` ready for sampling: eval mode, batch-norm statistics recomputed for its weights.

        A generator with batch norm trains on batch statistics, but its running
        averages lag behind weights that keep moving, so eval-mode samples drift
        off the data. Like BigGAN's "standing statistics", this averages the
        statistics over ``batches`` fresh batches of the current weights, on a
        copy (the training state, and so exact resume, is untouched), with its
        own fixed-seed generator (the global RNG is untouched).
        ``make_input(n, generator)`` returns the net's positional inputs.
        """
        import copy

        net = copy.deepcopy(self.nets[role])
        if not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules()):
            return net.eval()
        for m in net.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.reset_running_stats()
                m.momentum = None  # cumulative average
        net.train()
        gen = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for _ in range(batches):
                net(*make_input(batch_size, gen))
        return net.eval()

    def eval_reference(self) -> Dataset:
        """The dataset whose distribution ``sample`` should match (metrics compare against it)."""
        return self.data

    @property
    def device(self) -> torch.device:
        for p in self.parameters():
            return p.device
        return torch.device("cpu")

    # -- helpers for subclasses ---------------------------------------------------------
    @torch.no_grad()
    def _batched(self, role: str, *inputs: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """nets[role](*inputs) in eval mode, in batches along dim 0, on CPU; the net's mode is restored."""
        net = self.nets[role]
        was = net.training
        net.eval()
        try:
            return torch.cat([net(*(t[i:i + batch_size].to(self.device) for t in inputs)).cpu()
                              for i in range(0, len(inputs[0]), batch_size)])
        finally:
            net.train(was)

    @torch.no_grad()
    def _sample_from_noise(self, n: int, *, generator: torch.Generator | None = None,
                           batch_size: int = 1024) -> torch.Tensor:
        """n samples of an unconditional G(z) (noise drawn per batch), on CPU, through ``sampling_net``'s copy of G
        (eval mode, batch-norm statistics recomputed for the current weights; the training G is untouched).

        Needs ``self.z_dim`` and ``self.latent``.
        """
        g = self.sampling_net("g", lambda m, gen: (self.noise(m, self.z_dim, generator=gen, latent=self.latent),))
        return torch.cat([g(self.noise(min(batch_size, n - i), self.z_dim, generator=generator,
                                       latent=self.latent)).cpu() for i in range(0, n, batch_size)])

    def _penalties(self, phase: str, critic: nn.Module, *, real, fake, c=None) -> tuple[torch.Tensor, dict]:
        total = torch.zeros((), device=fake.device)
        logs = {}
        context = {"generator": self.nets["g"] if "g" in self.nets else None, "step": getattr(self, "step", 0),
                   "game": self}
        for name, weight, pen in self.penalties:
            if pen.phase == phase:
                extra = {k: context[k] for k in getattr(pen, "wants", ())}
                v = pen(critic, real=real, fake=fake, c=c, **extra)
                total = total + weight * v
                logs[name] = float(v.detach())
        return total, logs


def check_latent(latent: str) -> None:
    if latent not in LATENTS:
        raise ConfigError(f"latent must be one of {', '.join(LATENTS)}, got {latent!r}")


class WarmStart:
    """A pull towards doing nothing for a translation game's first steps (CycleGAN, StarGAN; not in their papers):
    its generators also pay w(step) * |G(x) - x|_1, w = ``warm_start_weight`` at step 0, linearly down to 0 at
    step ``warm_start`` and after, so training starts from the identity map instead of a random one."""

    step: int

    def set_warm_start(self, steps: int, weight: float) -> None:
        if steps < 0 or weight < 0:
            raise ConfigError(f"warm_start (steps) and warm_start_weight must be >= 0, got {steps}, {weight}")
        self.warm_start, self.warm_start_w = steps, weight
        self.step = 0  # set by the trainer before every training step

    def warm_start_weight(self) -> float:
        """w at this step (see the class)."""
        if self.step >= self.warm_start:
            return 0.0
        return self.warm_start_w * (1 - self.step / self.warm_start)
