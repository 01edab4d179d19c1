"""BiGAN / ALI (Donahue et al. 2017; Dumoulin et al. 2017): an encoder E beside G.

D scores joint pairs: real (x, E(x)) against fake (G(z), z). G and E are one
optimizer group; they minimise the critic loss with the labels swapped,
d_loss(real=D(G(z), z), fake=D(x, E(x))), the non-saturating form of
"make D wrong", which works for any objective. At the optimum E = G^-1.

Vectors (toy data): D is any net on the concatenation [x, z]. Images: D is the
paper's joint discriminator (Donahue et al. 2017, appendix; ALI's D(x, z)):
``nets.d`` is an image trunk x -> R^{d_features} (e.g. conv-encoder or dcgan),
z goes through a small MLP, and a joint MLP head scores the concatenation;
``nets.e`` maps the image to z (conv-encoder) and ``nets.g`` z to the image
(dcgan).

``rec_weight`` > 0 adds ALICE's explicit cycle-consistency term (Li et al. 2017,
"ALICE: Towards understanding adversarial learning for joint distribution
matching": conditional entropy regularisation in its explicit form, an l_k
reconstruction loss; here l2): G and E also minimise
rec_weight * mean (G(E(x)) - x)^2, which bounds the conditional entropy
H(x | z) that plain BiGAN/ALI leaves unconstrained, so that G(E(x)) keeps
what x shows (plain ALI's reconstructions are often of another class). With
the default 0 the game is BiGAN/ALI exactly.

``features(x)`` are E's pre-final layer (``nets.e``'s ``features``, e.g.
conv-encoder's hidden layer): BiGAN's probes read E's intermediate layers
(Donahue et al. 2017, section 4), as well as z = E(x).
"""

from __future__ import annotations

import torch
from torch import nn

from ganforge.errors import ConfigError
from ganforge.games.base import Game, Phase, check_latent
from ganforge.nets.common import numel
from ganforge.registry import GAMES


class JointCritic(nn.Module):
    """D(x, z): flattens x and z and feeds their concatenation to an inner critic."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.inner(torch.cat([x.reshape(x.shape[0], -1), z.reshape(z.shape[0], -1)], dim=1))


class ImageJointCritic(nn.Module):
    """D(x, z) for images: head([trunk(x), mlp(z)]) with LeakyReLU(0.2) and dropout, as in BiGAN/ALI."""

    def __init__(self, trunk: nn.Module, *, x_features: int, z_dim: int, hidden: int, outputs: int,
                 dropout: float) -> None:
        super().__init__()
        self.trunk = trunk
        self.z_path = nn.Sequential(nn.Linear(z_dim, hidden), nn.LeakyReLU(0.2), nn.Dropout(dropout))
        self.head = nn.Sequential(nn.LeakyReLU(0.2), nn.Dropout(dropout), nn.Linear(x_features + hidden, hidden),
                                  nn.LeakyReLU(0.2), nn.Dropout(dropout), nn.Linear(hidden, outputs))

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.head(torch.cat([self.trunk(x), self.z_path(z.reshape(z.shape[0], -1))], dim=1))


@GAMES.register("bigan")
class BiGAN(Game):
    """BiGAN/ALI: generator G, encoder E, critic on (x, z) pairs."""

    roles = {"g": "generator z -> x", "e": "encoder x -> z", "d": "critic (x, z) -> score"}
    groups = {"d": ("d",), "ge": ("g", "e")}
    ema_roles = ("g", "e")

    def __init__(self, *, z_dim: int = 2, latent: str = "normal", d_features: int = 256, joint_hidden: int = 512,
                 dropout: float = 0.2, rec_weight: float = 0.0) -> None:
        super().__init__()
        if z_dim < 1:
            raise ConfigError(f"z_dim must be >= 1, got {z_dim}")
        if d_features < 1 or joint_hidden < 1 or not 0 <= dropout < 1:
            raise ConfigError(f"bigan needs d_features >= 1, joint_hidden >= 1, 0 <= dropout < 1; got {d_features}, "
                              f"{joint_hidden}, {dropout}")
        if rec_weight < 0:
            raise ConfigError(f"bigan needs rec_weight >= 0 (ALICE's cycle term; 0: plain BiGAN), got {rec_weight}")
        check_latent(latent)
        self.rec_weight = rec_weight
        self.z_dim, self.latent = z_dim, latent
        self.d_features, self.joint_hidden, self.dropout = d_features, joint_hidden, dropout

    def build(self, data, nets, objective, penalties) -> None:
        self.data, self.objective, self.penalties = data, objective, penalties
        if any(p.phase == "d" for _, _, p in penalties):
            raise ConfigError("bigan's critic takes (x, z) pairs; gradient penalties on x alone are not supported")
        self.nets["g"] = self._net("g", nets["g"], in_shape=(self.z_dim,), out_shape=data.shape)
        self.nets["e"] = self._net("e", nets["e"], in_shape=data.shape, out_shape=(self.z_dim,))
        if data.is_image:  # the image trunk gives d_features; z and the joint head are part of D
            trunk = self._net("d", nets["d"], in_shape=data.shape, out_shape=(self.d_features,))
            self.nets["d"] = ImageJointCritic(trunk, x_features=self.d_features, z_dim=self.z_dim,
                                              hidden=self.joint_hidden, outputs=objective.critic_outputs,
                                              dropout=self.dropout)
        else:
            joint = (numel(data.shape) + self.z_dim,)
            self.nets["d"] = JointCritic(self._net("d", nets["d"], in_shape=joint,
                                                   out_shape=(objective.critic_outputs,)))

    def phases(self, *, d_steps: int = 1) -> list[Phase]:
        d = self.nets["d"]
        return [Phase("d", "d", self.d_loss, repeat=d_steps, after_step=lambda: self.objective.constrain(d)),
                Phase("ge", "ge", self.ge_loss)]

    def _pairs(self, x: torch.Tensor):
        """(D(x, E(x)), D(G(z), z), E(x))."""
        g, e, d = self.nets["g"], self.nets["e"], self.nets["d"]
        z = self.noise(x.shape[0], self.z_dim, latent=self.latent)
        ex = e(x)
        return d(x, ex), d(g(z), z), ex

    def d_loss(self, batch):
        real_out, fake_out, _ = self._pairs(batch["x"])
        loss = self.objective.d_loss(real=real_out, fake=fake_out)
        return loss, {"d_loss": float(loss.detach())}

    def ge_loss(self, batch):
        x = batch["x"]
        real_out, fake_out, ex = self._pairs(x)
        adv = self.objective.d_loss(real=fake_out, fake=real_out)
        logs = {"ge_loss": float(adv.detach())}
        if not self.rec_weight:
            return adv, logs
        rec = (self.nets["g"](ex) - x).pow(2).mean()
        logs["rec_loss"] = float(rec.detach())
        return adv + self.rec_weight * rec, logs

    @torch.no_grad()
    def encode(self, x: torch.Tensor, *, batch_size: int = 1024) -> torch.Tensor:
        """E(x) for float network inputs x (eval mode), on CPU."""
        e = self.nets["e"]
        was = e.training
        e.eval()
        z = torch.cat([e(x[i:i + batch_size].to(self.device)).cpu() for i in range(0, len(x), batch_size)])
        e.train(was)
        return z

    @torch.no_grad()
    def features(self, x: torch.Tensor, *, batch_size: int = 1024) -> torch.Tensor:
        """E's pre-final layer for float network inputs x (eval mode), on CPU; needs ``nets.e`` with features."""
        e = self.nets["e"]
        if not hasattr(e, "features"):
            raise ConfigError("bigan features(x) needs an encoder with features(x) (conv-encoder, mlp)")
        was = e.training
        e.eval()
        f = torch.cat([e.features(x[i:i + batch_size].to(self.device)).cpu() for i in range(0, len(x), batch_size)])
        e.train(was)
        return f

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """G(E(x)) (eval mode), on CPU."""
        g = self.nets["g"]
        was = g.training
        g.eval()
        out = g(self.encode(x).to(self.device)).cpu()
        g.train(was)
        return out

    @torch.no_grad()
    def sample(self, n, *, generator=None, c=None, batch_size=1024):
        return self._sample_from_noise(n, generator=generator, batch_size=batch_size)
