"""PPP (RFC 1661, RFC 1662 framing): link types PPP (9) and PPP_HDLC (50), PPPoE
sessions, PPTP's GRE; and the control protocols' common packet (LCP, IPCP, IPV6CP, CCP,
PAP, CHAP).

    p = Ppp(frame)
    p.address, p.control     # 0xff, 0x03 when the frame starts with them, else None
    p.protocol               # 0x0021 IPv4, 0x0057 IPv6, 0x0281 MPLS, 0xc021 LCP ...
    p.payload                # after the protocol field
    c = Lcp(payload)         # also Ipcp, Ipv6cp, Ccp, Pap, Chap: one layout
    c.code, c.identifier, c.length, c.options    # options: tuple[Tlv] (Configure-* codes)

As Wireshark: a frame whose first byte is 0xff carries address and control; the
protocol field is one byte when that byte is odd (protocol field compression),
else two.
"""

from __future__ import annotations

import struct
from typing import Any, ClassVar

from construct import Byte, Bytes, Int16ub, Struct

from rawlab.decode.tlv import MALFORMED, TRUNCATED, Tlv, walk
from rawlab.decode.view import Buffer, View, as_view, pad

PPP_ADDRESS = 0xFF
PPP_CONTROL = 0x03
PPP_IP = 0x0021
PPP_IPV6 = 0x0057
PPP_MPLS_UC = 0x0281
PPP_MPLS_MC = 0x0283
PPP_IPCP = 0x8021
PPP_IPV6CP = 0x8057
PPP_CCP = 0x80FD
PPP_LCP = 0xC021
PPP_PAP = 0xC023
PPP_CHAP = 0xC223
#: control protocol codes that carry options (Configure-Request .. Configure-Reject)
CONF_CODES = frozenset((1, 2, 3, 4))

PPP_HEADER = Struct("address" / Byte, "control" / Byte, "protocol" / Int16ub)
CONTROL_HEADER = Struct("code" / Byte, "identifier" / Byte, "length" / Int16ub,
                        "data" / Bytes(lambda c: max(c.length - 4, 0)))

_H = struct.Struct("!H")
_CTL = struct.Struct("!BBH")


class Ppp(View):
    __slots__ = ("address", "control", "hlen", "protocol")
    name: ClassVar[str] = "ppp"
    next_table: ClassVar[str] = "ppp"

    def __init__(self, buf: Buffer) -> None:
        self.buf = mv = as_view(buf)
        n = len(mv)
        o = 0
        self.address = self.control = None
        if n and mv[0] == PPP_ADDRESS:
            self.address = PPP_ADDRESS
            self.control = mv[1] if n > 1 else None
            o = 2
        if o < n and mv[o] & 1:
            self.protocol: int | None = mv[o]
            o += 1
        elif o + 2 <= n:
            self.protocol = _H.unpack_from(mv, o)[0]
            o += 2
        else:
            self.protocol = None
            o = n
        self.hlen = o
        self.truncated = self.protocol is None or (self.address is not None and n < 2)
        self.malformed = False

    @property
    def header_len(self) -> int:
        return self.hlen

    @property
    def next_key(self) -> int | None:
        return self.protocol

    def fields(self) -> dict[str, Any]:
        return {"address": self.address, "control": self.control, "protocol": self.protocol}


class PppControl(View):
    """The packet every PPP control protocol shares (RFC 1661 §5): code, identifier,
    length, then options (Configure-* codes) or data."""

    __slots__ = ("_options", "code", "identifier", "length")
    name: ClassVar[str] = "pppcp"
    HAS_OPTIONS: ClassVar[bool] = True  # Configure-* codes carry options (not PAP, CHAP)
    FIELDS: ClassVar[tuple[tuple[str, int, int], ...]] = (
        ("code", 0, 1), ("identifier", 1, 1), ("length", 2, 2),
    )

    def __init__(self, buf: Buffer) -> None:
        self.buf = mv = as_view(buf)
        hdr, trunc = pad(mv, 4)
        self.code, self.identifier, self.length = _CTL.unpack_from(hdr)
        self.malformed = self.length < 4
        self.truncated = trunc or len(mv) < self.length
        self._options: tuple[Tlv, ...] | None = None

    @property
    def header_len(self) -> int:
        return 4

    @property
    def payload(self) -> memoryview:
        return self.buf[4 : max(4, min(self.length, len(self.buf)))]

    @property
    def options(self) -> tuple[Tlv, ...]:
        """Configure-* options (type, offset, value), else ()."""
        if self._options is None:
            items: list[Tlv] = []
            if self.HAS_OPTIONS and self.code in CONF_CODES and not self.malformed:
                items, trouble = walk(self.buf, 4, self.length, _option_head, 2,
                                      inclusive=True)
                if trouble == MALFORMED:
                    self.malformed = True
                elif trouble == TRUNCATED:
                    self.truncated = True
            self._options = tuple(items)
        return self._options

    def fields(self) -> dict[str, Any]:
        d = super().fields()
        d["options"] = [{"type": o.type, "value": o.value} for o in self.options]
        return d


def _option_head(buf: memoryview, pos: int) -> tuple[int, int]:
    return buf[pos], buf[pos + 1]


class Lcp(PppControl):
    __slots__ = ()
    name: ClassVar[str] = "lcp"


class Ipcp(PppControl):
    __slots__ = ()
    name: ClassVar[str] = "ipcp"


class Ipv6cp(PppControl):
    __slots__ = ()
    name: ClassVar[str] = "ipv6cp"


class Ccp(PppControl):
    __slots__ = ()
    name: ClassVar[str] = "ccp"


class Pap(PppControl):
    __slots__ = ()
    name: ClassVar[str] = "pap"
    HAS_OPTIONS: ClassVar[bool] = False


class Chap(PppControl):
    __slots__ = ()
    name: ClassVar[str] = "chap"
    HAS_OPTIONS: ClassVar[bool] = False
