"""TCP (RFC 9293) header and every option.

    t = Tcp(segment)
    t.sport, t.dport, t.seq, t.ack, t.dataofs, t.reserved, t.flags, t.window,
    t.checksum, t.urgptr                           # ints
    t.options          # tuple[TcpOption, ...] (parsed on first access; unknown kinds kept raw)
    t.mss, t.wscale, t.sack_permitted, t.sack, t.timestamps, t.mptcp   # from the options
    t.payload          # memoryview after the header

``flags`` is 9 bits in scapy's order from bit 0: F S R P A U E C N (N is the
old ECN-nonce bit, now AE). :func:`flag_letters` gives scapy's ``"SA"`` form.
Each :class:`TcpOption` keeps its kind, its offset from the start of the TCP
header and its raw value bytes; :meth:`TcpOption.value` decodes the known ones.
"""

from __future__ import annotations

import struct
from typing import Any, ClassVar, NamedTuple

from construct import BitsInteger, BitStruct, Int16ub, Int32ub, Struct

from rawlab.decode.view import Buffer, View, as_view, pad

TCP_HLEN = 20
FIN, SYN, RST, PSH, ACK, URG, ECE, CWR, NS = (1 << i for i in range(9))
FLAG_LETTERS = "FSRPAUECN"

TCPOPT_EOL = 0
TCPOPT_NOP = 1
TCPOPT_MSS = 2
TCPOPT_WSCALE = 3
TCPOPT_SACK_PERMITTED = 4
TCPOPT_SACK = 5
TCPOPT_TIMESTAMP = 8
TCPOPT_MD5 = 19
TCPOPT_AO = 29
TCPOPT_MPTCP = 30
TCPOPT_FASTOPEN = 34

TCP_HEADER = Struct(
    "sport" / Int16ub,
    "dport" / Int16ub,
    "seq" / Int32ub,
    "ack" / Int32ub,
    "off" / BitStruct(
        "dataofs" / BitsInteger(4), "reserved" / BitsInteger(3), "flags" / BitsInteger(9)
    ),
    "window" / Int16ub,
    "checksum" / Int16ub,
    "urgptr" / Int16ub,
)

_HDR = struct.Struct("!HHIIHHHH")
_H = struct.Struct("!H")
_II = struct.Struct("!II")


def flag_letters(flags: int) -> str:
    """Set flags as letters in scapy's order (``FSRPAUECN``): SYN+ACK -> ``"SA"``."""
    return "".join(c for i, c in enumerate(FLAG_LETTERS) if flags >> i & 1)


class TcpOption(NamedTuple):
    kind: int
    offset: int  # from the start of the TCP header
    data: bytes  # the value (after kind and length); b"" for EOL/NOP

    def value(self) -> int | bool | tuple[int, ...] | tuple[tuple[int, int], ...] | bytes:
        """Decoded value: MSS/WS → int, SACK-permitted → True, SACK → ((left, right), ...),
        timestamps → (tsval, tsecr), MPTCP → (subtype, ...) raw kept in ``data``; else bytes."""
        k, d = self.kind, self.data
        if k == TCPOPT_MSS and len(d) == 2:
            return _H.unpack(d)[0]
        if k == TCPOPT_WSCALE and len(d) == 1:
            return d[0]
        if k == TCPOPT_SACK_PERMITTED and not d:
            return True
        if k == TCPOPT_SACK and len(d) % 8 == 0:
            return tuple(_II.unpack_from(d, i) for i in range(0, len(d), 8))
        if k == TCPOPT_TIMESTAMP and len(d) == 8:
            return _II.unpack(d)
        if k == TCPOPT_MPTCP and d:
            return (d[0] >> 4,)
        return d


def parse_options(raw: memoryview | bytes, base: int = TCP_HLEN) -> tuple[
        tuple[TcpOption, ...], bool]:
    """Options from the bytes after the fixed header; True if malformed."""
    out: list[TcpOption] = []
    i, n = 0, len(raw)
    while i < n:
        k = raw[i]
        if k == TCPOPT_EOL:
            out.append(TcpOption(k, base + i, b""))
            break
        if k == TCPOPT_NOP:
            out.append(TcpOption(k, base + i, b""))
            i += 1
            continue
        if i + 1 >= n or raw[i + 1] < 2 or i + raw[i + 1] > n:
            out.append(TcpOption(k, base + i, bytes(raw[i + 2 :])))
            return tuple(out), True
        ln = raw[i + 1]
        out.append(TcpOption(k, base + i, bytes(raw[i + 2 : i + ln])))
        i += ln
    return tuple(out), False


class Tcp(View):
    __slots__ = (
        "_options", "ack", "checksum", "dataofs", "dport", "flags", "reserved", "seq", "sport",
        "urgptr", "window",
    )
    name: ClassVar[str] = "tcp"
    FIELDS: ClassVar[tuple[tuple[str, int, int], ...]] = (
        ("sport", 0, 2), ("dport", 2, 2), ("seq", 4, 4), ("ack", 8, 4), ("dataofs", 12, 1),
        ("reserved", 12, 1), ("flags", 12, 2), ("window", 14, 2), ("checksum", 16, 2),
        ("urgptr", 18, 2),
    )

    def __init__(self, buf: Buffer) -> None:
        self.buf = mv = as_view(buf)
        hdr, trunc = pad(mv, TCP_HLEN)
        (self.sport, self.dport, self.seq, self.ack, off, self.window, self.checksum,
         self.urgptr) = _HDR.unpack_from(hdr)
        self.dataofs = do = off >> 12
        self.reserved = (off >> 9) & 7
        self.flags = off & 0x1FF
        self._options: tuple[TcpOption, ...] | None = None
        self.malformed = do < 5
        self.truncated = trunc or len(mv) < do * 4

    @property
    def header_len(self) -> int:
        return max(self.dataofs * 4, TCP_HLEN)

    @property
    def flag_str(self) -> str:
        return flag_letters(self.flags)

    @property
    def options_raw(self) -> bytes:
        return bytes(self.buf[TCP_HLEN : min(self.dataofs * 4, len(self.buf))])

    @property
    def options(self) -> tuple[TcpOption, ...]:
        if self._options is None:
            raw = self.buf[TCP_HLEN : min(self.dataofs * 4, len(self.buf))]
            self._options, bad = parse_options(raw)
            if bad:
                self.malformed = True
        return self._options

    def _opt(self, kind: int) -> TcpOption | None:
        for o in self.options:
            if o.kind == kind:
                return o
        return None

    @property
    def mss(self) -> int | None:
        o = self._opt(TCPOPT_MSS)
        return o.value() if o and len(o.data) == 2 else None  # type: ignore[return-value]

    @property
    def wscale(self) -> int | None:
        o = self._opt(TCPOPT_WSCALE)
        return o.data[0] if o and len(o.data) == 1 else None

    @property
    def sack_permitted(self) -> bool:
        return self._opt(TCPOPT_SACK_PERMITTED) is not None

    @property
    def sack(self) -> tuple[tuple[int, int], ...]:
        o = self._opt(TCPOPT_SACK)
        if o is None or len(o.data) % 8:
            return ()
        return tuple(_II.unpack_from(o.data, i) for i in range(0, len(o.data), 8))

    @property
    def timestamps(self) -> tuple[int, int] | None:
        o = self._opt(TCPOPT_TIMESTAMP)
        return _II.unpack(o.data) if o and len(o.data) == 8 else None

    @property
    def mptcp(self) -> tuple[int, bytes] | None:
        """(subtype, raw option value) of the first MPTCP option; RFC 8684 gives it meaning."""
        o = self._opt(TCPOPT_MPTCP)
        if o is None:
            return None
        return (o.data[0] >> 4 if o.data else -1, o.data)

    def fields(self) -> dict[str, Any]:
        d = super().fields()
        d["options"] = [{"kind": o.kind, "offset": o.offset, "data": o.data} for o in self.options]
        return d
