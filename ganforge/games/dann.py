"""DANN: domain-adversarial training with a gradient reversal layer (Ganin et al. 2016, JMLR 17(59)).

Three networks: features f (image -> R^F), label classifier c (R^F -> K logits)
and domain classifier d (R^F -> 1 logit, larger = "source"). One phase updates
all three on

    L = CE(c(f(x_s)), y_s) + BCE(d(R(f(x_s))), 1) + BCE(d(R(f(x_t))), 0)

where R is the gradient reversal layer: identity forward, -lambda * gradient
backward (eq. 13-14 of the paper). d thus minimises the domain loss while f
maximises it: the saddle point of the paper's eq. 10 reached by plain SGD.
lambda follows the paper's schedule lambda_p = 2 / (1 + exp(-10 p)) - 1 for p
= step / ramp_steps (capped at 1), scaled by ``lam``; ``ramp_steps: 0`` keeps it
at ``lam``. ``lam: 0`` is the source-only baseline (d still trains, f ignores it).
Source and target images go through f as one batch (so batch norm sees both):
for a baseline that never sees the target domain, also give source-domain
images as the target part (``ganforge bench dann`` uses ``fmnist-m`` with
``texture: false``). The paper anneals the SGD learning rate as
mu0 / (1 + 10 p)^0.75; the recipe uses the trainer's linear decay to 0.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ganforge.errors import ConfigError
from ganforge.games.adaptation import AdaptationGame, Counted, grad_reverse
from ganforge.games.base import Phase
from ganforge.registry import GAMES


@GAMES.register("dann")
class DANN(AdaptationGame):
    """DANN: features, label classifier and domain classifier behind a gradient reversal layer."""

    roles = {"f": "features x -> R^F", "c": "label classifier R^F -> K", "d": "domain classifier R^F -> 1"}
    groups = {"all": ("f", "c", "d")}

    def __init__(self, *, features: int = 128, lam: float = 1.0, ramp_steps: int = 0) -> None:
        super().__init__()
        if features < 1 or lam < 0 or ramp_steps < 0:
            raise ConfigError(f"dann needs features >= 1, lam >= 0, ramp_steps >= 0; got {features}, {lam}, "
                              f"{ramp_steps}")
        self.n_features, self.lam, self.ramp_steps = features, lam, ramp_steps
        self.counter = Counted()

    @classmethod
    def default_nets(cls) -> dict[str, dict]:
        return {"f": {"name": "conv-encoder", "hidden": 0}, "c": {"name": "mlp", "hidden": 100, "depth": 2},
                "d": {"name": "mlp", "hidden": 100, "depth": 1}}

    def build(self, data, nets, objective, penalties) -> None:
        src, _ = self.set_data(data)
        self.objective, self.penalties = objective, penalties
        if penalties:
            raise ConfigError("dann takes no penalties (its domain loss is fixed); remove the penalties section")
        feat = (self.n_features,)
        self.nets["f"] = self._net("f", nets["f"], in_shape=src.shape, out_shape=feat)
        self.nets["c"] = self._net("c", nets["c"], in_shape=feat, out_shape=(src.n_classes,))
        self.nets["d"] = self._net("d", nets["d"], in_shape=feat, out_shape=(1,))

    def current_lambda(self) -> float:
        """lambda at the game's current step (the paper's schedule when ramp_steps > 0)."""
        if not self.ramp_steps:
            return self.lam
        p = min(1.0, int(self.counter) / self.ramp_steps)
        return self.lam * (2.0 / (1.0 + math.exp(-10.0 * p)) - 1.0)

    def phases(self, *, d_steps: int = 1) -> list[Phase]:
        return [Phase("dann", "all", self.loss, after_step=self.counter.tick)]

    def loss(self, batch: dict) -> tuple[torch.Tensor, dict]:
        f, c, d = self.nets["f"], self.nets["c"], self.nets["d"]
        xs, ys, xt = batch["source"]["x"], batch["source"]["y"], batch["target"]["x"]
        h = f(torch.cat([xs, xt]))
        hs = h[: len(xs)]
        logits = c(hs)
        cls = F.cross_entropy(logits, ys)
        lam = self.current_lambda()
        dom = d(grad_reverse(h, lam)).reshape(-1)
        ds, dt = dom[: len(xs)], dom[len(xs):]
        domain = F.softplus(-ds).mean() + F.softplus(dt).mean()
        dom_acc = 0.5 * ((ds > 0).float().mean() + (dt < 0).float().mean())
        logs = {"cls_loss": float(cls.detach()), "domain_loss": float(domain.detach()),
                "domain_acc": float(dom_acc), "src_acc": float((logits.argmax(1) == ys).float().mean()),
                "lambda": lam}
        return cls + domain, logs

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.nets["c"](self.nets["f"](x))
