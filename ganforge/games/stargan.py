"""StarGAN (Choi et al. 2018): one generator for many domains, a critic with an auxiliary domain classifier.

Data: images labelled by domain (``fmnist-domains``, ``domain-folders``): ``y`` is the
domain of each image, K = ``data.n_classes`` >= 2. G(x, c) translates x to target
domain c, read as K tiled one-hot channels beside the image (net ``resnet-gen``, paper
Sec. 3 and App. Table 4). D has
two heads on one trunk (net ``patchgan``): the adversarial score per patch and K
domain logits, linear in the flattened trunk features. Paper eq. 2-7:

    D: L_adv(D) + cls * CE(D_cls(x), c_org)                         (+ the objective's penalties: WGAN-GP's gp 10)
    G: L_adv(G) + cls * CE(D_cls(G(x, c_trg)), c_trg) + rec * |x - G(G(x, c_trg), c_org)|_1

with the paper's lambda_cls = 1, lambda_rec = 10, objective ``wgan-gp`` and 5
critic steps per generator step (``train.d_steps: 5``). Target domains are drawn
uniformly at random per image.

Warm start (not in the paper; off by default), as CycleGAN's: for the first ``warm_start`` steps G also pays

    w(step) * |G(x, c_trg) - x|_1,   w = warm_start_weight * (1 - step / warm_start)

so training starts from doing nothing instead of a random map, and the loss is the paper's once w reaches 0.
Doing nothing always exists here: every domain of one StarGAN dataset has the same tensor shape (a folder
set is read with one channel count), so x itself is a valid image of every domain.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.errors import ConfigError
from ganforge.games.base import Game, Phase, WarmStart
from ganforge.registry import GAMES


class AuxCritic(nn.Module):
    """A critic with a domain classifier head: ``forward`` gives scores, ``classify`` gives (N, K) logits.

    As in the StarGAN reference code (a conv whose kernel spans the whole last feature map), the
    head is linear in the *flattened* trunk features: pooling them would discard where things are,
    and domains such as "upside down" differ only in that.
    """

    def __init__(self, inner: nn.Module, n_domains: int, in_shape: tuple[int, ...]) -> None:
        super().__init__()
        if not hasattr(inner, "features") or not hasattr(inner, "head"):
            raise ConfigError("stargan's critic needs a net with a feature trunk and a head (features, head), "
                              "e.g. nets.d: {name: patchgan}")
        self.inner = inner
        was = inner.training
        with torch.no_grad():
            width = inner.eval().features(torch.zeros(1, *in_shape))[0].numel()
        inner.train(was)
        self.cls = nn.Linear(width, n_domains)

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        return self.inner(x)

    def both(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.inner.features(x)
        return self.inner.head(h), self.cls(h.flatten(1))

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        return self.cls(self.inner.features(x).flatten(1))


@GAMES.register("stargan")
class StarGAN(WarmStart, Game):
    """StarGAN: G(x, target domain), D with adversarial and domain-classification heads, reconstruction loss."""

    roles = {"g": "generator (x, target domain) -> x'", "d": "critic with auxiliary domain classifier"}
    groups = {"g": ("g",), "d": ("d",)}
    ema_roles = ("g",)

    def __init__(self, *, cls: float = 1.0, rec: float = 10.0, warm_start: int = 0,
                 warm_start_weight: float = 10.0) -> None:
        super().__init__()
        if cls < 0 or rec < 0:
            raise ConfigError(f"stargan weights cls and rec must be >= 0, got {cls}, {rec}")
        self.cls_w, self.rec_w = cls, rec
        self.set_warm_start(warm_start, warm_start_weight)

    def build(self, data, nets, objective, penalties) -> None:
        if data.y is None or data.n_classes < 2 or not data.is_image:
            raise ConfigError(f"game stargan needs images labelled by domain, at least 2 domains (datasets "
                              f"fmnist-domains, domain-folders), got {data.name!r}")
        self.data, self.objective, self.penalties = data, objective, penalties
        self.k = data.n_classes
        self.nets["g"] = self._net("g", nets["g"], in_shape=data.shape, out_shape=data.shape, n_classes=self.k)
        inner = self._net("d", nets["d"], in_shape=data.shape, out_shape=(objective.critic_outputs,))
        self.nets["d"] = AuxCritic(inner, self.k, data.shape)

    def phases(self, *, d_steps: int = 1) -> list[Phase]:
        d = self.nets["d"]
        return [Phase("d", "d", self.d_loss, repeat=d_steps, after_step=lambda: self.objective.constrain(d)),
                Phase("g", "g", self.g_loss)]

    def targets(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Target domains drawn uniformly (global RNG unless ``generator``)."""
        return torch.randint(self.k, (n,), generator=generator).to(self.device)

    def d_loss(self, batch):
        g, d = self.nets["g"], self.nets["d"]
        x, c_org = batch["x"], batch["y"]
        with torch.no_grad():
            fake = g(x, self.targets(x.shape[0]))
        real_src, real_cls = d.both(x)
        loss_adv = self.objective.d_loss(real=real_src, fake=d(fake))
        loss_cls = F.cross_entropy(real_cls, c_org)
        pen, logs = self._penalties("d", d, real=x, fake=fake)
        logs.update(d_adv=float(loss_adv.detach()), d_cls=float(loss_cls.detach()))
        return loss_adv + self.cls_w * loss_cls + pen, logs

    def g_loss(self, batch):
        g, d = self.nets["g"], self.nets["d"]
        x, c_org = batch["x"], batch["y"]
        c_trg = self.targets(x.shape[0])
        fake = g(x, c_trg)
        fake_src, fake_cls = d.both(fake)
        adv = self.objective.g_loss(fake=fake_src)
        cls = F.cross_entropy(fake_cls, c_trg)
        rec = (g(fake, c_org) - x).abs().mean()
        logs = {"g_adv": float(adv.detach()), "g_cls": float(cls.detach()), "rec": float(rec.detach())}
        loss = adv + self.cls_w * cls + self.rec_w * rec
        w = self.warm_start_weight()
        if w > 0:
            still = (fake - x).abs().mean()
            loss = loss + w * still
            logs["warm_start"] = float(still.detach())
        return loss, logs

    @torch.no_grad()
    def translate(self, x: torch.Tensor, c: torch.Tensor | int, batch_size: int = 256) -> torch.Tensor:
        """x (N, C, H, W) in [-1, 1] -> G(x, c) for target domain(s) c (int or (N,) labels), eval mode, on CPU."""
        if isinstance(c, int):
            if not 0 <= c < self.k:
                raise ConfigError(f"target domain must be in [0, {self.k}), got {c}")
            c = torch.full((len(x),), c, dtype=torch.long)
        return self._batched("g", x, c, batch_size=batch_size)

    @torch.no_grad()
    def classify(self, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """D's domain logits (N, K) for images in [-1, 1]."""
        d = self.nets["d"]
        was = d.training
        d.eval()
        try:
            return torch.cat([d.classify(x[i:i + batch_size].to(self.device)).cpu()
                              for i in range(0, len(x), batch_size)])
        finally:
            d.train(was)

    @torch.no_grad()
    def sample(self, n, *, generator=None, c=None, batch_size=1024):
        """n training images (drawn with ``generator``) translated to random (or given) target domains."""
        idx = torch.randint(len(self.data), (n,), generator=generator)
        c = self.targets(n, generator).cpu() if c is None else c
        return self.translate(self.data.to_model(self.data.x[idx]), c, batch_size)
