"""Build TCP conversations packet by packet for the analyser's table tests (not a test module).

    conv = Conv(c_isn=1000, s_isn=5000)
    conv.c(0.0, "S", opts=SYN_OPTS)              # client -> server at t = 0 ms
    conv.s(0.1, "SA", opts=SYN_OPTS)             # seq/ack are relative to the ISNs
    conv.c(0.2, "A", seq=1, ack=1)
    events = conv.run()                          # feeds rawlab's analyser
    conv.write(path)                             # the same packets as a pcap (for tshark)
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rawlab.analysis.tcp import Segment, TcpAnalyzer
from rawlab.decode.checksum import inet_checksum, pseudo_header_v4
from rawlab.pcap.writer import PcapWriter
from rawlab.records import LinkType

T0 = 1_700_000_000 * 10**9  # a realistic epoch: Wireshark treats a zero time as "unset"
FLAGS = {"F": 1, "S": 2, "R": 4, "P": 8, "A": 16, "U": 32, "E": 64, "C": 128}
SYN_OPTS = b"\x02\x04\x05\xb4\x04\x02\x08\x0a\x00\x00\x00\x01\x00\x00\x00\x00\x01\x03\x03\x07"


def tcp_ipv4(src: bytes, dst: bytes, sport: int, dport: int, seq: int, ack: int, flags: int,
             win: int, payload: bytes = b"", opts: bytes = b"") -> bytes:
    opts += b"\x00" * (-len(opts) % 4)
    off = (5 + len(opts) // 4) << 12
    hdr = struct.pack("!HHIIHHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                      off | flags, win, 0, 0) + opts
    seg = hdr + payload
    cs = inet_checksum(seg, pseudo_header_v4(src, dst, 6, len(seg)))
    seg = seg[:16] + struct.pack("!H", cs) + seg[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(seg), 1, 0x4000, 64, 6, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", inet_checksum(ip)) + ip[12:]
    return ip + seg


@dataclass
class Conv:
    c_isn: int = 1000
    s_isn: int = 5000
    c_addr: bytes = bytes((10, 0, 0, 1))
    s_addr: bytes = bytes((10, 0, 0, 2))
    c_port: int = 40000
    s_port: int = 80
    packets: list[tuple[int, bytes]] = field(default_factory=list)

    def _add(self, t_ms: float, client: bool, flags: str, seq: int, ack: int, n: int, win: int,
             opts: bytes, raw_seq: int | None = None) -> None:
        f = sum(FLAGS[ch] for ch in flags)
        if client:
            s, d, sp, dp = self.c_addr, self.s_addr, self.c_port, self.s_port
            abs_seq, abs_ack = self.c_isn + seq, self.s_isn + ack
        else:
            s, d, sp, dp = self.s_addr, self.c_addr, self.s_port, self.c_port
            abs_seq, abs_ack = self.s_isn + seq, self.c_isn + ack
        if raw_seq is not None:
            abs_seq = raw_seq
        if not f & FLAGS["A"]:
            abs_ack = 0
        data = tcp_ipv4(s, d, sp, dp, abs_seq, abs_ack, f, win, b"x" * n, opts)
        self.packets.append((T0 + round(t_ms * 1e6), data))

    def c(self, t_ms: float, flags: str, seq: int = 0, ack: int = 0, n: int = 0,
          win: int = 1000, opts: bytes = b"", raw_seq: int | None = None) -> Conv:
        self._add(t_ms, True, flags, seq, ack, n, win, opts, raw_seq)
        return self

    def s(self, t_ms: float, flags: str, seq: int = 0, ack: int = 0, n: int = 0,
          win: int = 1000, opts: bytes = b"", raw_seq: int | None = None) -> Conv:
        self._add(t_ms, False, flags, seq, ack, n, win, opts, raw_seq)
        return self

    def handshake(self, opts: bytes = b"", win: int = 1000) -> Conv:
        self.c(0.0, "S", opts=opts, win=win)
        self.s(1.0, "SA", ack=1, opts=opts, win=win)
        return self.c(2.0, "A", seq=1, ack=1, win=win)

    def run(self, analyzer: TcpAnalyzer | None = None, *, finish: bool = True) -> list[Any]:
        tcp = analyzer or TcpAnalyzer()
        out: list[Any] = []
        for frame, (ts, data) in enumerate(self.packets, 1):
            out += tcp.feed_bytes(frame, ts, data, LinkType.RAW)
        if finish:
            out += tcp.finish()
        return out

    def segments(self) -> list[Segment]:
        return [e for e in self.run() if isinstance(e, Segment)]

    def write(self, path: Path) -> Path:
        with PcapWriter(path, LinkType.RAW) as w:
            for ts, data in self.packets:
                w.write(ts, data, len(data))
        return path
