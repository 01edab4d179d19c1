"""CycleGAN (Zhu et al. 2017): two generators, two critics, cycle-consistency and identity losses, image pools.

Data: an unpaired set with parts "a" and "b" (``fmnist-unpaired``, ``unpaired-folders``,
or ``unpaired`` over any two datasets). G_ab maps A -> B and is judged by D_b;
G_ba maps B -> A and is judged by D_a. The generators pay (paper eq. 1-3)

    L_adv(G_ab, D_b) + L_adv(G_ba, D_a)
    + cycle * (|G_ba(G_ab(a)) - a|_1 + |G_ab(G_ba(b)) - b|_1)
    + identity * (|G_ab(b) - b|_1 + |G_ba(a) - a|_1)   (only when A and B have the same shape)

with the paper's weights cycle = 10 and identity = 0.5 * 10 = 5 (the defaults). The identity
term asks G_ab to leave images of B alone, right for photo <-> painting (colours should stay)
and wrong for a translation that moves every image of B (inversion, fading): the Fashion-MNIST
recipes set it to 0 (benchmarks/results/cyclegan.md). With the ``lsgan``
objective, L_adv = 1/2 E[(D(G(x)) - 1)^2] (ganforge's least squares carries the 1/2
on both players; the reference code's generator term has none).

Warm start (not in the paper; off by default): for the first ``warm_start`` steps the generators also pay

    w(step) * (|G_ab(a) - a|_1 + |G_ba(b) - b|_1),   w = warm_start_weight * (1 - step / warm_start)

(a grey image repeated over the colour channels, or a colour image averaged to grey, where A and B
differ so), so training starts from doing nothing instead of a random map, and the loss is the paper's
once w reaches 0. Without it a random initial G_ab that is anti-correlated with its input can lock the
pair into a sign-flipped solution that cycles perfectly (G_ab inverts and translates, G_ba undoes it)
and that the critics reject but the generators do not leave (configs/cyclegan/fmnist-tint.yaml).

The critics see generated images through a history pool of ``pool_size`` (50)
images per domain (Shrivastava et al. 2017; CycleGAN Sec. 4): once full, each
new fake replaces a random stored one with probability 1/2 and the stored one is
shown instead. The pools are buffers of the game, so they go into checkpoints
and a resumed run draws the same images. Images: nets ``resnet-gen`` and
``patchgan``; toy vectors: ``mlp`` (the pool works on any shape). The linearly
decaying learning rate is the trainer's ``train.lr_decay_start`` / ``lr_decay_steps``.
"""

from __future__ import annotations

import torch
from torch import nn

from ganforge.errors import ConfigError
from ganforge.games.base import Game, Phase, WarmStart
from ganforge.registry import GAMES


class ImagePool(nn.Module):
    """A history of generated samples (Shrivastava et al. 2017) whose whole state is two buffers.

    ``images`` (size, *shape) and ``count`` (how many slots are filled) live in the
    module's state_dict. Random choices use the global torch RNG, which checkpoints save.
    """

    def __init__(self, size: int, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.size = size
        self.register_buffer("images", torch.zeros(size, *shape))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def query(self, x: torch.Tensor) -> torch.Tensor:
        """Fakes x (N, *shape) -> what the critic sees: x itself until the pool is full, then a 50/50 mix."""
        if self.size == 0:
            return x
        out = x.detach().clone()
        for i in range(x.shape[0]):
            n = int(self.count)
            if n < self.size:
                self.images[n] = x[i]
                self.count += 1
            elif float(torch.rand(())) > 0.5:
                j = int(torch.randint(self.size, ()))
                out[i] = self.images[j]
                self.images[j] = x[i]
        return out


def as_shape(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``x`` as the "do nothing" image of ``like``'s shape: itself, a grey image repeated over ``like``'s
    channels, or the mean of its channels when ``like`` is grey."""
    if x.shape == like.shape:
        return x
    c, k = x.shape[1], like.shape[1]
    if x.dim() == 4 and x.shape[2:] == like.shape[2:] and (c == 1 or k == 1):
        return x.expand(-1, k, -1, -1) if c == 1 else x.mean(1, keepdim=True)
    raise ConfigError(f"warm_start needs A and B of one shape or images that differ only in grey <-> colour; "
                      f"got {tuple(x.shape[1:])} and {tuple(like.shape[1:])}")


@GAMES.register("cyclegan")
class CycleGAN(WarmStart, Game):
    """CycleGAN: unpaired translation A <-> B with cycle and identity losses and image pools."""

    roles = {"g_ab": "generator A -> B", "g_ba": "generator B -> A", "d_a": "critic on A", "d_b": "critic on B"}
    groups = {"g": ("g_ab", "g_ba"), "d": ("d_a", "d_b")}
    ema_roles = ("g_ab", "g_ba")

    def __init__(self, *, cycle: float = 10.0, identity: float = 5.0, pool_size: int = 50,
                 warm_start: int = 0, warm_start_weight: float = 10.0) -> None:
        super().__init__()
        if cycle < 0 or identity < 0:
            raise ConfigError(f"cycle and identity weights must be >= 0, got {cycle}, {identity}")
        if pool_size < 0:
            raise ConfigError(f"pool_size must be >= 0 (0: no pool), got {pool_size}")
        self.cycle_w, self.identity_w, self.pool_size = cycle, identity, pool_size
        self.set_warm_start(warm_start, warm_start_weight)

    def build(self, data, nets, objective, penalties) -> None:
        parts = data.info.get("parts")
        if not parts or set(parts) != {"a", "b"}:
            raise ConfigError(f"game cyclegan needs unpaired data with parts a and b (datasets fmnist-unpaired, "
                              f"unpaired-folders, unpaired), got {data.name!r}")
        self.data, self.objective, self.penalties = data, objective, penalties
        a, b = parts["a"], parts["b"]
        k = objective.critic_outputs
        self.nets["g_ab"] = self._net("g_ab", nets["g_ab"], in_shape=a.shape, out_shape=b.shape)
        self.nets["g_ba"] = self._net("g_ba", nets["g_ba"], in_shape=b.shape, out_shape=a.shape)
        self.nets["d_a"] = self._net("d_a", nets["d_a"], in_shape=a.shape, out_shape=(k,))
        self.nets["d_b"] = self._net("d_b", nets["d_b"], in_shape=b.shape, out_shape=(k,))
        self.same_shape = a.shape == b.shape
        if self.warm_start:  # refuse domains with no "do nothing" map now, not at the first step
            as_shape(torch.zeros(1, *a.shape), torch.zeros(1, *b.shape))
        self.pool_a = ImagePool(self.pool_size, a.shape)  # fakes of A (from G_ba), shown to D_a
        self.pool_b = ImagePool(self.pool_size, b.shape)

    def phases(self, *, d_steps: int = 1) -> list[Phase]:
        def clip():
            self.objective.constrain(self.nets["d_a"])
            self.objective.constrain(self.nets["d_b"])

        # The reference code's order: generators first, then the critics on pooled fakes.
        return [Phase("g", "g", self.g_loss), Phase("d", "d", self.d_loss, repeat=d_steps, after_step=clip)]

    def d_loss(self, batch):
        n = self.nets
        a, b = batch["a"]["x"], batch["b"]["x"]
        with torch.no_grad():
            fake_b, fake_a = self.pool_b.query(n["g_ab"](a)), self.pool_a.query(n["g_ba"](b))
        loss_b = self.objective.d_loss(real=n["d_b"](b), fake=n["d_b"](fake_b))
        loss_a = self.objective.d_loss(real=n["d_a"](a), fake=n["d_a"](fake_a))
        pen_b, logs = self._penalties("d", n["d_b"], real=b, fake=fake_b)
        pen_a, _ = self._penalties("d", n["d_a"], real=a, fake=fake_a)
        logs.update(d_a=float(loss_a.detach()), d_b=float(loss_b.detach()))
        return loss_a + loss_b + pen_a + pen_b, logs

    def g_loss(self, batch):
        n = self.nets
        a, b = batch["a"]["x"], batch["b"]["x"]
        fake_b, fake_a = n["g_ab"](a), n["g_ba"](b)
        adv = self.objective.g_loss(fake=n["d_b"](fake_b)) + self.objective.g_loss(fake=n["d_a"](fake_a))
        cyc = (n["g_ba"](fake_b) - a).abs().mean() + (n["g_ab"](fake_a) - b).abs().mean()
        loss = adv + self.cycle_w * cyc
        logs = {"g_adv": float(adv.detach()), "cycle": float(cyc.detach())}
        w = self.warm_start_weight()
        if w > 0:
            still = (fake_b - as_shape(a, fake_b)).abs().mean() + (fake_a - as_shape(b, fake_a)).abs().mean()
            loss = loss + w * still
            logs["warm_start"] = float(still.detach())
        if self.identity_w > 0 and self.same_shape:
            idt = (n["g_ab"](b) - b).abs().mean() + (n["g_ba"](a) - a).abs().mean()
            loss = loss + self.identity_w * idt
            logs["identity"] = float(idt.detach())
        return loss, logs

    @torch.no_grad()
    def translate(self, x: torch.Tensor, direction: str = "ab", batch_size: int = 256) -> torch.Tensor:
        """x (N, *shape) in network units -> G_ab(x) ("ab") or G_ba(x) ("ba"), eval mode, on CPU."""
        if direction not in ("ab", "ba"):
            raise ConfigError(f"direction must be 'ab' or 'ba', got {direction!r}")
        return self._batched("g_" + direction, x, batch_size=batch_size)

    @torch.no_grad()
    def sample(self, n, *, generator=None, c=None, batch_size=1024):
        """G_ab applied to n points of A (drawn with ``generator``): should look like B."""
        a = self.data.info["parts"]["a"]
        idx = torch.randint(len(a), (n,), generator=generator)
        return self.translate(a.to_model(a.x[idx]), "ab", batch_size)

    def eval_reference(self):
        return self.data.info["parts"]["b"]
