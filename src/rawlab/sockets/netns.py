"""Entering a network namespace (setns) and unsharing one: the one place every command
with ``--netns`` uses (labs, veths and cleanup are :mod:`rawlab.lab.netns`).

    with entered("blue"):   # this thread inside /run/netns/blue for the block
        sock = socket.socket(...)   # stays in that namespace afterwards
    with entered(None):     # no namespace named: the block runs where it is
        ...
    with entered("/proc/1234/ns/net"):  # a path: any namespace file (a process's)
        ...
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from collections.abc import Iterator

from rawlab.errors import Exit, RawlabError, explain

CLONE_NEWNET = 0x40000000
CLONE_NEWUSER = 0x10000000
NETNS_RUN_DIR = "/run/netns"


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def unshare(flags: int) -> None:
    """unshare(2) for Python 3.11 (os.unshare arrived in 3.12)."""
    if _libc().unshare(flags) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def setns(fd: int, nstype: int = CLONE_NEWNET) -> None:
    """setns(2): move the calling thread into the namespace behind fd."""
    if _libc().setns(fd, nstype) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def _names() -> str:
    try:
        return ", ".join(sorted(os.listdir(NETNS_RUN_DIR)))
    except OSError:
        return ""


@contextlib.contextmanager
def entered(name: str | None) -> Iterator[None]:
    """Run the block (this thread) inside network namespace `name` (a name under
    /run/netns, or a path to a namespace file such as /proc/PID/ns/net), then come back;
    with no name (None or ""), just run the block.

    Sockets opened inside stay in that namespace after the block ends.
    """
    if not name:
        yield
        return
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(name if "/" in name else os.path.join(NETNS_RUN_DIR, name),
                         os.O_RDONLY)
    except FileNotFoundError:
        os.close(own)
        if "/" in name:
            raise RawlabError(f"no network namespace at {name}", Exit.USAGE) from None
        names = _names()
        fix = (f"name one of: {names} (`ip netns list`)" if names else
               f"there are none: create it (`ip netns add {name}`)")
        raise RawlabError(f"no network namespace named {name!r}; fix: {fix}",
                          Exit.USAGE) from None
    try:
        try:
            setns(target)
        except OSError as exc:
            raise explain(exc, f"enter network namespace {name}") from None
        try:
            yield
        finally:
            setns(own)
    finally:
        os.close(target)
        os.close(own)
