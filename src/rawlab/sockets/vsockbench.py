"""The `rawlab vsock bench` engine: a client and a server speaking a tiny protocol.

Socket-agnostic (vsock STREAM/SEQPACKET, hybrid vsock's Unix sockets, or any
stream/seqpacket pair in tests). Each connection starts with a HEADER naming a mode:

* THROUGHPUT: the client sends `count` messages of `msg_size` bytes, then SHUT_WR;
  the server counts what arrived and its CRC-32 and sends a REPORT back. Throughput
  is bytes / (first send → REPORT received): delivery, not write() time, and the
  client checks count, CRC-32 (and, for SEQPACKET, the message count) against what
  it sent.
* LATENCY: `count` round trips of `msg_size` bytes → `resp_size` bytes.
* CONNECT: the connection itself was the measurement; the server just closes.
"""

from __future__ import annotations

import itertools
import math
import random
import re
import socket
import struct
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from rawlab.errors import Exit, RawlabError
from rawlab.sockets.vsock import Endpoint, Listening, endpoint_of

MAGIC = b"RLVB"
VERSION = 1
THROUGHPUT, LATENCY, CONNECT = 1, 2, 3
MODE_NAMES = {THROUGHPUT: "throughput", LATENCY: "latency", CONNECT: "connect"}
HEADER = struct.Struct("!4sBBHIIQ")  # magic, version, mode, reserved, msg_size, resp_size, count
REPORT = struct.Struct("!4sQQIQ")  # magic, bytes, messages, crc32, server ns (first→last byte)
BLOCK = 1 << 20  # the payload cycles through a 1 MiB random block
READ_SIZE = 256 * 1024  # per server recv, whatever the message size (bench/vsock/README.md)
MAX_MSG = 16 << 20

ProgressFn = Callable[["Progress"], None]


@dataclass(frozen=True)
class Progress:
    phase: str  # e.g. "throughput 64 KiB", "latency 1 B", "connect"
    done: int
    total: int


@dataclass(frozen=True)
class Header:
    mode: int
    msg_size: int = 0
    resp_size: int = 0
    count: int = 0

    def pack(self) -> bytes:
        return HEADER.pack(MAGIC, VERSION, self.mode, 0, self.msg_size, self.resp_size,
                           self.count)

    @classmethod
    def unpack(cls, raw: bytes) -> Header:
        if len(raw) != HEADER.size:
            raise ValueError(f"header is {len(raw)} bytes, not {HEADER.size}")
        magic, ver, mode, _r, msg, resp, count = HEADER.unpack(raw)
        if magic != MAGIC or ver != VERSION:
            raise ValueError(f"not a rawlab bench client (magic {magic!r}, version {ver})")
        if mode not in MODE_NAMES:
            raise ValueError(f"unknown bench mode {mode}")
        if msg > MAX_MSG or resp > MAX_MSG:
            raise ValueError(f"message size {max(msg, resp)} above {MAX_MSG}")
        return cls(mode, msg, resp, count)


@dataclass(frozen=True)
class Report:
    bytes: int
    messages: int
    crc32: int
    server_ns: int

    def pack(self) -> bytes:
        return REPORT.pack(MAGIC, self.bytes, self.messages, self.crc32, self.server_ns)

    @classmethod
    def unpack(cls, raw: bytes) -> Report:
        if len(raw) != REPORT.size:
            raise ValueError(f"report is {len(raw)} bytes, not {REPORT.size}")
        magic, n, msgs, crc, ns = REPORT.unpack(raw)
        if magic != MAGIC:
            raise ValueError(f"not a rawlab bench report (magic {magic!r})")
        return cls(n, msgs, crc, ns)


# --- results -------------------------------------------------------------------------


def percentile(sorted_ns: Sequence[int], q: float) -> int:
    """Nearest-rank percentile of an ascending sequence (q in 0..100)."""
    if not sorted_ns:
        raise ValueError("no samples")
    rank = max(1, math.ceil(round(q * len(sorted_ns) / 100, 9)))  # 99.9% of 1000 is 999
    return sorted_ns[min(rank, len(sorted_ns)) - 1]


def summary(samples_ns: Sequence[int]) -> dict[str, int]:
    s = sorted(samples_ns)
    return {"count": len(s), "min_ns": s[0], "p50_ns": percentile(s, 50),
            "p99_ns": percentile(s, 99), "p999_ns": percentile(s, 99.9), "max_ns": s[-1],
            "mean_ns": sum(s) // len(s)}


@dataclass(frozen=True)
class Throughput:
    msg_size: int
    bytes: int
    messages: int
    seconds: float  # client: first send → server's report received
    server_seconds: float  # server: first byte → last byte
    crc32: int

    @property
    def bytes_per_s(self) -> float:
        return self.bytes / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class Latency:
    req_size: int
    resp_size: int
    samples_ns: tuple[int, ...]


@dataclass(frozen=True)
class ConnectTime:
    samples_ns: tuple[int, ...]


@dataclass
class BenchReport:
    target: str
    sock_type: str
    throughput: list[Throughput] = field(default_factory=list)
    latency: list[Latency] = field(default_factory=list)
    connect: ConnectTime | None = None


# --- sizes ---------------------------------------------------------------------------

_SIZE = re.compile(r"^\s*(\d+)\s*([kmg]?)(i?b?)\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """"4096", "4K", "64KiB", "1M", "2g" → bytes (binary units); raises ValueError."""
    m = _SIZE.match(text)
    if not m:
        raise ValueError(f"{text!r} is not a size (e.g. 1, 4K, 64KiB, 32M)")
    n = int(m.group(1)) << {"": 0, "k": 10, "m": 20, "g": 30}[m.group(2).lower()]
    if n <= 0:
        raise ValueError(f"size {text!r} must be > 0")
    return n


def parse_sizes(text: str) -> list[int]:
    return [parse_size(t) for t in text.split(",") if t.strip()]


# --- socket helpers --------------------------------------------------------------------


def recv_into_exact(sock: socket.socket, buf: bytearray) -> None:
    """Fill `buf` from a stream (raises ConnectionResetError on an early EOF)."""
    view = memoryview(buf)
    got, n = 0, len(buf)
    while got < n:
        k = sock.recv_into(view[got:])
        if k == 0:
            raise ConnectionResetError(f"EOF after {got} of {n} bytes")
        got += k


def recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray(n)
    recv_into_exact(sock, buf)
    return bytes(buf)


def recv_message(sock: socket.socket, seq: bool, n: int) -> bytes:
    """A message of `n` bytes: one SEQPACKET message, or exactly `n` stream bytes."""
    if seq:
        data = sock.recv(max(n, 1) + 1)  # one more: a longer message shows as such
        if not data and n:
            raise ConnectionResetError("EOF instead of a message")
        return data
    return recv_exact(sock, n)


def send_message(sock: socket.socket, seq: bool, data: bytes | memoryview) -> None:
    if seq:
        sock.send(data)  # blocking SEQPACKET send queues the whole message
    else:
        sock.sendall(data)


# --- client ------------------------------------------------------------------------------


class Client:
    """Runs the measurements against a bench server; `connect()` opens one connection."""

    def __init__(self, connect: Callable[[], socket.socket], sock_type: str = "stream",
                 progress: ProgressFn | None = None) -> None:
        if sock_type not in ("stream", "seqpacket"):
            raise RawlabError(f"bench needs --type stream or seqpacket, not {sock_type}",
                              Exit.USAGE)
        self.connect = connect
        self.seq = sock_type == "seqpacket"
        self.progress = progress

    def _tick(self, phase: str, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(Progress(phase, done, total))

    def throughput(self, msg_size: int, total_bytes: int) -> Throughput:
        count = max(1, -(-total_bytes // msg_size))
        mv = memoryview(random.Random(msg_size).randbytes(BLOCK + msg_size))
        offsets = [(i * msg_size) % BLOCK for i in range(BLOCK // math.gcd(BLOCK, msg_size))]
        expected = 0
        for i in range(count):  # before the clock starts
            off = offsets[i % len(offsets)]
            expected = zlib.crc32(mv[off:off + msg_size], expected)
        # The messages, in order, endlessly: the slices made once when there are few
        # (sizes that are multiples of 256 B), else one per message.
        if len(offsets) <= 4096:
            messages = itertools.cycle([mv[off:off + msg_size] for off in offsets])
        else:
            messages = (mv[off:off + msg_size] for off in itertools.cycle(offsets))
        phase = f"throughput {msg_size}"
        step = max(1, count // 100)
        sock = self.connect()
        try:
            t0 = time.perf_counter_ns()
            send_message(sock, self.seq, Header(THROUGHPUT, msg_size, 0, count).pack())
            send = sock.send if self.seq else sock.sendall
            for done in range(0, count, step):  # a progress tick per `step` messages
                self._tick(phase, done * msg_size, count * msg_size)
                for m in itertools.islice(messages, min(step, count - done)):
                    send(m)
            sock.shutdown(socket.SHUT_WR)
            rep = Report.unpack(recv_message(sock, self.seq, REPORT.size))
            t1 = time.perf_counter_ns()
        finally:
            sock.close()
        self._tick(phase, count * msg_size, count * msg_size)
        sent = count * msg_size
        bad = []
        if rep.bytes != sent:
            bad.append(f"{rep.bytes} bytes arrived of {sent} sent")
        if rep.crc32 != expected:
            bad.append(f"CRC-32 {rep.crc32:08x} arrived, {expected:08x} sent")
        if self.seq and rep.messages != count:
            bad.append(f"{rep.messages} messages arrived of {count} sent")
        if bad:
            raise RawlabError(f"bench throughput {msg_size} B: the server saw something else "
                              f"than was sent: {'; '.join(bad)}; fix: this is a transport "
                              "bug worth a capture (`rawlab vsock capture`)", Exit.FAILED)
        return Throughput(msg_size, sent, count, (t1 - t0) / 1e9, rep.server_ns / 1e9,
                          expected)

    def latency(self, req_size: int, resp_size: int, count: int, warmup: int = 50) -> Latency:
        rounds = count + warmup
        req = b"\x5a" * req_size
        sock = self.connect()
        samples: list[int] = []
        phase = f"latency {req_size}"
        step = max(1, rounds // 100)
        try:
            send_message(sock, self.seq, Header(LATENCY, req_size, resp_size, rounds).pack())
            buf = bytearray(resp_size)
            now = time.perf_counter_ns
            for i in range(rounds):
                t = now()
                send_message(sock, self.seq, req)
                if self.seq:
                    got = len(recv_message(sock, True, resp_size))
                    if got != resp_size:
                        raise RawlabError(f"bench latency: a {got}-byte answer, not "
                                          f"{resp_size}", Exit.FAILED)
                else:
                    recv_into_exact(sock, buf)
                if i >= warmup:
                    samples.append(now() - t)
                if i % step == 0:
                    self._tick(phase, i, rounds)
        finally:
            sock.close()
        return Latency(req_size, resp_size, tuple(samples))

    def connect_time(self, count: int) -> ConnectTime:
        samples: list[int] = []
        hdr = Header(CONNECT).pack()
        step = max(1, count // 100)
        for i in range(count):
            t = time.perf_counter_ns()
            sock = self.connect()
            samples.append(time.perf_counter_ns() - t)
            try:
                send_message(sock, self.seq, hdr)
                sock.recv(1)  # the server's close: one connection at a time, so a
                # sequential server's backlog never overflows (vsock answers that with RST)
            finally:
                sock.close()
            if i % step == 0:
                self._tick("connect", i, count)
        return ConnectTime(tuple(samples))


# --- server --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerSession:
    peer: Endpoint
    mode: str  # throughput / latency / connect / "?" when the header was bad
    msg_size: int = 0
    bytes: int = 0
    messages: int = 0
    crc32: int = 0
    seconds: float = 0.0
    error: str | None = None


def _throughput_server(conn: socket.socket, seq: bool, hdr: Header) -> Report:
    buf = bytearray(max(READ_SIZE, hdr.msg_size + 1))
    mv = memoryview(buf)
    crc = total = msgs = 0
    first = 0
    while True:
        if seq:
            n, _anc, flags, _a = conn.recvmsg_into([buf])
            if flags & socket.MSG_TRUNC:
                raise ValueError("a message larger than the read buffer")
        else:
            n = conn.recv_into(buf)
        if n == 0:
            break
        if not first:
            first = time.perf_counter_ns()
        crc = zlib.crc32(mv[:n], crc)
        total += n
        msgs += 1
    last = time.perf_counter_ns()
    return Report(total, msgs, crc, last - first if first else 0)


def handle(conn: socket.socket, peer: Endpoint, seq: bool) -> ServerSession:
    """Serve one bench connection, whatever its mode."""
    t0 = time.perf_counter()
    try:
        raw = recv_message(conn, seq, HEADER.size)
        if not raw:
            return ServerSession(peer, "connect")
        hdr = Header.unpack(raw)
        mode = MODE_NAMES[hdr.mode]
        if hdr.mode == THROUGHPUT:
            rep = _throughput_server(conn, seq, hdr)
            send_message(conn, seq, rep.pack())
            return ServerSession(peer, mode, hdr.msg_size, rep.bytes, rep.messages, rep.crc32,
                                 rep.server_ns / 1e9)
        if hdr.mode == LATENCY:
            resp = b"\xa5" * hdr.resp_size
            for _ in range(hdr.count):
                req = recv_message(conn, seq, hdr.msg_size)
                if len(req) != hdr.msg_size:
                    raise ValueError(f"a {len(req)}-byte request, not {hdr.msg_size}")
                send_message(conn, seq, resp)
            return ServerSession(peer, mode, hdr.msg_size, hdr.count * hdr.msg_size, hdr.count,
                                 seconds=time.perf_counter() - t0)
        return ServerSession(peer, mode)
    except (ValueError, OSError) as exc:
        return ServerSession(peer, "?", error=f"{type(exc).__name__}: {exc}")


def serve(listener: socket.socket, sock_type: str, local: Endpoint, *, once: bool = False,
          peer_fallback: Endpoint = "?") -> Iterator[Listening | ServerSession]:
    """Accept bench connections one after the other; one ServerSession each."""
    yield Listening(local, sock_type)
    seq = sock_type == "seqpacket"
    while True:
        conn, raw = listener.accept()
        with conn:
            yield handle(conn, endpoint_of(raw, peer_fallback), seq)
        if once:
            return
