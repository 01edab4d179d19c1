"""Letting the critic choose among fakes: top-k generator updates and discriminator rejection sampling.

Convention: the critic returns raw scores, larger means "more real".

- Top-k training (Sinha et al. 2020, "Top-k Training of GANs", Sec. 3): the generator's loss is
  averaged over only the k fakes the critic scores highest, so the fakes it already judges worst
  (for a toy mixture: samples on the bridges between modes) push G no more. k is a fraction of the
  critic's inputs, annealed from all of them to ``nu``; the paper anneals exponentially per epoch,
  here it falls linearly over ``anneal`` steps (our runs are a few thousand steps, not epochs).
- Discriminator rejection sampling (Azadi et al. 2019, "Discriminator Rejection Sampling", Sec. 3.2
  and Algorithm 1): at sampling time only. With an optimal critic of the minimax / non-saturating
  GAN, D~(x) = logit D*(x) = log p_data(x) / p_g(x) (Goodfellow et al. 2014, Prop. 1), so accepting
  x with probability exp(D~(x) - D~_M) (D~_M the largest logit) is exact rejection sampling of
  p_data from p_g. The paper's practical form, implemented here, accepts with
  p(x) = sigmoid(F(x)), F(x) = D~(x) - D~_M - log(1 - exp(D~(x) - D~_M - eps)) - gamma,
  where D~_M is the maximum over a burn-in of candidates (raised whenever a larger one appears)
  and gamma the ``quantile`` of F over each batch of candidates (gamma = 0 is exact rejection
  sampling; a larger gamma rejects more). It needs the critic's score to be a log density ratio,
  which holds for the ns / minimax objectives only, and calibrated: as the paper does, the score is
  first recalibrated by logistic regression (Platt scaling) of real against fake on the critic's
  logit, D~ = a * D(x) + b fitted on fresh real and generated samples (``platt_scale``). A trained
  critic is smooth, so its logit is compressed where the true log ratio is steep (a toy ring's
  critic: a = 4-6), and without the fit rejection removes too little of the mass between modes.
- A packed critic (PacGAN, ``pack`` m) scores m samples at once; its optimal logit is
  sum_j log p_data(x_j) / p_g(x_j). A candidate's score is therefore the mean of the critic's
  outputs over ``partners`` packs that hold it beside other candidates (in every slot in turn):
  its own log ratio plus the partners' mean, whose spread averages out.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ganforge.errors import ConfigError


def top_k_fraction(step: int, nu: float, anneal: int) -> float:
    """Fraction of the critic's fake inputs kept for G's loss at ``step``: 1 -> ``nu`` linearly over ``anneal``."""
    if anneal <= 0:
        return nu
    return 1.0 - (1.0 - nu) * min(1.0, step / anneal)


def top_k(scores: torch.Tensor, fraction: float) -> torch.Tensor:
    """The rows of ``scores`` (N, ...) whose score (first output) is among the ceil(fraction * N) highest."""
    if fraction >= 1:
        return scores
    k = max(1, math.ceil(fraction * scores.shape[0]))
    idx = scores.reshape(scores.shape[0], -1)[:, 0].topk(k).indices
    return scores[idx]


@torch.no_grad()
def packed_scores(critic: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, pack: int,
                  partners: int) -> torch.Tensor:
    """(N,) score of every candidate in x (N, C, ...): critic(x) for m = 1; for a packed critic the mean
    over ``partners`` packs, pack r holding x_i in slot r mod m beside the candidates r*(m-1)+1 .. places
    further on (cyclically), so every candidate is scored in every slot with distinct partners."""
    n = x.shape[0]
    if pack == 1:
        return critic(x).reshape(n, -1)[:, 0]
    total = torch.zeros(n, device=x.device)
    for r in range(partners):
        others = [x.roll(-(r * (pack - 1) + j + 1), dims=0) for j in range(pack - 1)]
        slot = r % pack
        parts = others[:slot] + [x] + others[slot:]
        total += critic(torch.cat(parts, dim=1)).reshape(n, -1)[:, 0]
    return total / partners


def platt_scale(real: torch.Tensor, fake: torch.Tensor, iters: int = 50) -> tuple[float, float]:
    """(a, b) of the logistic regression P(real | s) = sigmoid(a s + b) on critic scores ``real`` (label 1)
    and ``fake`` (label 0), by Newton's method on the mean log loss (Platt 1999), in float64."""
    s = torch.cat([real, fake]).double()
    y = torch.cat([torch.ones(len(real)), torch.zeros(len(fake))]).double()
    x = torch.stack([s, torch.ones_like(s)], 1)
    w = torch.tensor([1.0, 0.0], dtype=torch.float64)
    for _ in range(iters):
        p = torch.sigmoid(x @ w)
        grad = x.T @ (p - y) / len(s)
        hess = (x * (p * (1 - p))[:, None]).T @ x / len(s) + 1e-9 * torch.eye(2, dtype=torch.float64)
        step = torch.linalg.solve(hess, grad)
        w = w - step
        if float(step.abs().max()) < 1e-10:
            break
    return float(w[0]), float(w[1])


def drs_acceptance(logits: torch.Tensor, d_max: float, quantile: float, eps: float = 1e-6) -> torch.Tensor:
    """Azadi et al. 2019's acceptance probability sigmoid(F(x)) for critic logits D~(x), D~_M = ``d_max``
    (at least every logit), gamma = the ``quantile`` of F over ``logits`` (quantile 0: gamma = 0, exact)."""
    a = (logits - d_max).double()
    f = a - torch.log1p(-torch.exp(a - eps))
    gamma = torch.quantile(f, quantile) if quantile > 0 else torch.zeros((), dtype=f.dtype)
    return torch.sigmoid(f - gamma).to(logits.dtype)


@torch.no_grad()
def drs_sample(draw: Callable[[int], torch.Tensor], score: Callable[[torch.Tensor], torch.Tensor], n: int, *,
               quantile: float, burn_in: int, generator: torch.Generator | None = None,
               batch_size: int = 1024, max_batches: int = 10_000) -> torch.Tensor:
    """n samples by discriminator rejection sampling: ``draw(m)`` gives m candidates (CPU), ``score`` their
    (m,) critic logits; the first ``burn_in`` candidates only set D~_M. Deterministic given ``generator``."""
    d_max = -math.inf
    seen = 0
    while seen < burn_in:
        m = min(batch_size, burn_in - seen)
        d_max = max(d_max, float(score(draw(m)).max()))
        seen += m
    out, have = [], 0
    for _ in range(max_batches):
        x = draw(batch_size)
        s = score(x)
        d_max = max(d_max, float(s.max()))
        p = drs_acceptance(s, d_max, quantile)
        u = torch.rand(len(p), generator=generator)
        keep = x[u < p]
        out.append(keep)
        have += len(keep)
        if have >= n:
            return torch.cat(out)[:n]
    raise ConfigError(f"rejection sampling accepted only {have} of {n} samples in {max_batches} batches of "
                      f"{batch_size}: lower game.drs_quantile (now {quantile})")
