"""One process per folder at a time: a lock file (`.lock`) held while a run trains, evaluates or exports, and
while `resample` writes into its output folder. A second process is refused with who holds the lock; a lock
left by a process that no longer runs (a killed kernel) is recognised and taken over.

Used by notebooks 03, 05, 06 and 07 through resample, train, evaluate and export.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from datetime import datetime
from pathlib import Path

from helpers.core.errors import KitError
from helpers.core.places import place_error, writable_folder

LOCK_NAME = ".lock"
UNREADABLE_GRACE_S = 10.0  # a lock file still being written by its holder reads empty for a moment
HEARTBEAT_S = 30.0
STALE_AFTER_S = 300.0  # a lock not refreshed for this long is abandoned, whatever machine took it


def _start_time(pid: int) -> str | None:
    """A process's start time (Linux: /proc/<pid>/stat field 22), so a reused PID is not taken for the holder."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _alive(holder: dict, path: Path) -> bool:
    """Whether the process a lock names still runs: on this machine, asked of the system; on another, judged by
    the lock's heartbeat (its file time)."""
    if time.time() - _mtime(path) > STALE_AFTER_S:
        return False
    if holder.get("host") != socket.gethostname():
        return True
    pid = int(holder.get("pid", -1))
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    started = holder.get("started")
    return started is None or _start_time(pid) in (None, started)


def holder_of(folder: str | Path) -> dict | None:
    """Who holds `folder`'s lock ({pid, host, since, what}), or None when it is free."""
    try:
        return json.loads((Path(folder) / LOCK_NAME).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}


def _describe(holder: dict) -> str:
    return (f"{holder.get('what', 'a kit command')} by process {holder.get('pid', '?')} on {holder.get('host', '?')} "
            f"since {holder.get('since', '?')}")


@contextlib.contextmanager
def folder_lock(folder: str | Path, what: str, log=print):
    """Hold `folder`'s lock for the block; refuse (KitError) while another live process holds it."""
    folder = writable_folder(folder)
    path = folder / LOCK_NAME
    me = {"pid": os.getpid(), "host": socket.gethostname(), "started": _start_time(os.getpid()),
          "since": datetime.now().isoformat(timespec="seconds"), "what": what}
    while True:
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = holder_of(path.parent)
            if holder is None:
                continue  # released in between
            if not holder:  # unreadable: being written now, or left empty by a crash
                if time.time() - _mtime(path) < UNREADABLE_GRACE_S:
                    time.sleep(0.2)
                    continue
            elif holder.get("pid") == me["pid"] and holder.get("host") == me["host"]:
                pass  # this process's own lock, left by an interrupted call: take it back
            elif _alive(holder, path):
                raise KitError(f"{folder} is in use: {_describe(holder)}. Wait for it to finish (or stop it), or "
                               f"choose another folder; if that process no longer runs, delete {path}") from None
            else:
                log(f"taking over {path}: {_describe(holder)}, which no longer runs (or has not refreshed its lock "
                    f"for {STALE_AFTER_S / 60:.0f} minutes)")
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            continue
        except OSError as e:
            raise place_error(folder, e) from None
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(me))
        break
    stop = threading.Event()
    beat = threading.Thread(target=_heartbeat, args=(path, stop), daemon=True)
    beat.start()
    try:
        yield path
    finally:
        stop.set()
        beat.join()
        if (holder_of(folder) or {}).get("pid") == me["pid"]:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def _heartbeat(path: Path, stop: threading.Event) -> None:
    while not stop.wait(HEARTBEAT_S):
        with contextlib.suppress(OSError):
            os.utime(path)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return time.time()
