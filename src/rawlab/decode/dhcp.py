"""DHCP and BOOTP (RFC 951, 2131, 2132): the fixed BOOTP header and every option.

    d = Dhcp(udp_payload)
    d.op, d.htype, d.hlen, d.hops, d.xid, d.secs, d.flags        # ints
    d.ciaddr, d.yiaddr, d.siaddr, d.giaddr                       # 4 bytes each
    d.chaddr (16 bytes; the hardware address is chaddr[:hlen]), d.sname, d.file (bytes)
    d.cookie          # 0x63825363 for DHCP, else the 4 bytes there (plain BOOTP vendor area)
    d.options         # tuple[DhcpOption, ...]: (code, offset, data) in wire order, PAD/END
                      # too (the padding after END is one PAD item holding its bytes)
    d.message_type    # option 53's value (1 DISCOVER ... 8 INFORM ...), or None
    d.option(code)    # the data of the first option ``code``, or None

Options are a code-length-value walk (RFC 2132 2) after the magic cookie; PAD (0)
and END (255) have no length. An option whose length runs past the bytes marks the
message truncated (when the capture ends) and keeps what came before; bytes after
END are the padding. Unknown codes keep their number and bytes. Option overload
(52) is reported, and the options it puts in ``file``/``sname`` are walked too.
"""

from __future__ import annotations

import struct
from typing import ClassVar, NamedTuple

from construct import Bytes, Int8ub, Int16ub, Int32ub, Struct

from rawlab.decode.view import AppView, Buffer, as_view, pad

BOOTP_HLEN = 236
DHCP_MAGIC = 0x63825363
PORT_BOOTPS = 67
PORT_BOOTPC = 68

OPT_PAD = 0
OPT_END = 255
OPT_OVERLOAD = 52
OPT_MESSAGE_TYPE = 53

MESSAGE_TYPES = {1: "Discover", 2: "Offer", 3: "Request", 4: "Decline", 5: "ACK", 6: "NAK",
                 7: "Release", 8: "Inform", 9: "Force Renew", 10: "Lease query",
                 11: "Lease Unassigned", 12: "Lease Unknown", 13: "Lease Active",
                 14: "Bulk Lease Query", 15: "Lease Query Done", 16: "Active LeaseQuery",
                 17: "Lease Query Status", 18: "TLS"}
#: option names (IANA "BOOTP Vendor Extensions and DHCP Options", Wireshark's wording)
OPTION_NAMES = {
    0: "Padding", 1: "Subnet Mask", 2: "Time Offset", 3: "Router", 4: "Time Server",
    5: "Name Server", 6: "Domain Name Server", 7: "Log Server", 9: "LPR Server",
    12: "Host Name", 13: "Boot File Size", 15: "Domain Name", 17: "Root Path",
    19: "IP Forwarding", 23: "Default IP Time-to-Live", 26: "Interface MTU",
    28: "Broadcast Address", 33: "Static Route", 35: "ARP Cache Timeout",
    42: "Network Time Protocol Servers", 43: "Vendor-Specific Information",
    44: "NetBIOS over TCP/IP Name Server", 46: "NetBIOS over TCP/IP Node Type",
    47: "NetBIOS over TCP/IP Scope", 50: "Requested IP Address", 51: "IP Address Lease Time",
    52: "Option Overload", 53: "DHCP Message Type", 54: "DHCP Server Identifier",
    55: "Parameter Request List", 56: "Message", 57: "Maximum DHCP Message Size",
    58: "Renewal Time Value", 59: "Rebinding Time Value", 60: "Vendor class identifier",
    61: "Client identifier", 66: "TFTP Server Name", 67: "Bootfile name",
    77: "User Class Information", 80: "Rapid Commit", 81: "Client Fully Qualified Domain Name",
    82: "Agent Information Option", 90: "Authentication", 91: "Client last transaction time",
    92: "Associated IP", 93: "Client System Architecture",
    94: "Client Network Device Interface", 97: "UUID/GUID-based Client Identifier",
    108: "IPv6-Only Preferred", 114: "DHCP Captive-Portal", 116: "DHCP Auto-Configuration",
    118: "Subnet Selection Option", 119: "Domain Search", 120: "SIP Servers",
    121: "Classless Static Route", 124: "V-I Vendor Class",
    125: "V-I Vendor-specific Information", 150: "TFTP Server Address",
    249: "Private/Classless Static Route (Microsoft)", 252: "Private/Proxy autodiscovery",
    255: "End",
}
#: options whose value is a list of IPv4 addresses
ADDRESS_OPTIONS = frozenset((1, 3, 4, 5, 6, 7, 9, 28, 41, 42, 44, 45, 48, 49, 50, 54, 65, 69,
                             70, 71, 72, 73, 74, 75, 76, 118, 150))
#: options whose value is text
TEXT_OPTIONS = frozenset((12, 14, 15, 17, 18, 40, 47, 56, 60, 64, 66, 67))
#: options whose value is one unsigned integer (seconds, sizes)
INT_OPTIONS = frozenset((2, 13, 23, 24, 26, 35, 37, 38, 51, 57, 58, 59, 91, 108))

BOOTP_HEADER = Struct(
    "op" / Int8ub, "htype" / Int8ub, "hlen" / Int8ub, "hops" / Int8ub, "xid" / Int32ub,
    "secs" / Int16ub, "flags" / Int16ub, "ciaddr" / Bytes(4), "yiaddr" / Bytes(4),
    "siaddr" / Bytes(4), "giaddr" / Bytes(4), "chaddr" / Bytes(16), "sname" / Bytes(64),
    "file" / Bytes(128),
)
_HDR = struct.Struct("!BBBBIHH4s4s4s4s16s64s128s")


class DhcpOption(NamedTuple):
    code: int
    offset: int  # from the start of the BOOTP message
    data: bytes  # b"" for PAD and END


def walk_options(buf: memoryview, start: int, end: int) -> tuple[list[DhcpOption], int]:
    """The options in ``buf[start:end]``; (options, status) with status 0 (ended at END or
    at ``end``), 1 (an option runs past the captured bytes)."""
    out: list[DhcpOption] = []
    o = start
    stop = min(end, len(buf))
    while o < stop:
        code = buf[o]
        if code in (OPT_PAD, OPT_END):
            out.append(DhcpOption(code, o, b""))
            o += 1
            if code == OPT_END:
                if o < stop:  # the padding after END: one PAD item holding it
                    out.append(DhcpOption(OPT_PAD, o, bytes(buf[o:stop])))
                return out, 0
            continue
        if o + 1 >= stop:
            return out, 1
        ln = buf[o + 1]
        if o + 2 + ln > stop:
            out.append(DhcpOption(code, o, bytes(buf[o + 2 : stop])))
            return out, 1
        out.append(DhcpOption(code, o, bytes(buf[o + 2 : o + 2 + ln])))
        o += 2 + ln
    return out, 0


class Dhcp(AppView):
    __slots__ = ("_options", "chaddr", "ciaddr", "cookie", "file", "flags", "giaddr", "hlen",
                 "hops", "htype", "op", "secs", "siaddr", "sname", "xid", "yiaddr")
    name: ClassVar[str] = "dhcp"
    FIELDS: ClassVar[tuple[tuple[str, int, int], ...]] = (
        ("op", 0, 1), ("htype", 1, 1), ("hlen", 2, 1), ("hops", 3, 1), ("xid", 4, 4),
        ("secs", 8, 2), ("flags", 10, 2), ("ciaddr", 12, 4), ("yiaddr", 16, 4),
        ("siaddr", 20, 4), ("giaddr", 24, 4), ("chaddr", 28, 16), ("sname", 44, 64),
        ("file", 108, 128),
    )

    def __init__(self, buf: Buffer) -> None:
        self.buf = mv = as_view(buf)
        hdr, self.truncated = pad(mv, BOOTP_HLEN)
        (self.op, self.htype, self.hlen, self.hops, self.xid, self.secs, self.flags,
         self.ciaddr, self.yiaddr, self.siaddr, self.giaddr, self.chaddr, self.sname,
         self.file) = _HDR.unpack_from(hdr)
        self.cookie = (int.from_bytes(mv[BOOTP_HLEN : BOOTP_HLEN + 4], "big")
                       if len(mv) >= BOOTP_HLEN + 4 else None)
        self.malformed = False
        self._options: tuple[DhcpOption, ...] | None = None
        self.frames = ()


    @property
    def hwaddr(self) -> bytes:
        """The client hardware address (``chaddr`` cut to ``hlen``, at most 16)."""
        return self.chaddr[: min(self.hlen, 16)]

    @property
    def options(self) -> tuple[DhcpOption, ...]:
        """Every option (after the magic cookie; then in ``file`` and ``sname`` when
        option 52 overloads them), in wire order."""
        if self._options is None:
            opts: list[DhcpOption] = []
            if self.cookie == DHCP_MAGIC:
                opts, st = walk_options(self.buf, BOOTP_HLEN + 4, len(self.buf))
                if st:
                    self.truncated = True
                over = next((o.data[0] for o in opts if o.code == OPT_OVERLOAD and o.data), 0)
                for bit, (start, size) in ((1, (108, 128)), (2, (44, 64))):
                    if over & bit:
                        more, _st = walk_options(self.buf, start, start + size)
                        opts += more
            self._options = tuple(opts)
        return self._options

    def option(self, code: int) -> bytes | None:
        for o in self.options:
            if o.code == code:
                return o.data
        return None

    @property
    def message_type(self) -> int | None:
        v = self.option(OPT_MESSAGE_TYPE)
        return v[0] if v else None

    def fields(self) -> dict[str, object]:
        d = super().fields()
        d["cookie"] = self.cookie
        d["options"] = self.options
        return d
