"""Unpaired two-domain data (CycleGAN): two datasets built by name, streamed independently."""

from __future__ import annotations

from ganforge.data.base import Dataset
from ganforge.errors import ConfigError
from ganforge.registry import DATASETS


def _part(spec, label: str) -> Dataset:
    if not isinstance(spec, dict) or "name" not in spec:
        raise ConfigError(f"unpaired data: {label} must be a dataset section like {{name: ring}}, got {spec!r}")
    spec = dict(spec)
    try:
        return DATASETS.build(spec.pop("name"), **spec)
    except ConfigError as e:
        raise ConfigError(f"data.{label}: {e}") from None


@DATASETS.register("unpaired")
def unpaired(*, a: dict = None, b: dict = None) -> Dataset:
    """Two unpaired domains: a and b are dataset sections, e.g. a: {name: ring}, b: {name: grid}."""
    if a is None or b is None:
        raise ConfigError("unpaired data needs both a and b, e.g. data: {name: unpaired, a: {name: ring}, "
                          "b: {name: grid}}")
    da, db = _part(a, "a"), _part(b, "b")
    return Dataset(name=f"unpaired({da.name},{db.name})", x=da.x, y=da.y, n_classes=da.n_classes,
                   density=da.density, info={"parts": {"a": da, "b": db}})
