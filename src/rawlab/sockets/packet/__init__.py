"""Live capture on AF_PACKET with a TPACKET_V3 ring (the engine under `rawlab capture`).

    from rawlab.sockets.packet import open_ring, RingConfig

    with open_ring("veth0", bpf="udp", netns="rl-a-...", promisc=True) as cap:
        for info, data in cap.zero_copy(count=10):   # data valid until the next block
            ...                                      # info: PacketInfo (a CaptureInfo)
        for rec in cap.records(duration=1.0):        # rawlab.records.Record (a copy)
            ...
        print(cap.stats())     # CaptureStats: received / captured / dropped, as tcpdump says

Open sequence (so that no unfiltered packet ever reaches the ring): the socket
is created with protocol 0, which receives nothing; then PACKET_VERSION =
TPACKET_V3, PACKET_RX_RING, mmap, SO_ATTACH_FILTER; only then bind() with
ETH_P_ALL starts delivery. The filter is fixed for the capture's lifetime.

Link types, as libpcap maps ``ARPHRD_*`` (``map_arphrd_to_dlt``): Ethernet and
loopback → ETHERNET, NONE/RAWIP/tunnels → RAW, NETLINK (nlmon) → NETLINK with a
16-byte cooked header, VSOCKMON → VSOCK; anything else is captured "cooked"
(SOCK_DGRAM, LINUX_SLL). ``any`` is cooked with 20-byte LINUX_SLL2 headers built
from each frame's ``sockaddr_ll``. The cooked header is written into the ring
in front of the packet (there are ≥ 28 free bytes there), so cooked captures
are zero-copy too.

Loopback: every packet on ``lo`` passes the taps twice (outgoing, then
incoming). Like libpcap's ``linux_check_direction``, the outgoing copy on the
namespace's ``lo`` is skipped (on ``lo`` and on ``any``); it still counts in
``received`` because the kernel counted it, exactly as tcpdump reports it.

Memory ordering: a block is read only after its ``block_status`` says
TP_STATUS_USER, and handed back by writing TP_STATUS_KERNEL after its last
frame was read. On x86 (TSO) loads are not reordered with older loads, so no
barrier is needed; CPython cannot issue ``smp_rmb`` itself, which a
weakly-ordered CPU (arm64) would want between the two.
"""

from __future__ import annotations

from rawlab.sockets.packet.arphrd import linktype_for_arphrd
from rawlab.sockets.packet.header import PacketInfo
from rawlab.sockets.packet.open import ANY, list_interfaces, open_ring, open_watch
from rawlab.sockets.packet.options import Fanout, RingConfig
from rawlab.sockets.packet.ring import CaptureStats, PacketRing

__all__ = [
    "ANY",
    "CaptureStats",
    "Fanout",
    "PacketInfo",
    "PacketRing",
    "RingConfig",
    "linktype_for_arphrd",
    "list_interfaces",
    "open_ring",
    "open_watch",
]
