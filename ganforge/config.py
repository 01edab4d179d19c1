"""Typed configs: a YAML file, dotted overrides, validation that names the valid choices.

A run's config has typed sections (``train``, ``eval``, ``checkpoint``: the
dataclasses below) and component sections (``game``, ``data``, ``objective``,
``nets.<role>``, ``optim.<group>``, ``penalties``) whose keys are the keyword
parameters of the registered factory they name. Resolution fills in every
default, so the resolved config written into the run directory and every
checkpoint says exactly what ran.

    cfg = load_config("configs/toy/ring.yaml", ["--train.steps=500", "--objective.name=hinge"])
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ganforge.errors import ConfigError


@dataclass
class TrainConfig:
    """The training loop."""

    steps: int = 5000           # total generator steps; with --resume a larger value extends the run
    batch_size: int = 64
    d_steps: int = 1            # critic steps per generator step (Goodfellow's k)
    seed: int = 0
    device: str = "auto"        # auto (CUDA when present) | cpu | cuda | cuda:N
    grad_clip: float | None = None   # max gradient norm per phase, or null
    ema: float | None = None    # decay of an EMA copy of the game's ema_roles (e.g. 0.999), or null
    log_every: int = 50         # steps between loss records in losses.jsonl
    threads: int | None = 0     # torch CPU threads; 0 (or null): the CPUs this process may use (OMP_NUM_THREADS if set)
    precision: str = "fp32"     # fp32 | bf16 (autocast, CPU or GPU) | fp16 (autocast + grad scaler, CUDA only)
    channels_last: bool = False  # NHWC memory layout for 4D weights and batches (faster convolutions)
    compile: bool = False       # torch.compile every network (nn.Module.compile, in place)
    lr_decay_start: int | None = None  # step where every optimizer's lr starts a linear decay to 0, or null
    lr_decay_steps: int = 0     # steps the decay takes (lr = 0 from lr_decay_start + lr_decay_steps on)
    max_nonfinite: int = 20     # non-finite losses in a row before the run stops (last good checkpoint kept)
    tensorboard: bool = True    # mirror losses, metrics, learning rates and samples to RUN_DIR/tb


@dataclass
class EvalConfig:
    """Evaluation during training: metrics.jsonl and sample figures."""

    every: int = 1000           # steps between evaluations (0: only at the end)
    n: int = 2500               # samples drawn per evaluation
    seed: int = 1234            # seed of the evaluation noise (never touches the training RNG)
    samples: bool = True        # write a sample figure at each evaluation
    metrics: tuple[str, ...] = ()  # image metrics per evaluation: fid, kid, pr, dc, is, classes ([]: none)
    extractor: str = "fmnist-cnn"  # their feature extractor (`ganforge list extractors`)
    ref: str | None = None      # their reference: fmnist-test, a folder/.npy of real images, or null (the
                                # data's test split at its resolution; without splits, the data itself)


@dataclass
class CheckpointConfig:
    every: int = 1000           # steps between checkpoints (0: only at the end)
    keep: int = 3               # most recent checkpoints kept


SECTIONS = {"train": TrainConfig, "eval": EvalConfig, "checkpoint": CheckpointConfig}
COMPONENTS = ("game", "data", "objective")
MAPPINGS = ("nets", "optim", "penalties")
TOP_LEVEL = ("name",) + COMPONENTS + MAPPINGS + tuple(SECTIONS)

DEFAULTS: dict[str, Any] = {
    "name": "run",
    "game": {"name": "gan"},
    "data": {"name": "ring"},
    "objective": {"name": "ns"},
    "nets": {},
    "optim": {},
    "penalties": {},
}

RANGES = {  # (section, key): (predicate, description)
    ("train", "steps"): (lambda v: v >= 0, ">= 0"),
    ("train", "batch_size"): (lambda v: v >= 1, ">= 1"),
    ("train", "d_steps"): (lambda v: v >= 1, ">= 1"),
    ("train", "seed"): (lambda v: v >= 0, ">= 0"),
    ("train", "grad_clip"): (lambda v: v is None or v > 0, "> 0 or null"),
    ("train", "ema"): (lambda v: v is None or 0 < v < 1, "in (0, 1) or null"),
    ("train", "log_every"): (lambda v: v >= 1, ">= 1"),
    ("train", "threads"): (lambda v: v is None or v >= 0, ">= 0 (0: all the CPUs this process may use)"),
    ("train", "precision"): (lambda v: v in ("fp32", "bf16", "fp16"), "one of fp32, bf16, fp16"),
    ("train", "lr_decay_start"): (lambda v: v is None or v >= 0, ">= 0 or null"),
    ("train", "lr_decay_steps"): (lambda v: v >= 0, ">= 0"),
    ("train", "max_nonfinite"): (lambda v: v >= 1, ">= 1"),
    ("eval", "every"): (lambda v: v >= 0, ">= 0"),
    ("eval", "n"): (lambda v: v >= 1, ">= 1"),
    ("eval", "seed"): (lambda v: v >= 0, ">= 0"),
    ("eval", "metrics"): (lambda v: set(v) <= {"fid", "kid", "pr", "dc", "is", "classes"},
                          "a list drawn from fid, kid, pr, dc, is, classes"),
    ("eval", "extractor"): (lambda v: _is_extractor(v), "a registered feature extractor other than 'module' "
                            "(`ganforge list extractors`)"),
    ("checkpoint", "every"): (lambda v: v >= 0, ">= 0"),
    ("checkpoint", "keep"): (lambda v: v >= 1, ">= 1"),
}


def _is_extractor(name: str) -> bool:
    from ganforge.registry import EXTRACTORS

    return name in EXTRACTORS and name != "module"  # 'module' needs a Python object, not a config value


# ---------------------------------------------------------------------------------- types
def _type_name(t) -> str:
    return getattr(t, "__name__", None) or str(t).replace("typing.", "")


def coerce(value: Any, annotation: Any, where: str) -> Any:
    """Check ``value`` against a type hint; ints are accepted for floats, lists for tuples."""
    if annotation is inspect.Parameter.empty or annotation is Any:
        return value
    if isinstance(annotation, str):
        annotation = eval(annotation, vars(typing), {})  # hints from `from __future__ import annotations`
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return coerce(value, a, where)
            except ConfigError as e:
                errors.append(str(e))
        if len(errors) == 1:  # Optional[X]: X's own message ("must be a finite number, got nan")
            raise ConfigError(errors[0])
        raise ConfigError(f"{where} must be {' or '.join(_type_name(a) for a in args)}, got {value!r}")
    if origin in (list, tuple, typing.Sequence) or annotation in (list, tuple):
        if isinstance(value, (list, tuple)):
            inner = args[0] if args and args[-1] is not Ellipsis and len(set(args)) == 1 else \
                (args[0] if args else Any)
            return [coerce(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
        raise ConfigError(f"{where} must be a list, got {value!r}")
    if origin is dict or annotation is dict:
        if isinstance(value, dict):
            return value
        raise ConfigError(f"{where} must be a mapping, got {value!r}")
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where} must be true or false, got {value!r}")
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{where} must be an integer, got {value!r}")
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):  # nan/inf would pass every range check below (nan > 0 is False)
                raise ConfigError(f"{where} must be a finite number, got {value!r}")
            return float(value)
        raise ConfigError(f"{where} must be a number, got {value!r}")
    if annotation is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{where} must be a string, got {value!r}")
    return value


def parse_value(text: str) -> Any:
    """An override's value, read as YAML: 1e-4 -> float, true -> bool, [1, 2] -> list, null -> None."""
    try:
        v = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(v, str) and _looks_float(v):
        return float(v)
    return v


def _looks_float(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


# ---------------------------------------------------------------------------- load/merge
def read_yaml(path: str | Path, _chain: tuple[Path, ...] = ()) -> dict:
    """A recipe as a dict; ``base: other.yaml`` (relative to the file) is read first and merged under it."""
    p = Path(path)
    if not p.is_file():
        via = f" (the base of {_chain[-1]})" if _chain else ""
        raise ConfigError(f"config file not found: {p}{via}" + (" (it is a directory)" if p.is_dir() else ""))
    key = p.resolve()
    if key in _chain:
        cycle = " -> ".join(str(c) for c in (*_chain[_chain.index(key):], key))
        raise ConfigError(f"config files include each other in a cycle through base: {cycle}. "
                          "A base chain must end in a file without base:")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {p} is not valid YAML: {e}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {p} is not a text file (not UTF-8); give a YAML recipe") from None
    except OSError as e:
        raise ConfigError(f"cannot read config file {p}: {e.strerror or e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {p} must hold a mapping of sections, got {type(data).__name__}")
    base = data.pop("base", None)
    if base is not None:  # a recipe may extend another: base: ring.yaml (relative to the file)
        if not isinstance(base, str) or not base:
            raise ConfigError(f"config file {p}: base must be the path of another YAML file, got {base!r}")
        data = deep_merge(read_yaml(p.parent / base, (*_chain, key)), data)
    return data


def deep_merge(a: dict, b: dict) -> dict:
    out = copy.deepcopy(a)
    for k, v in b.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict) and not ("name" in v and v.get("name") !=
                                                                         out[k].get("name")):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def parse_overrides(items: list[str]) -> list[tuple[list[str], Any]]:
    out = []
    for item in items:
        s = item[2:] if item.startswith("--") else item
        if "=" not in s:
            raise ConfigError(f"override {item!r} must look like --section.key=value")
        key, val = s.split("=", 1)
        if not key:
            raise ConfigError(f"override {item!r} has no key")
        out.append((key.split("."), parse_value(val)))
    return out


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    raw = copy.deepcopy(raw)
    for path, value in parse_overrides(overrides):
        if path[0] not in TOP_LEVEL:
            raise ConfigError(f"unknown config key {'.'.join(path)!r}. Valid sections: {', '.join(TOP_LEVEL)}")
        node = raw
        for p in path[:-1]:
            nxt = node.get(p)
            if not isinstance(nxt, dict):
                nxt = {}
                node[p] = nxt
            node = nxt
        if path[-1] == "name" and len(path) >= 2 and node.get("name") not in (None, value):
            # switching a component: its old parameters do not carry over
            node.clear()
        node[path[-1]] = value
    return raw


# ------------------------------------------------------------------------------ resolve
def _resolve_section(cls, raw: dict, section: str) -> dict:
    if not isinstance(raw, dict):
        raise ConfigError(f"section {section!r} must be a mapping, got {raw!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    for k in raw:
        if k not in fields:
            raise ConfigError(f"unknown key {section}.{k}. Valid keys: {', '.join(fields)}")
    out = {}
    for name, f in fields.items():
        v = raw.get(name, f.default)
        v = coerce(v, hints[name], f"{section}.{name}")
        check = RANGES.get((section, name))
        if check and not check[0](v):
            raise ConfigError(f"{section}.{name} must be {check[1]}, got {v!r}")
        out[name] = v
    return out


def resolve_component(registry, raw: Any, where: str, *, skip: tuple[str, ...] = ()) -> dict:
    """{name, **params} -> the same with every parameter present, type-checked."""
    if isinstance(raw, str):
        raw = {"name": raw}
    if not isinstance(raw, dict) or "name" not in raw:
        raise ConfigError(f"{where} needs a name. Valid names: {', '.join(registry.names())}")
    name = raw["name"]
    if name not in registry:
        raise ConfigError(f"{where}.name: {registry.unknown_message(name)}")
    params = {k: p for k, p in registry.params(name).items() if k not in skip}
    hints = _hints(registry.get(name))
    out = {"name": name}
    for k, _v in raw.items():
        if k == "name":
            continue
        if k not in params:
            raise ConfigError(f"unknown key {where}.{k} for {registry.kind} {name!r}. "
                              f"Valid keys: {', '.join(['name', *params]) }")
    for k, p in params.items():
        if k in raw:
            out[k] = coerce(raw[k], hints.get(k, p.annotation), f"{where}.{k}")
        elif p.default is not inspect.Parameter.empty:
            d = p.default
            out[k] = list(d) if isinstance(d, tuple) else d
        else:
            raise ConfigError(f"{where}.{k} is required for {registry.kind} {name!r}")
    return out


def check_builds(registry, section: dict, where: str) -> None:
    """Build a light component (objective, penalty) once, so that the range checks in its factory
    (alpha != 1, a positive margin, ...) fail at resolve time and ``--dry-run`` too, not only in training."""
    params = {k: v for k, v in section.items() if k != "name"}
    try:
        registry.build(section["name"], **params)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None


def check_optimizer(registry, section: dict, where: str) -> None:
    """Build the optimizer once on a dummy parameter, so that a bad lr, betas, eps or weight decay fails at
    resolve time (and ``--dry-run``) with the key named, not as torch's ValueError in the first step."""
    import torch

    params = {k: v for k, v in section.items() if k != "name"}
    try:
        registry.get(section["name"])([torch.zeros(1, requires_grad=True)], **params)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None
    except (ValueError, TypeError) as e:  # torch's own checks (e.g. "Invalid epsilon value: -1.0")
        raise ConfigError(f"{where}: torch.optim refuses these settings: {e}") from None


def _hints(factory) -> dict:
    target = factory.__init__ if inspect.isclass(factory) else factory
    try:
        return typing.get_type_hints(target)
    except Exception:
        return {}


@dataclass
class Config:
    """A resolved run config: plain dicts and lists, ready for YAML."""

    data: dict = field(default_factory=dict)

    def __getitem__(self, k):
        return self.data[k]

    @property
    def train(self) -> TrainConfig:
        return TrainConfig(**self.data["train"])

    @property
    def eval(self) -> EvalConfig:
        return EvalConfig(**self.data["eval"])

    @property
    def checkpoint(self) -> CheckpointConfig:
        return CheckpointConfig(**self.data["checkpoint"])

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.data, sort_keys=False)


def resolve(raw: dict) -> Config:
    """Validate a raw config (file + overrides) and fill every default."""
    import ganforge.components  # noqa: F401
    from ganforge.nets.common import PROVIDED
    from ganforge.registry import DATASETS, GAMES, NETS, OBJECTIVES, OPTIMIZERS, PENALTIES

    for k in raw:
        if k not in TOP_LEVEL:
            raise ConfigError(f"unknown config key {k!r}. Valid sections: {', '.join(TOP_LEVEL)}")
    raw = deep_merge(DEFAULTS, raw)
    out: dict[str, Any] = {"name": coerce(raw["name"], str, "name")}
    out["game"] = resolve_component(GAMES, raw["game"], "game")
    out["data"] = resolve_component(DATASETS, raw["data"], "data")
    check_builds(GAMES, out["game"], "game")  # the constructor's range table (z_dim >= 1, ...); builds no nets
    out["objective"] = resolve_component(OBJECTIVES, raw["objective"], "objective")
    check_builds(OBJECTIVES, out["objective"], "objective")

    game_cls = GAMES.get(out["game"]["name"])
    roles = game_cls.roles
    nets_raw = raw.get("nets") or {}
    if not isinstance(nets_raw, dict):
        raise ConfigError(f"nets must map roles to nets, e.g. nets: {{g: {{name: mlp}}}}; got {nets_raw!r}")
    for role in nets_raw:
        if role not in roles:
            raise ConfigError(f"unknown net role nets.{role} for game {out['game']['name']!r}. "
                              f"Valid roles: {', '.join(roles)}")
    defaults = game_cls.default_nets()  # the game's choice for roles the config leaves out (mlp in the base)
    out["nets"] = {r: resolve_component(NETS, net_spec(defaults.get(r, {"name": "mlp"}), nets_raw.get(r) or {}),
                                        f"nets.{r}", skip=PROVIDED) for r in roles}

    optim_raw = raw.get("optim") or {}
    groups = game_cls.groups
    for g in optim_raw:
        if g not in groups:
            raise ConfigError(f"unknown optimizer group optim.{g} for game {out['game']['name']!r}. "
                              f"Valid groups: {', '.join(groups)}")
    out["optim"] = {g: resolve_component(OPTIMIZERS, deep_merge({"name": "adam"}, optim_raw.get(g) or {}),
                                         f"optim.{g}", skip=("params",)) for g in groups}
    for g, spec in out["optim"].items():
        check_optimizer(OPTIMIZERS, spec, f"optim.{g}")

    pens = raw.get("penalties") or {}
    if not isinstance(pens, dict):
        raise ConfigError(f"penalties must map names to weights, e.g. penalties: {{gp: 10}}; got {pens!r}")
    out["penalties"] = {}
    for name, spec in pens.items():
        entry = dict(spec) if isinstance(spec, dict) else {"weight": spec}
        w = coerce(entry.pop("weight", None), float, f"penalties.{name}.weight")
        if w < 0:
            raise ConfigError(f"penalties.{name}.weight must be >= 0, got {w}")
        comp = resolve_component(PENALTIES, {"name": name, **entry}, f"penalties.{name}")
        check_builds(PENALTIES, comp, f"penalties.{name}")
        comp.pop("name")
        out["penalties"][name] = {"weight": w, **comp}

    for sec, cls in SECTIONS.items():
        out[sec] = _resolve_section(cls, raw.get(sec) or {}, sec)
    _check_eval_counts(out["eval"])
    return Config(out)


def net_spec(default: dict, given: dict) -> dict:
    """A role's net: the game's default with the user's keys on top when the user keeps the default's net,
    else the user's net alone (a default's parameters, e.g. mlp's hidden width, mean nothing to another net)."""
    if not isinstance(given, dict):
        return given  # resolve_component says what a net spec must be
    if given.get("name", default.get("name")) != default.get("name"):
        return dict(given)
    return deep_merge(default, given)


def _check_eval_counts(ev: dict) -> None:
    """eval.n large enough for every metric in eval.metrics (precision/recall need k + 1 samples, ...)."""
    from ganforge.metrics.evaluate import min_images

    for m in ev["metrics"]:
        k, why = min_images(m)
        if ev["n"] < k:
            raise ConfigError(f"eval.n must be >= {k} for eval.metrics {m} ({why}), got {ev['n']}")


def load_config(path: str | Path | None = None, overrides: list[str] | None = None,
                base: dict | None = None) -> Config:
    """Read a YAML recipe (or start from ``base``), apply ``--a.b=value`` overrides, resolve."""
    raw = read_yaml(path) if path is not None else copy.deepcopy(base or {})
    if base is not None and path is not None:
        raw = deep_merge(base, raw)
    return resolve(apply_overrides(raw, overrides or []))
