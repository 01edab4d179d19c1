"""Semi-supervised GAN (Salimans et al. 2016, "Improved techniques for training GANs", sections 3.1 and 5).

The discriminator is a K-class classifier with logits l(x) in R^K; the fake
class K+1 is implicit, with its logit fixed at 0 (the paper's over-
parameterisation remark), so

    p(y = k | x) = softmax(l)_k over the K real classes,
    D(x) = Z(x) / (Z(x) + 1), Z = sum_k exp(l_k),   i.e.  logit D(x) = logsumexp_k l_k(x).

D minimises L_sup + w * L_unsup with
    L_sup   = CE(l(x_lab), y)                                      (labelled part)
    L_unsup = -log D(x_unl) - log(1 - D(G(z)))
            = softplus(-lse(l(x_unl))) + softplus(lse(l(G(z)))).
G minimises feature matching (section 3.1): || E f(x_unl) - E f(G(z)) ||^2 on
D's last hidden layer ``d.features`` (averaged over features; ``fm_distance:
l1`` takes the mean absolute gap instead, as the paper's MNIST code does); with
``feature_matching: false`` the non-saturating loss softplus(-lse(l(G(z)))).
``labelled_batch`` (0: the whole labelled batch) caps the labelled images per D
step, so that train.batch_size can raise the unlabelled and fake batch alone.

Two optional D terms (off by default):
- ``entropy_weight`` w_H: conditional-entropy minimisation on the unlabelled
  batch (Dai et al. 2017, "Good semi-supervised learning that requires a bad
  GAN", eq. 5's L_ent; Grandvalet & Bengio 2005):
  w_H * mean_x H(p(y | x)), H = -sum_k p_k log p_k over the K real classes.
- ``manifold_weight`` w_M: manifold regularisation with the generator (Lecouat
  et al. 2018, "Manifold regularization with GANs for semi-supervised
  learning", eq. 4 as their code computes it): a step of length eps
  (``manifold_eps``, in image space) along the generator's manifold,
  r = G(z + eta d / ||d||) - G(z), d ~ N(0, I), eta = ``manifold_eta``, and
  w_M * mean_z sum_k | l_k(G(z)) - l_k(G(z) + eps r / ||r||) |.
  G is held fixed; D is evaluated without its training noise (eval mode), so
  that only D's variation along the generated manifold is penalised.

Data: parts ``labelled`` and ``unlabelled`` (dataset ``semi``). The classifier
is D itself: ``classify(x)`` = argmax_k l_k(x).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ganforge.data.base import Dataset
from ganforge.errors import ConfigError
from ganforge.games.base import Game, Phase, check_latent
from ganforge.registry import GAMES


@GAMES.register("ssgan")
class SSGAN(Game):
    """Semi-supervised GAN: K-logit discriminator with an implicit fake class, feature matching for G."""

    roles = {"g": "generator z -> x", "d": "classifier x -> K logits (with features(x))"}
    groups = {"d": ("d",), "g": ("g",)}
    ema_roles = ("g", "d")  # with train.ema, the EMA of D is the classifier that is evaluated (bench ssgan)

    def __init__(self, *, z_dim: int = 100, latent: str = "uniform", unsup_weight: float = 1.0,
                 feature_matching: bool = True, fm_distance: str = "l2", labelled_batch: int = 0,
                 entropy_weight: float = 0.0, manifold_weight: float = 0.0, manifold_eps: float = 10.0,
                 manifold_eta: float = 1.0) -> None:
        super().__init__()
        if z_dim < 1 or unsup_weight < 0 or labelled_batch < 0:
            raise ConfigError(f"ssgan needs z_dim >= 1, unsup_weight >= 0 and labelled_batch >= 0, got {z_dim}, "
                              f"{unsup_weight}, {labelled_batch}")
        if fm_distance not in ("l2", "l1"):
            raise ConfigError(f"ssgan fm_distance must be l2 (the paper's eq.) or l1 (its MNIST code), got "
                              f"{fm_distance!r}")
        if not (entropy_weight >= 0 and manifold_weight >= 0 and manifold_eps > 0 and manifold_eta > 0):
            raise ConfigError(f"ssgan needs entropy_weight >= 0 and manifold_weight >= 0 (0: off), manifold_eps > 0 "
                              f"and manifold_eta > 0 (the image and latent steps of the manifold term); got "
                              f"{entropy_weight}, {manifold_weight}, {manifold_eps}, {manifold_eta}")
        self.fm_distance = fm_distance
        self.entropy_weight, self.manifold_weight = entropy_weight, manifold_weight
        self.manifold_eps, self.manifold_eta = manifold_eps, manifold_eta
        check_latent(latent)
        self.z_dim, self.latent = z_dim, latent
        self.unsup_weight, self.feature_matching = unsup_weight, feature_matching
        # labelled images per D step (the first ones of the labelled batch); 0: all of it (train.batch_size, the
        # unlabelled and fake batch size), so a larger train.batch_size with labelled_batch fixed adds unlabelled data
        self.labelled_batch = labelled_batch

    @classmethod
    def default_nets(cls) -> dict[str, dict]:
        # names only: the parameters a recipe gives are its own (config.net_spec)
        return {"g": {"name": "mlp"}, "d": {"name": "wn-mlp"}}

    def build(self, data, nets, objective, penalties) -> None:
        parts = data.info.get("parts") or {}
        if set(parts) != {"labelled", "unlabelled"}:
            raise ConfigError(f"game ssgan needs data with parts labelled and unlabelled (dataset 'semi', e.g. "
                              f"data: {{name: semi, labels_per_class: 100}}); got {data.name!r}")
        if penalties:
            raise ConfigError("ssgan takes no penalties (its losses are fixed by the paper); remove the penalties "
                              "section")
        if getattr(objective, "name", "") != "ns":
            raise ConfigError(f"ssgan's losses are fixed by the paper (logistic, via logsumexp); objective must be "
                              f"ns, got {getattr(objective, 'name', objective)!r}")
        self.data, self.objective, self.penalties = data, objective, penalties
        lab = parts["labelled"]
        self.n_classes = lab.n_classes
        self.nets["g"] = self._net("g", nets["g"], in_shape=(self.z_dim,), out_shape=data.shape)
        self.nets["d"] = self._net("d", nets["d"], in_shape=data.shape, out_shape=(lab.n_classes,))
        if callable(getattr(self.nets["d"], "init_from_data", None)):  # wn-mlp's data-dependent init, if asked for
            # the labelled images, so that the labels-only baseline (bench ssgan) starts from the same D
            self.nets["d"].init_from_data(lab.to_model(lab.x))
        if self.feature_matching and not hasattr(self.nets["d"], "features"):
            raise ConfigError(f"ssgan feature matching needs a discriminator with features(x) (mlp, conv-encoder, "
                              f"dcgan); nets.d is {nets['d']['name']!r}")

    def phases(self, *, d_steps: int = 1) -> list[Phase]:
        return [Phase("d", "d", self.d_loss, repeat=d_steps), Phase("g", "g", self.g_loss)]

    def _fake(self, n: int) -> torch.Tensor:
        return self.nets["g"](self.noise(n, self.z_dim, latent=self.latent))

    @staticmethod
    def real_logit(out: torch.Tensor) -> torch.Tensor:
        """logit of "x is real" from D's K class logits (the implicit fake class has logit 0): logsumexp_k l_k."""
        return torch.logsumexp(out, 1)

    @staticmethod
    def conditional_entropy(out: torch.Tensor) -> torch.Tensor:
        """mean over the batch of H(p(y | x)) = -sum_k p_k log p_k, p = softmax of the K logits ``out`` (N, K)."""
        logp = F.log_softmax(out, 1)
        return -(logp.exp() * logp).sum(1).mean()

    def manifold_penalty(self, z: torch.Tensor) -> torch.Tensor:
        """Lecouat et al. 2018: mean_z sum_k |l_k(G(z)) - l_k(G(z) + eps r/|r|)|, r = G(z + eta d/|d|) - G(z).

        z (N, z_dim), d ~ N(0, I). G is fixed (no gradient, its batch-norm running statistics left as they were);
        D runs in eval mode (no training noise), so a D constant in x gives exactly 0.
        """
        d, g, n = self.nets["d"], self.nets["g"], len(z)
        step = torch.randn_like(z)
        step = self.manifold_eta * step / step.norm(dim=1, keepdim=True).clamp_min(1e-12)
        with torch.no_grad():
            kept = {k: v.clone() for k, v in g.named_buffers()}  # G's batch-norm running statistics
            both = g(torch.cat([z, z + step]))  # one G pass (batch-norm statistics of both halves together)
            for k, v in g.named_buffers():  # this pass is a probe, not training: G's buffers stay as they were
                v.copy_(kept[k])
            x, r = both[:n], (both[n:] - both[:n]).reshape(n, -1)
            x_moved = x + (self.manifold_eps * r / r.norm(dim=1, keepdim=True).clamp_min(1e-12)).reshape(x.shape)
        was = d.training
        d.eval()
        try:
            out = d(torch.cat([x, x_moved]))
        finally:
            d.train(was)
        return (out[:n] - out[n:]).abs().reshape(n, -1).sum(1).mean()

    def d_loss(self, batch: dict) -> tuple[torch.Tensor, dict]:
        d = self.nets["d"]
        xl, yl, xu = batch["labelled"]["x"], batch["labelled"]["y"], batch["unlabelled"]["x"]
        if self.labelled_batch:
            xl, yl = xl[:self.labelled_batch], yl[:self.labelled_batch]
        with torch.no_grad():
            fake = self._fake(xu.shape[0])
        out_l, out_u = d(xl), d(xu)
        sup = F.cross_entropy(out_l, yl)
        lse_u, lse_f = self.real_logit(out_u), self.real_logit(d(fake))
        unsup = F.softplus(-lse_u).mean() + F.softplus(lse_f).mean()
        loss = sup + self.unsup_weight * unsup
        logs = {"sup_loss": float(sup.detach()), "unsup_loss": float(unsup.detach()),
                "lab_acc": float((out_l.argmax(1) == yl).float().mean())}
        if self.entropy_weight:
            ent = self.conditional_entropy(out_u)
            loss = loss + self.entropy_weight * ent
            logs["entropy"] = float(ent.detach())
        if self.manifold_weight:
            man = self.manifold_penalty(self.noise(xu.shape[0], self.z_dim, latent=self.latent))
            loss = loss + self.manifold_weight * man
            logs["manifold"] = float(man.detach())
        return loss, logs

    def g_loss(self, batch: dict) -> tuple[torch.Tensor, dict]:
        d = self.nets["d"]
        xu = batch["unlabelled"]["x"]
        fake = self._fake(xu.shape[0])
        if self.feature_matching:
            with torch.no_grad():
                real_f = d.features(xu).mean(0)
            diff = real_f - d.features(fake).mean(0)
            loss = diff.abs().mean() if self.fm_distance == "l1" else diff.pow(2).mean()
        else:
            loss = F.softplus(-torch.logsumexp(d(fake), 1)).mean()
        return loss, {"g_loss": float(loss.detach())}

    @torch.no_grad()
    def classify(self, x: torch.Tensor, *, batch_size: int = 1000) -> torch.Tensor:
        """Class predictions (N,) of the discriminator for float network inputs (eval mode, on CPU)."""
        d = self.nets["d"]
        was = d.training
        d.eval()
        out = [d(x[i:i + batch_size].to(self.device)).argmax(1).cpu() for i in range(0, len(x), batch_size)]
        d.train(was)
        return torch.cat(out)

    def accuracy(self, data: Dataset, *, batch_size: int = 1000) -> float:
        """The discriminator's classification accuracy on a labelled dataset (e.g. the test split)."""
        correct = 0
        for i in range(0, len(data), batch_size):
            pred = self.classify(data.to_model(data.x[i:i + batch_size]))
            correct += int((pred == data.y[i:i + batch_size]).sum())
        return correct / max(1, len(data))

    @torch.no_grad()
    def sample(self, n, *, generator=None, c=None, batch_size=1024):
        return self._sample_from_noise(n, generator=generator, batch_size=batch_size)
