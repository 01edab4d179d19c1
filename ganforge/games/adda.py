"""ADDA: adversarial discriminative domain adaptation (Tzeng et al. 2017, CVPR).

Networks: source encoder e_s, classifier c, target encoder e_t, domain critic d
on features (larger = "source"). Two stages, one trainer, declared phases:

1. pretraining (the first ``pretrain_steps`` steps): e_s and c minimise the
   cross-entropy on labelled source images;
2. adaptation (afterwards): e_t starts as a copy of e_s (copied when
   pretraining ends); e_s and c are frozen. The critic learns to tell e_s(x_s)
   ("real") from e_t(x_t) ("fake") with the run's objective, and e_t minimises
   the objective's generator loss: the GAN loss with inverted labels of the
   paper's eq. 9 for ``objective: ns``. Target predictions are c(e_t(x_t)).

The stage switch is a function of the game's own step counter (a checkpointed
buffer): phases of the inactive stage have ``repeat == 0`` (``GatedPhase``), so
the trainer runs them zero times without knowing why.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ganforge.errors import ConfigError
from ganforge.games.adaptation import AdaptationGame, Counted, GatedPhase
from ganforge.games.base import Phase
from ganforge.registry import GAMES


@GAMES.register("adda")
class ADDA(AdaptationGame):
    """ADDA: pretrain a source encoder and classifier, then adapt a target encoder against a domain critic."""

    roles = {"e_s": "source encoder x -> R^F", "c": "classifier R^F -> K", "e_t": "target encoder x -> R^F",
             "d": "domain critic R^F -> score"}
    groups = {"src": ("e_s", "c"), "d": ("d",), "t": ("e_t",)}

    def __init__(self, *, features: int = 128, pretrain_steps: int = 1000) -> None:
        super().__init__()
        if features < 1 or pretrain_steps < 0:
            raise ConfigError(f"adda needs features >= 1 and pretrain_steps >= 0; got {features}, {pretrain_steps}")
        self.n_features, self.pretrain_steps = features, pretrain_steps
        self.counter = Counted()

    @classmethod
    def default_nets(cls) -> dict[str, dict]:
        enc = {"name": "conv-encoder", "hidden": 0}
        return {"e_s": enc, "e_t": dict(enc), "c": {"name": "mlp", "hidden": 100, "depth": 1},
                "d": {"name": "mlp", "hidden": 500, "depth": 2, "activation": "leaky_relu"}}

    def build(self, data, nets, objective, penalties) -> None:
        src, _ = self.set_data(data)
        self.objective, self.penalties = objective, penalties
        if objective.g_needs_real:
            raise ConfigError(f"adda: objective {objective.name!r} needs real scores in the encoder loss; use ns, "
                              "minimax, lsgan, hinge, wgan or wgan-gp")
        if nets["e_s"] != nets["e_t"]:
            raise ConfigError("adda: nets.e_s and nets.e_t must be the same net (e_t starts as a copy of e_s); "
                              f"got {nets['e_s']} and {nets['e_t']}")
        feat = (self.n_features,)
        self.nets["e_s"] = self._net("e_s", nets["e_s"], in_shape=src.shape, out_shape=feat)
        self.nets["c"] = self._net("c", nets["c"], in_shape=feat, out_shape=(src.n_classes,))
        self.nets["e_t"] = self._net("e_t", nets["e_t"], in_shape=src.shape, out_shape=feat)
        self.nets["d"] = self._net("d", nets["d"], in_shape=feat, out_shape=(objective.critic_outputs,))
        if self.pretrain_steps == 0:
            self.nets["e_t"].load_state_dict(self.nets["e_s"].state_dict())

    @property
    def adapting(self) -> bool:
        """True once pretraining is over."""
        return int(self.counter) >= self.pretrain_steps

    def phases(self, *, d_steps: int = 1) -> list[Phase]:
        d = self.nets["d"]
        # Pretraining is listed last so that the step that ends it does not also adapt: the
        # counter then advances exactly once per training step in both stages.
        return [
            GatedPhase("d", "d", self.d_loss, repeat=d_steps, after_step=lambda: self.objective.constrain(d),
                       active=lambda: self.adapting),
            GatedPhase("t", "t", self.t_loss, after_step=self.counter.tick, active=lambda: self.adapting),
            GatedPhase("pretrain", "src", self.pretrain_loss, after_step=self._pretrain_done,
                       active=lambda: not self.adapting),
        ]

    def _pretrain_done(self) -> None:
        self.counter.tick()
        if int(self.counter) == self.pretrain_steps:  # the target encoder starts where the source one ended
            self.nets["e_t"].load_state_dict(self.nets["e_s"].state_dict())

    def pretrain_loss(self, batch: dict) -> tuple[torch.Tensor, dict]:
        xs, ys = batch["source"]["x"], batch["source"]["y"]
        logits = self.nets["c"](self.nets["e_s"](xs))
        loss = F.cross_entropy(logits, ys)
        return loss, {"cls_loss": float(loss.detach()), "src_acc": float((logits.argmax(1) == ys).float().mean())}

    def _features(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        e_s = self.nets["e_s"]
        was = e_s.training
        e_s.eval()  # the source encoder is fixed: its batch-norm statistics too
        with torch.no_grad():
            hs = e_s(batch["source"]["x"])
        e_s.train(was)
        return hs, self.nets["e_t"](batch["target"]["x"])

    def d_loss(self, batch: dict) -> tuple[torch.Tensor, dict]:
        hs, ht = self._features(batch)
        real, fake = self.nets["d"](hs), self.nets["d"](ht.detach())
        loss = self.objective.d_loss(real=real, fake=fake)
        pen, logs = self._penalties("d", self.nets["d"], real=hs, fake=ht.detach())  # e.g. WGAN-GP on features
        logs["d_loss"] = float(loss.detach())
        return loss + pen, logs

    def t_loss(self, batch: dict) -> tuple[torch.Tensor, dict]:
        loss = self.objective.g_loss(fake=self.nets["d"](self.nets["e_t"](batch["target"]["x"])))
        return loss, {"t_loss": float(loss.detach())}

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Target-domain predictions: c(e_t(x)) (before adaptation e_t is the copy of e_s, or untrained)."""
        enc = self.nets["e_t"] if self.adapting else self.nets["e_s"]
        return self.nets["c"](enc(x))

    def source_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Source-only predictions c(e_s(x)): ADDA's baseline."""
        return self.nets["c"](self.nets["e_s"](x))
