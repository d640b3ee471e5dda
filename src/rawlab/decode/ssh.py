"""SSH (RFC 4253): the identification banner and the binary packets still in the clear
(key exchange); what follows NEWKEYS is encrypted.

    s = Ssh(message)                  # a banner line, a binary packet, or encrypted bytes
                                      # (rawlab.analysis.streams cuts the stream: pdu_len)
    s.banner          # b"SSH-2.0-OpenSSH_9.2p1 Debian-2" (CR LF removed), or None
    s.packets         # tuple[SshPacket, ...]: (offset, packet_length, padding_length,
                      #   message_code, body) of each plausible clear-text binary packet
    s.kexinit         # the KEXINIT's ten name-lists (bytes, comma-separated), or None
    s.encrypted       # True: bytes that are no clear-text packet (after NEWKEYS)

A binary packet is taken as clear text when its lengths are plausible (RFC 4253 6:
packet_length ≤ 35000, padding ≥ 4 and smaller than the packet, a message code in
1..255); anything else is encrypted. :func:`message_len` frames the stream that way;
the stream's session (rawlab.analysis.ssh_session) knows, after NEWKEYS, that all
is encrypted.
"""

from __future__ import annotations

import struct
from typing import ClassVar, NamedTuple

from rawlab.decode.view import AppView, Buffer, as_view

PORT_SSH = 22
MAX_PACKET = 35000
MAX_BANNER = 255  # RFC 4253 4.2: the identification line, CR LF included
MSG_KEXINIT = 20
MSG_NEWKEYS = 21
MESSAGE_NAMES = {1: "Disconnect", 2: "Ignore", 3: "Unimplemented", 4: "Debug",
                 5: "Service Request", 6: "Service Accept", 7: "Ext Info", 20: "Key Exchange Init",
                 21: "New Keys", 30: "Elliptic Curve Diffie-Hellman Key Exchange Init",
                 31: "Elliptic Curve Diffie-Hellman Key Exchange Reply",
                 32: "Diffie-Hellman Group Exchange Init",
                 33: "Diffie-Hellman Group Exchange Reply",
                 34: "Diffie-Hellman Group Exchange Request"}
KEXINIT_LISTS = ("kex_algorithms", "server_host_key_algorithms",
                 "encryption_algorithms_client_to_server",
                 "encryption_algorithms_server_to_client", "mac_algorithms_client_to_server",
                 "mac_algorithms_server_to_client", "compression_algorithms_client_to_server",
                 "compression_algorithms_server_to_client", "languages_client_to_server",
                 "languages_server_to_client")
_PKT = struct.Struct("!IBB")


class SshPacket(NamedTuple):
    offset: int  # in the segment's payload
    packet_length: int
    padding_length: int
    message_code: int
    body: bytes  # after the message code, up to the padding (as captured)


def name_lists(body: bytes | memoryview, count: int) -> tuple[tuple[bytes, ...], bool]:
    """``count`` SSH name-lists (uint32 length + text) from ``body``; True if cut short."""
    out = []
    o = 0
    for _ in range(count):
        if o + 4 > len(body):
            return tuple(out), True
        ln = int.from_bytes(body[o : o + 4], "big")
        out.append(bytes(body[o + 4 : o + 4 + ln]))
        if o + 4 + ln > len(body):
            return tuple(out), True
        o += 4 + ln
    return tuple(out), False


def message_len(data: memoryview | bytes, encrypted: bool = False) -> int:
    """Bytes of the banner line or clear-text binary packet at the start of ``data`` (0
    while incomplete); encrypted bytes (or ``encrypted``): all of them, one message."""
    n = len(data)
    if not encrypted:
        if bytes(data[:4]) == b"SSH-" or (n < 4 and b"SSH-".startswith(bytes(data))):
            nl = bytes(data[:MAX_BANNER]).find(b"\n")
            return nl + 1 if nl >= 0 else (0 if n < MAX_BANNER else MAX_BANNER)
        if n < 6:
            return 0
        plen, padlen, code = _PKT.unpack_from(data)
        if padlen + 1 < plen <= MAX_PACKET and padlen >= 4 and code:
            return 4 + plen
    return n


class Ssh(AppView):
    __slots__ = ("banner", "encrypted", "packets")
    name: ClassVar[str] = "ssh"

    def __init__(self, buf: Buffer) -> None:
        self.buf = mv = as_view(buf)
        self.truncated = self.malformed = False
        self.banner: bytes | None = None
        self.encrypted = False
        #: ((frame, bytes), ...) of the TCP segments the message came in
        self.frames: tuple[tuple[int, int], ...] = ()
        o = 0
        if bytes(mv[:4]) == b"SSH-":
            nl = bytes(mv[:MAX_BANNER]).find(b"\n")
            if nl < 0:
                self.banner = bytes(mv[:MAX_BANNER]).rstrip(b"\r")
                self.truncated = len(mv) < MAX_BANNER
                o = len(mv)
            else:
                self.banner = bytes(mv[:nl]).rstrip(b"\r")
                o = nl + 1
        pkts: list[SshPacket] = []
        n = len(mv)
        while o < n:
            if o + 6 > n:  # a packet's first bytes: cut short, or encrypted bytes
                self.truncated = bool(pkts)
                self.encrypted = not pkts
                break
            plen, padlen, code = _PKT.unpack_from(mv, o)
            if not (padlen + 1 < plen <= MAX_PACKET and padlen >= 4 and code):
                self.encrypted = True
                break
            end = o + 4 + plen
            pkts.append(SshPacket(o, plen, padlen, code, bytes(mv[o + 6 : min(end - padlen, n)])))
            if end > n:
                self.truncated = True
            o = end
        self.packets = tuple(pkts)

    @staticmethod
    def pdu_len(data: memoryview | bytes) -> int:
        """:func:`message_len`: the TCP stream reassembler's framing."""
        return message_len(data)


    @property
    def kexinit(self) -> dict[str, bytes] | None:
        for p in self.packets:
            if p.message_code == MSG_KEXINIT:
                lists, _cut = name_lists(p.body[16:], len(KEXINIT_LISTS))
                return dict(zip(KEXINIT_LISTS, lists, strict=False))
        return None

    def fields(self) -> dict[str, object]:
        return {"banner": self.banner, "packets": self.packets, "encrypted": self.encrypted}
