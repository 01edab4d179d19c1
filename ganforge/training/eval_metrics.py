"""Image metrics at the trainer's evaluations: ``eval.metrics``, ``eval.extractor``, ``eval.ref``.

    eval: {every: 1000, n: 2500, metrics: [fid, kid, pr, dc, is]}

For image data, each evaluation scores its ``eval.n`` samples with
``ganforge.metrics.evaluate`` against ``eval.ref`` (default: the training
dataset's test split at the training resolution, e.g. ``fmnist-test``; for a
dataset without splits, its first ``eval.n`` training images). Reference
features are computed once per process (and cached on disk for named
references), so an evaluation costs the fake side only. Scores go to
metrics.jsonl as flat numbers; the protocol they were made under (extractor
and weights hash, conversions, n_real, n_fake, reference, seed, version) is
written to RUN_DIR/eval_protocol.json, since a score means little without it.
Note that eval.n is usually smaller than the 10,000 of ``ganforge eval``, and
FID is biased upward at small n: compare training curves with each other, and
final models with ``ganforge eval``.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import torch

from ganforge import rundir
from ganforge.data.base import Dataset
from ganforge.errors import ConfigError
from ganforge.training.evaluation import EVALUATORS
from ganforge.training.hooks import HOOK_FACTORIES, Hook

PROTOCOL_FILE = "eval_protocol.json"


@functools.lru_cache(maxsize=2)
def _extractor(name: str):
    """Built once per process: loading and hashing the weights is not repeated at every evaluation."""
    from ganforge.metrics.extractors import build_extractor

    return build_extractor(name)


@functools.lru_cache(maxsize=1)
def _images(path: str) -> torch.Tensor:
    """Real images from a folder or .npy, read once per process."""
    from ganforge.metrics.evaluate import load_images

    return load_images(path)


def reference_for(data: Dataset, ref: str | None = None) -> tuple[Any, dict[str, Any] | None, str]:
    """(ref for ``evaluate``, dataset params, description) for a model of ``data``; ``ref`` as in ``eval.ref``
    (``<dataset>-<split>``, a folder or ``.npy`` of real images, or None).

    A named reference gets the training data's resolution and folder, so real and generated images go
    through the same conversion to the extractor. ``ganforge eval`` on a run uses the same choice.
    """
    from ganforge.metrics.evaluate import default_reference

    params = {k: data.info[k] for k in ("resolution", "resize") if k in data.info}  # same pixels as training
    if "source" in data.info:
        params["root"] = data.info["source"]  # the folder the training data came from
    if ref and (ref.endswith(".npy") or Path(ref).is_dir()):
        return _images(ref), None, f"images from {ref}"
    if ref:
        auto = default_reference(ref.rpartition("-")[0], params)
        return ref, (auto[1] if auto else None), ref
    auto = default_reference(data.name, params)
    if auto is not None:
        return auto[0], auto[1], auto[0]
    return data.x, None, f"training data ({data.name})"


# What each metric adds to the record (NaN when the samples are not finite).
_KEYS = {"fid": ("fid",), "kid": ("kid", "kid_std"), "pr": ("precision", "recall"), "dc": ("density", "coverage"),
         "is": ("is", "is_std"), "classes": ("classes_covered", "class_kl")}
_LAST_PROTOCOL: dict[int, dict] = {}  # id(reference dataset) -> protocol of its latest evaluation


def image_metrics(data: Dataset, x: torch.Tensor, ecfg=None) -> dict:
    """Scores of samples ``x`` ((N, C, H, W) in [-1, 1], on CPU) for metrics.jsonl; {} when none are asked."""
    if ecfg is None or not getattr(ecfg, "metrics", None):
        return {}
    if not torch.isfinite(x).all():  # a diverged generator: no score, but training goes on
        return {k: float("nan") for m in ecfg.metrics for k in _KEYS[m]}
    from ganforge.metrics.evaluate import evaluate

    ref, ref_params, desc = reference_for(data, ecfg.ref)
    out = evaluate(x, ref=ref, ref_params=ref_params, metrics=tuple(ecfg.metrics), n=len(x),
                   extractor=_extractor(ecfg.extractor), seed=ecfg.seed)
    protocol = out.pop("protocol")
    if not isinstance(ref, str):
        protocol["reference"] = desc
    _LAST_PROTOCOL[id(data)] = protocol
    return {k: v for k, v in out.items() if isinstance(v, (int, float))}  # the class histogram stays out


class ProtocolHook(Hook):
    """Writes the protocol of the latest image-metric evaluation to RUN_DIR/eval_protocol.json."""

    def on_eval(self, trainer, record: dict, samples) -> None:
        protocol = _LAST_PROTOCOL.pop(id(trainer.game.eval_reference()), None)
        if protocol is not None:
            path = Path(trainer.run_dir) / PROTOCOL_FILE
            rundir.write_text(trainer.run_dir, path, json.dumps({"step": record["step"], "protocol": protocol},
                                                                indent=2) + "\n")


def _protocol_hook(trainer) -> Hook | None:
    """For runs with eval.metrics on image data: check the setup at start (not at the first evaluation)."""
    ecfg = trainer.cfg.eval
    data = trainer.game.eval_reference()
    if not ecfg.metrics:
        return None
    if not data.is_image:
        raise ConfigError(f"eval.metrics {list(ecfg.metrics)} score images, but {data.name!r} holds vectors of "
                          f"shape {tuple(data.x.shape[1:])}; leave eval.metrics empty for it")
    if ecfg.n < 2:
        raise ConfigError(f"eval.metrics need eval.n >= 2 samples, got {ecfg.n}")
    _extractor(ecfg.extractor)  # a missing weights file fails now
    ref, params, _ = reference_for(data, ecfg.ref)
    if isinstance(ref, str):
        from ganforge.metrics.evaluate import reference_images

        reference_images(ref, 2, params)  # a bad reference name fails now
    return ProtocolHook()


EVALUATORS.append((lambda d: d.is_image, image_metrics, None))
HOOK_FACTORIES.append(_protocol_hook)
