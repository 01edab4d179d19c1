"""Run folders: made only by ganforge, one writer at a time, no write through a link.

A run folder is ganforge's when it holds ``MARKER`` (written when ganforge makes
the folder). ``claim`` prepares one: a new run only in a new or empty folder
(``overwrite`` moves an old one aside to ``DIR.old-<time>``; nothing is ever
deleted), a resumed run only in an existing one, and either way under a lock
file (pid, host, start time) that refuses a second writer. A lock whose process
is gone is taken over with a warning.

The lock is ``runlock.RunLock``.

Every write inside a run folder goes through ``write_text`` / ``write_bytes`` /
``write_with`` (whole files: a temporary file beside the target, then an atomic
``os.replace``) or ``append_text`` (``O_APPEND | O_NOFOLLOW``). They refuse a
target that is a symbolic link or whose folder resolves outside the run folder,
so a planted link can never make ganforge overwrite a file elsewhere; train.log
is a ``LogFile`` handler on the same terms. ``truncate_logs`` cuts jsonl logs back
to a checkpoint's step, dropping a torn last line. Errors are ``ConfigError``
subclasses: the CLI prints one sentence and exits 2.

Other commands writing into a run folder (eval.json, report.html) use
``write_text(run_dir, run_dir / NAME, text)``.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import stat
import threading
import time
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from ganforge.errors import ConfigError
from ganforge.runlock import LOCK, RunLock, in_use_message  # noqa: F401 (LOCK: part of this API)

MARKER = ".ganforge-run"


class UnsafePath(ConfigError):
    """A write that would follow a link or land outside the run folder."""


class WriteError(ConfigError):
    """An OSError (disk full, read-only, permissions) while writing into a run folder."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason or message


def _reason(e: OSError) -> str:
    return f"{e.strerror or e} (errno {e.errno})" if e.errno else str(e)


# ------------------------------------------------------------------ where a write may go
def check(run_dir: str | Path, path: str | Path) -> Path:
    """``path`` if writing it stays inside ``run_dir``; UnsafePath when it is a link or its folder is elsewhere."""
    path = Path(path)
    if path.is_symlink():
        raise UnsafePath(f"refusing to write {path}: it is a symbolic link (to {os.readlink(path)}); ganforge never "
                         "writes through a link in a run folder. Remove the link or use another run folder")
    root, parent = Path(run_dir).resolve(), path.parent.resolve()
    if parent != root and root not in parent.parents:
        raise UnsafePath(f"refusing to write {path}: its folder resolves to {parent}, outside the run folder {root} "
                         "(a symbolic link on the way). Remove the link or use another run folder")
    return path


#: What ganforge writes at the top of a run folder; ``check_tree`` refuses a link at any of them up front.
RUN_FILES = ("config.yaml", "losses.jsonl", "metrics.jsonl", "train.log", "eval.json", "eval_protocol.json",
             "report.html", MARKER, LOCK, "checkpoints", "samples", "tb")


def check_tree(run_dir: str | Path) -> None:
    """Refuse, before anything is written, a run folder where one of ``RUN_FILES`` is a link."""
    for name in RUN_FILES:
        check(run_dir, Path(run_dir) / name)


def ensure_dir(run_dir: str | Path, name: str) -> Path:
    """RUN_DIR/name as a real folder inside the run (made if missing); a link there is refused."""
    d = Path(run_dir) / name
    check(run_dir, d)
    try:
        d.mkdir(exist_ok=True)
    except OSError as e:
        raise WriteError(f"cannot make {d}: {_reason(e)}") from None
    if not d.is_dir():
        raise UnsafePath(f"{d} is a file, but ganforge needs a folder there; move it away or use another run folder")
    return d


def _create_exclusive(path: Path) -> None:
    """Create an empty regular file at ``path``; never follows or reuses a link."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, 0o644)
    except FileExistsError:
        if not stat.S_ISREG(os.lstat(path).st_mode):  # only our own stale temporary file may be replaced
            raise UnsafePath(f"refusing to write {path}: something other than a file is in the way") from None
        path.unlink()
        fd = os.open(path, flags, 0o644)
    os.close(fd)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_with(run_dir: str | Path, path: str | Path, writer: Callable[[Path], object], *,
               tmp_name: str | None = None, durable: bool = True) -> Path:
    """Whole-file write: ``writer(tmp)`` fills a fresh temporary file beside ``path``, then an atomic rename.

    The temporary name keeps the suffix (PIL and matplotlib pick the format from it) and starts with a dot
    (globs like ``step_*.png`` never see it). On any error the temporary file is removed and ``path`` is
    left as it was; an OSError becomes a WriteError naming the file.
    """
    path = check(run_dir, path)
    tmp = path.with_name(tmp_name or f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    try:
        _create_exclusive(tmp)
        writer(tmp)
        if durable:
            _fsync(tmp)
        os.replace(tmp, path)
    except OSError as e:
        raise WriteError(f"cannot write {path}: {_reason(e)}", _reason(e)) from None
    finally:
        if os.path.lexists(tmp):
            tmp.unlink()
    if durable:  # make the rename itself durable
        try:
            _fsync(path.parent)
        except OSError:
            pass
    return path


def write_bytes(run_dir: str | Path, path: str | Path, data: bytes, **kw) -> Path:
    return write_with(run_dir, path, lambda tmp: tmp.write_bytes(data), **kw)


def write_text(run_dir: str | Path, path: str | Path, text: str, **kw) -> Path:
    """The safe way to write a whole text file (config.yaml, eval.json, report.html) into a run folder."""
    return write_bytes(run_dir, path, text.encode("utf-8"), **kw)


def open_append(run_dir: str | Path, path: str | Path):
    """A text file object appending to ``path`` (created if missing); never through a link."""
    path = check(run_dir, path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
    except OSError as e:
        raise WriteError(f"cannot append to {path}: {_reason(e)}") from None
    return os.fdopen(fd, "a", encoding="utf-8")


def append_text(run_dir: str | Path, path: str | Path, text: str) -> None:
    """Append ``text`` in one write (a log record); an OSError (disk full) becomes a WriteError."""
    f = open_append(run_dir, path)
    try:
        with f:
            f.write(text)
    except OSError as e:
        raise WriteError(f"cannot append to {path}: {_reason(e)}") from None


class LogFile(logging.FileHandler):
    """A logging handler appending to a file in a run folder (train.log) that refuses a link."""

    def __init__(self, run_dir: str | Path, path: str | Path) -> None:
        self._run_dir = Path(run_dir)
        super().__init__(path, encoding="utf-8")

    def _open(self):
        return open_append(self._run_dir, self.baseFilename)


def truncate_logs(run_dir: str | Path, names: tuple[str, ...], step: int) -> None:
    """Keep the jsonl records with ``"step" <= step`` (a killed run logged steps that its checkpoint lost).

    A line that does not parse (the torn tail of an append cut by a kill or a full disk) is dropped with a
    warning; the records kept are rewritten byte for byte, atomically.
    """
    for name in names:
        p = Path(run_dir) / name
        if not p.is_file() or p.is_symlink():
            continue
        data = p.read_bytes()
        keep, torn = [], 0
        for ln in data.split(b"\n"):
            if not ln.strip():
                continue
            try:
                rec_step = int(json.loads(ln)["step"])
            except (ValueError, KeyError, TypeError):
                torn += 1
                continue
            if rec_step <= step:
                keep.append(ln + b"\n")
        if torn:
            warnings.warn(f"{p}: dropped {torn} unreadable line(s) (a record cut off by a kill or a full disk)",
                          stacklevel=3)
        new = b"".join(keep)
        if new != data:
            write_bytes(run_dir, p, new)


@contextmanager
def sigterm_unwinds():
    """Within the block, a SIGTERM that would kill the process raises SystemExit(143) instead, so that
    ``finally`` and ``except`` clauses (releasing the run folder's lock) still run."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return

    def _exit(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


#: What a run writes before its first step; a run that fails to build leaves only these.
_STARTUP_FILES = (MARKER, LOCK, "train.log", "config.yaml", "losses.jsonl", "metrics.jsonl")
_STARTUP_DIRS = ("checkpoints", "samples", "tb")


def remove_unstarted(run_dir: str | Path) -> bool:
    """Remove a folder this process created for a run that failed before training: only if everything in it
    is a regular file or empty folder ganforge writes at start-up (never a link, never a user's file)."""
    run_dir = Path(run_dir)
    try:
        entries = list(run_dir.iterdir())
        if any(p.is_symlink() or (p.name not in _STARTUP_FILES and p.name not in _STARTUP_DIRS) for p in entries):
            return False
        if any(p.name in _STARTUP_DIRS and (not p.is_dir() or any(p.iterdir())) for p in entries):
            return False
        for p in entries:
            p.rmdir() if p.is_dir() else p.unlink()
        run_dir.rmdir()
        return True
    except OSError:
        return False


# ------------------------------------------------------------------ claiming a folder
def is_run_dir(path: str | Path) -> bool:
    return (Path(path) / MARKER).is_file()


def _aside(run_dir: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for i in range(1000):
        dest = run_dir.with_name(f"{run_dir.name}.old-{stamp}" + (f"-{i}" if i else ""))
        if not os.path.lexists(dest):
            return dest
    raise ConfigError(f"cannot find a free name to move {run_dir} aside")


def _refusal(run_dir: Path, entries: list[str], has_checkpoints: bool) -> str:
    shown = ", ".join(sorted(entries)[:4]) + (", ..." if len(entries) > 4 else "")
    what = ("it holds a ganforge run: continue it with --resume " + str(run_dir) + ", or"
            if has_checkpoints else f"it holds files ({shown}):")
    return (f"{run_dir} already exists and is not empty; {what} pick another --out, or add --overwrite to move "
            f"the old folder aside to {run_dir.name}.old-<time> (nothing is deleted)")


def claim(run_dir: str | Path, *, resume: bool, overwrite: bool = False,
          has_checkpoints: Callable[[Path], bool] | None = None) -> RunLock:
    """Make ``run_dir`` ready for a new run (or a resumed one) and lock it; returns the held lock.

    A new run: the folder must be new or empty, or a ganforge folder whose run never reached a checkpoint
    (it restarts). ``overwrite`` moves a non-empty folder aside first. ``has_checkpoints(dir)`` tells a run
    folder worth resuming from other files.
    """
    run_dir = Path(run_dir)
    has_checkpoints = has_checkpoints or (lambda d: False)
    if os.path.lexists(run_dir) and not run_dir.is_dir():
        raise ConfigError(f"cannot write to the run directory {run_dir}: it is a file, not a folder")
    if run_dir.is_dir():
        owner = RunLock(run_dir).owner()
        if owner is not None:
            raise ConfigError(in_use_message(run_dir, owner))
        try:
            entries = [p.name for p in run_dir.iterdir()]
        except OSError as e:
            raise ConfigError(f"cannot use the run directory {run_dir}: {_reason(e)}") from None
        if not resume and entries:
            if overwrite:
                dest = _aside(run_dir)
                try:
                    os.rename(run_dir, dest)
                except OSError as e:
                    raise WriteError(f"cannot move {run_dir} aside to {dest}: {_reason(e)}") from None
                warnings.warn(f"--overwrite: moved the old {run_dir} to {dest}", stacklevel=3)
            elif is_run_dir(run_dir) and not has_checkpoints(run_dir):
                warnings.warn(f"{run_dir} holds a ganforge run that never reached a checkpoint; starting it "
                              "again from step 0", stacklevel=3)
            else:
                raise ConfigError(_refusal(run_dir, [e for e in entries if e not in (MARKER, LOCK)] or entries,
                                           has_checkpoints(run_dir)))
    elif resume:
        raise ConfigError(f"cannot resume {run_dir}: no such folder")
    created = not os.path.lexists(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"cannot write to the run directory {run_dir}: {_reason(e)}") from None
    lock = RunLock(run_dir)
    lock.created = created
    lock.acquire()
    try:
        if not (run_dir / MARKER).is_file():
            write_text(run_dir, run_dir / MARKER, json.dumps({"created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}) + "\n",
                       durable=False)
    except BaseException:
        lock.release()
        raise
    return lock
