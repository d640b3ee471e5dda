"""Which link type a device's ``ARPHRD_*`` hardware type is captured as, as libpcap's
``map_arphrd_to_dlt`` decides, and with which cooked header (<linux/if_arp.h>).
"""

from __future__ import annotations

from rawlab.records import (
    ARPHRD_ETHER,
    ARPHRD_IEEE80211_RADIOTAP,
    ARPHRD_LOOPBACK,
    ARPHRD_NETLINK,
    ARPHRD_NONE,
    ARPHRD_RAWIP,
    ARPHRD_SIT,
    ARPHRD_TUNNEL,
    ARPHRD_TUNNEL6,
    ARPHRD_VSOCKMON,
    LinkType,
)
from rawlab.sockets import bpf as _bpf

LINKTYPE_IEEE802_11_RADIOTAP = 127


def linktype_for_arphrd(hatype: int) -> tuple[int, int]:
    """(LINKTYPE, cooked header length) for a device's ARPHRD, as libpcap maps it.

    cooked header length 0 means SOCK_RAW and no header; 16 a LINUX_SLL-style
    header (LINUX_SLL, NETLINK), 20 LINUX_SLL2 (only for ``any``).
    """
    if hatype in (ARPHRD_ETHER, ARPHRD_LOOPBACK):
        return int(LinkType.ETHERNET), 0
    if hatype in (ARPHRD_NONE, ARPHRD_RAWIP, ARPHRD_TUNNEL, ARPHRD_TUNNEL6, ARPHRD_SIT):
        return int(LinkType.RAW), 0
    if hatype == ARPHRD_NETLINK:
        return int(LinkType.NETLINK), _bpf.SLL_HDR_LEN
    if hatype == ARPHRD_VSOCKMON:
        return int(LinkType.VSOCK), 0
    if hatype == ARPHRD_IEEE80211_RADIOTAP:
        return LINKTYPE_IEEE802_11_RADIOTAP, 0
    return int(LinkType.LINUX_SLL), _bpf.SLL_HDR_LEN  # PPP, CAN, unknown: cooked
