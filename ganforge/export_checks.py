"""The checks ``ganforge.load`` runs on an export folder before it builds or reads anything large.

An export folder is user input: a manifest could name a net a billion units wide, a weights file could hold
int8 tensors, other shapes, NaN. In order: ``check_manifest`` (types, registered names, the game's roles,
every integer at most ``MAX_INT``), ``expected_state`` (the networks built on PyTorch's meta device, which
allocates nothing, and refused above ``MAX_VALUES`` values), ``check_tensors`` (each tensor's name, dtype
and shape from the safetensors header, ``read_header``, against those networks) and, once the weights are
read, ``check_finite``. Each failure is a CheckpointError naming the key or the tensor.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from ganforge.errors import CheckpointError, ConfigError

MAX_INT = 65_536  # no width, depth, size or latent dimension of a ganforge net comes near this
MAX_VALUES = 250_000_000  # values in all exported tensors together (1 GB as float32)
_ST_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
              "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
              "BOOL": torch.bool}


def read_header(path: Path) -> dict[str, tuple[tuple[int, ...], torch.dtype | str]]:
    """name -> (shape, dtype) from a safetensors header, without reading any tensor."""
    from safetensors import safe_open

    out = {}
    with safe_open(str(path), framework="pt") as f:
        for k in f.keys():
            sl = f.get_slice(k)
            out[k] = (tuple(sl.get_shape()), _ST_DTYPES.get(sl.get_dtype(), sl.get_dtype()))
    return out


def _fail(where: Path | str, key: str, want: str, got: Any) -> None:
    raise CheckpointError(f"{where}: {key} must be {want}, got {str(repr(got))[:80]}; "
                          "re-export the run with `ganforge export`")


def _is_int(v: Any, lo: int = 0) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= MAX_INT


def _check_ints(value: Any, key: str, where: Path | str) -> None:
    """Every integer in a factory's arguments (widths, depths, sizes) must be at most MAX_INT."""
    if isinstance(value, dict):
        for k, v in value.items():
            _check_ints(v, f"{key}.{k}", where)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_ints(v, f"{key}[{i}]", where)
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
        _fail(where, key, f"at most {MAX_INT:,} (no ganforge net is that large)", value)
    elif isinstance(value, float) and not math.isfinite(value):
        _fail(where, key, "a finite number", value)


def _shape(v: Any) -> bool:
    return isinstance(v, list) and 1 <= len(v) <= 4 and all(_is_int(d, 1) for d in v)


def check_manifest(m: dict, where: Path | str) -> None:
    """The manifest's types, names and sizes; a CheckpointError naming the first bad key."""
    import ganforge.components  # noqa: F401  (registries)
    from ganforge.registry import GAMES, NETS

    game = m["game"]
    if not isinstance(game, dict) or not isinstance(game.get("name"), str):
        _fail(where, "game", "a mapping with a name", game)
    if game["name"] not in GAMES:
        raise CheckpointError(f"{where}: {GAMES.unknown_message(game['name'])}")
    _check_ints(game, "game", where)
    roles = m["roles"]
    if not isinstance(roles, dict) or not roles:
        _fail(where, "roles", "a mapping of role -> net", roles)
    valid = GAMES.get(game["name"]).roles
    for role, spec in roles.items():
        if role not in valid:
            raise CheckpointError(f"{where}: unknown role {role!r} for game {game['name']!r}. "
                                  f"Valid roles: {', '.join(valid)}")
        key = f"roles.{role}"
        if not isinstance(spec, dict) or not isinstance(spec.get("net"), dict):
            _fail(where, key, "a mapping with net, in_shape, out_shape, n_classes", spec)
        name = spec["net"].get("name")
        if not isinstance(name, str) or name not in NETS:
            raise CheckpointError(f"{where}: {key}.net.name: " + (NETS.unknown_message(name) if isinstance(name, str)
                                                                  else f"must be a net name, got {name!r}"))
        _check_ints(spec["net"], f"{key}.net", where)
        for k in ("in_shape", "out_shape"):
            if not _shape(spec.get(k)):
                _fail(where, f"{key}.{k}", f"a list of 1 to 4 sizes in 1..{MAX_INT:,}", spec.get(k))
        if not _is_int(spec.get("n_classes")):
            _fail(where, f"{key}.n_classes", f"an integer in 0..{MAX_INT:,}", spec.get("n_classes"))
    z_dim = game.get("z_dim")
    if z_dim is not None and "g" in roles and roles["g"]["in_shape"] != [z_dim]:
        raise CheckpointError(f"{where}: game.z_dim is {z_dim} but roles.g.in_shape is {roles['g']['in_shape']}; "
                              "the two must agree")
    if not (isinstance(m["step"], int) and not isinstance(m["step"], bool) and m["step"] >= 0):
        _fail(where, "step", "an integer >= 0", m["step"])
    if not isinstance(m["ema"], bool):
        _fail(where, "ema", "true or false", m["ema"])
    data = m["data"]
    if not isinstance(data, dict) or not _shape(data.get("shape")):
        _fail(where, "data.shape", f"a list of 1 to 4 sizes in 1..{MAX_INT:,}", (data or {}).get("shape")
              if isinstance(data, dict) else data)
    w = m.get("weights", {})
    if not isinstance(w, dict) or not isinstance(w.get("file", ""), str):
        _fail(where, "weights", "a mapping with file and sha256", w)
    sha = w.get("sha256")
    if sha is not None and not (isinstance(sha, str) and len(sha) == 64 and all(c in "0123456789abcdef" for c in sha)):
        _fail(where, "weights.sha256", "64 hex digits", sha)


def expected_state(manifest: dict, where: Path | str) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """name -> (shape, dtype) of every tensor the manifest's networks and game hold, from modules built on the
    meta device (no memory); a CheckpointError when they cannot be built or exceed MAX_VALUES values."""
    import ganforge.components  # noqa: F401
    from ganforge.nets import build_net
    from ganforge.registry import GAMES

    gparams = dict(manifest["game"])
    out: dict[str, tuple[tuple[int, ...], torch.dtype]] = {}
    try:
        with torch.device("meta"):
            game = GAMES.build(gparams.pop("name"), **gparams)
            for role, spec in manifest["roles"].items():
                net = dict(spec["net"])
                m = build_net(net.pop("name"), in_shape=spec["in_shape"], out_shape=spec["out_shape"],
                              n_classes=spec["n_classes"], **net)
                out.update({f"nets.{role}.{k}": (tuple(v.shape), v.dtype) for k, v in m.state_dict().items()})
    except (ConfigError, TypeError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{where}: the networks it describes cannot be built: {str(e)[:200]}") from None
    for k, v in game.named_buffers(recurse=False):
        shape = tuple(v.shape)
        if k == "class_freq":  # a conditional generator's class frequencies: one per class
            shape = (manifest["roles"].get("g", {}).get("n_classes") or 1,)
        out[k] = (shape, v.dtype)
    total = sum(math.prod(s) for s, _ in out.values())
    if total > MAX_VALUES:
        raise CheckpointError(f"{where}: the networks it describes hold {total:,} values ({total * 4 / 1e9:,.1f} GB "
                              f"as float32), over the limit of {MAX_VALUES:,}; refusing to build them (a damaged or "
                              "hostile manifest?)")
    return out


def check_tensors(expected: dict[str, tuple[tuple[int, ...], Any]], got: dict[str, tuple[tuple[int, ...], Any]],
                  where: str) -> None:
    """Names, dtypes and shapes of the tensors in a file against what the networks need (game buffers are
    optional: an export may leave them out)."""
    nets = {k for k in expected if k.startswith("nets.")}
    missing = sorted(nets - set(got))
    unknown = sorted(set(got) - set(expected))
    if missing:
        raise CheckpointError(f"{where} lacks {len(missing)} tensors the networks need, e.g. {missing[0]!r}")
    if unknown:
        raise CheckpointError(f"{where} holds {len(unknown)} tensors the networks do not have, e.g. {unknown[0]!r}")
    for k, (shape, dtype) in got.items():
        want_shape, want_dtype = expected[k]
        if tuple(shape) != tuple(want_shape):
            raise CheckpointError(f"{where}: tensor {k!r} has shape {tuple(shape)}, but the network expects "
                                  f"{tuple(want_shape)}")
        if dtype != want_dtype:
            name = str(dtype).replace("torch.", "")
            raise CheckpointError(f"{where}: tensor {k!r} is {name}, but the network expects "
                                  f"{str(want_dtype).replace('torch.', '')}; refusing to convert it")


def check_finite(tensors: dict[str, torch.Tensor], where: str) -> None:
    """NaN or infinite weights would sample NaN without a word: refuse them."""
    for k, v in tensors.items():
        if v.is_floating_point():
            bad = int((~torch.isfinite(v)).sum())
            if bad:
                raise CheckpointError(f"{where}: tensor {k!r} holds {bad:,} NaN or infinite values (the run had "
                                      "diverged when it was exported); refusing to load it")
    freq = tensors.get("class_freq")
    if freq is not None and (bool((freq < 0).any()) or not float(freq.sum()) > 0):
        raise CheckpointError(f"{where}: tensor 'class_freq' must hold non-negative class frequencies with a "
                              "positive sum")
