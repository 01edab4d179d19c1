"""A light copy of the registries' names and one-line descriptions: ``ganforge list`` without torch.

Filling the registries imports every component module, and with them torch
(seconds of CPU). ``catalogue.json`` beside this file holds what ``list`` and
``lab list`` print; it is generated from the registries themselves:

    python -m ganforge.catalogue          # rewrite ganforge/catalogue.json

and tests/test_attack_cli.py checks that it equals the registries, so it cannot drift.
"""

from __future__ import annotations

import json
from pathlib import Path

# kind as the command line spells it -> the registry instance's name in ganforge.registry
KINDS = {"objectives": "OBJECTIVES", "penalties": "PENALTIES", "nets": "NETS", "datasets": "DATASETS",
         "games": "GAMES", "optimizers": "OPTIMIZERS", "metrics": "METRICS", "extractors": "EXTRACTORS",
         "benchmarks": "BENCHMARKS", "labs": "LABS"}
PATH = Path(__file__).with_name("catalogue.json")


def from_registries() -> dict[str, list[list[str]]]:
    """{kind: [[name, one-line help], ...]} read from the filled registries (imports torch)."""
    import ganforge.components  # noqa: F401
    from ganforge import registry

    out = {}
    for kind in sorted(KINDS):
        reg = getattr(registry, KINDS[kind])
        out[kind] = [[name, reg.help(name)] for name in reg.names()]
    return out


def load() -> dict[str, list[list[str]]]:
    """The stored catalogue; the registries themselves when the file is missing or unreadable."""
    try:
        return json.loads(PATH.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return from_registries()


def write(path: Path = PATH) -> Path:
    """Regenerate the file: one line per component, so that a diff shows what was added or changed."""
    cat = from_registries()
    kinds = [f" {json.dumps(kind)}: [\n" + ",\n".join(f"  {json.dumps(item, ensure_ascii=False)}" for item in items)
             + "\n ]" for kind, items in cat.items()]
    path.write_text("{\n" + ",\n".join(kinds) + "\n}\n", encoding="utf-8")
    assert json.loads(path.read_text(encoding="utf-8")) == cat
    return path


if __name__ == "__main__":
    print(f"wrote {write()}")
