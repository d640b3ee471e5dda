"""TCP (RFC 9293) header and every option.

    t = Tcp(segment)
    t.sport, t.dport, t.seq, t.ack, t.dataofs, t.reserved, t.flags, t.window,
    t.checksum, t.urgptr                           # ints
    t.options          # tuple[TcpOption, ...] in wire order (parsed on first access)
    t.summary          # the options as one dict: {"mss": 1460, "wscale": 7, "ts": (v, e)...}
    t.mss, t.wscale, t.sack_permitted, t.sack, t.timestamps    # read from the summary
    t.mptcp            # the first MPTCP option: (subtype, value bytes)
    t.payload          # memoryview after the header

``flags`` is 9 bits, :class:`TcpFlag` from bit 0: FIN SYN RST PSH ACK URG ECE
CWR AE (AE, RFC 9768's Accurate ECN bit, was the ECN-nonce NS). :func:`flag_letters`
gives scapy's ``"SA"`` form (letters ``FSRPAUECN``: scapy still writes N for AE).

Options (smoltcp's ``TcpOption::parse``, ``src/wire/tcp.rs``): :func:`parse_options`
is the one walk (the TLV rules IPv4 shares, :mod:`rawlab.decode.options`), each
:class:`TcpOption` keeps its kind, its offset from the start of the TCP header and
its raw value bytes; :func:`option_value` decodes a known kind with a valid length
(else the option is ``Unknown{kind, data}``: its bytes survive).
:func:`options_summary` folds a list into the one dict every consumer reads (the
view's accessors, the analyser's ``Segment.options``, the ladder)::

    {"mss": int, "wscale": int, "sack_perm": True, "sack": ((left, right), ...),
     "ts": (tsval, tsecr), "<kind>": bytes (unknown, or a known kind of a wrong
     length), "malformed": True (the list is broken; what came before is kept)}
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from enum import IntFlag
from typing import Any, ClassVar, NamedTuple

from construct import BitsInteger, BitStruct, Int16ub, Int32ub, Struct

from rawlab import _kernels
from rawlab.decode.options import OPT_EOL, OPT_NOP, walk
from rawlab.decode.view import Buffer, View, as_view, pad

TCP_HLEN = 20


class TcpFlag(IntFlag):
    """The nine flag bits of the header (RFC 9293, RFC 3168, RFC 9768), bit 0 first."""

    FIN = 0x001
    SYN = 0x002
    RST = 0x004
    PSH = 0x008
    ACK = 0x010
    URG = 0x020
    ECE = 0x040
    CWR = 0x080
    AE = 0x100


# the same bits as plain ints, for hot paths (IntFlag arithmetic builds enum members)
FIN, SYN, RST, PSH, ACK, URG, ECE, CWR, AE = (int(f) for f in TcpFlag)
SYN_FIN = SYN | FIN  # each takes one sequence number (RFC 9293 §3.4)
SYN_ACK = SYN | ACK
SYN_FIN_RST = SYN | FIN | RST
FLAG_LETTERS = "FSRPAUECN"

TCPOPT_EOL = OPT_EOL
TCPOPT_NOP = OPT_NOP
TCPOPT_MSS = 2
TCPOPT_WSCALE = 3
TCPOPT_SACK_PERMITTED = 4
TCPOPT_SACK = 5
TCPOPT_TIMESTAMP = 8
TCPOPT_MD5 = 19
TCPOPT_UTO = 28
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
_II = struct.Struct("!II")


def flag_letters(flags: int) -> str:
    """Set flags as letters in scapy's order (``FSRPAUECN``): SYN+ACK -> ``"SA"``."""
    return "".join(c for i, c in enumerate(FLAG_LETTERS) if flags >> i & 1)


def option_value(kind: int, data: bytes) -> Any:
    """The value of a known option of a valid length, else None (an ``Unknown``):
    MSS, window scale, user timeout -> int; SACK-permitted -> True; SACK -> ((left, right), ...);
    timestamps -> (tsval, tsecr)."""
    n = len(data)
    if kind == TCPOPT_TIMESTAMP:
        return _II.unpack(data) if n == 8 else None
    if kind == TCPOPT_MSS:
        return data[0] << 8 | data[1] if n == 2 else None
    if kind == TCPOPT_WSCALE:
        return data[0] if n == 1 else None
    if kind == TCPOPT_UTO:  # RFC 5482: granularity bit + 15-bit timeout, as one int
        return data[0] << 8 | data[1] if n == 2 else None
    if kind == TCPOPT_SACK_PERMITTED:
        return True if n == 0 else None
    if kind == TCPOPT_SACK:
        return None if n % 8 else tuple(_II.unpack_from(data, i) for i in range(0, n, 8))
    return None


#: summary key of each kind :func:`option_value` knows
SUMMARY_KEYS = {TCPOPT_MSS: "mss", TCPOPT_WSCALE: "wscale", TCPOPT_SACK_PERMITTED: "sack_perm",
                TCPOPT_SACK: "sack", TCPOPT_TIMESTAMP: "ts"}


class TcpOption(NamedTuple):
    kind: int
    offset: int  # from the start of the TCP header
    data: bytes  # the value (after kind and length); b"" for EOL/NOP

    def value(self) -> int | bool | tuple[int, ...] | tuple[tuple[int, int], ...] | bytes:
        """:func:`option_value`, or for MPTCP (subtype,) (raw kept in ``data``), else bytes."""
        v = option_value(self.kind, self.data)
        if v is not None:
            return v  # type: ignore[no-any-return]
        if self.kind == TCPOPT_MPTCP and self.data:
            return (self.data[0] >> 4,)
        return self.data


def parse_options(raw: memoryview | bytes, base: int = TCP_HLEN) -> tuple[
        tuple[TcpOption, ...], bool]:
    """Options from the bytes after the fixed header; True if malformed."""
    items, bad = walk(raw, base)
    return tuple(map(TcpOption._make, items)), bad


def summarize(options: Sequence[tuple[int, int, bytes]], malformed: bool = False
              ) -> dict[str, Any]:
    """The options summary (module docstring) of parsed options, in wire order; a
    malformed list's last item is the broken option, which the summary leaves out."""
    opts = options[:-1] if malformed else options
    out: dict[str, Any] = {}
    for k, _off, data in opts:
        if k > TCPOPT_NOP:
            key = SUMMARY_KEYS.get(k)
            v = option_value(k, data) if key is not None else None
            if v is None:  # (a kind with no summary key, user timeout too: its bytes)
                out[str(k)] = bytes(data)
            else:
                out[key] = v
    if malformed:
        out["malformed"] = True
    return out


def options_summary(raw: bytes | memoryview) -> dict[str, Any]:
    """:func:`summarize` of :func:`parse_options` of ``raw``, by a compiled twin of both
    (:func:`rawlab._kernels.tcp_options`, ~0.2 µs against ~2 for a SACK list; the test
    of the compiled module holds the two together on every byte string)."""
    return _kernels.tcp_options(raw)


class Tcp(View):
    __slots__ = (
        "_options", "_options_bad", "_summary", "ack", "checksum", "dataofs", "dport", "flags",
        "reserved", "seq", "sport", "urgptr", "window",
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
        self._options_bad = False
        self._summary: dict[str, Any] | None = None
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
                self._options_bad = True
                if len(self.buf) < self.dataofs * 4:
                    self.truncated = True  # the capture ended inside the options (snaplen)
                else:
                    self.malformed = True
        return self._options

    @property
    def summary(self) -> dict[str, Any]:
        """:func:`options_summary` of this header's options (computed on first access)."""
        if self._summary is None:
            self._summary = summarize(self.options, self._options_bad)
        return self._summary

    @property
    def mss(self) -> int | None:
        return self.summary.get("mss")

    @property
    def wscale(self) -> int | None:
        return self.summary.get("wscale")

    @property
    def sack_permitted(self) -> bool:
        return "sack_perm" in self.summary

    @property
    def sack(self) -> tuple[tuple[int, int], ...]:
        return self.summary.get("sack", ())  # type: ignore[no-any-return]

    @property
    def timestamps(self) -> tuple[int, int] | None:
        return self.summary.get("ts")

    @property
    def mptcp(self) -> tuple[int, bytes] | None:
        """(subtype, raw option value) of the first MPTCP option; RFC 8684 gives it meaning."""
        for o in self.options:
            if o.kind == TCPOPT_MPTCP:
                return (o.data[0] >> 4 if o.data else -1, o.data)
        return None

    def fields(self) -> dict[str, Any]:
        d = super().fields()
        d["options"] = [{"kind": o.kind, "offset": o.offset, "data": o.data} for o in self.options]
        return d
