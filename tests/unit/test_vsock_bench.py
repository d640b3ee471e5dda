"""The bench engine, the listen/connect loops and their output, over AF_UNIX in tmp.

The engine is socket-agnostic: AF_UNIX STREAM and SEQPACKET stand in for vsock here
(vsock itself runs only in the vm tier).
"""

from __future__ import annotations

import json
import random
import socket
import threading
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rawlab.errors import RawlabError
from rawlab.present import vsock as pv
from rawlab.sockets import vsock as vs
from rawlab.sockets import vsockbench as vb

UNIX_TYPES = {"stream": socket.SOCK_STREAM, "seqpacket": socket.SOCK_SEQPACKET}


@pytest.mark.parametrize(("text", "n"), [("1", 1), ("4K", 4096), ("64KiB", 65536),
                                         ("64kb", 65536), ("32M", 32 << 20), ("1g", 1 << 30)])
def test_parse_size(text: str, n: int) -> None:
    assert vb.parse_size(text) == n


@pytest.mark.parametrize("text", ["", "0", "4Q", "-1", "1.5M", "K"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        vb.parse_size(text)


def test_percentiles_nearest_rank() -> None:
    s = list(range(1, 1001))
    assert vb.percentile(s, 50) == 500
    assert vb.percentile(s, 99) == 990
    assert vb.percentile(s, 99.9) == 999
    assert vb.percentile(s, 100) == 1000
    assert vb.percentile([7], 99.9) == 7
    assert vb.summary([3, 1, 2])["p50_ns"] == 2
    with pytest.raises(ValueError):
        vb.percentile([], 50)


def test_header_and_report_round_trip() -> None:
    h = vb.Header(vb.LATENCY, 1, 2, 10_000)
    assert vb.Header.unpack(h.pack()) == h
    r = vb.Report(1 << 40, 7, 0xDEADBEEF, 123)
    assert vb.Report.unpack(r.pack()) == r
    bad = bytearray(h.pack())
    bad[0:4] = b"XXXX"
    for raw in (bytes(bad), h.pack()[:-1], vb.Header(9).pack()):
        with pytest.raises(ValueError):
            vb.Header.unpack(raw)


@pytest.fixture(params=["stream", "seqpacket"])
def server(request: pytest.FixtureRequest, tmp_path: Path
           ) -> Iterator[tuple[str, Callable[[], socket.socket], list[object]]]:
    kind = request.param
    path = str(tmp_path / "bench.sock")
    lst = socket.socket(socket.AF_UNIX, UNIX_TYPES[kind])
    lst.bind(path)
    lst.listen(16)
    seen: list[object] = []

    def run() -> None:
        try:
            for ev in vb.serve(lst, kind, f"unix:{path}"):
                seen.append(ev)
        except OSError:
            pass

    threading.Thread(target=run, daemon=True).start()

    def connect() -> socket.socket:
        s = socket.socket(socket.AF_UNIX, UNIX_TYPES[kind])
        s.connect(path)
        return s

    yield kind, connect, seen
    lst.shutdown(socket.SHUT_RDWR)
    lst.close()


def test_throughput_is_verified_end_to_end(server) -> None:
    kind, connect, seen = server
    ticks: list[vb.Progress] = []
    c = vb.Client(connect, kind, ticks.append)
    t = c.throughput(4096, 1 << 20)
    assert (t.bytes, t.messages, t.msg_size) == (1 << 20, 256, 4096)
    assert t.seconds > 0 and t.bytes_per_s > 0
    assert ticks[-1].done == ticks[-1].total == 1 << 20
    t2 = c.throughput(1000, 5000)  # sizes that do not divide the 1 MiB block
    assert t2.bytes == 5000
    sessions = [e for e in seen if isinstance(e, vb.ServerSession)]
    assert sessions[0].mode == "throughput" and sessions[0].bytes == 1 << 20
    assert sessions[0].crc32 == t.crc32
    if kind == "seqpacket":
        assert sessions[0].messages == 256


def test_latency_and_connect(server) -> None:
    kind, connect, _seen = server
    c = vb.Client(connect, kind)
    lat = c.latency(1, 1, 200, warmup=5)
    assert len(lat.samples_ns) == 200 and min(lat.samples_ns) > 0
    big = c.latency(100, 3000, 20, warmup=0)
    assert len(big.samples_ns) == 20
    ct = c.connect_time(10)
    assert len(ct.samples_ns) == 10


def _serve_one(kind: str, header: vb.Header, payload: list[bytes]
               ) -> tuple[vb.ServerSession, vb.Report]:
    """Send `header` and `payload` to `vb.handle` over a socketpair; its session + report."""
    a, b = socket.socketpair(socket.AF_UNIX, UNIX_TYPES[kind])
    seq = kind == "seqpacket"
    out: list[vb.ServerSession] = []

    def server() -> None:
        with b:  # as `serve` does: an error ends the session without a report
            out.append(vb.handle(b, "peer", seq))

    th = threading.Thread(target=server, daemon=True)
    th.start()
    a.settimeout(30)  # a stuck server fails the test instead of hanging it
    with a:
        vb.send_message(a, seq, header.pack())
        for chunk in payload:
            vb.send_message(a, seq, chunk)
        a.shutdown(socket.SHUT_WR)
        try:
            raw = vb.recv_message(a, seq, vb.REPORT.size)
        except ConnectionResetError:  # no report: the session ended in an error
            raw = b""
        th.join(timeout=30)
    assert out, "the server did not finish"
    return out[0], (vb.Report.unpack(raw) if raw else vb.Report(0, 0, 0, 0))


@pytest.mark.parametrize("kind", ["stream", "seqpacket"])
def test_server_report_covers_every_byte_in_order(kind: str) -> None:
    rng = random.Random(kind)
    big = 65536 if kind == "seqpacket" else 3 * vb.READ_SIZE + 17  # many full reads
    sizes = [1, 4096, 65536, 1000, 65535, 3, big] * 6
    payload = [rng.randbytes(n) for n in sizes]
    sess, rep = _serve_one(kind, vb.Header(vb.THROUGHPUT, 65536, 0, len(sizes)), payload)
    data = b"".join(payload)
    assert sess.error is None and sess.mode == "throughput"
    assert (rep.bytes, rep.crc32) == (len(data), zlib.crc32(data))
    assert (sess.bytes, sess.crc32) == (rep.bytes, rep.crc32)
    if kind == "seqpacket":
        assert rep.messages == len(sizes)  # one recv per message, boundaries kept


def test_server_refuses_a_seqpacket_message_larger_than_its_buffer(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vb, "READ_SIZE", 1024)
    sess, _rep = _serve_one("seqpacket", vb.Header(vb.THROUGHPUT, 100, 0, 1), [b"x" * 2000])
    assert sess.mode == "?" and "larger than the read buffer" in (sess.error or "")


def test_a_server_that_loses_bytes_fails_the_bench(tmp_path: Path) -> None:
    a, b = socket.socketpair()

    def liar() -> None:
        with b:
            hdr = vb.Header.unpack(vb.recv_exact(b, vb.HEADER.size))
            total = crc = 0
            while data := b.recv(65536):
                total += len(data)
                crc = zlib.crc32(data, crc)
            b.sendall(vb.Report(total - 1, hdr.count, crc ^ 1, 1).pack())

    threading.Thread(target=liar, daemon=True).start()
    with pytest.raises(RawlabError) as ei:
        vb.Client(lambda: a, "stream").throughput(4096, 8192)
    assert "8191 bytes arrived of 8192" in ei.value.message and "CRC-32" in ei.value.message


def test_bad_client_is_one_session_with_an_error() -> None:
    a, b = socket.socketpair()
    a.sendall(b"GET / HTTP/1.0\r\n\r\nxxxxxxxx")
    a.close()
    s = vb.handle(b, "peer", seq=False)
    assert s.mode == "?" and "not a rawlab bench client" in (s.error or "")
    assert "error" in pv.session_text(s)


def test_bench_report_text_and_json() -> None:
    r = vb.BenchReport("1:5000", "stream")
    r.throughput.append(vb.Throughput(65536, 64 << 20, 1024, 0.5, 0.49, 0xABCDEF01))
    r.latency.append(vb.Latency(1, 1, tuple(range(1000, 2000))))
    r.connect = vb.ConnectTime((5000, 6000, 7000))
    doc = pv.bench_json(r)
    json.dumps(doc)
    assert doc["schema"] == "rawlab.vsock.bench/1"
    t = doc["throughput"][0]
    assert t["bytes_per_s"] == 134217728 and t["crc32"] == "abcdef01" and t["verified"]
    assert doc["latency"][0]["p50_ns"] == 1499 and doc["latency"][0]["p999_ns"] == 1998
    assert doc["connect"]["count"] == 3
    text = pv.bench_text(r)
    assert "128.0 MiB/s" in text and "p50 1.5 µs" in text and "crc32 abcdef01 ok" in text
    assert pv.progress_text(vb.Progress("latency 1", 50, 200)).endswith(" 25.0%")


# --- listen / connect loops -----------------------------------------------------------------


def test_session_reports_boundaries_and_echo_over_seqpacket() -> None:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    a.sendmsg([b"one"], [], socket.MSG_EOR)
    a.send(b"two-two")
    a.shutdown(socket.SHUT_WR)
    peer = vs.VsockAddr(1, 1234)
    events = list(vs.session(b, peer, "seqpacket", echo=True))
    assert [type(e).__name__ for e in events] == ["Accepted", "Received", "Received", "Closed"]
    assert [e.data for e in events[1:3]] == [b"one", b"two-two"]  # type: ignore[attr-defined]
    assert a.recv(100) == b"one" and a.recv(100) == b"two-two"  # boundaries kept
    closed = events[-1]
    assert isinstance(closed, vs.Closed)
    assert (closed.bytes_in, closed.bytes_out, closed.messages) == (10, 10, 2)
    lines = [pv.event_text(e) for e in events]
    assert lines[0] == "accepted 1:1234 (seqpacket)"
    assert lines[1].startswith('recv 1:1234 3 B [') and '"one"' in lines[1]
    assert json.loads(json.dumps(pv.event_json(events[1])))["peer"] == {"cid": 1, "port": 1234}


def test_pump_sends_then_reads_until_eof() -> None:
    a, b = socket.socketpair()

    def echo() -> None:
        with b:
            while data := b.recv(65536):
                b.sendall(data)

    threading.Thread(target=echo, daemon=True).start()
    got = bytearray()
    payload = [b"x" * 300_000, b"y" * 300_000]  # more than both buffers: no deadlock
    st = vs.pump(a, "stream", iter(payload), got.extend)
    assert bytes(got) == b"".join(payload) and st.sent == st.received == 600_000


def test_event_text_for_each_kind() -> None:
    local = vs.VsockAddr(vs.VMADDR_CID_ANY, 5000)
    assert pv.event_text(vs.Listening(local, "stream")) == "listening on any:5000 (stream)"
    assert pv.endpoint_json(local) == {"cid": None, "port": 5000}
    r = vs.Received("unix:/x", b"\x00hi\n" + b"z" * 100, eor=True)
    assert pv.event_text(r).startswith('recv unix:/x 104 B [EOR] "\\x00hi\\n')
    assert pv.event_text(r).endswith("…")
    c = vs.Closed(local, 1, 2, 3, 0.5, "reset")
    assert pv.event_text(c) == "closed any:5000 (reset): 1 B in, 2 B out, 3 message(s), 0.500 s"
    assert pv.endpoint_json("unix:/x") == {"unix": "/x"}


def test_endpoint_of() -> None:
    assert vs.endpoint_of((3, 7), "x") == vs.VsockAddr(3, 7)
    assert vs.endpoint_of("", "unix:/p") == "unix:/p"
