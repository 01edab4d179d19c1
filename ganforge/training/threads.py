"""How many CPU threads torch uses: what this process may have, never more.

``train.threads: 0`` (the default) means: ``OMP_NUM_THREADS`` when the user set
it, else the CPUs this process may run on (``os.sched_getaffinity``, which
honours ``taskset`` and container CPU sets; torch's own default where that call
does not exist), never more than torch's default (physical cores), divided
among the processes ``torchrun`` started on this machine. A recipe should not
pin a number: 2 threads on a 2-core machine that runs anything else make every
step several times slower (issue 12).
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger("ganforge")
_TORCH_DEFAULT: list[int] = []  # torch's thread count before ganforge first changed it


def _torch_default() -> int:
    import torch

    if not _TORCH_DEFAULT:
        _TORCH_DEFAULT.append(torch.get_num_threads())
    return _TORCH_DEFAULT[0]


def available_cpus() -> int | None:
    """CPUs this process may run on, or None where the platform cannot say (macOS, Windows)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def default_threads() -> int:
    """The thread count ``train.threads: 0`` stands for (see the module docstring)."""
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env.isdigit() and int(env) >= 1:
        return int(env)
    n = _torch_default()
    cpus = available_cpus()
    if cpus is not None:
        n = min(n, cpus)
    local = os.environ.get("LOCAL_WORLD_SIZE", "1")
    per_node = int(local) if local.isdigit() and int(local) >= 1 else 1
    return max(1, n // per_node)


def set_threads(requested: int | None) -> int:
    """Set torch's intra-op threads to ``requested`` (0 or None: ``default_threads()``); returns the count."""
    import torch

    _torch_default()
    n = int(requested) if requested else default_threads()
    cpus = available_cpus()
    if requested and cpus is not None and n > cpus:
        log.warning("train.threads=%d but this process may use only %d CPUs: the threads will compete "
                    "(use train.threads=0 for all of them)", n, cpus)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n
