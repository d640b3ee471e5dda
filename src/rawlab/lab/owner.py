"""Who owns kernel state a run made (a namespace, an nftables table): an owner lock.

A run that makes a named object holds an exclusive ``flock`` on
``/run/rawlab/<name>.lock`` for as long as the object lives; the lock goes with the
process however it ends (SIGKILL included). Another run tells a live object from an
abandoned one by trying the lock — which works across PID namespaces, where the
owner's pid in the name cannot be seen (sandboxes, containers, parallel CI jobs).
An object without a lock file (made by an older rawlab) falls back to its pid.

    lock = hold("rl-a-1234-beef")      # keep the returned object alive with the object
    abandoned("rl-a-1234-beef", pid)   # True: nobody holds it (and its pid is gone)
    release(lock)                      # once the object is removed
"""

from __future__ import annotations

import contextlib
import fcntl
import os

LOCK_DIR = "/run/rawlab"


def _path(name: str) -> str:
    return os.path.join(LOCK_DIR, f"{name}.lock")


def hold(name: str) -> int | None:
    """Take the owner lock of `name`; the descriptor to keep (None if locks cannot be made
    here, e.g. without privilege: then the pid in the name is all there is)."""
    try:
        os.makedirs(LOCK_DIR, mode=0o755, exist_ok=True)
        fd = os.open(_path(name), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def release(name: str, fd: int | None) -> None:
    """Drop the lock and its file (the object is gone)."""
    with contextlib.suppress(OSError):
        os.unlink(_path(name))
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def abandoned(name: str, pid: int) -> bool:
    """Nobody holds `name`: its lock file is free (or, with no lock file, `pid` is gone)."""
    try:
        fd = os.open(_path(name), os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return not _pid_alive(pid)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False  # held: its owner lives (maybe in another PID namespace)
    finally:
        os.close(fd)
    return True
