"""pcap/pcapng link types that rawlab reads, writes and decodes."""

from __future__ import annotations

from enum import IntEnum


class LinkType(IntEnum):
    ETHERNET = 1
    RAW = 101
    LINUX_SLL = 113
    IPV4 = 228
    IPV6 = 229
    NETLINK = 253
    VSOCK = 271
    LINUX_SLL2 = 276


SUPPORTED_LINKTYPES: frozenset[int] = frozenset(int(t) for t in LinkType)


def linktype_name(n: int) -> str:
    """``ETHERNET`` for 1, ``LINKTYPE_<n>`` for what rawlab does not know."""
    try:
        return LinkType(n).name
    except ValueError:
        return f"LINKTYPE_{n}"
