"""Helpers shared by the lessons: errno names and a TCP loopback pair."""

from __future__ import annotations

import errno
import fcntl
import socket
import struct
import time

from rawlab.doctor import errname
from rawlab.errors import Exit, RawlabError, explain

LOOPBACK = "127.0.0.1"
SIOCGIFFLAGS = 0x8913
IFF_UP = 0x1

__all__ = ["LOOPBACK", "errname", "exc_errname", "loopback_up", "now_ns", "tcp_pair"]


def exc_errname(exc: OSError) -> str:
    return errname(exc.errno or 0)


def now_ns() -> int:
    return time.monotonic_ns()


LO_DOWN = (f"TCP over loopback {LOOPBACK} is not usable here: the lo interface is down "
           "(a fresh network namespace starts so); fix: ip link set lo up")


def loopback_up() -> bool:
    """Is `lo` up in this network namespace? (ioctl SIOCGIFFLAGS, IFF_UP)"""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            req = fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, struct.pack("16sH14x", b"lo", 0))
        except OSError:
            return False
    return bool(struct.unpack_from("16sH", req)[1] & IFF_UP)


def tcp_pair() -> tuple[socket.socket, socket.socket]:
    """A connected TCP pair over 127.0.0.1: (client, server side)."""
    if not loopback_up():
        raise RawlabError(LO_DOWN, Exit.FAILED)
    lst = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        try:
            lst.bind((LOOPBACK, 0))
            lst.listen(1)
            cli = socket.create_connection(lst.getsockname(), timeout=5)
        except TimeoutError:
            raise RawlabError(f"connect to {LOOPBACK} timed out: loopback does not answer; "
                              "fix: check `ip link show lo` and any firewall rule on lo",
                              Exit.PEER) from None
        except OSError as exc:
            if exc.errno in (errno.EADDRNOTAVAIL, errno.ENETUNREACH):
                raise RawlabError(LO_DOWN, Exit.FAILED, errno_=exc.errno) from None
            raise explain(exc, f"connect to {LOOPBACK}") from None
        cli.settimeout(None)
        srv, _ = lst.accept()
    finally:
        lst.close()
    return cli, srv
