"""The core game (Goodfellow et al. 2014, Algorithm 1), conditional when asked.

k critic steps, each on a fresh real minibatch and fresh noise, then one
generator step on fresh noise. With ``conditional=True`` both networks take
the label c (Mirza & Osindero 2014): real pairs (x, y) from the data, fake
pairs (G(z, c), c) with c drawn from the data's label frequencies.
"""

from __future__ import annotations

import torch

from ganforge.errors import ConfigError
from ganforge.games.base import Game, Phase, check_latent
from ganforge.registry import GAMES


@GAMES.register("gan")
class GAN(Game):
    """G vs D: k critic steps per generator step; any objective, any penalties; optional labels."""

    roles = {"g": "generator z (, c) -> x", "d": "critic x (, c) -> score"}
    groups = {"d": ("d",), "g": ("g",)}
    ema_roles = ("g",)

    def __init__(self, *, z_dim: int = 64, latent: str = "normal", conditional: bool = False) -> None:
        super().__init__()
        if z_dim < 1:
            raise ConfigError(f"z_dim must be >= 1, got {z_dim}")
        check_latent(latent)
        self.z_dim, self.latent, self.conditional = z_dim, latent, conditional
        self.register_buffer("class_freq", torch.ones(1))

    def build(self, data, nets, objective, penalties) -> None:
        self.data, self.objective, self.penalties = data, objective, penalties
        k = 0
        if self.conditional:
            if data.y is None or data.n_classes < 2:
                raise ConfigError(f"game gan with conditional=true needs labelled data; {data.name!r} has no labels")
            k = data.n_classes
            self.class_freq = torch.bincount(data.y, minlength=k).float() / len(data.y)
        self.nets["g"] = self._net("g", nets["g"], in_shape=(self.z_dim,), out_shape=data.shape, n_classes=k)
        self.nets["d"] = self._net("d", nets["d"], in_shape=data.shape, out_shape=(objective.critic_outputs,),
                                   n_classes=k)

    def labels(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor | None:
        if not self.conditional:
            return None
        freq = self.class_freq.cpu()
        return torch.multinomial(freq, n, replacement=True, generator=generator).to(self.device)

    def phases(self, *, d_steps: int = 1) -> list[Phase]:
        d = self.nets["d"]
        return [
            Phase("d", "d", self.d_loss, repeat=d_steps, after_step=lambda: self.objective.constrain(d)),
            Phase("g", "g", self.g_loss, needs_batch=self.objective.g_needs_real),
        ]

    def d_loss(self, batch: dict) -> tuple[torch.Tensor, dict]:
        g, d = self.nets["g"], self.nets["d"]
        x = batch["x"]
        c = batch.get("y") if self.conditional else None
        with torch.no_grad():
            fake = g(self.noise(x.shape[0], self.z_dim, latent=self.latent), c)
        real_out, fake_out = d(x, c), d(fake, c)
        loss = self.objective.d_loss(real=real_out, fake=fake_out)
        pen, logs = self._penalties("d", d, real=x, fake=fake, c=c)
        logs["d_loss"] = float(loss.detach())
        return loss + pen, logs

    def g_loss(self, batch: dict) -> tuple[torch.Tensor, dict]:
        g, d = self.nets["g"], self.nets["d"]
        n = batch["x"].shape[0] if "x" in batch else batch["n"]
        c = self.labels(n)
        fake = g(self.noise(n, self.z_dim, latent=self.latent), c)
        fake_out = d(fake, c)
        real_out = None
        if self.objective.g_needs_real:
            real_out = d(batch["x"], batch.get("y") if self.conditional else None)
        loss = self.objective.g_loss(fake=fake_out, real=real_out)
        pen, logs = self._penalties("g", d, real=batch.get("x", fake), fake=fake, c=c)
        logs["g_loss"] = float(loss.detach())
        return loss + pen, logs

    @torch.no_grad()
    def sample(self, n, *, generator=None, c=None, batch_size=1024):
        g = self.nets["g"]
        was = g.training
        g.eval()
        out = []
        for i in range(0, n, batch_size):
            m = min(batch_size, n - i)
            ci = c[i:i + m].to(self.device) if c is not None else self.labels(m, generator)
            out.append(g(self.noise(m, self.z_dim, generator=generator, latent=self.latent), ci).cpu())
        g.train(was)
        return torch.cat(out)
