"""The ``ganforge`` subcommands, one module each.

A module here defines ``register(sub)``: it adds its parser to the argparse
sub-parser collection ``sub`` and calls ``set_defaults(run=function)``, where
``function(args) -> int`` is the exit status (``train`` also takes the
``--section.key=value`` overrides: ``set_defaults(run=f, takes_overrides=True)``
and ``f(args, overrides)``). ``ganforge.cli`` finds the modules by listing this
package, so adding a command never edits cli.py. Registering must stay light:
no torch, matplotlib or scipy at import (``ganforge --help`` and ``list`` answer
without them); import them inside the function that runs the command. User
errors raise ``ganforge.errors.ConfigError`` (exit 2, one sentence, no
traceback). Every argument has a help string (a test walks the parser).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from ganforge.errors import ConfigError

# The order of the commands in `ganforge` and `ganforge --help`; modules not named here follow, sorted.
ORDER = ("train", "sample", "eval", "report", "export", "project", "inpaint", "impute", "list", "bench", "lab")


def invoked_as(argv0: str | None = None) -> str:
    """How the user started ganforge, to repeat in hints: ``.venv/bin/ganforge``, ``ganforge`` (on PATH),
    ``python -m ganforge`` (with the interpreter as it would be typed)."""
    a0 = sys.argv[0] if argv0 is None else argv0
    name = Path(a0).name
    if name in ("__main__.py", "-m", "-c", "") or name.startswith("pytest"):
        py = sys.executable or "python"
        return f"{_typed(py)} -m ganforge"
    return _typed(a0)


def _typed(path: str) -> str:
    """The shortest way to type ``path`` here: its bare name when PATH finds the same file, else relative to
    the current folder when inside it, else as given."""
    full = os.path.abspath(path)  # not resolve(): a venv's python is a link to the system's, which lacks ganforge
    name = os.path.basename(full)
    found = shutil.which(name)
    if found and os.path.abspath(found) == full:
        return name
    try:
        rel = os.path.relpath(full, os.getcwd())
    except (OSError, ValueError):
        return path
    if not rel.startswith(".."):
        return rel if os.sep in rel else f".{os.sep}{rel}"
    return path


def check_writable(path: str | Path, what: str, *, folder: bool = False) -> Path:
    """Refuse, before any work, an output file (or ``folder``) that cannot be written: a folder where a file
    should be, a path under a file, a read-only folder."""
    p = Path(path)
    if p.is_dir() and not folder:
        raise ConfigError(f"the {what} {p} is a folder; give a file name inside it, e.g. {p / ('x' + p.suffix)}")
    anc = p if folder else p.parent
    while not anc.exists() and anc != anc.parent:
        anc = anc.parent
    if not anc.is_dir():
        raise ConfigError(f"cannot write the {what} {p}: {anc} is a file, not a folder")
    if not os.access(anc, os.W_OK | os.X_OK):
        raise ConfigError(f"cannot write the {what} {p}: the folder {anc} is not writable")
    return p


def add_rejection_args(p) -> None:
    """``--no-rejection`` / ``--rejection Q`` of ``sample`` and ``eval`` (discriminator rejection sampling)."""
    g = p.add_mutually_exclusive_group()
    g.add_argument("--no-rejection", action="store_true",
                   help="a run trained with discriminator rejection sampling (game.drs): draw its generator "
                        "directly")
    g.add_argument("--rejection", type=float, metavar="Q",
                   help="sample through discriminator rejection sampling (Azadi et al. 2019) with gamma at "
                        "quantile Q of F (e.g. 0.95; higher keeps fewer, better-rated samples), also for an "
                        "unconditional gan run trained without it (game.drs)")


def rejection_arg(args) -> bool | float:
    """What ``api.load_game`` takes as ``rejection``: True (as trained), False, or a quantile."""
    return args.rejection if args.rejection is not None else not args.no_rejection
