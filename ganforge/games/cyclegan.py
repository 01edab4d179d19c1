"""CycleGAN (Zhu et al. 2017): two generators, two critics, cycle-consistency and identity losses.

Data: an unpaired set with parts "a" and "b" (dataset ``unpaired``). G_ab maps
A -> B and is judged by D_b; G_ba maps B -> A and is judged by D_a. The
generators also pay lambda_cyc * (|G_ba(G_ab(a)) - a|_1 + |G_ab(G_ba(b)) - b|_1)
and, when A and B have the same shape, lambda_id * (|G_ab(b) - b|_1 + |G_ba(a) - a|_1)
(the paper's weights: cycle 10, identity 0.5 * 10).
"""

from __future__ import annotations

import torch

from ganforge.errors import ConfigError
from ganforge.games.base import Game, Phase
from ganforge.registry import GAMES


@GAMES.register("cyclegan")
class CycleGAN(Game):
    """CycleGAN: unpaired translation A <-> B with cycle and identity losses."""

    roles = {"g_ab": "generator A -> B", "g_ba": "generator B -> A", "d_a": "critic on A", "d_b": "critic on B"}
    groups = {"d": ("d_a", "d_b"), "g": ("g_ab", "g_ba")}
    ema_roles = ("g_ab", "g_ba")

    def __init__(self, *, cycle: float = 10.0, identity: float = 5.0) -> None:
        super().__init__()
        if cycle < 0 or identity < 0:
            raise ConfigError(f"cycle and identity weights must be >= 0, got {cycle}, {identity}")
        self.cycle_w, self.identity_w = cycle, identity

    def build(self, data, nets, objective, penalties) -> None:
        parts = data.info.get("parts")
        if not parts or set(parts) != {"a", "b"}:
            raise ConfigError(f"game cyclegan needs unpaired data with parts a and b (dataset 'unpaired'), "
                              f"got {data.name!r}")
        self.data, self.objective, self.penalties = data, objective, penalties
        a, b = parts["a"], parts["b"]
        k = objective.critic_outputs
        self.nets["g_ab"] = self._net("g_ab", nets["g_ab"], in_shape=a.shape, out_shape=b.shape)
        self.nets["g_ba"] = self._net("g_ba", nets["g_ba"], in_shape=b.shape, out_shape=a.shape)
        self.nets["d_a"] = self._net("d_a", nets["d_a"], in_shape=a.shape, out_shape=(k,))
        self.nets["d_b"] = self._net("d_b", nets["d_b"], in_shape=b.shape, out_shape=(k,))
        self.same_shape = a.shape == b.shape

    def phases(self, *, d_steps: int = 1) -> list[Phase]:
        def clip():
            self.objective.constrain(self.nets["d_a"])
            self.objective.constrain(self.nets["d_b"])

        return [Phase("d", "d", self.d_loss, repeat=d_steps, after_step=clip), Phase("g", "g", self.g_loss)]

    def d_loss(self, batch):
        n = self.nets
        a, b = batch["a"]["x"], batch["b"]["x"]
        with torch.no_grad():
            fake_b, fake_a = n["g_ab"](a), n["g_ba"](b)
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
        if self.identity_w > 0 and self.same_shape:
            idt = (n["g_ab"](b) - b).abs().mean() + (n["g_ba"](a) - a).abs().mean()
            loss = loss + self.identity_w * idt
            logs["identity"] = float(idt.detach())
        return loss, logs

    @torch.no_grad()
    def translate(self, x: torch.Tensor, direction: str = "ab") -> torch.Tensor:
        g = self.nets["g_" + direction]
        was = g.training
        g.eval()
        y = g(x.to(self.device)).cpu()
        g.train(was)
        return y

    @torch.no_grad()
    def sample(self, n, *, generator=None, c=None, batch_size=1024):
        """G_ab applied to n points of A (drawn with ``generator``): should look like B."""
        a = self.data.info["parts"]["a"]
        idx = torch.randint(len(a), (n,), generator=generator)
        return self.translate(a.to_model(a.x[idx]), "ab")

    def eval_reference(self):
        return self.data.info["parts"]["b"]
