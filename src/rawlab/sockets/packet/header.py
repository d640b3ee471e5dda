"""TPACKET_V3 as it sits in the ring: <linux/if_packet.h> constants, the block and frame
headers (``tpacket_block_desc``, ``tpacket3_hdr`` + ``sockaddr_ll``), the cooked headers
written in front of a packet, and :class:`PacketInfo`, a frame's CaptureInfo.
"""

from __future__ import annotations

import struct

from rawlab.records import CaptureInfo, CsumHint, Direction

# <linux/if_packet.h>
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_RX_RING = 5
PACKET_STATISTICS = 6
PACKET_VERSION = 10
PACKET_FANOUT = 18
PACKET_MR_PROMISC = 1
TPACKET_V3 = 2
ETH_P_ALL = 0x0003

TP_STATUS_KERNEL = 0
TP_STATUS_USER = 1
TP_STATUS_LOSING = 4
TP_STATUS_CSUMNOTREADY = 8
TP_STATUS_VLAN_VALID = 16
TP_STATUS_BLK_TMO = 32
TP_STATUS_VLAN_TPID_VALID = 64
TP_STATUS_CSUM_VALID = 128

# <linux/sockios.h>
SIOCGIFNAME = 0x8910
SIOCGIFHWADDR = 0x8927
SIOCGIFINDEX = 0x8933

FANOUT_MODES = {"hash": 0, "lb": 1, "cpu": 2, "rollover": 3, "rnd": 4, "qm": 5}
PACKET_FANOUT_FLAG_ROLLOVER = 0x1000
PACKET_FANOUT_FLAG_DEFRAG = 0x8000

# tpacket_block_desc: version, offset_to_priv, then tpacket_hdr_v1 at +8:
# block_status, num_pkts, offset_to_first_pkt, blk_len, seq_num (u64) ...
_BLOCK = struct.Struct("<III")  # at base + 8
# tpacket3_hdr (48 bytes) + sockaddr_ll at TPACKET_ALIGN(48) = 48 (20 bytes).
# sll_protocol is big-endian in memory: read here little-endian and swapped.
_FRAME = struct.Struct("<IIIIIIHHIIH2x8x2xHiHBB8s")
# fields: 0 next_offset, 1 sec, 2 nsec, 3 snaplen, 4 len, 5 status, 6 mac, 7 net,
# 8 rxhash, 9 vlan_tci, 10 vlan_tpid, 11 sll_protocol (swapped), 12 ifindex,
# 13 hatype, 14 pkttype, 15 halen, 16 addr
_SLL2 = struct.Struct(">HHiHBB8s")
_SLL = struct.Struct(">HHH8sH")
_U32 = struct.Struct("<I")
_STATS = struct.Struct("=III")
_VLAN_TAG = struct.Struct("!HH")  # TPID, TCI as they sit in an 802.1Q header
_FRAME_END = 68  # TPACKET3_HDRLEN: where the free space before tp_mac begins

_DIRECTION = (Direction.INBOUND,) * 4 + (Direction.OUTBOUND,) + (Direction.INBOUND,) * 3
_CSUM = {0: CsumHint.NONE, 8: CsumHint.NOT_READY, 128: CsumHint.VALID,
         136: CsumHint.NOT_READY | CsumHint.VALID}


class PacketInfo(CaptureInfo):
    """A :class:`CaptureInfo` read lazily from the ring's frame header, plus what the
    ring said verbatim.

    Built with three slot stores instead of a 13-field frozen-dataclass
    ``__init__`` (which cost more per packet than the whole ring walk):
    every field is a property over the unpacked ``tpacket3_hdr``+``sockaddr_ll``
    tuple. It behaves as a CaptureInfo (fields, ``==``, ``hash``, ``repr``);
    :meth:`capture_info` returns a plain one (``dataclasses.replace`` does not
    work on this class).

    Extra fields: ``pkttype`` (``sll_pkttype``: PACKET_HOST 0, BROADCAST 1,
    MULTICAST 2, OTHERHOST 3, OUTGOING 4; ``direction`` is its pcapng in/out
    form), ``hatype`` (ARPHRD), ``protocol`` (EtherType, host order), ``status``
    (raw ``tp_status``), ``vlan_tci``/``vlan_tpid`` (the whole stripped tag;
    ``vlan`` is its VID), ``rxhash``.
    """

    __slots__ = ("_cap", "_f", "_wire")

    _f: tuple[int | bytes, ...]
    _cap: int
    _wire: int

    @property  # type: ignore[override]
    def ts_ns(self) -> int:
        f = self._f
        return f[1] * 1_000_000_000 + f[2]  # type: ignore[operator,no-any-return]

    @property  # type: ignore[override]
    def caplen(self) -> int:
        return self._cap

    @property  # type: ignore[override]
    def wirelen(self) -> int:
        return self._wire

    @property  # type: ignore[override]
    def ifindex(self) -> int:
        return self._f[12]  # type: ignore[return-value]

    @property  # type: ignore[override]
    def direction(self) -> int:
        return _DIRECTION[self._f[14] & 7]  # type: ignore[operator]

    @property  # type: ignore[override]
    def vlan(self) -> int | None:
        f = self._f
        return f[9] & 0x0FFF if f[5] & TP_STATUS_VLAN_VALID else None  # type: ignore[operator]

    @property  # type: ignore[override]
    def csum_status(self) -> CsumHint:
        return _CSUM[self._f[5] & 136]  # type: ignore[operator]

    @property
    def pkttype(self) -> int:
        return self._f[14]  # type: ignore[return-value]

    @property
    def hatype(self) -> int:
        return self._f[13]  # type: ignore[return-value]

    @property
    def protocol(self) -> int:
        p: int = self._f[11]  # type: ignore[assignment]
        return ((p & 0xFF) << 8) | (p >> 8)

    @property
    def status(self) -> int:
        return self._f[5]  # type: ignore[return-value]

    @property
    def vlan_tci(self) -> int | None:
        f = self._f
        return f[9] if f[5] & TP_STATUS_VLAN_VALID else None  # type: ignore[operator,return-value]

    @property
    def vlan_tpid(self) -> int | None:
        f = self._f
        st: int = f[5]  # type: ignore[assignment]
        if not st & TP_STATUS_VLAN_VALID:
            return None
        return f[10] if st & TP_STATUS_VLAN_TPID_VALID else 0x8100  # type: ignore[return-value]

    @property
    def rxhash(self) -> int:
        return self._f[8]  # type: ignore[return-value]

    def capture_info(self) -> CaptureInfo:
        """A plain, independent CaptureInfo with the same values."""
        return CaptureInfo(self.ts_ns, self.caplen, self.wirelen, self.ifindex, self.direction,
                           self.vlan, self.csum_status)

    def __repr__(self) -> str:
        return (f"PacketInfo(ts_ns={self.ts_ns}, caplen={self.caplen}, wirelen={self.wirelen}, "
                f"ifindex={self.ifindex}, direction={self.direction!r}, vlan={self.vlan}, "
                f"csum_status={self.csum_status!r}, pkttype={self.pkttype}, "
                f"protocol={self.protocol:#06x}, status={self.status:#x})")


_new_info = object.__new__
_set_f = PacketInfo._f.__set__  # type: ignore[attr-defined]
_set_cap = PacketInfo._cap.__set__  # type: ignore[attr-defined]
_set_wire = PacketInfo._wire.__set__  # type: ignore[attr-defined]
