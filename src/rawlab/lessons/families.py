"""socket(domain, type, protocol) for each domain and type: what this kernel answers.

Every probe is the doctor's: socket(), then close() (``rawlab.doctor.open_probe``).
Nothing is bound or connected, AF_VSOCK included. As root, socket() of a family
the kernel has not loaded yet may make it load the family's module
(request_module("net-pf-N")), exactly as any program's socket() would.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

from rawlab.doctor import CAPS, cap_sets, errname, open_probe

# linux/socket.h: every address family number the kernel defines (AF_MAX is 46)
ALL_FAMILIES: dict[int, str] = {
    1: "AF_UNIX", 2: "AF_INET", 3: "AF_AX25", 4: "AF_IPX", 5: "AF_APPLETALK",
    6: "AF_NETROM", 7: "AF_BRIDGE", 8: "AF_ATMPVC", 9: "AF_X25", 10: "AF_INET6",
    11: "AF_ROSE", 12: "AF_DECnet", 13: "AF_NETBEUI", 14: "AF_SECURITY", 15: "AF_KEY",
    16: "AF_NETLINK", 17: "AF_PACKET", 18: "AF_ASH", 19: "AF_ECONET", 20: "AF_ATMSVC",
    21: "AF_RDS", 22: "AF_SNA", 23: "AF_IRDA", 24: "AF_PPPOX", 25: "AF_WANPIPE",
    26: "AF_LLC", 27: "AF_IB", 28: "AF_MPLS", 29: "AF_CAN", 30: "AF_TIPC",
    31: "AF_BLUETOOTH", 32: "AF_IUCV", 33: "AF_RXRPC", 34: "AF_ISDN", 35: "AF_PHONET",
    36: "AF_IEEE802154", 37: "AF_CAIF", 38: "AF_ALG", 39: "AF_NFC", 40: "AF_VSOCK",
    41: "AF_KCM", 42: "AF_QIPCRTR", 43: "AF_SMC", 44: "AF_XDP", 45: "AF_MCTP",
}
# the default set: the families people meet when they learn sockets on Linux
# (AF_UNIX, AF_INET, AF_INET6, AF_NETLINK, AF_PACKET, AF_CAN, AF_TIPC, AF_BLUETOOTH,
# AF_ALG, AF_VSOCK, AF_XDP); --all tries every number, and may autoload more modules
FAMILIES: tuple[int, ...] = (1, 2, 10, 16, 17, 29, 30, 31, 38, 40, 44)
TYPES: dict[int, str] = {
    socket.SOCK_STREAM: "SOCK_STREAM", socket.SOCK_DGRAM: "SOCK_DGRAM",
    socket.SOCK_SEQPACKET: "SOCK_SEQPACKET", socket.SOCK_RAW: "SOCK_RAW",
    socket.SOCK_RDM: "SOCK_RDM",
}
ETH_P_ALL = 0x0003


def protocol_for(domain: int, stype: int) -> int:
    """The protocol argument that makes sense for (domain, type); 0 = the default one.

    Protocol 0 means "the family's default for this type"; where there is none
    (AF_INET SOCK_RAW, say) the kernel says EPROTONOSUPPORT, which would hide
    the answer we want (EPERM without CAP_NET_RAW), so a real protocol is used.
    """
    raw = stype == socket.SOCK_RAW
    if domain == socket.AF_INET and raw:
        return socket.IPPROTO_ICMP
    if domain == socket.AF_INET6 and raw:
        return socket.IPPROTO_ICMPV6
    if domain == socket.AF_PACKET:
        return socket.htons(ETH_P_ALL)
    if domain == 31:  # AF_BLUETOOTH: BTPROTO_HCI (raw), RFCOMM (stream), L2CAP (0)
        return {socket.SOCK_RAW: 1, socket.SOCK_STREAM: 3}.get(stype, 0)
    if domain == 29:  # AF_CAN: CAN_RAW (raw), CAN_BCM (dgram)
        return {socket.SOCK_RAW: 1, socket.SOCK_DGRAM: 2}.get(stype, 0)
    if domain == 15 and raw:  # AF_KEY: PF_KEY_V2
        return 2
    return 0


@dataclass(frozen=True)
class Probe:
    domain: int
    domain_name: str
    type: int
    type_name: str
    protocol: int
    errno: str | None  # None: the kernel gave a socket

    @property
    def ok(self) -> bool:
        return self.errno is None


@dataclass(frozen=True)
class FamiliesLesson:
    euid: int
    cap_net_raw: bool  # effective CAP_NET_RAW (SOCK_RAW, AF_PACKET need it)
    probes: list[Probe]


def probe(domain: int, stype: int, protocol: int | None = None) -> Probe:
    proto = protocol_for(domain, stype) if protocol is None else protocol
    err = open_probe(domain, stype, proto)
    return Probe(domain, ALL_FAMILIES.get(domain, str(domain)), stype,
                 TYPES.get(stype, str(stype)), proto, errname(err) if err else None)


def run(*, every: bool = False) -> FamiliesLesson:
    """Probe the default families (or, with every=True, every AF_* number 1..45)."""
    domains = sorted(ALL_FAMILIES) if every else list(FAMILIES)
    eff = cap_sets().get("CapEff", 0)
    return FamiliesLesson(
        euid=os.geteuid(), cap_net_raw=bool(eff >> CAPS["CAP_NET_RAW"] & 1),
        probes=[probe(d, t) for d in domains for t in TYPES])
