"""The core game (Goodfellow et al. 2014, Algorithm 1), conditional when asked, with the lectures' stabilisers.

k critic steps, each on a fresh real minibatch and fresh noise, then one
generator step on fresh noise. With ``conditional=True`` both networks take
the label c (Mirza & Osindero 2014): real pairs (x, y) from the data, fake
pairs (G(z, c), c) with c drawn from the data's label frequencies.

Stabilisers (``ganforge.stabilisers``), all off by default; the objectives stay pure:

- ``feature_matching``: G's loss is ||E f(x) - E f(G(z))||^2 on the critic's ``features``
  (Salimans et al. 2016, Sec. 3.1) instead of the objective's generator loss.
- ``minibatch_disc`` (B kernels of ``minibatch_dim``): minibatch discrimination between the
  critic's features and head (Salimans et al. 2016, Sec. 3.2).
- ``unrolled_steps`` k: G's loss against the critic after k differentiable look-ahead updates
  (Metz et al. 2017); only the generator phase changes.
- ``instance_noise`` sigma0, annealed over ``instance_noise_anneal`` steps: Gaussian noise on
  every critic input, real and fake, in both phases.
- ``augment``: DiffAugment policy ("translation,cutout,color") on every critic input (images).
- G nets with ``norm: vbn`` get a fixed, seeded reference batch of ``vbn_reference`` latents.

Packing (``pack`` m > 1; Lin et al. 2018, PacGAN, Sec. 3): the critic scores m samples at once,
concatenated along the feature axis (dim 1: coordinates of a vector, channels of an image), real
with real and fake with fake, so a minibatch of B gives B/m packed samples and D's input has m times
the data's first dimension. Packing comes last in ``critic_input`` (after augmentation and instance
noise, which act per sample), so penalties (R1, GP) see the packed inputs D sees. m = 1 is the plain
game, unchanged. B must be divisible by m. Unconditional only: a packed sample has no single label.

The critic choosing among fakes (``ganforge.games.selection``), both off by default:

- ``top_k`` nu < 1 (Sinha et al. 2020): G's loss averages over only the critic's ceil(f * N) highest-
  scored fake inputs, f falling linearly from 1 to nu over ``top_k_anneal`` steps (0: nu from the start).
- ``drs`` (Azadi et al. 2019, discriminator rejection sampling): a sampling-time option; ``sample``
  (and so every evaluation) keeps a candidate with probability sigmoid(F(x)) from the critic's logit,
  gamma the ``drs_quantile`` of F per batch, D~_M from ``drs_burn_in`` candidates; a packed critic
  scores a candidate over ``drs_partners`` packs. The logit is first recalibrated, D~ = a D + b by
  logistic regression on ``drs_calibration`` real and as many generated samples (drawn with a fixed
  seed; 0: the raw logit). Needs a critic whose logit estimates log p_data / p_g (objectives ns,
  minimax). Unconditional only. Training is unchanged.
"""

from __future__ import annotations

import torch

from ganforge.errors import ConfigError
from ganforge.games.base import Game, Phase, check_latent
from ganforge.games.selection import drs_sample, packed_scores, platt_scale, top_k, top_k_fraction
from ganforge.registry import GAMES
from ganforge.stabilisers import (
    NOISE_SCHEDULES,
    UNROLL_OPTIMIZERS,
    MinibatchCritic,
    add_instance_noise,
    diff_augment,
    feature_matching_loss,
    has_vbn,
    instance_noise_sigma,
    parse_policy,
    set_reference,
    unroll,
)


@GAMES.register("gan")
class GAN(Game):
    """G vs D: k critic steps per generator step; any objective, any penalties; optional labels and stabilisers."""

    roles = {"g": "generator z (, c) -> x", "d": "critic x (, c) -> score"}
    groups = {"d": ("d",), "g": ("g",)}
    ema_roles = ("g",)

    def __init__(self, *, z_dim: int = 64, latent: str = "normal", conditional: bool = False,
                 feature_matching: bool = False, minibatch_disc: int = 0, minibatch_dim: int = 5,
                 unrolled_steps: int = 0, unrolled_lr: float = 1e-4, unrolled_optimizer: str = "adam",
                 instance_noise: float = 0.0, instance_noise_anneal: int = 0,
                 instance_noise_schedule: str = "linear", augment: str = "", vbn_reference: int = 128,
                 pack: int = 1, top_k: float = 1.0, top_k_anneal: int = 0, drs: bool = False,
                 drs_quantile: float = 0.95, drs_burn_in: int = 10_000, drs_partners: int = 8,
                 drs_calibration: int = 10_000) -> None:
        super().__init__()
        if z_dim < 1:
            raise ConfigError(f"z_dim must be >= 1, got {z_dim}")
        check_latent(latent)
        checks = [
            (minibatch_disc >= 0, f"minibatch_disc (number of kernels) must be >= 0, got {minibatch_disc}"),
            (minibatch_dim >= 1, f"minibatch_dim must be >= 1, got {minibatch_dim}"),
            (unrolled_steps >= 0, f"unrolled_steps must be >= 0, got {unrolled_steps}"),
            (unrolled_lr > 0, f"unrolled_lr must be > 0, got {unrolled_lr}"),
            (unrolled_optimizer in UNROLL_OPTIMIZERS,
             f"unrolled_optimizer must be one of {', '.join(UNROLL_OPTIMIZERS)}, got {unrolled_optimizer!r}"),
            (instance_noise >= 0, f"instance_noise (the initial std) must be >= 0, got {instance_noise}"),
            (instance_noise_anneal >= 0, f"instance_noise_anneal (steps; 0 = constant) must be >= 0, "
                                         f"got {instance_noise_anneal}"),
            (instance_noise_schedule in NOISE_SCHEDULES,
             f"instance_noise_schedule must be one of {', '.join(NOISE_SCHEDULES)}, got {instance_noise_schedule!r}"),
            (vbn_reference >= 2, f"vbn_reference (reference batch size) must be >= 2, got {vbn_reference}"),
            (pack >= 1, f"pack (samples per critic input, PacGAN's m) must be >= 1, got {pack}"),
            (pack == 1 or not conditional, f"pack={pack} needs an unconditional game: a packed critic input "
                                           f"holds {pack} samples and so has no single label (use pack: 1)"),
            (0 < top_k <= 1, f"top_k (the fraction of fakes G's loss keeps at the end) must be in (0, 1], got {top_k}"),
            (top_k_anneal >= 0, f"top_k_anneal (steps; 0 = top_k from the start) must be >= 0, got {top_k_anneal}"),
            (top_k == 1 or not feature_matching, "top_k needs a per-sample generator loss; feature_matching has "
                                                 "none (use top_k: 1)"),
            (0 <= drs_quantile < 1, f"drs_quantile (gamma's quantile of F) must be in [0, 1), got {drs_quantile}"),
            (drs_burn_in >= 1, f"drs_burn_in (candidates that set the maximum logit) must be >= 1, got {drs_burn_in}"),
            (drs_partners >= 1, f"drs_partners (packs per candidate's score) must be >= 1, got {drs_partners}"),
            (drs_calibration >= 0, f"drs_calibration (samples per side of the logit's recalibration; 0 = none) "
                                   f"must be >= 0, got {drs_calibration}"),
            (not drs or not conditional, "drs (rejection sampling) needs an unconditional game: rejecting samples "
                                         "would change the labels asked for (use drs: false)"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ConfigError(msg)
        self.z_dim, self.latent, self.conditional = z_dim, latent, conditional
        self.feature_matching, self.minibatch_disc, self.minibatch_dim = feature_matching, minibatch_disc, minibatch_dim
        self.unrolled_steps, self.unrolled_lr, self.unrolled_optimizer = unrolled_steps, unrolled_lr, unrolled_optimizer
        self.instance_noise, self.instance_noise_anneal = instance_noise, instance_noise_anneal
        self.instance_noise_schedule = instance_noise_schedule
        self.augment = parse_policy(augment)
        self.vbn_reference = vbn_reference
        self.pack = pack
        self.top_k, self.top_k_anneal = top_k, top_k_anneal
        self.drs, self.drs_quantile, self.drs_burn_in, self.drs_partners = drs, drs_quantile, drs_burn_in, drs_partners
        self.drs_calibration = drs_calibration
        self.step = 0  # set by the trainer before every training step
        self.register_buffer("class_freq", torch.ones(1))

    def build(self, data, nets, objective, penalties) -> None:
        self.data, self.objective, self.penalties = data, objective, penalties
        k = 0
        if self.conditional:
            if data.y is None or data.n_classes < 2:
                raise ConfigError(f"game gan with conditional=true needs labelled data; {data.name!r} has no labels")
            k = data.n_classes
            self.class_freq = torch.bincount(data.y, minlength=k).float() / len(data.y)
        if self.augment and len(data.shape) != 3:
            raise ConfigError(f"game.augment works on images (C, H, W); {data.name!r} has samples of shape "
                              f"{tuple(data.shape)}. Use augment: '' for this data")
        self.nets["g"] = self._net("g", nets["g"], in_shape=(self.z_dim,), out_shape=data.shape, n_classes=k)
        d_shape = (self.pack * data.shape[0], *data.shape[1:])  # PacGAN: m samples side by side
        d = self._net("d", nets["d"], in_shape=d_shape, out_shape=(objective.critic_outputs,), n_classes=k)
        if self.minibatch_disc:
            d = MinibatchCritic(d, in_shape=d_shape, n_classes=k, kernels=self.minibatch_disc,
                                kernel_dim=self.minibatch_dim)
        if self.feature_matching and not callable(getattr(d, "features", None)):
            raise ConfigError(f"game.feature_matching needs a critic with features(); net "
                              f"{nets['d'].get('name')!r} has none")
        self.nets["d"] = d
        if has_vbn(self.nets["g"]):  # a fixed, seeded reference batch (Salimans et al. 2016, Sec. 3.4)
            gen = torch.Generator().manual_seed(0)
            set_reference(self.nets["g"], self.noise(self.vbn_reference, self.z_dim, generator=gen, latent=self.latent),
                          self.labels(self.vbn_reference, gen))

    def labels(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor | None:
        if not self.conditional:
            return None
        freq = self.class_freq.cpu()
        return torch.multinomial(freq, n, replacement=True, generator=generator).to(self.device)

    def phases(self, *, d_steps: int = 1) -> list[Phase]:
        d = self.nets["d"]
        g_real = self.objective.g_needs_real or self.feature_matching or self.unrolled_steps > 0
        return [
            Phase("d", "d", self.d_loss, repeat=d_steps, after_step=lambda: self.objective.constrain(d)),
            Phase("g", "g", self.g_loss, needs_batch=g_real),
        ]

    # -- what the critic sees ---------------------------------------------------------
    def noise_sigma(self) -> float:
        """The instance-noise std at the current training step."""
        return instance_noise_sigma(self.step, self.instance_noise, self.instance_noise_anneal,
                                    self.instance_noise_schedule)

    def critic_input(self, x: torch.Tensor) -> torch.Tensor:
        """x as the critic sees it during training: augmented, with instance noise, then packed."""
        if self.augment:
            x = diff_augment(x, self.augment)
        if self.instance_noise:
            x = add_instance_noise(x, self.noise_sigma())
        return self.pack_samples(x) if self.pack > 1 else x

    def pack_samples(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, ...) -> (B/m, m*C, ...): row i concatenates samples i*m .. i*m+m-1 along dim 1 (PacGAN)."""
        m, n = self.pack, x.shape[0]
        if n % m:
            raise ConfigError(f"game.pack={m} packs {m} samples per critic input, so the batch must be "
                              f"divisible by {m}; got a batch of {n} (set train.batch_size to a multiple of {m})")
        return x.reshape(n // m, m * x.shape[1], *x.shape[2:])

    # -- losses -------------------------------------------------------------------------
    def d_loss(self, batch: dict) -> tuple[torch.Tensor, dict]:
        g, d = self.nets["g"], self.nets["d"]
        x = batch["x"]
        c = batch.get("y") if self.conditional else None
        with torch.no_grad():
            fake = g(self.noise(x.shape[0], self.z_dim, latent=self.latent), c)
        real_in, fake_in = self.critic_input(x), self.critic_input(fake)
        loss = self.objective.d_loss(real=d(real_in, c), fake=d(fake_in, c))
        pen, logs = self._penalties("d", d, real=real_in, fake=fake_in, c=c)
        logs["d_loss"] = float(loss.detach())
        if self.instance_noise:
            logs["noise_sigma"] = self.noise_sigma()
        return loss + pen, logs

    def g_loss(self, batch: dict) -> tuple[torch.Tensor, dict]:
        g, d = self.nets["g"], self.nets["d"]
        n = batch["x"].shape[0] if "x" in batch else batch["n"]
        c = self.labels(n)
        fake = g(self.noise(n, self.z_dim, latent=self.latent), c)
        fake_in = self.critic_input(fake)
        real_c = batch.get("y") if self.conditional else None
        real_in = self.critic_input(batch["x"]) if "x" in batch else None
        if self.feature_matching:
            with torch.no_grad():
                f_real = d.features(real_in, real_c)
            loss = feature_matching_loss(f_real, d.features(fake_in, c))
        else:
            critic = d
            if self.unrolled_steps:
                critic = unroll(d, lambda dd: self.objective.d_loss(real=dd(real_in, real_c), fake=dd(fake_in, c)),
                                steps=self.unrolled_steps, lr=self.unrolled_lr, optimizer=self.unrolled_optimizer)
            real_out = critic(real_in, real_c) if self.objective.g_needs_real else None
            fake_out = critic(fake_in, c)
            if self.top_k < 1:  # Sinha et al. 2020: only the fakes the critic rates best move G
                fake_out = top_k(fake_out, top_k_fraction(self.step, self.top_k, self.top_k_anneal))
            loss = self.objective.g_loss(fake=fake_out, real=real_out)
        pen, logs = self._penalties("g", d, real=real_in if real_in is not None else fake_in, fake=fake_in, c=c)
        logs["g_loss"] = float(loss.detach())
        return loss + pen, logs

    @torch.no_grad()
    def sample(self, n, *, generator=None, c=None, batch_size=1024):
        g = self.sampling_net("g", lambda m, gen: (self.noise(m, self.z_dim, generator=gen, latent=self.latent),
                                                   self.labels(m, gen)))
        if self.drs:
            return self._drs_sample(g, n, generator=generator, batch_size=batch_size)
        out = []
        for i in range(0, n, batch_size):
            m = min(batch_size, n - i)
            ci = c[i:i + m].to(self.device) if c is not None else self.labels(m, generator)
            out.append(g(self.noise(m, self.z_dim, generator=generator, latent=self.latent), ci).cpu())
        return torch.cat(out)

    def _drs_sample(self, g, n, *, generator, batch_size):
        """n samples of the sampling net ``g`` kept by discriminator rejection sampling (``selection``)."""
        d = self.nets["d"]
        was = d.training
        d.eval()

        def draw(m, gen):
            return torch.cat([g(self.noise(min(batch_size, m - i), self.z_dim, generator=gen, latent=self.latent)).cpu()
                              for i in range(0, m, batch_size)])

        def raw(x):
            return torch.cat([packed_scores(d, x[i:i + batch_size].to(self.device), self.pack, self.drs_partners).cpu()
                              for i in range(0, len(x), batch_size)])

        try:
            a, b = 1.0, 0.0
            if self.drs_calibration:  # Platt scaling on its own fixed-seed draws: the sampling RNG is untouched
                gen = torch.Generator().manual_seed(0)
                m = self.drs_calibration
                real = self.data.to_model(self.data.x[torch.randint(len(self.data.x), (m,), generator=gen)])
                a, b = platt_scale(raw(real), raw(draw(m, gen)))
                if a <= 0:
                    raise ConfigError(f"the critic's logit does not tell real from generated samples (recalibrated "
                                      f"slope {a:.3g} <= 0), so rejection sampling cannot use it: sample with "
                                      f"drs: false")
            return drs_sample(lambda m: draw(m, generator), lambda x: a * raw(x) + b, n, quantile=self.drs_quantile,
                              burn_in=self.drs_burn_in, generator=generator, batch_size=batch_size)
        finally:
            d.train(was)
