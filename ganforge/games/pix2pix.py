"""pix2pix (Isola et al. 2017): paired image-to-image translation with a conditional GAN and an L1 term.

Data: paired images (``fmnist-paired``, ``paired-folder``): a batch's ``x`` is the target B and
``a`` the aligned input A. G maps A -> B (net ``unet``); D scores an (input, image) pair, reading
the concatenation [A, B] as one image (net ``patchgan``: one logit per patch). The players pay
(paper eq. 1-4, with the objective's losses on raw scores; ``ns`` is the paper's log loss with
the non-saturating G term it uses)

    D: L_D(real = D(a, b), fake = D(a, G(a)))            (the same input a in both pairs)
    G: adversarial * L_G(fake = D(a, G(a))) + l1 * |b - G(a)|_1     (mean over pixels)

with the paper's l1 = 100. The paper halves D's objective; under Adam that rescaling changes
nothing, so it is not done. Its ablation (Table 1) is two switches: ``l1: 0`` is the cGAN alone,
``adversarial: 0`` (or false) is L1 alone, and then no critic phase is declared (D never trains);
``conditional: false`` shows D the image without its input (the paper's unconditional "GAN" rows).

Noise: no z. As in the paper, dropout in G's decoder is the only randomness, and it stays on at
test time (``test_dropout: true``): translations are drawn with dropout masks from a seeded
generator (``translate(..., seed=)``, the global RNG untouched), so one seed gives one
translation and another seed a slightly different one. ``test_dropout: false`` turns dropout off
at test time (a deterministic G). The paper notes the dropout noise barely changes the output;
with it on, what is scored is a sample, as in the paper.

Sampling and evaluation translate the data's *held-out* inputs (``data.info["heldout"]``, the
test split), and ``eval_reference`` is their true targets, so FID compares translations of unseen
inputs with the real images they should have become.
"""

from __future__ import annotations

import torch
from torch import nn

from ganforge.data.base import Dataset
from ganforge.errors import ConfigError
from ganforge.games.base import Game, Phase
from ganforge.registry import GAMES


class PairCritic(nn.Module):
    """D(x, c): an image critic shown the condition image c beside x, as channels [c, x] (pix2pix's cGAN).

    With ``conditional=False`` it ignores c (the paper's unconditional ablation).
    """

    def __init__(self, inner: nn.Module, conditional: bool = True) -> None:
        super().__init__()
        self.inner, self.conditional = inner, conditional

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        if not self.conditional:
            return self.inner(x)
        if c is None:
            raise ValueError("pix2pix's critic is conditioned on the input image: pass c")
        return self.inner(torch.cat([c, x], 1))


@GAMES.register("pix2pix")
class Pix2Pix(Game):
    """pix2pix: U-Net G(a) -> b, PatchGAN D on (a, b) pairs, cGAN + l1 * L1 (ablations: l1 0, adversarial 0)."""

    roles = {"g": "generator input A -> target B (U-Net)", "d": "critic on (input, image) pairs (PatchGAN)"}
    groups = {"g": ("g",), "d": ("d",)}
    ema_roles = ("g",)

    def __init__(self, *, l1: float = 100.0, adversarial: float | bool = 1.0, conditional: bool = True,
                 test_dropout: bool = True) -> None:
        super().__init__()
        adversarial = float(adversarial)
        if l1 < 0 or adversarial < 0 or l1 + adversarial == 0:
            raise ConfigError(f"pix2pix weights l1 and adversarial must be >= 0 and not both 0; got {l1}, "
                              f"{adversarial}")
        self.l1_w, self.adv_w, self.d_sees_input, self.test_dropout = l1, adversarial, conditional, test_dropout

    @classmethod
    def default_nets(cls) -> dict[str, dict]:
        return {"g": {"name": "unet"}, "d": {"name": "patchgan"}}

    def build(self, data, nets, objective, penalties) -> None:
        a = data.info.get("paired", {}).get("a")
        if a is None or not data.is_image:
            raise ConfigError(f"game pix2pix needs paired images, inputs in data.info['paired']['a'] (datasets "
                              f"fmnist-paired, paired-folder), got {data.name!r}")
        self.data, self.objective, self.penalties = data, objective, penalties
        a_shape, b_shape = tuple(a.shape[1:]), data.shape
        self.nets["g"] = self._net("g", nets["g"], in_shape=a_shape, out_shape=b_shape)
        d_in = (a_shape[0] + b_shape[0], *b_shape[1:]) if self.d_sees_input else b_shape
        inner = self._net("d", nets["d"], in_shape=d_in, out_shape=(objective.critic_outputs,))
        self.nets["d"] = PairCritic(inner, self.d_sees_input)
        held = self.heldout()  # one object: the trainer keys the reference's cached features by identity
        self._reference = Dataset(f"{held.name}-targets", held.x, held.y, held.n_classes,
                                  class_names=held.class_names)

    def phases(self, *, d_steps: int = 1) -> list[Phase]:
        g = Phase("g", "g", self.g_loss)
        if self.adv_w == 0:  # L1 alone: the critic never plays
            return [g]
        d = self.nets["d"]
        return [Phase("d", "d", self.d_loss, repeat=d_steps, after_step=lambda: self.objective.constrain(d)), g]

    def d_loss(self, batch):
        d, a, b = self.nets["d"], batch["a"], batch["x"]
        with torch.no_grad():
            fake = self.nets["g"](a)
        loss = self.objective.d_loss(real=d(b, a), fake=d(fake, a))
        pen, logs = self._penalties("d", d, real=b, fake=fake, c=a)
        logs["d_loss"] = float(loss.detach())
        return loss + pen, logs

    def g_loss(self, batch):
        a, b = batch["a"], batch["x"]
        fake = self.nets["g"](a)
        loss = torch.zeros((), device=b.device)
        logs = {}
        if self.l1_w > 0:
            l1 = (fake - b).abs().mean()
            loss = loss + self.l1_w * l1
            logs["l1"] = float(l1.detach())
        if self.adv_w > 0:
            adv = self.objective.g_loss(fake=self.nets["d"](fake, a))
            loss = loss + self.adv_w * adv
            logs["g_adv"] = float(adv.detach())
        return loss, logs

    # -- translation --------------------------------------------------------------------------------------
    @torch.no_grad()
    def translate(self, a: torch.Tensor, *, seed: int = 0, batch_size: int = 256) -> torch.Tensor:
        """Inputs (N, C_a, H, W) in [-1, 1] -> G(a) on CPU: eval mode, dropout on when ``test_dropout``, its
        masks drawn from ``seed`` (the global RNG is untouched). G's modes are restored."""
        g = self.nets["g"]
        modes = {m: m.training for m in g.modules()}
        g.eval()
        if self.test_dropout:
            for m in g.modules():
                if isinstance(m, nn.modules.dropout._DropoutNd):
                    m.train()
        devices = [self.device] if self.device.type == "cuda" else []
        try:
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(seed)
                return torch.cat([g(a[i:i + batch_size].to(self.device)).cpu() for i in range(0, len(a), batch_size)])
        finally:
            for m, was in modes.items():
                m.train(was)

    def heldout(self) -> Dataset:
        """The held-out paired set (the data's ``info["heldout"]``), else the training set itself."""
        return self.data.info.get("heldout") or self.data

    @torch.no_grad()
    def sample(self, n, *, generator=None, c=None, batch_size=1024):
        """Translations of n held-out inputs drawn with ``generator`` (compare with ``eval_reference``): each
        input once while n allows (a random permutation), then with replacement."""
        if c is not None:
            raise ConfigError("pix2pix translates input images; it takes no class label c")
        held = self.heldout()
        a = held.info["paired"]["a"]
        if n <= len(a):
            idx = torch.randperm(len(a), generator=generator)[:n]
        else:
            idx = torch.randint(len(a), (n,), generator=generator)
        seed = int(torch.randint(2**31 - 1, (), generator=generator))
        return self.translate(held.to_model(a[idx]), seed=seed, batch_size=batch_size)

    def eval_reference(self) -> Dataset:
        """The true targets of the held-out inputs."""
        return self._reference
