"""Evaluation in three layers (C6): feature extractors -> streaming float64 statistics -> pure math.

- ``extractors``: images -> features/logits with a recorded input conversion
  (``fmnist-cnn`` shipped, ``inception-v3`` with user weights, ``pixels``, any module);
- ``stats``: streaming mean/covariance (n - 1) and the reference-statistics cache;
- ``math``: FID, KID, precision/recall, density/coverage, IS, class histograms, PSNR, SSIM;
- ``evaluate``: one call from generated images to scores plus their protocol;
- ``modes``: mode-collapse diagnostics on toy mixtures.

Importing this package registers metrics and extractors; the networks and
weights load only when an extractor is built.
"""

from ganforge.metrics import extractors, math, modes, stats
from ganforge.metrics.evaluate import evaluate, evaluate_path, load_images
from ganforge.metrics.extractors import FeatureExtractor, build_extractor
from ganforge.metrics.math import (
    class_histogram_metrics,
    density_coverage,
    fid,
    fid_from_stats,
    inception_score,
    kid,
    precision_recall,
    psnr,
    ssim,
)
from ganforge.metrics.stats import RunningStats

__all__ = [
    "FeatureExtractor",
    "RunningStats",
    "build_extractor",
    "class_histogram_metrics",
    "density_coverage",
    "evaluate",
    "evaluate_path",
    "extractors",
    "fid",
    "fid_from_stats",
    "inception_score",
    "kid",
    "load_images",
    "math",
    "modes",
    "precision_recall",
    "psnr",
    "ssim",
    "stats",
]
