"""The run folder's lock, ``RUN_DIR/.ganforge-lock``: one writer per run folder.

The file holds ``{"pid", "host", "started", "token"}``, created with ``O_EXCL | O_NOFOLLOW``. A lock whose
process is gone on this host (dead or a zombie) is taken over with a warning; a lock from another host is
respected (its owner cannot be checked from here). ``release`` removes the file only while it still holds
this writer's token, so it never removes a lock another writer took over. ``rundir.claim`` takes it.
"""

from __future__ import annotations

import atexit
import json
import os
import socket
import time
import uuid
import warnings
from pathlib import Path

from ganforge.errors import ConfigError

LOCK = ".ganforge-lock"

def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (dead, not yet reaped) holds no lock
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _read_lock(path: Path) -> dict | None:
    for attempt in range(2):  # the owner may be between creating the file and writing it
        try:
            owner = json.loads(path.read_text())
            if isinstance(owner, dict) and isinstance(owner.get("pid"), int):
                return owner
        except (OSError, ValueError):
            pass
        if attempt == 0:
            time.sleep(0.2)
    return None


class RunLock:
    """RUN_DIR/.ganforge-lock: ``{"pid", "host", "started", "token"}``; one writer per run folder."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK
        self.token: str | None = None
        self.created = False  # claim() made the folder (so a run that fails to build may remove it)

    @property
    def held(self) -> bool:
        return self.token is not None

    def owner(self) -> dict | None:
        """The live process holding the lock (another one than this), or None."""
        if not os.path.lexists(self.path):
            return None
        owner = _read_lock(self.path)
        if owner is None or owner["pid"] == os.getpid() and owner.get("host") == socket.gethostname():
            return None
        if owner.get("host") != socket.gethostname() or _alive(owner["pid"]):
            return owner
        return None

    def acquire(self) -> None:
        from ganforge import rundir  # rundir imports this module

        if self.held:
            return
        rundir.check(self.run_dir, self.path)
        for _ in range(3):
            owner = self.owner()
            if owner is not None:
                raise ConfigError(in_use_message(self.run_dir, owner))
            if os.path.lexists(self.path):  # a stale lock: its process is gone
                old = _read_lock(self.path)
                try:
                    if old is not None and _read_lock(self.path) != old:
                        continue  # someone took it over meanwhile: look again
                    self.path.unlink()
                except FileNotFoundError:
                    pass
                if old is not None and old["pid"] != os.getpid():
                    warnings.warn(f"{self.path}: taking over the lock of process {old['pid']}, which is no longer "
                                  "running (it was killed or crashed)", stacklevel=3)
            token = uuid.uuid4().hex
            rec = {"pid": os.getpid(), "host": socket.gethostname(),
                   "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "token": token}
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
            try:
                fd = os.open(self.path, flags, 0o644)
            except FileExistsError:
                continue  # another process took it between our check and our create: look again
            except OSError as e:
                raise rundir.WriteError(f"cannot write to the run directory {self.run_dir}: "
                                        f"{rundir._reason(e)}") from None
            with os.fdopen(fd, "w") as f:
                f.write(json.dumps(rec) + "\n")
            self.token = token
            atexit.register(self.release)
            return
        raise ConfigError(f"cannot take the lock {self.path}: other processes keep taking it")

    def release(self) -> None:
        if not self.held:
            return
        try:
            cur = json.loads(self.path.read_text())
            if cur.get("token") == self.token:  # never remove a lock another writer took over
                self.path.unlink()
        except (OSError, ValueError, AttributeError):
            pass
        self.token = None
        atexit.unregister(self.release)


def in_use_message(run_dir: Path, owner: dict) -> str:
    where = f"pid {owner['pid']} on host {owner.get('host')}, since {owner.get('started')}"
    hint = ("wait for it to finish or stop it" if owner.get("host") == socket.gethostname()
            else f"if that process is gone, delete {Path(run_dir) / LOCK}")
    return f"{run_dir} is in use by another ganforge process ({where}); {hint}, or use another run folder"
