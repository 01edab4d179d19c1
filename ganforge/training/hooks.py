"""Observers of a training run (TensorBoard, reports, profilers) without edits to the loop.

A factory in ``HOOK_FACTORIES`` gets the trainer and returns a ``Hook`` or
None (not wanted for this run). The trainer calls, in order: ``on_start``
once, ``on_log`` with every record it appends to losses.jsonl, ``on_eval``
with every metrics record and the evaluation samples, ``on_checkpoint`` after
each checkpoint, ``on_end`` when ``fit`` returns or raises. jsonl files stay
the source of truth; hooks only mirror them. A hook must not touch the
training RNG or the game's parameters, and writes into the run folder only
through ``ganforge.rundir`` (``write_text``, ``write_with``, ``append_text``,
``ensure_dir``), which never follow a link out of it.
"""

from __future__ import annotations

from collections.abc import Callable


class Hook:
    def on_start(self, trainer) -> None: ...

    def on_log(self, trainer, record: dict) -> None: ...

    def on_eval(self, trainer, record: dict, samples) -> None: ...

    def on_checkpoint(self, trainer, path) -> None: ...

    def on_end(self, trainer) -> None: ...


HOOK_FACTORIES: list[Callable[[object], Hook | None]] = []


def build_hooks(trainer) -> list[Hook]:
    return [h for h in (f(trainer) for f in HOOK_FACTORIES) if h is not None]
