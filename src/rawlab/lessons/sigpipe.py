"""SIGPIPE and EPIPE: writing to a pipe or stream socket whose reader is gone.

Each local case runs in a forked child so that the default disposition can
really kill it; the parent reports the child's wait status. The TCP cases run
over 127.0.0.1 with MSG_NOSIGNAL, so no signal is involved there.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
from dataclasses import dataclass, field

from rawlab.lessons.common import exc_errname, tcp_pair

PAYLOAD = b"hello"
DEFAULT, IGNORED, BLOCKED = "default", "ignored", "blocked"


@dataclass(frozen=True)
class LocalCase:
    """One write to a pipe / socketpair whose other end was closed, in a child."""

    id: str  # e.g. "pipe.default", "socketpair.nosignal"
    endpoint: str  # "pipe" | "socketpair"
    call: str  # "write" (write(2)) | "send" (send(2) with `flags`)
    disposition: str  # SIGPIPE in the child: "default" | "ignored" | "blocked"
    flags: int  # send(2) flags, e.g. socket.MSG_NOSIGNAL; 0 for write(2)
    written: int | None  # bytes the call returned, if it returned
    errno: str | None  # what the call failed with, if it returned
    signal: int | None  # the signal that killed the child (WTERMSIG), if any
    pending: list[int]  # signals left pending after the call (blocked case)
    wait_status: int  # raw waitpid status
    exit_code: int | None  # WEXITSTATUS, when the child exited


@dataclass(frozen=True)
class TcpWrite:
    written: int | None
    errno: str | None


@dataclass(frozen=True)
class TcpCase:
    """A TCP peer over 127.0.0.1 that closed, or reset, before we write twice."""

    id: str  # "tcp.closed" | "tcp.reset"
    linger_zero: bool  # the peer set SO_LINGER {1, 0} before close(): RST, not FIN
    eof: bool  # recv() returned 0 before our writes (the peer's FIN arrived)
    revents_before: int  # poll() events on our socket before the first write
    revents_between: int  # poll() events after the first write (POLLERR: an RST came)
    writes: list[TcpWrite]


@dataclass(frozen=True)
class SigpipeLesson:
    sigpipe_number: int
    python_disposition: str  # how this Python process treats SIGPIPE: "ignored" normally
    local: list[LocalCase] = field(default_factory=list)
    tcp: list[TcpCase] = field(default_factory=list)


def _disposition_name(h: object) -> str:
    if h == signal.SIG_IGN:
        return IGNORED
    if h == signal.SIG_DFL:
        return DEFAULT
    return "handler"


def _in_child(endpoint: str, disposition: str, flags: int) -> LocalCase:
    if endpoint == "pipe":
        rd, wr = os.pipe()
        os.close(rd)  # the reader is gone
        target: int | socket.socket = wr
    else:
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        b.close()  # the peer is gone
        target = a
    res_r, res_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: set the disposition, write once, report, exit
        out: dict[str, object] = {}
        try:
            os.close(res_r)
            signal.signal(signal.SIGPIPE, signal.SIG_IGN if disposition == IGNORED
                          else signal.SIG_DFL)
            if disposition == BLOCKED:
                signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGPIPE})
            try:
                if isinstance(target, socket.socket):
                    out["written"] = target.send(PAYLOAD, flags)
                else:
                    out["written"] = os.write(target, PAYLOAD)
            except OSError as exc:
                out["errno"] = exc_errname(exc)
            out["pending"] = sorted(int(s) for s in signal.sigpending())
            os.write(res_w, json.dumps(out).encode())
        finally:
            os._exit(0)  # SIGPIPE is still blocked here: leaving does not deliver it
    os.close(res_w)
    with os.fdopen(res_r, "rb") as fh:
        raw = fh.read()
    _, status = os.waitpid(pid, 0)
    if isinstance(target, socket.socket):
        target.close()
    else:
        os.close(target)
    got = json.loads(raw) if raw else {}
    flag_id = "nosignal" if flags & socket.MSG_NOSIGNAL else disposition
    return LocalCase(
        id=f"{endpoint}.{flag_id}", endpoint=endpoint,
        call="send" if endpoint == "socketpair" else "write", disposition=disposition,
        flags=int(flags), written=got.get("written"), errno=got.get("errno"),
        signal=os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
        pending=list(got.get("pending", [])), wait_status=status,
        exit_code=os.WEXITSTATUS(status) if os.WIFEXITED(status) else None)


def _poll(s: socket.socket, events: int, timeout_ms: int) -> int:
    p = select.poll()
    p.register(s, events)
    got = p.poll(timeout_ms)
    return got[0][1] if got else 0


def _send(s: socket.socket) -> TcpWrite:
    try:
        return TcpWrite(s.send(PAYLOAD, socket.MSG_NOSIGNAL), None)
    except OSError as exc:
        return TcpWrite(None, exc_errname(exc))


def _tcp_case(linger_zero: bool) -> TcpCase:
    cli, srv = tcp_pair()
    with cli:
        if linger_zero:  # close() now sends RST and discards the connection
            srv.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
        srv.close()
        eof = False
        if linger_zero:
            before = _poll(cli, select.POLLERR, 2000)  # wait for the RST
        else:
            before = _poll(cli, select.POLLIN, 2000)  # wait for the FIN
            eof = cli.recv(16, socket.MSG_DONTWAIT) == b""
        first = _send(cli)
        # after a FIN our write reaches a socket that no longer exists: it answers RST
        between = _poll(cli, select.POLLERR, 2000)
        second = _send(cli)
    return TcpCase("tcp.reset" if linger_zero else "tcp.closed", linger_zero, eof,
                   before, between, [first, second])


def run() -> SigpipeLesson:
    cases = [
        _in_child("pipe", DEFAULT, 0),
        _in_child("pipe", IGNORED, 0),
        _in_child("pipe", BLOCKED, 0),
        _in_child("socketpair", DEFAULT, 0),
        _in_child("socketpair", IGNORED, 0),
        _in_child("socketpair", DEFAULT, socket.MSG_NOSIGNAL),
    ]
    return SigpipeLesson(
        sigpipe_number=int(signal.SIGPIPE),
        python_disposition=_disposition_name(signal.getsignal(signal.SIGPIPE)),
        local=cases, tcp=[_tcp_case(False), _tcp_case(True)])
