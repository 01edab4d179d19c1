"""SRGAN and SRResNet (Ledig et al. 2017): super-resolution with a pixel, content and adversarial loss.

Data: paired low/high-resolution images (``fmnist-sr``, ``sr-folder``): the batch's
``x`` is the high-resolution image, ``lr`` its downsampled twin. G maps LR -> SR
(net ``srresnet``), D scores HR images (net ``srgan-d`` or ``patchgan``). The
generator minimises (paper eq. 3-6)

    pixel * MSE(G(lr), hr) + content * MSE(phi(G(lr)), phi(hr)) + adversarial * L_adv(G)

where phi is a frozen feature network. The paper's phi is VGG19 (conv5_4,
scaled by 1/12.75); offline ganforge uses the shipped Fashion-MNIST
classifier's last convolutional feature maps (``content_net: fmnist-cnn``,
(N, 128, 7, 7) at 28x28). VGG19 content loss is not implemented.

- SRResNet: ``pixel: 1, content: 0, adversarial: 0`` (the default): no critic phase is declared.
- SRGAN: ``pixel: 0, content: 1, adversarial: 1e-3`` (the paper's weighting), usually started
  from a trained SRResNet.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ganforge.errors import ConfigError
from ganforge.games.base import Game, Phase
from ganforge.registry import GAMES

CONTENT_NETS = ("fmnist-cnn",)


class ClassifierFeatures:
    """phi(x): the shipped classifier's last conv feature maps (before the final pooling), frozen, eval mode.

    Not an nn.Module attribute of the game, so it is neither trained, checkpointed nor put in train mode.
    """

    def __init__(self) -> None:
        from ganforge.metrics.extractors import build_extractor

        self.ex = build_extractor("fmnist-cnn")
        body = self.ex.net.net.body  # FeatureExtractor -> _FeaturesAndLogits -> FmnistCNN
        self.trunk = body[:-1].eval().requires_grad_(False)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if next(self.trunk.parameters()).device != x.device:
            self.trunk.to(x.device)
        return self.trunk(self.ex.convert(x))


@GAMES.register("srgan")
class SRGAN(Game):
    """SRGAN / SRResNet: LR -> SR generator with pixel, classifier-feature content and adversarial losses."""

    roles = {"g": "generator low-res -> high-res", "d": "critic on high-res images"}
    groups = {"g": ("g",), "d": ("d",)}
    ema_roles = ("g",)

    def __init__(self, *, pixel: float = 1.0, content: float = 0.0, adversarial: float = 0.0,
                 content_net: str = "fmnist-cnn") -> None:
        super().__init__()
        if min(pixel, content, adversarial) < 0 or pixel + content + adversarial == 0:
            raise ConfigError(f"srgan weights pixel, content, adversarial must be >= 0 and not all 0; got "
                              f"{pixel}, {content}, {adversarial}")
        if content_net not in CONTENT_NETS:
            raise ConfigError(f"srgan content_net must be one of {', '.join(CONTENT_NETS)} (VGG19 content loss is "
                              f"not implemented), got {content_net!r}")
        self.pixel_w, self.content_w, self.adv_w, self.content_net = pixel, content, adversarial, content_net
        self._phi = None

    def build(self, data, nets, objective, penalties) -> None:
        lr = data.info.get("paired", {}).get("lr")
        if lr is None or "scale" not in data.info:
            raise ConfigError(f"game srgan needs paired low/high-resolution data (datasets fmnist-sr, sr-folder), "
                              f"got {data.name!r}")
        self.data, self.objective, self.penalties = data, objective, penalties
        self.scale = int(data.info["scale"])
        self.nets["g"] = self._net("g", nets["g"], in_shape=tuple(lr.shape[1:]), out_shape=data.shape)
        self.nets["d"] = self._net("d", nets["d"], in_shape=data.shape, out_shape=(objective.critic_outputs,))
        if self.content_w > 0:
            self._phi = ClassifierFeatures()

    def phases(self, *, d_steps: int = 1) -> list[Phase]:
        g = Phase("g", "g", self.g_loss)
        if self.adv_w == 0:  # SRResNet: pixel/content loss only, the critic never plays
            return [g]
        d = self.nets["d"]
        return [Phase("d", "d", self.d_loss, repeat=d_steps, after_step=lambda: self.objective.constrain(d)), g]

    def d_loss(self, batch):
        d, hr = self.nets["d"], batch["x"]
        with torch.no_grad():
            sr = self.nets["g"](batch["lr"])
        loss = self.objective.d_loss(real=d(hr), fake=d(sr))
        pen, logs = self._penalties("d", d, real=hr, fake=sr)
        logs["d_loss"] = float(loss.detach())
        return loss + pen, logs

    def g_loss(self, batch):
        hr = batch["x"]
        sr = self.nets["g"](batch["lr"])
        loss = torch.zeros((), device=hr.device)
        logs = {}
        if self.pixel_w > 0:
            pix = F.mse_loss(sr, hr)
            loss = loss + self.pixel_w * pix
            logs["pixel"] = float(pix.detach())
        if self.content_w > 0:
            con = F.mse_loss(self._phi(sr), self._phi(hr))
            loss = loss + self.content_w * con
            logs["content"] = float(con.detach())
        if self.adv_w > 0:
            adv = self.objective.g_loss(fake=self.nets["d"](sr))
            loss = loss + self.adv_w * adv
            logs["g_adv"] = float(adv.detach())
        return loss, logs

    @torch.no_grad()
    def super_resolve(self, lr: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """Low-res float images in [-1, 1] (N, C, h, w) -> super-resolved (N, C, s h, s w), eval mode, on CPU."""
        return self._batched("g", lr, batch_size=batch_size)

    @torch.no_grad()
    def sample(self, n, *, generator=None, c=None, batch_size=1024):
        """Super-resolutions of n training LR images drawn with ``generator`` (compare with the HR set)."""
        lr = self.data.info["paired"]["lr"]
        idx = torch.randint(len(lr), (n,), generator=generator)
        return self.super_resolve(self.data.to_model(lr[idx]), batch_size)
