"""The Fashion-MNIST floors: each score of real train images against the real test set.

    .venv/bin/python scripts/fmnist_floors.py [--n 10000] [--out benchmarks/results/fmnist_floors.json]

A generator cannot be expected to beat real held-out data, so these are the
best values a perfect Fashion-MNIST generator would get under the default
protocol (shipped fmnist-cnn features, reference = fmnist test, n = 10,000):
FID/KID near their floor, precision/recall/coverage near theirs, density ~1,
IS at the real data's value. Writes JSON and a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

import torch

from ganforge.data.fmnist import fmnist
from ganforge.metrics import build_extractor, evaluate
from ganforge.metrics import math as M

ROWS = [("fid", "FID"), ("kid", "KID"), ("kid_std", "KID std"), ("precision", "precision (k=3)"),
        ("recall", "recall (k=3)"), ("density", "density (k=5)"), ("coverage", "coverage (k=5)"),
        ("is", "IS (10 splits)"), ("is_std", "IS std"), ("classes_covered", "classes covered"),
        ("class_kl", "class KL (fake || real)")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--out", default="benchmarks/results/fmnist_floors.json")
    args = ap.parse_args()

    train = fmnist(split="train", limit=args.n)
    scores = evaluate(train.x, ref="fmnist-test", n=args.n, metrics=("fid", "kid", "pr", "dc", "is", "classes"))
    test = fmnist(split="test", limit=args.n)
    test_is = evaluate(test.x, ref="fmnist-test", n=args.n, metrics=("is",))  # IS of the reference itself
    scores.pop("class_histogram", None)
    # Scale context: a FID is only large or small relative to the feature spread, so report
    # tr(Sigma_test) and the FID of the test set against itself with one class (T-shirt/top) removed.
    feats, _ = build_extractor("fmnist-cnn").extract(test.x)
    labels = test.y.numpy()
    scale = {"trace_cov_test": float(M.mean_cov(feats)[1].trace()),
             "fid_test_vs_test_without_class_0": M.fid(feats, feats[labels != 0]),
             "fid_test_half_vs_half": M.fid(feats[: len(feats) // 2], feats[len(feats) // 2 :])}
    result = {
        "what": f"first {args.n} fmnist train images (as 'fake') vs first {args.n} test images (reference)",
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}",
        "scores": {k: v for k, v in scores.items() if k != "protocol"},
        "is_of_test_images": [test_is["is"], test_is["is_std"]],
        "scale": scale,
        "protocol": scores["protocol"],
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    p = scores["protocol"]
    lines = [
        "# Fashion-MNIST floors (real train vs real test)",
        "",
        f"Extractor `{p['extractor']['name']}` (sha256 {p['extractor']['weights_sha256'][:12]}...), "
        f"n_real = {p['n_real']}, n_fake = {p['n_fake']}, reference {p['reference']}, "
        f"KID {p['params']['kid_subsets']} x {p['params']['kid_subset_size']}, seed {p['seed']}. "
        "A generator's scores under this protocol should be read against these.",
        "",
        "| score | train vs test |",
        "|---|---|",
    ]
    for key, label in ROWS:
        v = scores.get(key)
        lines.append(f"| {label} | {v:.6g} |" if isinstance(v, float) else f"| {label} | {v} |")
    lines.append(f"| IS of the test images themselves | {test_is['is']:.4f} +- {test_is['is_std']:.4f} |")
    lines += ["", "Scale: tr(Sigma_test) = {trace_cov_test:.4g}; FID of the test set against itself with "
              "class 0 (T-shirt/top) removed = {fid_test_vs_test_without_class_0:.4g}; FID between the two "
              "halves of the test set (5,000 each) = {fid_test_half_vs_half:.4g}.".format(**scale)]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
