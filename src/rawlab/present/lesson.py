"""The lessons for people (text, one line of why per step) and for programs (JSON).

The lessons (``rawlab.lessons``) return dataclasses of ints, errno names and
signal numbers; this is the only place that turns them into words. The JSON
schemas are documented in docs/json.md, "lesson".
"""

from __future__ import annotations

import dataclasses
import errno as errno_mod
import os
import signal
from typing import Any, TextIO

from rawlab.lessons.families import FamiliesLesson
from rawlab.lessons.flags import FdView, FlagsLesson
from rawlab.lessons.pipe_vs_socket import PipeVsSocketLesson
from rawlab.lessons.sigpipe import SigpipeLesson

Lesson = SigpipeLesson | FlagsLesson | FamiliesLesson | PipeVsSocketLesson
SCHEMA = "rawlab.lesson.{}/1"
NAMES: dict[type, str] = {SigpipeLesson: "sigpipe", FlagsLesson: "flags",
                          FamiliesLesson: "families", PipeVsSocketLesson: "pipe-vs-socket"}


# --- JSON ----------------------------------------------------------------------------

def _jsonable(v: Any) -> Any:
    if isinstance(v, bytes):
        return v.decode("ascii", "backslashreplace")
    if isinstance(v, list):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    return v


def mb_per_s(moved: int, elapsed_ns: int) -> float:
    """Megabytes (10^6 bytes) per second."""
    return moved * 1000 / elapsed_ns if elapsed_ns > 0 else 0.0


def to_json(lesson: Lesson) -> dict[str, Any]:
    """The stable JSON document of a lesson (docs/json.md, "lesson")."""
    name = NAMES[type(lesson)]
    body = _jsonable(dataclasses.asdict(lesson))
    if isinstance(lesson, FamiliesLesson):
        for p in body["probes"]:
            p["ok"] = p["errno"] is None
    if isinstance(lesson, PipeVsSocketLesson):
        for t in body["throughput"]:
            t["mb_per_s"] = round(mb_per_s(t["moved"], t["elapsed_ns"]), 1)
    return {"schema": SCHEMA.format(name.replace("-", "_")), "lesson": name, **body}


# --- text -------------------------------------------------------------------------------

def _sig(n: int | None) -> str:
    if n is None:
        return ""
    try:
        return f"{signal.Signals(n).name} ({n})"
    except ValueError:
        return str(n)


def _err(name: str | None) -> str:
    if name is None:
        return ""
    num = getattr(errno_mod, name, None)
    return f"{name} ({os.strerror(num)})" if isinstance(num, int) else name


def _ms(ns: int) -> str:
    return f"{ns / 1e6:.3f} ms"


class _Out:
    def __init__(self, out: TextIO) -> None:
        self.out = out

    def head(self, text: str) -> None:
        self.out.write(f"\n== {text}\n")

    def step(self, did: str, answer: str, why: str) -> None:
        self.out.write(f"  {did}\n      -> {answer}\n      why: {why}\n")

    def line(self, text: str = "") -> None:
        self.out.write(f"{text}\n")


SIGPIPE_WHY = {
    "pipe.default": "a write to a pipe with no reader left raises SIGPIPE; its default "
                    "action ends the writer (that is how `yes | head -1` stops)",
    "pipe.ignored": "with SIGPIPE ignored the same write(2) just fails with EPIPE",
    "pipe.blocked": "a blocked SIGPIPE stays pending while write(2) fails with EPIPE: pipes "
                    "have no MSG_NOSIGNAL, so blocking (or ignoring) is how to survive",
    "socketpair.default": "a stream socket whose peer closed is a broken pipe too: SIGPIPE, "
                          "and the process dies",
    "socketpair.ignored": "ignored: send(2) fails with EPIPE instead",
    "socketpair.nosignal": "MSG_NOSIGNAL asks for EPIPE without the signal, for this one call, "
                           "whatever the disposition",
    "tcp.closed": "close() sent only a FIN: our first write is taken into our send buffer "
                  "and reaches a socket that is gone, which answers RST; the RST makes the "
                  "next write fail with EPIPE",
    "tcp.reset": "SO_LINGER {on, 0} makes close() send RST at once, dropping the connection: "
                 "the next write reports ECONNRESET (once), the ones after it EPIPE",
}


def _render_sigpipe(r: SigpipeLesson, o: _Out) -> None:
    o.line(f"SIGPIPE is signal {r.sigpipe_number}. This Python process has it "
           f"{r.python_disposition}: CPython ignores SIGPIPE at startup, which is why Python "
           "programs see BrokenPipeError where C programs die.")
    o.head("a reader that is gone: a forked child writes once, the parent reads its wait status")
    for c in r.local:
        call = (f"{c.call}(2)" if not c.flags else "send(2, MSG_NOSIGNAL)")
        did = f"{c.endpoint}: {call} with SIGPIPE {c.disposition}"
        if c.signal is not None:
            ans = f"child killed by {_sig(c.signal)}, wait status {c.wait_status:#x}"
        elif c.errno:
            ans = f"{_err(c.errno)}; child exited {c.exit_code}"
            if c.pending:
                ans += f"; pending: {', '.join(_sig(s) for s in c.pending)}"
        else:
            ans = f"wrote {c.written} bytes"
        o.step(did, ans, SIGPIPE_WHY.get(c.id, ""))
    o.head("TCP over 127.0.0.1: a peer that closed vs a peer that reset (MSG_NOSIGNAL)")
    for t in r.tcp:
        did = ("peer: SO_LINGER {1, 0} + close() (RST)" if t.linger_zero else
               "peer: close() (FIN)") + ("; our recv() saw EOF" if t.eof else "")
        writes = "; ".join(f"write {i + 1}: " + (f"{w.written} bytes" if w.errno is None
                                                 else _err(w.errno))
                           for i, w in enumerate(t.writes))
        o.step(did, writes, SIGPIPE_WHY.get(t.id, ""))


RECV_WHY = {
    "blocking+SO_RCVTIMEO": "a blocking socket waits for data; it gave up only because "
                            "SO_RCVTIMEO was set",
    "SOCK_NONBLOCK": "SOCK_NONBLOCK sets O_NONBLOCK at creation: no data means EAGAIN at "
                     "once, never a wait",
    "fcntl(O_NONBLOCK)": "the same O_NONBLOCK set afterwards with fcntl(F_SETFL): the same answer",
    "MSG_DONTWAIT": "MSG_DONTWAIT makes this one call non-blocking; the descriptor stays blocking",
}
EXEC_WHY = {
    "socket(SOCK_CLOEXEC)": "SOCK_CLOEXEC sets FD_CLOEXEC atomically at creation: execve() "
                            "closes it, the child never sees it",
    "socket()": "without it the exec'd child inherits the socket (same inode): a leak that "
                "keeps it open while the child lives",
    "python:socket.socket()": "Python sets FD_CLOEXEC on every descriptor it makes (PEP 446)",
    "python:set_inheritable(True)": "set_inheritable(True) clears FD_CLOEXEC: inherited again",
}


def _fd_row(v: FdView) -> str:
    return (f"  {v.id:<38} fd {v.fd:<3} F_GETFL {v.fl:#08o} O_NONBLOCK "
            f"{'yes' if v.o_nonblock else 'no ':<3}  F_GETFD {v.fd_flags} FD_CLOEXEC "
            f"{'yes' if v.fd_cloexec else 'no'}")


def _render_flags(r: FlagsLesson, o: _Out) -> None:
    o.line(f"SOCK_NONBLOCK = {r.sock_nonblock:#o} (= O_NONBLOCK {r.o_nonblock:#o}), "
           f"SOCK_CLOEXEC = {r.sock_cloexec:#o}: OR them into socket(2)'s type; "
           f"FD_CLOEXEC = {r.fd_cloexec}.")
    o.head("recv(1) on an empty AF_UNIX stream socket")
    for c in r.recv:
        how = f"O_NONBLOCK {'on' if c.o_nonblock else 'off'}"
        if c.rcvtimeo_ns:
            how += f", SO_RCVTIMEO {_ms(c.rcvtimeo_ns)}"
        if c.flags:
            how += f", flags {c.flags:#x}"
        ans = f"{_err(c.errno) if c.errno else 'data'} after {_ms(c.elapsed_ns)}"
        o.step(f"{c.id}: {how}", ans, RECV_WHY.get(c.id, ""))
    o.head(f"execve() a child ({' '.join(r.exec_argv)}), pid {r.exec_child_pid}: which "
           f"sockets does /proc/{r.exec_child_pid}/fd list?")
    for e in r.exec:
        did = (f"{e.id}: fd {e.fd}, socket:[{e.inode}], "
               f"FD_CLOEXEC {'set' if e.fd_cloexec else 'clear'}")
        ans = (f"present in the child: {e.fd} -> {e.child_target}" if e.in_child
               else "absent in the child")
        o.step(did, ans, EXEC_WHY.get(e.id, ""))
    o.head("fcntl views of sockets made by socket(2) with each flag")
    for v in r.fcntl:
        o.line(_fd_row(v))
    o.head("Python's own descriptors")
    for v in r.python_defaults:
        o.line(_fd_row(v))
    o.line("  why: PEP 446 makes every descriptor Python creates non-inheritable (FD_CLOEXEC);"
           " a timeout (settimeout) is O_NONBLOCK plus poll() inside CPython; stdin was"
           " inherited, so it has no FD_CLOEXEC")


FAMILY_ERR_WHY = {
    "EAFNOSUPPORT": "no such family in this kernel (not built, or its module not loaded)",
    "ESOCKTNOSUPPORT": "the family exists but has no such socket type",
    "EPROTONOSUPPORT": "the type exists but not with that protocol",
    "EPERM": "refused to these credentials: SOCK_RAW and AF_PACKET need CAP_NET_RAW",
    "EACCES": "refused to these credentials",
    "ENODEV": "the family exists but no loaded transport offers this type (AF_VSOCK)",
    "EINVAL": "the family rejected the type/protocol combination",
}


def _render_families(r: FamiliesLesson, o: _Out) -> None:
    o.line(f"socket(domain, type, protocol) then close(), as euid {r.euid} "
           f"(CAP_NET_RAW {'effective' if r.cap_net_raw else 'not effective'}); "
           "nothing is bound or connected.")
    types: list[str] = list(dict.fromkeys(p.type_name for p in r.probes))
    rows: dict[str, dict[str, str]] = {}
    for p in r.probes:
        cell = "ok" if p.ok else (p.errno or "")
        if p.protocol:
            cell += f" (p{p.protocol})"
        rows.setdefault(f"{p.domain_name} ({p.domain})", {})[p.type_name] = cell
    w0 = max(len(k) for k in rows) + 2
    widths = {t: max(len(t), *(len(v.get(t, "")) for v in rows.values())) + 2 for t in types}
    o.line()
    o.line(("".ljust(w0) + "".join(t.ljust(widths[t]) for t in types)).rstrip())
    for dom, cells in rows.items():
        o.line((dom.ljust(w0) + "".join(cells.get(t, "").ljust(widths[t])
                                        for t in types)).rstrip())
    seen = sorted({p.errno for p in r.probes if p.errno})
    o.line()
    o.line("(pN): the protocol argument used; 0 otherwise")
    for e in seen:
        o.line(f"{e:<16} {FAMILY_ERR_WHY.get(e, _err(e))}")
    if any(p.domain == 1 and p.type_name == "SOCK_RAW" and p.ok for p in r.probes):
        o.line("note: AF_UNIX quietly treats SOCK_RAW as SOCK_DGRAM (net/unix/af_unix.c)")


def _render_pipe_vs_socket(r: PipeVsSocketLesson, o: _Out) -> None:
    o.head("direction: a pipe is one-way, a socket both ways")
    for d in r.direction:
        if d.errno:
            ans = _err(d.errno)
            why = "a pipe's ends are opened for one direction each (O_RDONLY / O_WRONLY)"
        else:
            ans = f"wrote {d.written}, the other end read {d.received}"
            why = ("every socket end reads and writes" if d.transport != "pipe"
                   else "the write end writes, the read end reads")
        o.step(d.id, ans, why)
    o.head("buffering: how much a non-blocking writer can queue before EAGAIN")
    for b in r.buffering:
        if b.pipe_size is not None:
            size = f"F_GETPIPE_SZ {b.pipe_size}"
        else:
            size = f"SO_SNDBUF {b.sndbuf}, SO_RCVBUF {b.rcvbuf}"
        ans = (f"{b.filled} bytes, then {b.errno}; {b.readable} readable at the reader"
               + (f", {b.send_queue} still in our send queue" if b.send_queue is not None
                  else ""))
        why = {"pipe": "a pipe holds exactly its pipe size (16 pages by default)",
               "socketpair": "AF_UNIX charges the bytes and their skb overhead to the "
                             "sender's SO_SNDBUF; the data sits in the peer's queue",
               "tcp": "TCP holds data on both sides: the receiver's window and our send "
                      "buffer, both autotuned"}[b.transport]
        o.step(f"{b.transport} ({size}), writes of {b.chunk}", ans, why)
    o.head("message boundaries: write 'hello', write 'world', then read(100) until done")
    for m in r.boundaries:
        reads = ", ".join(repr(x.decode("ascii", "backslashreplace")) for x in m.reads)
        why = ("SEQPACKET and DGRAM deliver one message per read" if m.kept else
               "a stream is bytes only: two writes come back as one read")
        o.step(m.transport, f"reads: {reads} ({'kept' if m.kept else 'merged'})", why)
    o.head(f"throughput: a forked writer, the reader here, limit {r.time_limit_ns / 1e9:g} s "
           "each")
    for t in r.throughput:
        buf = (f"pipe {t.buffer}" if t.transport.startswith("pipe") else f"SO_SNDBUF {t.buffer}")
        done = "" if t.complete else f" (stopped by the time limit at {t.moved} bytes)"
        o.line(f"  {t.transport:<11} {t.moved / (1 << 20):7.1f} MiB in {_ms(t.elapsed_ns):>12}"
               f"  {mb_per_s(t.moved, t.elapsed_ns):8.0f} MB/s  ({buf}, writes of "
               f"{t.chunk}){done}")
    o.line("  why: each transport copies the bytes twice (in and out of the kernel); what "
           "differs is how often the writer must sleep and wake the reader: a bigger buffer "
           "means fewer switches, TCP adds its protocol work")


def render(lesson: Lesson, out: TextIO) -> None:
    o = _Out(out)
    o.line(f"rawlab lesson {NAMES[type(lesson)]}: what we did, and what the kernel answered")
    if isinstance(lesson, SigpipeLesson):
        _render_sigpipe(lesson, o)
    elif isinstance(lesson, FlagsLesson):
        _render_flags(lesson, o)
    elif isinstance(lesson, FamiliesLesson):
        _render_families(lesson, o)
    else:
        _render_pipe_vs_socket(lesson, o)
