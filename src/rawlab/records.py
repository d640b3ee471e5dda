"""The capture vocabulary every layer shares: what a capture source yields (a file reader
in pcap/, the ring reader in sockets/), and the words for its link types and checksum hints.

Kept below every layer (as gopacket keeps ``CaptureInfo`` in its root package): the
ring, the file reader, the decoders and the writers all speak it, and it imports
nothing of rawlab.

A :class:`Record` has the attributes of the design's ``CaptureInfo`` (``ts_ns``,
``caplen``, ``wirelen``, ``ifindex``, ``direction``, ``vlan``, ``csum_status``)
plus the link type, the interface it came from and the bytes themselves. Its
``info`` is a plain :class:`CaptureInfo` when the bytes must be kept apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, IntFlag
from typing import ClassVar


class LinkType(IntEnum):
    """The pcap LINKTYPE_* values rawlab decodes (tcpdump.org/linktypes.html)."""

    NULL = 0  # BSD loopback: 4-byte address family, host byte order
    ETHERNET = 1
    SLIP = 8
    PPP = 9
    PPP_HDLC = 50
    ATM_RFC1483 = 100  # LLC/SNAP-encapsulated ATM: the frame starts with LLC
    RAW = 101
    C_HDLC = 104
    IEEE802_11 = 105
    LOOP = 108  # OpenBSD loopback: the family in network byte order
    LINUX_SLL = 113
    IEEE802_11_RADIOTAP = 127
    JUNIPER_ATM1 = 137
    USER2 = 149  # macOS wrote PKTAP records under this number
    JUNIPER_ETHER = 178
    IPV4 = 228
    IPV6 = 229
    NFLOG = 239
    IPOIB = 242
    NETLINK = 253
    PKTAP = 258
    VSOCK = 271
    LINUX_SLL2 = 276


SUPPORTED_LINKTYPES: frozenset[int] = frozenset(int(t) for t in LinkType)
#: the "link type" of a pcapng custom block (0x00000bad / 0x40000bad): not a packet, but a
#: record tshark numbers as a frame (its custom data, after the enterprise number); the
#: record's ``block`` holds (block type, enterprise number)
PCAPNG_CUSTOM = -1
PCAPNG_CUSTOM_COPY = 0x00000BAD
PCAPNG_CUSTOM_NOCOPY = 0x40000BAD


def linktype_name(n: int) -> str:
    """``ETHERNET`` for 1, ``LINKTYPE_<n>`` for what rawlab does not know (a custom block's
    -1 also as an unsigned 32-bit column holds it)."""
    if n in (PCAPNG_CUSTOM, 0xFFFFFFFF):
        return "PCAPNG_CUSTOM_BLOCK"
    try:
        return LinkType(n).name
    except ValueError:
        return f"LINKTYPE_{n}"


# What a cooked header (LINUX_SLL/SLL2, a ring frame's sockaddr_ll) says of a packet:
# sll_pkttype <linux/if_packet.h> and sll_hatype, a device's ARPHRD_* <linux/if_arp.h>.
PACKET_HOST = 0
PACKET_BROADCAST = 1
PACKET_MULTICAST = 2
PACKET_OTHERHOST = 3
PACKET_OUTGOING = 4
PACKET_LOOPBACK = 5

ARPHRD_ETHER = 1
ARPHRD_PPP = 512
ARPHRD_RAWIP = 519
ARPHRD_TUNNEL = 768
ARPHRD_TUNNEL6 = 769
ARPHRD_LOOPBACK = 772
ARPHRD_SIT = 776
ARPHRD_IEEE80211 = 801
ARPHRD_IEEE80211_RADIOTAP = 803
ARPHRD_NETLINK = 824
ARPHRD_VSOCKMON = 826
ARPHRD_NONE = 0xFFFE


class CsumHint(IntFlag):
    """What the kernel said about a live packet: the ``tp_status`` bits themselves.

    Pass ``CsumHint(tp_status & CsumHint.MASK)`` from a TPACKET ring.
    """

    NONE = 0
    NOT_READY = 8  # TP_STATUS_CSUMNOTREADY: offload, the field is not filled yet
    VALID = 128  # TP_STATUS_CSUM_VALID: the kernel (or NIC) checked it
    MASK = 136


class Direction(IntEnum):
    """As pcapng ``epb_flags`` bits 0-1."""

    UNKNOWN = 0
    INBOUND = 1
    OUTBOUND = 2


@dataclass(frozen=True, slots=True)
class CaptureInfo:
    ts_ns: int
    caplen: int
    wirelen: int
    ifindex: int = 0  # kernel ifindex; 0 when unknown (files)
    direction: int = Direction.UNKNOWN
    vlan: int | None = None  # VLAN id stripped by the kernel (live), else None
    csum_status: CsumHint = CsumHint.NONE  # tp_status checksum bits (live); NONE for files


class Record:
    """One captured packet: metadata + bytes (``data`` is a copy, valid forever).

    ``interface`` is the capture's interface number (pcapng IDB index within its
    section, as tshark's frame.interface_id; 0 for pcap); ``linktype`` that
    interface's link type. ``owners`` is who held the socket at each end, ``(source
    end, destination end)`` (:class:`SocketOwner` or None for an end that is not a
    socket of this machine), or None when nobody asked
    (:mod:`rawlab.analysis.processes` sets it live; the pcapng reader from a file).
    ``section``, ``ts_known`` and ``block`` are class defaults here (0, True, None: a
    packet of the first section with a timestamp); a :class:`PcapngRecord` carries
    others.
    """

    __slots__ = ("caplen", "csum_status", "data", "direction", "ifindex", "interface",
                 "linktype", "owners", "ts_ns", "vlan", "wirelen")
    #: the pcapng section it came from (0: the first, or any pcap file)
    section: ClassVar[int] = 0
    #: False for a record without a timestamp (a Simple Packet Block; ``ts_ns`` is 0)
    ts_known: ClassVar[bool] = True
    #: (block type, enterprise number) of a pcapng custom block, else None
    block: ClassVar[tuple[int, int] | None] = None

    def __init__(self, ts_ns: int, wirelen: int, linktype: int, data: bytes, interface: int = 0,
                 direction: int = Direction.UNKNOWN, ifindex: int = 0, vlan: int | None = None,
                 csum_status: CsumHint = CsumHint.NONE) -> None:
        self.ts_ns = ts_ns
        self.caplen = len(data)
        self.wirelen = wirelen
        self.linktype = linktype
        self.data = data
        self.interface = interface
        self.direction = direction
        self.ifindex = ifindex
        self.vlan = vlan
        self.csum_status = csum_status
        self.owners: Owners | None = None

    @property
    def ts(self) -> float:
        """Seconds since the epoch, as a float (for display; ``ts_ns`` is exact)."""
        return self.ts_ns / 1e9

    @property
    def info(self) -> CaptureInfo:
        return CaptureInfo(self.ts_ns, self.caplen, self.wirelen, self.ifindex, self.direction,
                           self.vlan, self.csum_status)

    def __repr__(self) -> str:
        return (f"<Record ts_ns={self.ts_ns} caplen={self.caplen} wirelen={self.wirelen} "
                f"linktype={self.linktype} interface={self.interface}>")


class PcapngRecord(Record):
    """A record a plain :class:`Record` cannot say: from a later pcapng section, without
    a timestamp (Simple Packet Block), or a custom block (``linktype`` PCAPNG_CUSTOM)."""

    __slots__ = ("block", "section", "ts_known")

    def __init__(self, ts_ns: int, wirelen: int, linktype: int, data: bytes,
                 interface: int = 0, direction: int = Direction.UNKNOWN, *, section: int = 0,
                 ts_known: bool = True, block: tuple[int, int] | None = None) -> None:
        super().__init__(ts_ns, wirelen, linktype, data, interface, direction)
        self.section = section  # type: ignore[misc]
        self.ts_known = ts_known  # type: ignore[misc]
        self.block = block  # type: ignore[misc]


@dataclass(frozen=True, slots=True)
class SocketOwner:
    """Who held the socket at one end of a flow (``rawlab capture --processes``).

    ``state``: :data:`PROCESS` (``pid`` ... are known), :data:`CLOSED` (the socket was
    closed before rawlab could look it up: the kernel still had it orphaned or in
    TIME_WAIT, or said it was destroyed; ``uid`` when the kernel kept it),
    :data:`NO_SOCKET` (the address is this machine's but the kernel had no socket of
    that flow, and destroyed none: the kernel itself answered, or a raw/packet socket
    sent it), :data:`UNKNOWN` (no socket found, and nothing tells whether one was
    closed). ``tid`` is set only for a single-threaded process (which thread of several
    sent it cannot be known without eBPF). ``netns`` is the inode of the network
    namespace the socket lives in, ``netns_name`` its name under /run/netns.
    """

    state: str
    pid: int | None = None
    tid: int | None = None
    comm: str | None = None
    cmdline: tuple[str, ...] | None = None
    uid: int | None = None
    cgroup: str | None = None
    container: str | None = None
    netns: int | None = None
    netns_name: str | None = None


PROCESS = "process"
CLOSED = "closed"
NO_SOCKET = "no_socket"
UNKNOWN = "unknown"
OWNER_STATES = (PROCESS, CLOSED, NO_SOCKET, UNKNOWN)

# (source end, destination end) of one packet
Owners = tuple[SocketOwner | None, SocketOwner | None]


@dataclass(frozen=True, slots=True)
class Interface:
    """One interface of a capture file (pcapng IDB, or the pcap header's single one)."""

    id: int
    linktype: int
    snaplen: int
    name: str | None = None
    description: str | None = None
    tsresol: int = 6  # raw if_tsresol byte: < 128 → 10**-n s, else 2**-(n & 127) s
    tsoffset: int = 0  # seconds added to every timestamp (if_tsoffset)
    options: tuple[tuple[int, bytes], ...] = ()  # every option, raw, unknown ones included
