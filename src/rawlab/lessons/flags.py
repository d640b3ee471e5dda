"""SOCK_NONBLOCK and SOCK_CLOEXEC: what the flags do, seen through fcntl and exec.

Sockets are made with libc's socket(2) through ctypes when the point is the
flag itself: Python adds SOCK_CLOEXEC to every socket it makes (PEP 446), so
only the raw call shows a socket without it.
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import os
import socket
import struct
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass

from rawlab.errors import RawlabError, explain
from rawlab.lessons.common import exc_errname, now_ns

RCVTIMEO_NS = 100_000_000  # the blocking recv waits this long (SO_RCVTIMEO)

# the exec'd child: list /proc/self/fd (i.e. /proc/<its pid>/fd) with link targets
CHILD_CODE = (
    "import json, os\n"
    "fds = {}\n"
    "for n in os.listdir('/proc/self/fd'):\n"
    "    try:\n"
    "        fds[n] = os.readlink('/proc/self/fd/' + n)\n"
    "    except OSError:\n"
    "        pass\n"
    "print(json.dumps({'pid': os.getpid(), 'fds': fds}))\n"
)


@dataclass(frozen=True)
class FdView:
    """fcntl's view of one descriptor."""

    id: str  # what made it, e.g. "socket(SOCK_NONBLOCK)", "python:os.pipe()"
    fd: int
    fl: int  # fcntl(F_GETFL): file status flags
    o_nonblock: bool  # fl & O_NONBLOCK
    fd_flags: int  # fcntl(F_GETFD): descriptor flags
    fd_cloexec: bool  # fd_flags & FD_CLOEXEC
    inheritable: bool  # os.get_inheritable(): Python's name for "no FD_CLOEXEC"


@dataclass(frozen=True)
class RecvCase:
    """recv(1 byte) on an empty AF_UNIX stream socket."""

    id: str  # "blocking+SO_RCVTIMEO", "SOCK_NONBLOCK", "fcntl(O_NONBLOCK)", "MSG_DONTWAIT"
    o_nonblock: bool  # the descriptor's O_NONBLOCK at the time of the call
    flags: int  # recv(2) flags
    rcvtimeo_ns: int  # SO_RCVTIMEO set on the socket (0: none)
    errno: str | None  # EAGAIN: no data, do not wait
    elapsed_ns: int  # how long the call took


@dataclass(frozen=True)
class ExecCase:
    """Does a descriptor survive execve() into a child?"""

    id: str  # "socket(SOCK_CLOEXEC)", "socket()", "python:socket.socket()", ...
    fd: int
    fd_cloexec: bool  # F_GETFD in the parent before the exec
    inode: int  # the socket's inode (fstat), as in /proc/<pid>/fd -> socket:[inode]
    in_child: bool  # the fd number is listed in the child's /proc/<pid>/fd
    child_target: str | None  # what that entry points at in the child, if present


@dataclass(frozen=True)
class FlagsLesson:
    sock_nonblock: int  # the flag values OR'ed into socket(2)'s type
    sock_cloexec: int
    o_nonblock: int
    fd_cloexec: int
    recv: list[RecvCase]
    exec_child_pid: int
    exec_argv: list[str]
    exec: list[ExecCase]
    fcntl: list[FdView]
    python_defaults: list[FdView]


def fd_view(ident: str, fd: int) -> FdView:
    fl = fcntl.fcntl(fd, fcntl.F_GETFL)
    fdf = fcntl.fcntl(fd, fcntl.F_GETFD)
    return FdView(ident, fd, fl, bool(fl & os.O_NONBLOCK), fdf, bool(fdf & fcntl.FD_CLOEXEC),
                  os.get_inheritable(fd))


def libc_socket(family: int, stype: int, proto: int = 0) -> int:
    """socket(2) straight from libc: no flags added behind our back."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = int(libc.socket(family, stype, proto))
    if fd < 0:
        err = ctypes.get_errno()
        raise explain(OSError(err, os.strerror(err)), "socket(AF_UNIX, SOCK_STREAM)")
    return fd


def _recv_case(ident: str, setup: Callable[[socket.socket], int]) -> RecvCase:
    """`setup` prepares the receiving end and returns the recv flags."""
    nonblock = ident == "SOCK_NONBLOCK"
    stype = socket.SOCK_STREAM | (socket.SOCK_NONBLOCK if nonblock else 0)
    a, b = socket.socketpair(socket.AF_UNIX, stype)
    with a, b:
        flags = int(setup(a))
        tv = struct.unpack("ll", a.getsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, 16))
        o_nb = bool(fcntl.fcntl(a.fileno(), fcntl.F_GETFL) & os.O_NONBLOCK)
        err = None
        t0 = now_ns()
        try:
            a.recv(1, flags)
        except OSError as exc:
            err = exc_errname(exc)
        elapsed = now_ns() - t0
    return RecvCase(ident, o_nb, flags, tv[0] * 1_000_000_000 + tv[1] * 1000, err, elapsed)


def _rcvtimeo(s: socket.socket) -> int:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO,
                 struct.pack("ll", 0, RCVTIMEO_NS // 1000))
    return 0


def _set_o_nonblock(s: socket.socket) -> int:
    fd = s.fileno()
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)
    return 0


def recv_cases() -> list[RecvCase]:
    return [
        _recv_case("blocking+SO_RCVTIMEO", _rcvtimeo),
        _recv_case("SOCK_NONBLOCK", lambda s: 0),
        _recv_case("fcntl(O_NONBLOCK)", _set_o_nonblock),
        _recv_case("MSG_DONTWAIT", lambda s: socket.MSG_DONTWAIT),
    ]


def exec_cases() -> tuple[int, list[str], list[ExecCase]]:
    made: list[tuple[str, int, socket.socket | None]] = []
    try:
        made.append(("socket(SOCK_CLOEXEC)", libc_socket(
            socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC), None))
        made.append(("socket()", libc_socket(socket.AF_UNIX, socket.SOCK_STREAM), None))
        py = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        made.append(("python:socket.socket()", py.fileno(), py))
        inh = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        inh.set_inheritable(True)
        made.append(("python:set_inheritable(True)", inh.fileno(), inh))
        views = [(ident, fd, fd_view(ident, fd).fd_cloexec, os.fstat(fd).st_ino)
                 for ident, fd, _ in made]
        argv = [sys.executable, "-I", "-S", "-c", CHILD_CODE]
        try:
            # close_fds=False: subprocess would otherwise close everything itself
            p = subprocess.run(argv, close_fds=False, capture_output=True, text=True,
                               timeout=20, check=True)
        except (OSError, subprocess.SubprocessError) as exc:
            raise RawlabError(f"could not exec {sys.executable} to look at its "
                              f"/proc/<pid>/fd: {exc}") from None
        child = json.loads(p.stdout)
    finally:
        for _, fd, obj in made:
            if obj is not None:
                obj.close()
            else:
                os.close(fd)
    fds: dict[str, str] = child["fds"]
    out = [ExecCase(ident, fd, cloexec, ino, str(fd) in fds, fds.get(str(fd)))
           for ident, fd, cloexec, ino in views]
    return int(child["pid"]), [*argv[:4], "<list /proc/self/fd>"], out


def fcntl_views() -> list[FdView]:
    out = []
    for ident, stype in (("socket()", socket.SOCK_STREAM),
                         ("socket(SOCK_NONBLOCK)", socket.SOCK_STREAM | socket.SOCK_NONBLOCK),
                         ("socket(SOCK_CLOEXEC)", socket.SOCK_STREAM | socket.SOCK_CLOEXEC),
                         ("socket(SOCK_NONBLOCK|SOCK_CLOEXEC)",
                          socket.SOCK_STREAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)):
        fd = libc_socket(socket.AF_UNIX, stype)
        try:
            out.append(fd_view(ident, fd))
        finally:
            os.close(fd)
    return out


def python_defaults() -> list[FdView]:
    """Python's own descriptors: FD_CLOEXEC on each (PEP 446), O_NONBLOCK under timeouts."""
    out = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        out.append(fd_view("python:socket.socket()", s.fileno()))
        s.settimeout(1.0)  # CPython implements timeouts as O_NONBLOCK + poll()
        out.append(fd_view("python:settimeout(1.0)", s.fileno()))
    a, b = socket.socketpair()
    with a, b:
        out.append(fd_view("python:socket.socketpair()", a.fileno()))
    r, w = os.pipe()
    try:
        out.append(fd_view("python:os.pipe()", r))
    finally:
        os.close(r)
        os.close(w)
    with open(os.devnull, "rb") as fh:
        out.append(fd_view("python:open()", fh.fileno()))
    if _is_open(0):
        out.append(fd_view("stdin (inherited)", 0))
    return out


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def run() -> FlagsLesson:
    pid, argv, execs = exec_cases()
    return FlagsLesson(
        sock_nonblock=int(socket.SOCK_NONBLOCK), sock_cloexec=int(socket.SOCK_CLOEXEC),
        o_nonblock=os.O_NONBLOCK, fd_cloexec=fcntl.FD_CLOEXEC, recv=recv_cases(),
        exec_child_pid=pid, exec_argv=argv, exec=execs, fcntl=fcntl_views(),
        python_defaults=python_defaults())

