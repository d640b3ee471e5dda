"""`rawlab raw listen`: what an AF_INET / AF_INET6 SOCK_RAW socket of one protocol receives.

Found out by tests/privileged/test_raw_listen.py (and written in the command's
--help and docs/json.md):

Received
  * a copy of every packet of that protocol this host (namespace) delivers
    locally, also those a TCP/UDP socket owns and ICMP echo requests the kernel
    answers itself: the kernel still handles them as if we were not there;
  * AF_INET: with the IPv4 header (reassembled when fragmented);
    AF_INET6: without it, rebuilt here from ancillary data (see sock.py).

Not received
  * outgoing packets: neither ours nor the kernel's (its SYN-ACKs, RSTs, echo
    replies); on loopback they come back in and so are seen once, as incoming;
  * packets the input firewall dropped (nftables ``input``): AF_PACKET still
    sees them, it taps the device before the IP layer;
  * packets for other hosts (no promiscuous mode at this layer);
  * anything on an IPPROTO_RAW (255) socket: it is send-only (raw(7)).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

from rawlab.errors import Exit, RawlabError
from rawlab.raw.sock import RawSocket, Received, open_raw

PROTOCOLS = {"icmp": 1, "tcp": 6, "udp": 17, "icmpv6": 58, "raw": 255}


def parse_proto(text: str, ipv6: bool) -> tuple[int, int]:
    """(family, protocol number) from a name or number; icmpv6 implies AF_INET6."""
    name = text.lower()
    if name in PROTOCOLS:
        proto = PROTOCOLS[name]
    else:
        try:
            proto = int(name, 0)
        except ValueError:
            raise RawlabError(f"unknown protocol {text!r}: use tcp, udp, icmp, icmpv6, raw "
                              "or a number 0-255", Exit.USAGE) from None
        if not 0 <= proto <= 255:
            raise RawlabError(f"protocol {proto} is not in 0-255", Exit.USAGE)
    if proto == 0:
        raise RawlabError("protocol 0 is not allowed for SOCK_RAW (EPROTONOSUPPORT); "
                          "fix: name the protocol, or use `rawlab capture` for everything",
                          Exit.USAGE)
    if proto == 58:
        ipv6 = True
    elif proto == 1 and ipv6:
        raise RawlabError("icmp with -6: did you mean --proto icmpv6?", Exit.USAGE)
    return (socket.AF_INET6 if ipv6 else socket.AF_INET), proto


def open_listener(family: int, proto: int, netns: str | None = None) -> RawSocket:
    """The raw socket `listen` reads (open it first to fail before printing anything)."""
    return open_raw(family, proto, netns=netns)


def receive(sock: RawSocket, *, count: int | None = None,
            duration: float | None = None) -> Iterator[Received]:
    """Yield what `sock` receives until `count` packets or `duration` seconds."""
    deadline = time.monotonic() + duration if duration is not None else None
    n = 0
    while count is None or n < count:
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            return
        got = sock.recv(left if left is not None else 0.5)
        if got is None:
            continue
        n += 1
        yield got


def listen(family: int, proto: int, *, netns: str | None = None, count: int | None = None,
           duration: float | None = None) -> Iterator[Received]:
    """Open the socket, yield what it receives, close it."""
    with open_listener(family, proto, netns) as sock:
        yield from receive(sock, count=count, duration=duration)
