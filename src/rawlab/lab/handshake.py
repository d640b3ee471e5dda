"""The handshake demo: a real TCP connection between two throwaway namespaces,
captured with rawlab's own AF_PACKET ring and analysed segment by segment.

    client ns  veth0 10.99.0.1  ═══ veth pair ═══  veth1 10.99.0.2  server ns
               (captured here)

Segmentation offloads are off on both ends, so every segment on the wire is a
real MTU-sized one. The client keeps transmit checksum offload on: its own
segments are captured before the (virtual) NIC would fill in the checksum,
which is why they read "partial"; the server computes checksums in software,
so its segments read "good". Everything is removed on exit, also on failure.

Both ends are attributed to their process (:mod:`rawlab.analysis.processes`): the
owners of the two sockets are learnt while they are open (the exchange calls back
before it closes them), so the records, read after the connection ended, still say
who sent each segment.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rawlab.analysis.processes import Attribution
from rawlab.analysis.tcp import Event, Handshake, Segment, analyse
from rawlab.errors import Exit, RawlabError
from rawlab.lab import traffic
from rawlab.lab.netns import Lab
from rawlab.records import Record
from rawlab.sockets.owners import OwnerLookup
from rawlab.sockets.packet import CaptureStats, RingConfig, open_ring

V4 = ("10.99.0.1", "10.99.0.2", 24)
V6 = ("fd00:99::1", "fd00:99::2", 64)


@dataclass
class DemoResult:
    client: str
    server: str
    port: int
    events: list[Event] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)
    stats: CaptureStats | None = None
    sent: bytes = b""
    received: bytes = b""
    reply_size: int = 0

    @property
    def handshake(self) -> Handshake | None:
        return next((e for e in self.events if isinstance(e, Handshake)), None)

    @property
    def segments(self) -> list[Segment]:
        return [e for e in self.events if isinstance(e, Segment)]


def run(port: int = 8080, data: bytes = b"GET / HTTP/1.0\r\n\r\n", reply_size: int = 3000,
        *, ipv6: bool = False, timeout: float = 10.0) -> DemoResult:
    """Make the namespaces, capture one connection, analyse it; raise unless the
    three-way handshake was captured and decoded and the data arrived."""
    client_ip, server_ip, plen = V6 if ipv6 else V4
    res = DemoResult(client_ip, server_ip, port, sent=data, reply_size=reply_size)
    reply = (b"HTTP/1.0 200 OK\r\n\r\n" + b"rawlab " * (reply_size // 7 + 1))[:reply_size]
    with Lab() as lab:
        client, server = lab.netns("client"), lab.netns("server")
        lab.veth(client, server, f"{client_ip}/{plen}", f"{server_ip}/{plen}", offloads=False)
        # back on for the client's transmit checksums only: see the module docstring
        client.run(["ethtool", "-K", "veth0", "tx", "on"], check=False)
        ring = open_ring("veth0", netns=client.name, bpf=f"tcp port {port}",
                            config=RingConfig(ring_mb=8))
        look = OwnerLookup(client.name)
        with ring:
            look.start()  # the namespaces, and their destroy groups, before any socket
            try:
                ex = traffic.tcp_exchange(server, client, server_ip, port, data, reply,
                                          timeout=timeout, before_close=look.learn)
                if ex.errors:
                    raise RawlabError("the demo connection failed: " + "; ".join(ex.errors))
                # the kernel retires a block after 100 ms at most: stop once it is quiet
                res.records = list(ring.records(idle=0.5, duration=timeout))
                res.stats = ring.stats()
                attribute = Attribution(look)
                for rec in res.records:
                    attribute(rec)
            finally:
                look.close()
        res.received = ex.server_got
    res.events = analyse(res.records)
    check(res)
    return res


def check(res: DemoResult) -> None:
    """Exit 0 only for a real, decoded handshake: say what is missing otherwise."""
    hs = res.handshake
    segs = res.segments
    if hs is None or len(hs.frames) != 3:
        raise RawlabError(f"no complete three-way handshake in the {len(res.records)} packets "
                          "captured", Exit.FAILED)
    kinds = [next(s.flags & 0x12 for s in segs if s.frame == f) for f in hs.frames]
    if kinds != [0x02, 0x12, 0x10]:
        raise RawlabError(f"handshake frames {hs.frames} are not SYN, SYN-ACK, ACK", Exit.FAILED)
    if res.received != res.sent:
        raise RawlabError("the server did not receive what the client sent", Exit.FAILED)
    if not any(s.flags & 0x01 for s in segs):
        raise RawlabError("the teardown (FIN) was not captured", Exit.FAILED)
