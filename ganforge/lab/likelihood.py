"""``likelihood-vs-quality``: log-likelihood and sample quality disagree (Theis et al. 2016).

Data: the 8-Gaussian ring (radius 2, std 0.1), whose log density is exact. Every model below has
an exact log density too, so nothing is estimated except by averaging over held-out points:

- ``truth``: the data density itself (the reference);
- ``memorising KDE``: a Gaussian KDE with bandwidth 0.005 on the 200 training points. Its training
  log-likelihood beats the truth's, its test log-likelihood is the worst here, and its samples
  look perfect because they are (jittered) training points (Theis et al. Sec. 3.1);
- ``KDE, h by validation``: the same KDE with its bandwidth chosen on a validation set (a fair
  non-parametric baseline);
- ``1% truth + 99% blur``: a mixture of the truth (weight 0.01) and one broad Gaussian. Its log
  density is at least log 0.01 + log p, so its log-likelihood is at most log 100 = 4.61 nats below
  the truth's, while 99% of its samples are junk (Theis et al. Sec. 3.2, "good likelihood, poor
  samples");
- ``sharp sampler (GAN-like)``: the eight modes with std 0.02 instead of 0.1: every sample is of high
  quality and every mode is covered, as with a GAN that slightly under-disperses, but held-out
  points 2.5 of its std's away from a mode get a very low log density ("poor likelihood, great
  samples").

Sample quality is ``ganforge.metrics.modes.mode_metrics``' HQ fraction (within 3 data std's of a
mode) and modes covered; memorisation is the median distance from a sample to its nearest
training point.
"""

from __future__ import annotations

import math
import pathlib
import time
from dataclasses import dataclass

import numpy as np
import torch

from ganforge.lab.common import figure, finish, lab, seed_all

RADIUS, STD, MODES = 2.0, 0.1, 8


def _gauss_mix_logpdf(x: np.ndarray, centres: np.ndarray, h: float) -> np.ndarray:
    """log of (1/M) sum_m N(x; c_m, h^2 I) in 2D, for x (N, 2), centres (M, 2)."""
    from scipy.special import logsumexp

    d2 = ((x[:, None, :] - centres[None, :, :]) ** 2).sum(-1)
    return logsumexp(-0.5 * d2 / h**2, axis=1) - math.log(len(centres)) - math.log(2 * math.pi * h * h)


@dataclass
class Kde:
    """Equal-weight isotropic Gaussians of std ``h`` at ``centres`` (a KDE, or the ring itself)."""

    centres: np.ndarray
    h: float

    def logpdf(self, x: np.ndarray) -> np.ndarray:
        return _gauss_mix_logpdf(x, self.centres, self.h)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.centres[rng.integers(len(self.centres), size=n)] + self.h * rng.standard_normal((n, 2))


@dataclass
class Blend:
    """w * a + (1 - w) * b."""

    a: Kde
    b: Kde
    w: float

    def logpdf(self, x: np.ndarray) -> np.ndarray:
        return np.logaddexp(math.log(self.w) + self.a.logpdf(x), math.log1p(-self.w) + self.b.logpdf(x))

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        pick = rng.random(n) < self.w
        return np.where(pick[:, None], self.a.sample(n, rng), self.b.sample(n, rng))


def ring_centres() -> np.ndarray:
    t = 2 * math.pi * np.arange(MODES) / MODES
    return RADIUS * np.stack([np.cos(t), np.sin(t)], 1)


def models(train: np.ndarray, val: np.ndarray) -> tuple[dict, float]:
    truth = Kde(ring_centres(), STD)
    hs = [0.02, 0.04, 0.07, 0.1, 0.15, 0.25, 0.4]
    h_cv = max(hs, key=lambda h: float(Kde(train, h).logpdf(val).mean()))
    broad = Kde(np.zeros((1, 2)), math.sqrt(RADIUS**2 / 2 + STD**2))  # moment-matched isotropic Gaussian
    return {
        "truth": truth,
        "memorising KDE (h=0.005)": Kde(train, 0.005),
        f"KDE, h={h_cv} by validation": Kde(train, h_cv),
        "1% truth + 99% blur": Blend(truth, broad, 0.01),
        "sharp sampler (GAN-like, std 0.02)": Kde(ring_centres(), 0.02),
    }, h_cv


@lab("likelihood-vs-quality")
def run(*, out: pathlib.Path, quick: bool, seed: int = 0) -> dict:
    """Theis et al. 2016 on a 2D ring: test log-likelihood vs sample quality for five exact-density models."""
    from scipy.spatial import cKDTree

    from ganforge.metrics.modes import mode_metrics

    t0 = time.perf_counter()
    seed_all(seed)
    rng = np.random.default_rng(seed)
    truth = Kde(ring_centres(), STD)
    n_test, n_samples = (1000, 1000) if quick else (5000, 5000)
    train, val, test = truth.sample(200, rng), truth.sample(500, rng), truth.sample(n_test, rng)
    ms, h_cv = models(train, val)
    tree = cKDTree(train)
    rows, samples = {}, {}
    for name, m in ms.items():
        s = m.sample(n_samples, rng)
        q = mode_metrics(torch.from_numpy(s), torch.from_numpy(ring_centres()), STD)
        samples[name] = s
        rows[name] = {"train_ll": float(m.logpdf(train).mean()), "test_ll": float(m.logpdf(test).mean()),
                      "hq": q["hq"], "modes": q["modes"],
                      "median_dist_to_nearest_train": float(np.median(tree.query(s)[0]))}
    names = list(ms)
    mem, cv, blur, sharp = names[1], names[2], names[3], names[4]
    result = {
        "data": {"ring_radius": RADIUS, "std": STD, "modes": MODES, "n_train": 200, "n_test": n_test},
        "h_by_validation": h_cv, "models": rows, "log100": math.log(100),
        "blur_ll_loss_vs_truth": rows["truth"]["test_ll"] - rows[blur]["test_ll"],
        "memorising_train_minus_test_ll": rows[mem]["train_ll"] - rows[mem]["test_ll"],
        "test_ll_ranking": sorted(names, key=lambda n: -rows[n]["test_ll"]),
        "hq_ranking": sorted(names, key=lambda n: -rows[n]["hq"]),
        "keys": {"memorising": mem, "validated": cv, "blur": blur, "sharp": sharp},
    }

    fig, axes = figure(3, 2, width=3.4, height=3.2)
    for ax, name in zip(axes, names, strict=False):
        r = rows[name]
        ax.scatter(*samples[name][:1000].T, s=1, alpha=0.5)
        ax.set_xlim(-3.5, 3.5)
        ax.set_ylim(-3.5, 3.5)
        ax.set_aspect("equal")
        ax.set_title(f"{name}\ntest LL {r['test_ll']:.2f}, train LL {r['train_ll']:.2f}, HQ {r['hq']:.2f}",
                     fontsize=7)
    ax = axes[5]
    for name in names:
        ax.scatter(rows[name]["test_ll"], rows[name]["hq"], s=25, label=name)
    ax.set_xscale("symlog")
    ax.set_xlabel("test log-likelihood (nats / point, symlog)")
    ax.set_ylabel("HQ fraction of samples")
    ax.set_title("likelihood vs sample quality", fontsize=8)
    ax.legend(fontsize=5)
    return finish(out, "likelihood-vs-quality", fig, result, t0)
