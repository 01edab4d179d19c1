"""Feature extractors: images -> (features, logits), with an explicit, recorded input conversion.

An extractor declares what its network expects (channels, resolution, value
range) and how wide its features are. ``FeatureExtractor.convert`` maps any
image batch onto that, in a fixed order, and ``conversion(...)`` describes the
steps as a dict that goes into every score record, because FID values are only
comparable under the same conversion.

Input convention: uint8 images are in [0, 255]; float images are in [-1, 1]
(what ganforge generators emit) unless ``input_range`` says otherwise.

Registered: ``fmnist-cnn`` (shipped, offline default), ``inception-v3`` (FID
Inception, user-supplied weights), ``pixels`` (flattened pixels) and
``module`` (any user ``nn.Module``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ganforge.errors import ConfigError
from ganforge.registry import EXTRACTORS

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
INCEPTION_FILE = "pt_inception-2015-12-05-6726825d.pth"
INCEPTION_URL = "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/" + INCEPTION_FILE
LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601, for 3 -> 1 channel


def file_sha256(path: str) -> str:
    """sha256 of a file, memoised per (path, size, mtime) so a rewritten file is hashed again."""
    st = os.stat(path)
    return _file_sha256(os.path.abspath(path), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def state_sha256(module: nn.Module) -> str:
    """Hash of a module's tensors (names, dtypes, bytes): identifies in-memory weights."""
    h = hashlib.sha256()
    for k, v in sorted(module.state_dict().items()):
        h.update(k.encode())
        h.update(str(v.dtype).encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """A weights file (.safetensors, or .pth/.pt through ``torch.load(weights_only=True)``) as tensors; a
    ConfigError saying why it was refused (not a weights file, truncated, or a pickle that imports code)."""
    import pickle
    import re

    from safetensors import SafetensorError

    from ganforge.metrics.inception import load_state

    try:
        state = load_state(str(path))
    except pickle.UnpicklingError as e:
        found = re.search(r"GLOBAL ([\w.]+)", str(e))
        what = f" ({found.group(1)})" if found else ""
        raise ConfigError(f"weights file {path} was refused: it is a pickle that imports a callable{what}, which "
                          "could run code. Weights must be plain tensors (a .safetensors file, or "
                          "torch.save(model.state_dict()))") from None
    except (SafetensorError, RuntimeError, OSError, EOFError, ValueError) as e:
        raise ConfigError(f"weights file {path} cannot be read ({type(e).__name__}: "
                          f"{str(e).splitlines()[0][:150] if str(e) else 'empty'})") from None
    if not isinstance(state, dict) or not all(isinstance(k, str) and torch.is_tensor(v) for k, v in state.items()):
        raise ConfigError(f"weights file {path} does not hold a state dict (names -> tensors)")
    return state


def load_checked(net: nn.Module, state: dict[str, torch.Tensor], path: Path, layout: str,
                 optional: tuple[str, ...] = ()) -> None:
    """``net.load_state_dict(state)`` after checking names, shapes, dtypes and finiteness; each mismatch is a
    ConfigError naming the tensor and both shapes. Keys ending in one of ``optional`` may be absent."""
    want = net.state_dict()
    missing = [k for k in want if k not in state and not k.endswith(optional)]
    unexpected = [k for k in state if k not in want]
    if missing or unexpected:
        raise ConfigError(f"{path} is not {layout}: missing tensors {missing[:5]}, "
                          f"unexpected tensors {unexpected[:5]}")
    for k, v in state.items():
        w = want[k]
        if tuple(v.shape) != tuple(w.shape):
            raise ConfigError(f"{path}: tensor {k!r} has shape {tuple(v.shape)}, but {layout} expects "
                              f"{tuple(w.shape)}")
        if w.is_floating_point() and not v.is_floating_point():
            raise ConfigError(f"{path}: tensor {k!r} is {str(v.dtype).replace('torch.', '')}, but {layout} "
                              f"expects floating-point weights")
        if v.is_floating_point() and not bool(torch.isfinite(v).all()):
            raise ConfigError(f"{path}: tensor {k!r} holds NaN or infinite values")
    net.load_state_dict(state, strict=False)


class FeatureExtractor:
    """A network plus the contract of its input.

    ``net(x)`` returns features (N, d) or a tuple (features, logits).
    in_channels / resolution: None = accept as given. value_range: what the net expects.
    """

    def __init__(self, name: str, net: nn.Module | None, *, in_channels: int | None, resolution: int | None,
                 value_range: tuple[float, float], feature_dim: int | None, n_classes: int | None = None,
                 weights_sha256: str | None = None) -> None:
        self.name, self.net = name, net
        self.in_channels, self.resolution = in_channels, resolution
        self.value_range, self.feature_dim, self.n_classes = tuple(value_range), feature_dim, n_classes
        self.weights_sha256 = weights_sha256
        if net is not None:
            net.eval()

    def conversion(self, shape: tuple[int, ...], dtype: torch.dtype,
                   input_range: tuple[float, float] = (-1.0, 1.0)) -> dict[str, Any]:
        """The steps ``convert`` applies to images of ``shape`` (N, C, H, W) and ``dtype``."""
        c, h, w = shape[1], shape[2], shape[3]
        src = (0.0, 255.0) if dtype == torch.uint8 else tuple(float(v) for v in input_range)
        out_c = self.in_channels or c
        if out_c != c and not (c == 1 and out_c == 3) and not (c == 3 and out_c == 1):
            raise ConfigError(f"extractor {self.name!r} takes {self.in_channels}-channel images; cannot convert "
                              f"{c} channels (only 1 -> 3 by repetition and 3 -> 1 by luminance are defined)")
        res = (self.resolution, self.resolution) if self.resolution else (h, w)
        return {
            "input": {"dtype": str(dtype).replace("torch.", ""), "range": list(src), "shape": [c, h, w]},
            "clamp": list(src),
            "channels": f"{c}->{out_c}" + ("" if c == out_c else " repeat" if c == 1 else " luma BT.601"),
            "resize": None if res == (h, w) else {"from": [h, w], "to": list(res), "mode": "bilinear",
                                                  "align_corners": False, "antialias": res[0] < h or res[1] < w},
            "range": list(self.value_range),
        }

    def convert(self, x: torch.Tensor, input_range: tuple[float, float] = (-1.0, 1.0)) -> torch.Tensor:
        """Images -> float32 network input: clamp, channels, resize, value range (in that order)."""
        if x.dim() == 3:
            x = x.unsqueeze(1)
        if x.dim() != 4:
            raise ConfigError(f"images must be (N, C, H, W) or (N, H, W), got shape {tuple(x.shape)}")
        conv = self.conversion(tuple(x.shape), x.dtype, input_range)
        lo, hi = conv["input"]["range"]
        x = ((x.float().clamp(lo, hi) - lo) / (hi - lo))  # -> [0, 1]
        c, out_c = x.shape[1], self.in_channels or x.shape[1]
        if c == 1 and out_c == 3:
            x = x.expand(-1, 3, -1, -1)
        elif c == 3 and out_c == 1:
            x = (x * x.new_tensor(LUMA).view(1, 3, 1, 1)).sum(1, keepdim=True)
        if conv["resize"]:
            r = conv["resize"]
            x = F.interpolate(x, size=tuple(r["to"]), mode="bilinear", align_corners=False, antialias=r["antialias"])
        a, b = self.value_range
        return x * (b - a) + a

    @torch.no_grad()
    def extract(self, images: torch.Tensor | np.ndarray, *, batch_size: int = 500, device: str = "cpu",
                input_range: tuple[float, float] = (-1.0, 1.0)) -> tuple[np.ndarray, np.ndarray | None]:
        """All images -> (features float64 (N, d), logits float64 (N, k) or None), in batches."""
        images = torch.as_tensor(images)
        net = self.net.to(device) if self.net is not None else None
        feats, logits = [], []
        for i in range(0, len(images), batch_size):
            x = self.convert(images[i : i + batch_size], input_range).to(device)
            out = x.flatten(1) if net is None else net(x)
            f, z = (out if isinstance(out, tuple) else (out, None))
            feats.append(f.double().cpu())
            if z is not None:
                logits.append(z.double().cpu())
        f = torch.cat(feats).numpy()
        return f, (torch.cat(logits).numpy() if logits else None)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "weights_sha256": self.weights_sha256, "feature_dim": self.feature_dim,
                "in_channels": self.in_channels, "resolution": self.resolution, "value_range": list(self.value_range)}


class _FeaturesAndLogits(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.net.features_and_logits(x)


@EXTRACTORS.register("fmnist-cnn")
def fmnist_cnn(*, weights: str | None = None) -> FeatureExtractor:
    """The shipped Fashion-MNIST classifier: 128-d penultimate features, 10 logits (offline default)."""
    from ganforge.metrics.fmnist_cnn import FmnistCNN

    path = Path(weights) if weights else WEIGHTS_DIR / "fmnist_cnn.safetensors"
    if not path.is_file():
        raise ConfigError(f"fmnist-cnn weights not found at {path}; train them with scripts/train_fmnist_cnn.py")
    meta_path = path.with_suffix(".json")
    try:
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    except (OSError, ValueError) as e:
        raise ConfigError(f"{meta_path} (the fmnist-cnn layout beside the weights) is not valid JSON: {e}") from None
    widths, dim = meta.get("widths", [32, 64, 128]) if isinstance(meta, dict) else None, \
        meta.get("feature_dim", 128) if isinstance(meta, dict) else None
    if not (isinstance(widths, list | tuple) and len(widths) == 3 and all(_small_int(w) for w in widths)
            and _small_int(dim)):
        raise ConfigError(f"{meta_path} must hold widths (3 integers in 1..4096) and feature_dim (1..4096), got "
                          f"{str(meta)[:120]}")
    net = FmnistCNN(tuple(widths), feature_dim=dim)
    load_checked(net, read_weights(path), path, f"an fmnist-cnn state dict (widths {list(widths)}, feature_dim {dim})")
    return FeatureExtractor("fmnist-cnn", _FeaturesAndLogits(net), in_channels=1, resolution=28,
                            value_range=(-1.0, 1.0), feature_dim=net.embed[2].out_features, n_classes=10,
                            weights_sha256=file_sha256(str(path)))


def _small_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 4096


def inception_weights_path(weights: str | None) -> Path:
    """The user's FID Inception weights file, or a ConfigError naming the file and where to put it."""
    given = weights or os.environ.get("GANFORGE_INCEPTION_WEIGHTS")
    if given and Path(given).expanduser().is_file():
        return Path(given).expanduser()
    why = f"{given} does not exist" if given else "no weights file was given"
    raise ConfigError(
        f"extractor 'inception-v3' needs the FID Inception weights ({why}). Fetch {INCEPTION_FILE} "
        f"(from {INCEPTION_URL}; ~91 MB, the file pytorch-fid and torch-fidelity use), then pass "
        "weights=/path/to/" + INCEPTION_FILE + " or set GANFORGE_INCEPTION_WEIGHTS=/path/to/" + INCEPTION_FILE
        + ". A .safetensors file with the same keys also works."
    )


@EXTRACTORS.register("inception-v3")
def inception_v3(*, weights: str | None = None) -> FeatureExtractor:
    """FID InceptionV3 (pytorch-fid layout): 2048-d pool features, 1008 logits; weights file supplied by the user."""
    from ganforge.metrics.inception import FIDInceptionV3

    path = inception_weights_path(weights)
    net = FIDInceptionV3()
    # num_batches_tracked is absent from old checkpoints
    load_checked(net, read_weights(path), path, f"an FID Inception state dict (the layout of {INCEPTION_FILE})",
                 optional=("num_batches_tracked",))
    return FeatureExtractor("inception-v3", _FeaturesAndLogits(net), in_channels=3, resolution=299,
                            value_range=(-1.0, 1.0), feature_dim=2048, n_classes=1008,
                            weights_sha256=file_sha256(str(path)))


@EXTRACTORS.register("pixels")
def pixels(*, resolution: int | None = None) -> FeatureExtractor:
    """Flattened pixel values in [0, 1] (a baseline with no learned features); optional resize."""
    return FeatureExtractor("pixels", None, in_channels=None, resolution=resolution, value_range=(0.0, 1.0),
                            feature_dim=None)


@EXTRACTORS.register("module")
def from_module(*, module: nn.Module, name: str = "custom", in_channels: int | None = None,
                resolution: int | None = None, value_range: tuple[float, float] = (-1.0, 1.0),
                feature_dim: int | None = None) -> FeatureExtractor:
    """Any user nn.Module returning features (N, d) or (features, logits); weights hashed for the record."""
    if not isinstance(module, nn.Module):
        raise ConfigError(f"extractor 'module' needs module=<torch.nn.Module>, got {type(module).__name__}")
    return FeatureExtractor(name, module, in_channels=in_channels, resolution=resolution, value_range=value_range,
                            feature_dim=feature_dim, weights_sha256=state_sha256(module))


def build_extractor(spec: str | FeatureExtractor | nn.Module, **params: Any) -> FeatureExtractor:
    """A name from EXTRACTORS (with params), an extractor, or a bare nn.Module (wrapped as ``module``)."""
    if isinstance(spec, FeatureExtractor):
        return spec
    if isinstance(spec, nn.Module):
        return from_module(module=spec, **params)
    return EXTRACTORS.build(spec, **params)
