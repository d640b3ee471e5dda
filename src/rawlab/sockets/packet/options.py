"""What a capture ring is asked for: its geometry (:class:`RingConfig`) and a fanout group
(:class:`Fanout`), as gopacket's afpacket/options.go.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rawlab.sockets.packet.header import (
    FANOUT_MODES,
    PACKET_FANOUT_FLAG_DEFRAG,
    PACKET_FANOUT_FLAG_ROLLOVER,
)

MiB = 1 << 20


@dataclass(frozen=True, slots=True)
class RingConfig:
    """Ring geometry. ``ring_mb`` MiB of ``block_size``-byte blocks, retired after
    ``block_timeout_ms`` when not full (latency at low rates).

    A 60-byte frame takes 144 bytes of ring (48 tpacket3_hdr + 20 sockaddr_ll +
    alignment + data), so 128 MiB hold ~930,000 of them even if the reader never
    ran; with the reader draining concurrently a 1M burst fits with room to spare.
    """

    ring_mb: int = 128
    block_size: int = 1 * MiB
    block_timeout_ms: int = 100

    @property
    def block_nr(self) -> int:
        return (self.ring_mb * MiB) // self.block_size


@dataclass(frozen=True, slots=True)
class Fanout:
    """PACKET_FANOUT: sockets (in any process) joining ``group`` share the traffic.

    ``mode``: hash (per flow), lb (round robin), cpu, rollover, rnd, qm.
    """

    group: int
    mode: Literal["hash", "lb", "cpu", "rollover", "rnd", "qm"] = "hash"
    defrag: bool = False
    rollover: bool = False

    def sockopt(self) -> int:
        flags = FANOUT_MODES[self.mode]
        if self.defrag:
            flags |= PACKET_FANOUT_FLAG_DEFRAG
        if self.rollover:
            flags |= PACKET_FANOUT_FLAG_ROLLOVER
        return (self.group & 0xFFFF) | (flags << 16)
