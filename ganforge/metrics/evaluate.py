"""One call from generated images to scores with their protocol: ``evaluate(fake, ref="fmnist-test")``.

The pipeline is the three layers of this package: an extractor turns real and
fake images into features (and logits), the reference features are cached on
disk keyed by everything that changes them (and kept in memory for the next
call in the same process), and the pure math in
``ganforge.metrics.math`` computes each score. The returned ``protocol``
records what a reader needs to compare two numbers (extractor and weights
hash, input conversion, sample counts, reference split, seed, version):
FID from a different protocol is a different number.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganforge.errors import ConfigError
from ganforge.metrics import math as M
from ganforge.metrics.extractors import FeatureExtractor, build_extractor
from ganforge.metrics.stats import load_reference, reference_key, save_reference, stats_cache_dir

log = logging.getLogger("ganforge")

VALID_METRICS = ("fid", "kid", "pr", "dc", "is", "classes")
NEEDS_LOGITS = ("is", "classes")


def _version() -> str:
    import ganforge

    return getattr(ganforge, "__version__", "0.1.0")


def reference_images(ref: str, n: int, params: dict[str, Any] | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor | None, str, str]:
    """``"<dataset>-<split>"`` (e.g. ``fmnist-test``) -> first n images, labels, dataset name, split.

    ``params`` go to the dataset factory besides ``split`` (e.g. ``{"resolution": 32}``, so that the
    reference goes through the same conversion as 32x32 generated images).
    """
    import ganforge.components  # noqa: F401  (fills the dataset registry)
    from ganforge.registry import DATASETS

    name, _, split = ref.rpartition("-")
    if not name or name not in DATASETS or split not in ("train", "test"):
        raise ConfigError(f"ref must be '<dataset>-<split>' with split train or test (e.g. 'fmnist-test'), "
                          f"got {ref!r}. "
                          f"Datasets: {', '.join(DATASETS.names())}")
    if "split" not in DATASETS.params(name):
        raise ConfigError(f"dataset {name!r} has no train/test splits, so it cannot be a named reference; "
                          f"pass the reference images themselves (a tensor, a .npy file or an image folder)")
    data = DATASETS.build(name, split=split, **(params or {}))
    if not data.is_image:
        raise ConfigError(f"reference {ref!r} holds vectors of shape {tuple(data.x.shape[1:])}, not images")
    # The IDX files are stored in shuffled order, so the first n are a fair sample and cacheable.
    y = data.y[:n] if data.y is not None else None
    return data.x[:n], y, name, split


# Dataset parameters that say where files are read from (or whether a cache is used), not which images they
# are: left out of cache keys.
_LOCATION_PARAMS = ("root", "download", "cache")


def default_reference(dataset: str, params: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]] | None:
    """The held-out reference for a model trained on ``dataset`` with ``params``: its test split.

    Returns (``"<dataset>-test"``, the training data's parameters that the factory also takes, such as
    resolution and root), or None when the dataset has no train/test splits.
    """
    import ganforge.components  # noqa: F401
    from ganforge.registry import DATASETS

    if dataset not in DATASETS or "split" not in DATASETS.params(dataset):
        return None
    valid = DATASETS.params(dataset)
    keep = {k: v for k, v in (params or {}).items() if k in valid and k not in ("name", "split", "limit")}
    return f"{dataset}-test", keep


def _key_params(dataset: str, params: dict[str, Any] | None) -> dict[str, Any]:
    """The dataset parameters that change which images a reference holds: not the location, not defaults."""
    from ganforge.registry import DATASETS

    defaults = {k: p.default for k, p in DATASETS.params(dataset).items()}
    return {k: v for k, v in (params or {}).items()
            if k not in _LOCATION_PARAMS and not (k in defaults and defaults[k] == v)}


# Reference features already computed in this process (the trainer evaluates many times against one
# reference): disk-cache key or content hash -> (features, logits, labels). Small and bounded.
_MEMO: dict[str, tuple] = {}
_MEMO_SIZE = 4


def _memo_put(key: str, value: tuple) -> tuple:
    while len(_MEMO) >= _MEMO_SIZE:
        _MEMO.pop(next(iter(_MEMO)))
    _MEMO[key] = value
    return value


def _content_key(x: torch.Tensor, ex: FeatureExtractor, conv: dict[str, Any]) -> str:
    """A key for caller-given reference images: their bytes, the extractor's weights and the conversion."""
    import hashlib
    import json

    h = hashlib.sha256(x.detach().cpu().contiguous().numpy().tobytes())
    h.update(json.dumps([str(x.dtype), list(x.shape), ex.name, ex.weights_sha256, conv], sort_keys=True).encode())
    return "images-" + h.hexdigest()


def _as_images(x, what: str) -> torch.Tensor:
    """A tensor/array of images as (N, C, H, W); (N, H, W) gets a channel axis. Checks dtype and finiteness."""
    if isinstance(x, np.ndarray) and x.dtype.hasobject:
        raise ConfigError(f"{what} hold Python objects (dtype object); give uint8 or float images")
    x = torch.as_tensor(x)
    if x.dim() == 3:
        x = x.unsqueeze(1)
    if x.dim() != 4:
        raise ConfigError(f"{what} must be images (N, C, H, W) or (N, H, W), got shape {tuple(x.shape)}")
    if x.dtype != torch.uint8 and not x.is_floating_point():
        raise ConfigError(f"{what} have dtype {str(x.dtype).replace('torch.', '')}; images are uint8 (0..255) "
                          "or float (in the input range, default -1..1)")
    if min(x.shape[1:]) < 1:
        raise ConfigError(f"{what} have shape {tuple(x.shape)}: images need a channel and a size of at least 1x1")
    if x.is_floating_point():
        bad = int((~torch.isfinite(x)).sum())
        if bad:
            raise ConfigError(f"{what} hold {bad:,} NaN or infinite values; scores of such images mean nothing "
                              "(did the generator diverge?)")
    return x


def _reference_features(ref, n: int, ex: FeatureExtractor, batch_size: int, device: str, cache: bool,
                        ref_params: dict[str, Any] | None = None):
    """(features, logits, labels, protocol fields) of the reference, from the memo or disk cache when possible."""
    if isinstance(ref, str):
        x, y, name, split = reference_images(ref, n, ref_params)
        conv = ex.conversion(tuple(x.shape), x.dtype)
        info = {"reference": f"{name}/{split}", "conversion_real": conv}
        if ref_params:
            info["reference_params"] = dict(ref_params)
        key = reference_key(dataset=name, split=split, extractor=ex.name, weights_sha256=ex.weights_sha256,
                            n=len(x), conversion=conv, extra=_key_params(name, ref_params))
        keyed = cache and ex.weights_sha256  # unknown weights (pixels) are cheap anyway; never cache unkeyed features
        mkey = f"{stats_cache_dir()}|{key}"  # the memo mirrors one disk cache: a new GANFORGE_CACHE starts afresh
        if keyed and mkey in _MEMO:
            return (*_MEMO[mkey], info)
        hit = load_reference(key) if keyed else None
        if hit is not None:
            arrays, _ = hit
            logits = arrays["logits"].astype(np.float64) if "logits" in arrays else None
            return (*_memo_put(mkey, (arrays["features"].astype(np.float64), logits, arrays.get("labels"))), info)
        f, z = ex.extract(x, batch_size=batch_size, device=device)
        labels = y.numpy() if y is not None else None
        if keyed:
            # Networks compute in float32, so storing float32 loses nothing and halves the file.
            arrays = {"features": f.astype(np.float32)}
            if z is not None:
                arrays["logits"] = z.astype(np.float32)
            if labels is not None:
                arrays["labels"] = labels
            save_reference(key, arrays, {"ref": ref, "extractor": ex.describe(), "conversion": conv})
            _memo_put(mkey, (f, z, labels))
        return f, z, labels, info
    x = _as_images(ref, "reference images")[:n]
    if len(x) < 2:
        raise ConfigError(f"need at least 2 reference images, got {len(x)}")
    conv = ex.conversion(tuple(x.shape), x.dtype)
    info = {"reference": "images given by the caller", "conversion_real": conv}
    key = _content_key(x, ex, conv) if cache and ex.weights_sha256 else None
    if key is not None and key in _MEMO:
        return (*_MEMO[key], info)
    f, z = ex.extract(x, batch_size=batch_size, device=device)
    if key is not None:
        _memo_put(key, (f, z, None))
    return f, z, None, info


def _check_comparable(ex: FeatureExtractor, fake: torch.Tensor, real_shape: list[int], ff: np.ndarray,
                      rf: np.ndarray) -> list[str]:
    """Fake and real images of different sizes: an error when their features differ in width (the scores
    would compare different things), else a warning (both sides were resized to the extractor's input)."""
    fake_shape = [int(v) for v in fake.shape[1:]]
    if ff.shape[1] != rf.shape[1]:
        raise ConfigError(f"fake images are {_size(fake_shape)} and the reference {_size(real_shape)}; extractor "
                          f"{ex.name!r} gives them features of different widths ({ff.shape[1]} vs {rf.shape[1]}), "
                          "so no score compares them. Give both one size (--ref-resolution, or pixels with a "
                          "resolution)")
    if fake_shape[1:] == list(real_shape[1:]):
        return []
    note = (f"fake images are {_size(fake_shape)} but the reference images are {_size(real_shape)}; both were "
            f"resized to the extractor's input, which biases the scores (match them with --ref-resolution)")
    log.warning(note)
    return [note]


def _size(shape) -> str:
    return f"{shape[1]}x{shape[2]} ({shape[0]} channel{'s' if shape[0] != 1 else ''})"


def min_images(metric: str, pr_k: int = 3, dc_k: int = 5) -> tuple[int, str]:
    """The fewest images per side ``metric`` needs, and why (checked before any math runs)."""
    return {"fid": (2, "a covariance"), "kid": (2, "a kernel estimate"), "pr": (pr_k + 1, f"k = {pr_k} neighbours"),
            "dc": (dc_k + 1, f"k = {dc_k} neighbours"), "is": (1, "a class distribution"),
            "classes": (1, "a histogram")}[metric]


def _check_counts(metrics: Sequence[str], n_real: int, n_fake: int, pr_k: int, dc_k: int) -> None:
    for m in metrics:
        k, why = min_images(m, pr_k, dc_k)
        if min(n_real, n_fake) < k:
            raise ConfigError(f"metric {m} needs at least {k} images on each side ({why}); got {n_real} real and "
                              f"{n_fake} fake. Give more images (--n) or drop {m} from --metrics")


def evaluate(
    fake: torch.Tensor | np.ndarray,
    *,
    ref: str | torch.Tensor | np.ndarray = "fmnist-test",
    metrics: Sequence[str] = ("fid", "kid", "pr", "dc", "is"),
    n: int = 10000,
    extractor: str | FeatureExtractor | torch.nn.Module = "fmnist-cnn",
    extractor_params: dict[str, Any] | None = None,
    seed: int = 0,
    batch_size: int = 500,
    device: str = "cpu",
    input_range: tuple[float, float] = (-1.0, 1.0),
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    pr_k: int = 3,
    dc_k: int = 5,
    is_splits: int = 10,
    cache: bool = True,
    ref_params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Score generated images against a reference set.

    fake: (N, C, H, W) or (N, H, W) images, uint8 in [0, 255] or float in ``input_range``
        (default [-1, 1], the generators' tanh range). The first ``n`` are used.
    ref: ``"<dataset>-<split>"`` (default ``"fmnist-test"``; its first ``n`` images) or real images
        (uint8 in [0, 255] or float in [-1, 1]). ``ref_params`` go to the dataset factory (e.g.
        ``{"resolution": 32}``).
    metrics: any of fid, kid, pr (precision/recall, k = pr_k), dc (density/coverage, k = dc_k),
        is (Inception Score on the extractor's logits), classes (class histogram vs the reference labels).
    Returns flat scores (``fid``, ``kid``, ``kid_std``, ``precision``, ``recall``, ``density``,
    ``coverage``, ``is``, ``is_std``, ``classes_covered``, ``class_kl``, ...) and ``protocol``.
    Metrics that need logits are skipped (listed in ``protocol["skipped"]``) when the extractor has none.
    """
    bad = [m for m in metrics if m not in VALID_METRICS]
    if bad:
        raise ConfigError(f"unknown metric(s) {bad}. Valid metrics: {', '.join(VALID_METRICS)}")
    if n < 2:
        raise ConfigError(f"n must be >= 2, got {n}")
    t0 = time.time()
    ex = build_extractor(extractor, **(extractor_params or {}))
    fake = _as_images(fake, "generated samples")[:n]
    if len(fake) < 2:
        raise ConfigError(f"need at least 2 fake images, got {len(fake)}")
    ff, fz = ex.extract(fake, batch_size=batch_size, device=device, input_range=input_range)
    rf, rz, ry, ref_info = _reference_features(ref, n, ex, batch_size, device, cache, ref_params)
    notes = _check_comparable(ex, fake, ref_info["conversion_real"]["input"]["shape"], ff, rf)
    _check_counts(metrics, len(rf), len(ff), pr_k, dc_k)

    out: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    subset = min(kid_subset_size, len(rf), len(ff))
    for m in metrics:
        if m in NEEDS_LOGITS and fz is None:
            skipped[m] = f"extractor {ex.name!r} has no logits"
        elif m == "fid":
            out["fid"] = M.fid(rf, ff)
        elif m == "kid":
            out["kid"], out["kid_std"] = M.kid(rf, ff, subsets=kid_subsets, subset_size=subset, seed=seed)
        elif m == "pr":
            out["precision"], out["recall"] = M.precision_recall(rf, ff, k=pr_k)
        elif m == "dc":
            out["density"], out["coverage"] = M.density_coverage(rf, ff, k=dc_k)
        elif m == "is":
            out["is"], out["is_std"] = M.inception_score(fz, splits=min(is_splits, len(fz)))
        elif m == "classes":
            if ry is None:
                skipped[m] = "the reference has no labels"
                continue
            h = M.class_histogram_metrics(fz.argmax(1), ry, fz.shape[1])
            out.update(classes_covered=h["classes_covered"], class_kl=h["kl"], class_histogram=h["histogram"])
    out["protocol"] = {
        "extractor": ex.describe(),
        **ref_info,
        "conversion_fake": ex.conversion(tuple(fake.shape), fake.dtype, input_range),
        "n_real": len(rf),
        "n_fake": len(ff),
        "seed": seed,
        "metrics": list(metrics),
        "params": {"kid_subsets": kid_subsets, "kid_subset_size": subset, "kid_kernel": "(x.y/d + 1)^3",
                   "pr_k": pr_k, "dc_k": dc_k, "is_splits": is_splits, "covariance": "unbiased (n-1)"},
        "skipped": skipped,
        **({"warnings": notes} if notes else {}),
        "ganforge_version": _version(),
        "seconds": round(time.time() - t0, 2),
    }
    return out


def load_images(path: str | Path) -> torch.Tensor:
    """A folder of PNG/JPEG files (sorted by name) or a ``.npy`` array -> image tensor (N, C, H, W).

    ``.npy`` may be NCHW or NHWC (channels last when the last axis is 1 or 3 and
    the second is not); uint8 stays uint8, floats are taken to be in [-1, 1].
    A ``.npy`` is never unpickled (object arrays are refused), and its header is checked against its size
    before anything is allocated. Unreadable images in a folder are skipped with one warning.
    Every problem is a ConfigError naming the file and what a valid input is.
    """
    from ganforge.data.npy import read_npy

    path = Path(path)
    if path.suffix == ".npy":
        if not path.is_file():
            raise ConfigError(f"{path} is not a file")
        try:
            a = read_npy(path)
        except (ValueError, OSError, EOFError) as e:
            raise ConfigError(f"{path} cannot be read as images: {e}. Expected a .npy array of images "
                              "(N, C, H, W) or (N, H, W, C), uint8 or float, saved with numpy.save") from None
        if a.ndim == 3:
            a = a[:, None]
        if a.ndim != 4:
            raise ConfigError(f"{path}: expected images (N, C, H, W) or (N, H, W, C), got shape {a.shape}")
        if a.shape[-1] in (1, 3) and a.shape[1] not in (1, 3):
            a = a.transpose(0, 3, 1, 2)
        if len(a) == 0:
            raise ConfigError(f"{path} holds no images (shape {a.shape}); it needs at least 2")
        return _as_images(np.ascontiguousarray(a), f"the images in {path}")
    if not path.is_dir():
        raise ConfigError(f"{path} is neither a folder of images nor a .npy file")
    from ganforge.data.images import bad_image_errors, open_image, report_skipped

    files = sorted(p for p in path.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg") and p.is_file())
    if not files:
        raise ConfigError(f"no .png/.jpg images in {path}")
    arrays, skipped, bad = [], [], bad_image_errors()
    for f in files:
        try:
            with open_image(f) as im:
                a = np.asarray(im.convert("L" if im.mode in ("L", "I", "1", "LA") else "RGB"))
        except bad as e:
            skipped.append((f, str(e).splitlines()[0][:100] if str(e) else type(e).__name__))
            continue
        arrays.append(a[None] if a.ndim == 2 else a.transpose(2, 0, 1))
    if not arrays:
        raise ConfigError(f"no readable images in {path}: all {len(files)} .png/.jpg files failed to decode "
                          f"(e.g. {skipped[0][0].name}: {skipped[0][1]})")
    report_skipped(skipped, len(files), path)
    if len({a.shape for a in arrays}) != 1:
        raise ConfigError(f"images in {path} differ in size/channels: {sorted({a.shape for a in arrays})[:4]}")
    return torch.from_numpy(np.stack(arrays))


def evaluate_path(path: str | Path, **kwargs: Any) -> dict[str, Any]:
    """``evaluate`` on a folder of images or a ``.npy`` array (see ``load_images``)."""
    out = evaluate(load_images(path), **kwargs)
    out["protocol"]["fake_source"] = str(path)
    return out
