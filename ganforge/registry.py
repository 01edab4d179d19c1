"""One registry class; one instance per kind of component.

A registry maps short names to factories (classes or functions). The factory's
keyword parameters, with their type hints and defaults, *are* its config: the
config layer validates a section such as ``{"name": "alpha", "alpha": 0.5}``
against ``inspect.signature`` of the registered factory.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Iterator
from typing import Any

from ganforge.errors import ConfigError


class Registry:
    """Name -> factory. Duplicate names and unknown names are errors."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, Callable[..., Any]] = {}
        self._help: dict[str, str] = {}
        self._not_names: dict[str, str] = {}

    def explain(self, name: str, why: str) -> None:
        """Say why ``name`` is deliberately not a name here (an ambiguous alias such as "vanilla")."""
        self._not_names[name] = why

    def register(self, name: str, help: str | None = None) -> Callable:
        """Decorator: ``@OBJECTIVES.register("ns")``."""

        def deco(obj: Callable) -> Callable:
            self.add(name, obj, help=help)
            return obj

        return deco

    def add(self, name: str, obj: Callable, help: str | None = None) -> None:
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._items[name] = obj
        doc = help or inspect.getdoc(obj) or ""
        self._help[name] = doc.strip().splitlines()[0] if doc.strip() else ""

    def get(self, name: str) -> Callable:
        try:
            return self._items[name]
        except KeyError:
            raise ConfigError(self.unknown_message(name)) from None

    def unknown_message(self, name: object) -> str:
        close = difflib.get_close_matches(str(name), self.names(), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        if name in self._not_names:
            hint = f" {self._not_names[name]}"
        plural = self.kind[:-1] + "ies" if self.kind.endswith("y") else self.kind + "s"
        return f"unknown {self.kind} {name!r}.{hint} Valid {plural}: {', '.join(self.names())}"

    def build(self, name: str, **params: Any) -> Any:
        """Look ``name`` up and call it with ``params`` (checked against its signature)."""
        factory = self.get(name)
        check_params(factory, params, where=f"{self.kind} {name!r}")
        return factory(**params)

    def params(self, name: str) -> dict[str, inspect.Parameter]:
        """The keyword parameters a user may set for ``name``."""
        return user_params(self.get(name))

    def help(self, name: str) -> str:
        return self._help[name]

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)


def user_params(factory: Callable) -> dict[str, inspect.Parameter]:
    sig = inspect.signature(factory)
    return {
        n: p
        for n, p in sig.parameters.items()
        if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and not n.startswith("_")
    }


def check_params(factory: Callable, params: dict[str, Any], where: str) -> None:
    valid = user_params(factory)
    has_var_kw = any(p.kind == p.VAR_KEYWORD for p in inspect.signature(factory).parameters.values())
    if has_var_kw:
        return
    for key in params:
        if key not in valid:
            raise ConfigError(
                f"{where} has no parameter {key!r}. Valid parameters: {', '.join(sorted(valid)) or '(none)'}"
            )


# One instance per kind. Modules register into these at import of ganforge.components.
OBJECTIVES = Registry("objective")
PENALTIES = Registry("penalty")
NETS = Registry("net")
DATASETS = Registry("dataset")
GAMES = Registry("game")
METRICS = Registry("metric")
EXTRACTORS = Registry("feature extractor")
OPTIMIZERS = Registry("optimizer")
BENCHMARKS = Registry("benchmark")
LABS = Registry("lab experiment")
