"""Unpaired two-domain data (CycleGAN): two datasets built by name, streamed independently."""

from __future__ import annotations

from ganforge.data.base import Dataset, build_part
from ganforge.errors import ConfigError
from ganforge.registry import DATASETS


def _part(spec, label: str) -> Dataset:
    return build_part(spec, label, kind="unpaired data", example="ring")


@DATASETS.register("unpaired")
def unpaired(*, a: dict = None, b: dict = None) -> Dataset:
    """Two unpaired domains: a and b are dataset sections, e.g. a: {name: ring}, b: {name: grid}."""
    if a is None or b is None:
        raise ConfigError("unpaired data needs both a and b, e.g. data: {name: unpaired, a: {name: ring}, "
                          "b: {name: grid}}")
    da, db = _part(a, "a"), _part(b, "b")
    return Dataset(name=f"unpaired({da.name},{db.name})", x=da.x, y=da.y, n_classes=da.n_classes,
                   density=da.density, info={"parts": {"a": da, "b": db}})
