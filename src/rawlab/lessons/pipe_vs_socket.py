"""The same bytes through a pipe, an AF_UNIX socketpair and a TCP loopback connection.

Direction (a pipe is one-way), buffering (how much fits before a non-blocking
write gets EAGAIN), message boundaries (SOCK_SEQPACKET keeps them, streams merge
them) and throughput, measured side by side with a forked writer process, as in
a shell pipeline. TCP uses 127.0.0.1 only.
"""

from __future__ import annotations

import fcntl
import os
import select
import socket
import termios
import time
from collections.abc import Callable
from dataclasses import dataclass

from rawlab.errors import Exit, RawlabError
from rawlab.lessons.common import exc_errname, now_ns, tcp_pair

F_SETPIPE_SZ = 1031  # the kernel's numbers (fcntl.F_GETPIPE_SZ is only in Python >= 3.10)
F_GETPIPE_SZ = 1032
SIOCOUTQ = 0x5411  # == TIOCOUTQ: bytes in a TCP socket's send queue (unsent + unacked)
FILL_CHUNK = 65536
FILL_CAP = 256 << 20  # never queue more than this while filling
THROUGHPUT_CHUNK = 65536
MAX_MIB = 4096
MESSAGES = (b"hello", b"world")
TRANSPORTS = ("pipe", "socketpair", "tcp")
BIG_PIPE = 1 << 20  # F_SETPIPE_SZ for the "pipe-1m" run (the default fs.pipe-max-size)
THROUGHPUT_TRANSPORTS = ("pipe", "pipe-1m", "socketpair", "tcp")

# an endpoint is an fd (pipe end) or a socket
End = int | socket.socket


@dataclass(frozen=True)
class DirectionCase:
    id: str  # e.g. "pipe: write(read end)"
    transport: str
    end: str  # which end was written: "read end", "write end", "a", "b", "client", "server"
    written: int | None
    received: int | None  # bytes the other end read back
    errno: str | None  # EBADF: a pipe's read end is not open for writing


@dataclass(frozen=True)
class BufferCase:
    transport: str
    pipe_size: int | None  # fcntl(F_GETPIPE_SZ) (pipes only)
    sndbuf: int | None  # SO_SNDBUF of the writing socket (after the fill: TCP autotunes)
    rcvbuf: int | None  # SO_RCVBUF of the reading socket
    chunk: int  # bytes per write() while filling
    filled: int  # bytes accepted before the first EAGAIN
    errno: str | None  # the error that ended the fill: EAGAIN
    readable: int  # FIONREAD on the reading end once full: bytes already over there
    send_queue: int | None  # SIOCOUTQ on a TCP sender: bytes still on our side


@dataclass(frozen=True)
class BoundaryCase:
    transport: str  # "pipe", "unix stream", "unix seqpacket", "unix dgram", "tcp"
    sent: list[int]  # the two writes, in bytes
    reads: list[bytes]  # what successive reads returned
    kept: bool  # one read per write: the boundaries survived


@dataclass(frozen=True)
class Throughput:
    transport: str  # "pipe", "pipe-1m" (F_SETPIPE_SZ 1 MiB), "socketpair", "tcp"
    buffer: int  # F_GETPIPE_SZ for pipes, SO_SNDBUF of the writer for sockets (at start)
    chunk: int
    requested: int  # bytes asked for
    moved: int  # bytes the reader got
    elapsed_ns: int
    complete: bool  # moved == requested (else the time limit stopped the writer)


@dataclass(frozen=True)
class PipeVsSocketLesson:
    direction: list[DirectionCase]
    buffering: list[BufferCase]
    boundaries: list[BoundaryCase]
    throughput: list[Throughput]
    time_limit_ns: int


def _write(end: End, data: bytes) -> int:
    return end.send(data) if isinstance(end, socket.socket) else os.write(end, data)


def _read(end: End, n: int) -> bytes:
    return end.recv(n) if isinstance(end, socket.socket) else os.read(end, n)


def _fd(end: End) -> int:
    return end.fileno() if isinstance(end, socket.socket) else end


def _close(*ends: End) -> None:
    for e in ends:
        if isinstance(e, socket.socket):
            e.close()
        else:
            os.close(e)


def _readable(end: End) -> int:
    buf = fcntl.ioctl(_fd(end), termios.FIONREAD, b"\0\0\0\0")
    return int.from_bytes(buf, "little")


def _set_nonblock(end: End) -> None:
    fcntl.fcntl(_fd(end), fcntl.F_SETFL, fcntl.fcntl(_fd(end), fcntl.F_GETFL) | os.O_NONBLOCK)


def _pair(transport: str) -> tuple[End, End]:
    """(writer, reader) for a transport."""
    if transport.startswith("pipe"):
        r, w = os.pipe()
        if transport == "pipe-1m":
            fcntl.fcntl(w, F_SETPIPE_SZ, BIG_PIPE)
        return w, r
    if transport == "socketpair":
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        return a, b
    return tcp_pair()


# --- direction -----------------------------------------------------------------

def _try(tid: str, transport: str, end: str, src: End, dst: End) -> DirectionCase:
    try:
        n = _write(src, b"ping")
    except OSError as exc:
        return DirectionCase(tid, transport, end, None, None, exc_errname(exc))
    return DirectionCase(tid, transport, end, n, len(_read(dst, 16)), None)


def direction() -> list[DirectionCase]:
    out = []
    r, w = os.pipe()
    try:
        out.append(_try("pipe: write(write end)", "pipe", "write end", w, r))
        out.append(_try("pipe: write(read end)", "pipe", "read end", r, w))
        try:
            os.read(w, 1)
            err = None
        except OSError as exc:
            err = exc_errname(exc)
        out.append(DirectionCase("pipe: read(write end)", "pipe", "write end", None, None, err))
    finally:
        _close(r, w)
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with a, b:
        out.append(_try("socketpair: a -> b", "socketpair", "a", a, b))
        out.append(_try("socketpair: b -> a", "socketpair", "b", b, a))
    c, s = tcp_pair()
    with c, s:
        out.append(_try("tcp: client -> server", "tcp", "client", c, s))
        out.append(_try("tcp: server -> client", "tcp", "server", s, c))
    return out


# --- buffering -------------------------------------------------------------------

def _fill(w: End) -> tuple[int, str | None]:
    _set_nonblock(w)
    data = b"\0" * FILL_CHUNK
    total = 0
    while total < FILL_CAP:
        try:
            total += _write(w, data)
        except OSError as exc:
            return total, exc_errname(exc)
    return total, None


def buffering() -> list[BufferCase]:
    out = []
    for transport in TRANSPORTS:
        w, r = _pair(transport)
        try:
            pipe_size = fcntl.fcntl(r, F_GETPIPE_SZ) if transport == "pipe" else None
            filled, err = _fill(w)
            if transport == "tcp":
                time.sleep(0.05)  # let loopback deliver what is in flight
            sndbuf = rcvbuf = outq = None
            if isinstance(w, socket.socket) and isinstance(r, socket.socket):
                sndbuf = w.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
                rcvbuf = r.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
            if transport == "tcp":
                outq = int.from_bytes(fcntl.ioctl(_fd(w), SIOCOUTQ, b"\0\0\0\0"), "little")
            out.append(BufferCase(transport, pipe_size, sndbuf, rcvbuf, FILL_CHUNK, filled, err,
                                  _readable(r), outq))
        finally:
            _close(w, r)
    return out


# --- message boundaries ------------------------------------------------------------

def _wait_readable(end: End, want: int, timeout_s: float = 1.0) -> None:
    deadline = time.monotonic() + timeout_s
    while _readable(end) < want and time.monotonic() < deadline:
        select.select([_fd(end)], [], [], 0.01)


def _boundary(transport: str, w: End, r: End, stream: bool) -> BoundaryCase:
    try:
        sent = [_write(w, m) for m in MESSAGES]
        if stream:  # wait until every byte is over there, so that the read could merge
            _wait_readable(r, sum(sent))
        _set_nonblock(r)
        reads: list[bytes] = []
        while sum(map(len, reads)) < sum(sent):
            try:
                reads.append(_read(r, 100))
            except BlockingIOError:
                select.select([_fd(r)], [], [], 1.0)
    finally:
        _close(w, r)
    return BoundaryCase(transport, sent, reads, len(reads) == len(sent))


def boundaries() -> list[BoundaryCase]:
    r, w = os.pipe()
    out = [_boundary("pipe", w, r, True)]
    for name, stype, stream in (("unix stream", socket.SOCK_STREAM, True),
                                ("unix seqpacket", socket.SOCK_SEQPACKET, False),
                                ("unix dgram", socket.SOCK_DGRAM, False)):
        a, b = socket.socketpair(socket.AF_UNIX, stype)
        out.append(_boundary(name, a, b, stream))
    c, s = tcp_pair()
    out.append(_boundary("tcp", c, s, True))
    return out


# --- throughput ------------------------------------------------------------------

def _writer(w: End, go: int, total: int, limit_ns: int) -> None:
    """In the forked child: wait for the start byte, write `total` bytes or until the
    time limit, then leave (the reader sees EOF)."""
    try:
        os.read(go, 1)
        deadline = time.monotonic_ns() + limit_ns
        data = memoryview(b"\xa5" * THROUGHPUT_CHUNK)
        write: Callable[[memoryview], int] = (
            w.send if isinstance(w, socket.socket) else lambda b: os.write(w, b))
        sent = 0
        while sent < total and time.monotonic_ns() < deadline:
            sent += write(data[: min(THROUGHPUT_CHUNK, total - sent)])
    finally:
        os._exit(0)


def _throughput(transport: str, total: int, limit_ns: int) -> Throughput:
    w, r = _pair(transport)
    buffer = (w.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) if isinstance(w, socket.socket)
              else fcntl.fcntl(w, F_GETPIPE_SZ))
    go_r, go_w = os.pipe()  # the start line: fork's own cost stays out of the timing
    pid = os.fork()
    if pid == 0:  # child: the writer
        try:
            _close(r, go_w)
        finally:
            _writer(w, go_r, total, limit_ns)
    moved = 0
    try:
        _close(w, go_r)  # ours: the reader sees EOF when the child's copy closes
        buf = bytearray(THROUGHPUT_CHUNK)
        view = memoryview(buf)
        read: Callable[[memoryview], int] = (
            r.recv_into if isinstance(r, socket.socket) else lambda b: os.readv(r, [b]))
        t0 = now_ns()
        os.write(go_w, b"g")
        while n := read(view):
            moved += n
        elapsed = now_ns() - t0
    finally:
        _close(r, go_w)
        os.waitpid(pid, 0)
    return Throughput(transport, buffer, THROUGHPUT_CHUNK, total, moved, elapsed, moved == total)


def throughput(mib: int = 64, seconds: float = 5.0) -> list[Throughput]:
    if not 1 <= mib <= MAX_MIB:
        raise RawlabError(f"--mib {mib} is out of range; fix: pick 1..{MAX_MIB}", Exit.USAGE)
    if not 0 < seconds <= 60:
        raise RawlabError(f"--seconds {seconds} is out of range; fix: pick 0 < s <= 60",
                          Exit.USAGE)
    return [_throughput(t, mib << 20, int(seconds * 1e9)) for t in THROUGHPUT_TRANSPORTS]


def run(mib: int = 64, seconds: float = 5.0) -> PipeVsSocketLesson:
    tp = throughput(mib, seconds)  # validates the bounds first
    return PipeVsSocketLesson(direction(), buffering(), boundaries(), tp, int(seconds * 1e9))
