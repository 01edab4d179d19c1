"""``d-features``: the discriminator as a feature extractor (Radford et al. 2016, DCGAN, Sec. 5.1).

DCGAN trains a GAN without labels and then fits a linear classifier (an L2-regularised linear
SVM there) on the discriminator's features: D learned, while telling real from fake, features
that help to tell classes apart. This lab repeats the experiment on scikit-learn's digits
(16x16, 1,498 train / 299 test images, split as ``ganforge.data.images.digits``): a DCGAN is trained on
the train images (no labels), and a logistic-regression probe on the flattened last hidden layer of
D (``features``, the input of D's output layer) is fitted on k labelled train images per class and
scored on the test images, beside the same probe on

- raw pixels (the baseline any learned feature has to beat), and
- a randomly initialised D of the same architecture (DCGAN's init, never trained): how much of the
  result is the architecture (random convolutional features are known to be decent) and how much
  is the adversarial training.

Features are standardised (train statistics) before the probe; every budget k is drawn ``draws``
times and the test accuracies are averaged; the three feature sets see the same labelled images in
each draw, so their differences are reported paired (mean and standard error over draws).

On digits (600 GAN steps, 10 draws) both D's beat pixels by 1-4 points at every budget, but the random
D is almost as good as the trained one (within about 1 point): most of the gain here is the
convolutional architecture, not what adversarial training taught D.
"""

from __future__ import annotations

import pathlib
import tempfile
import time

import numpy as np
import torch

from ganforge.lab.common import figure, finish, lab, one_thread, seed_all

FULL = {"steps": 600, "base": 16, "budgets": (2, 5, 10, 20, 50), "draws": 10}
QUICK = {"steps": 150, "base": 8, "budgets": (5, 20), "draws": 4}


def gan_config(steps: int, base: int, seed: int) -> dict:
    adam = {"name": "adam", "lr": 2e-4, "betas": [0.5, 0.999]}
    return {"name": "lab-d-features", "data": {"name": "digits", "resolution": 16, "split": "train"},
            "game": {"name": "gan", "z_dim": 32}, "objective": {"name": "ns"},
            "nets": {"g": {"name": "dcgan", "base": base}, "d": {"name": "dcgan", "base": base}},
            "optim": {"g": dict(adam), "d": dict(adam)},
            "train": {"steps": steps, "batch_size": 64, "seed": seed, "threads": 1, "device": "cpu",
                      "tensorboard": False, "log_every": max(1, steps // 5)},
            "eval": {"every": 0, "n": 64, "samples": False}, "checkpoint": {"every": 0, "keep": 1}}


@torch.no_grad()
def d_features(d: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
    """D's pre-final layer (eval mode) for float images in [-1, 1]: (N, F) float64."""
    was = d.training
    d.eval()
    try:
        return torch.cat([d.features(x[i:i + 512]) for i in range(0, len(x), 512)]).double().numpy()
    finally:
        d.train(was)


def probe_accuracy(f_train: np.ndarray, y_train: np.ndarray, f_test: np.ndarray, y_test: np.ndarray, *,
                   per_class: int, draws: int, seed: int) -> list[float]:
    """Test accuracy of logistic regression fitted on ``per_class`` labelled train samples per class, per draw."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(f_train)
    a, b = scaler.transform(f_train), scaler.transform(f_test)
    accs = []
    for k in range(draws):
        rng = np.random.default_rng(seed * 1000 + k)
        idx = np.concatenate([rng.choice(np.flatnonzero(y_train == c), per_class, replace=False)
                              for c in np.unique(y_train)])
        clf = LogisticRegression(max_iter=2000, C=1.0).fit(a[idx], y_train[idx])
        accs.append(float((clf.predict(b) == y_test).mean()))
    return accs


def _paired(a: list[float], b: list[float]) -> dict[str, float]:
    """Mean and standard error of the per-draw differences a - b."""
    d = np.asarray(a) - np.asarray(b)
    return {"mean": float(d.mean()), "sem": float(d.std(ddof=1) / np.sqrt(len(d)))}


@lab("d-features")
def run(*, out: pathlib.Path, quick: bool, seed: int = 0) -> dict:
    """A linear probe on a trained DCGAN discriminator's features vs raw pixels and a random D (digits)."""
    from ganforge.config import load_config
    from ganforge.data.images import digits
    from ganforge.training.build import build_game
    from ganforge.training.trainer import Trainer

    t0 = time.perf_counter()
    p = QUICK if quick else FULL
    seed_all(seed)
    cfg = load_config(None, base=gan_config(p["steps"], p["base"], seed))
    with one_thread(), tempfile.TemporaryDirectory(prefix="ganforge-lab-") as tmp:
        c0 = time.process_time()
        trainer = Trainer(cfg, pathlib.Path(tmp) / "run", quiet=True)
        trainer.fit()
        cpu_train = time.process_time() - c0
    torch.manual_seed(seed + 1)
    random_d = build_game(cfg).nets["d"]  # the same architecture and init, never trained
    tr, te = digits(resolution=16, split="train"), digits(resolution=16, split="test")
    xtr, xte = tr.to_model(tr.x), te.to_model(te.x)
    ytr, yte = tr.y.numpy(), te.y.numpy()
    feats = {"pixels": (xtr.flatten(1).double().numpy(), xte.flatten(1).double().numpy()),
             "random D": (d_features(random_d, xtr), d_features(random_d, xte)),
             "trained D": (d_features(trainer.game.nets["d"], xtr), d_features(trainer.game.nets["d"], xte))}
    acc = {name: {k: probe_accuracy(a, ytr, b, yte, per_class=k, draws=p["draws"], seed=seed)
                  for k in p["budgets"]} for name, (a, b) in feats.items()}
    mean = {name: {k: float(np.mean(v)) for k, v in by.items()} for name, by in acc.items()}
    sem = {name: {k: float(np.std(v, ddof=1) / np.sqrt(len(v))) for k, v in by.items()} for name, by in acc.items()}
    result = {
        "data": "sklearn digits 16x16, train 1498 / test 299", "steps": p["steps"], "base": p["base"],
        "budgets_per_class": list(p["budgets"]), "draws": p["draws"],
        "feature_dims": {name: int(a.shape[1]) for name, (a, _) in feats.items()},
        "test_accuracy_mean": mean, "test_accuracy_sem": sem,
        # paired over the draws: every feature set is probed with the same labelled images
        "trained_minus_random": {k: _paired(acc["trained D"][k], acc["random D"][k]) for k in p["budgets"]},
        "trained_minus_pixels": {k: _paired(acc["trained D"][k], acc["pixels"][k]) for k in p["budgets"]},
        "random_minus_pixels": {k: _paired(acc["random D"][k], acc["pixels"][k]) for k in p["budgets"]},
        "cpu_seconds_gan_training": cpu_train,
    }
    fig, axes = figure(1, width=5.2, height=3.6)
    ax = axes[0]
    for name, style in (("pixels", "k--o"), ("random D", "s-"), ("trained D", "^-")):
        ks = list(p["budgets"])
        ax.errorbar(ks, [mean[name][k] for k in ks], yerr=[sem[name][k] for k in ks], fmt=style, ms=4, capsize=2,
                    label=f"{name} ({result['feature_dims'][name]} dims)")
    ax.set_xscale("log")
    ax.set_xlabel("labelled train images per class")
    ax.set_ylabel("test accuracy of a logistic-regression probe")
    ax.set_title(f"DCGAN's D as a feature extractor (digits, {p['steps']} GAN steps)", fontsize=9)
    ax.legend(fontsize=7)
    return finish(out, "d-features", fig, result, t0)
