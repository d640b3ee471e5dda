"""Raw IP sockets, opened inside a network namespace, and what they receive.

    s = open_raw(socket.AF_INET, IPPROTO_TCP, netns="rl-a-…", hdrincl=True)
    s.send(packet, "10.0.0.2")
    got = s.recv(timeout=1.0)      # Received | None
    got.data                       # the IP packet (IPv6: header rebuilt, see below)

What the kernel hands a raw socket (raw(7), ipv6(7), RFC 3542):

* AF_INET: the whole datagram, IPv4 header included, reassembled if it came in
  fragments. With IP_HDRINCL we write the header too; the kernel still fills
  ``total_length`` and the header checksum (always) and ``id`` (when 0).
* AF_INET6: only what follows the IPv6 header and its extension headers. The
  header is rebuilt here from recvmsg's ancillary data: the source (the
  address), destination and interface (IPV6_PKTINFO), hop limit
  (IPV6_HOPLIMIT), traffic class and flow label (IPV6_FLOWINFO). Extension
  headers are gone for good; ``next_header`` is the socket's protocol.
* Receive times are the kernel's (SO_TIMESTAMPNS), not when Python got round
  to reading; :meth:`RawSocket.send_timed` returns the kernel's software transmit
  time (SO_TIMESTAMPING, read back from the error queue), so a round trip is
  measured between two kernel timestamps, as iputils' ping does.
"""

from __future__ import annotations

import ipaddress
import select
import socket
import struct
import time
from dataclasses import dataclass

from rawlab.errors import Exit, RawlabError, explain
from rawlab.raw.packets import ipv6_header
from rawlab.records import Direction, LinkType, Record
from rawlab.sockets.netns import entered

SOL_IP = 0
SOL_IPV6 = 41
IP_PKTINFO = 8
IPV6_FLOWINFO = 11
IPV6_RECVPKTINFO = 49
IPV6_PKTINFO = 50
IPV6_RECVHOPLIMIT = 51
IPV6_HOPLIMIT = 52
IPV6_AUTOFLOWLABEL = 70
SO_TIMESTAMPNS = 35
SO_MARK = 36
SO_TIMESTAMPING = 37  # also SCM_TIMESTAMPING
SOF_TIMESTAMPING_TX_SOFTWARE = 1 << 1
SOF_TIMESTAMPING_SOFTWARE = 1 << 4
SOF_TIMESTAMPING_OPT_TSONLY = 1 << 11
_TSTAMP_ANC = socket.CMSG_SPACE(48) + socket.CMSG_SPACE(64)
FAMILY_NAME = {socket.AF_INET: "AF_INET", socket.AF_INET6: "AF_INET6"}
_ANC = socket.CMSG_SPACE(16) + socket.CMSG_SPACE(20) + 4 * socket.CMSG_SPACE(4) + 64


def resolve(host: str, ipv6: bool = False) -> tuple[int, str]:
    """(family, address text) for a literal or a name; -6 picks AAAA for names."""
    try:
        addr = ipaddress.ip_address(host.split("%", maxsplit=1)[0])
    except ValueError:
        fam = socket.AF_INET6 if ipv6 else socket.AF_INET
        try:
            info = socket.getaddrinfo(host, None, fam, socket.SOCK_RAW)
        except socket.gaierror as exc:
            raise RawlabError(f"cannot resolve {host!r}: {exc.strerror}", Exit.USAGE) from None
        return fam, str(info[0][4][0])
    if ipv6 and addr.version == 4:
        raise RawlabError(f"-6 given but {host} is an IPv4 address", Exit.USAGE)
    return (socket.AF_INET6 if addr.version == 6 else socket.AF_INET), str(addr)


def route_source(dst: str, netns: str | None = None) -> str:
    """The source address the routing table picks for `dst` (a UDP connect sends nothing)."""
    fam = socket.AF_INET6 if ":" in dst else socket.AF_INET
    with entered(netns):
        s = socket.socket(fam, socket.SOCK_DGRAM)
    try:
        s.connect((dst, 9))
        return str(s.getsockname()[0])
    except OSError as exc:
        raise explain(exc, f"find a route to {dst}") from None
    finally:
        s.close()


def packed(addr: str) -> bytes:
    return ipaddress.ip_address(addr).packed


@dataclass(frozen=True)
class Received:
    """One packet a raw socket handed over."""

    ts_ns: int  # the kernel's receive time, ns since the epoch
    data: bytes  # the IP packet (AF_INET6: with the rebuilt header)
    family: int
    src: str
    ifindex: int
    ifname: str | None
    rebuilt: bool  # AF_INET6: the IPv6 header was rebuilt from ancillary data

    def record(self) -> Record:
        """As a capture Record (link type RAW: the bytes start with the IP header)."""
        return Record(self.ts_ns, len(self.data), LinkType.RAW, self.data,
                      direction=Direction.INBOUND, ifindex=self.ifindex)

    @property
    def payload(self) -> bytes:
        """What follows the IP header (the socket's protocol)."""
        if self.family == socket.AF_INET6:
            return self.data[40:]
        return self.data[(self.data[0] & 0x0F) * 4:]


class RawSocket:
    """A SOCK_RAW socket of one family and protocol, opened in some namespace."""

    def __init__(self, sock: socket.socket, family: int, proto: int,
                 ifnames: dict[int, str]) -> None:
        self.sock = sock
        self.family = family
        self.proto = proto
        self.ifnames = ifnames
        self.tx_stamps = 0  # sends timed by the kernel's transmit timestamp

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, data: bytes, dst: str) -> int:
        try:
            return self.sock.sendto(data, (dst, 0))
        except OSError as exc:
            raise explain(exc, f"send on the raw socket to {dst}") from None

    def send_timed(self, data: bytes, dst: str) -> int:
        """Send; return when the packet left (ns since the epoch): the kernel's software
        transmit timestamp, else the clock read just before ``sendto``."""
        before = time.time_ns()
        self.send(data, dst)
        for _ in range(50):  # the stamp is queued as the device takes the packet: at once
            try:
                _d, anc, _f, _a = self.sock.recvmsg(1, _TSTAMP_ANC,
                                                    socket.MSG_ERRQUEUE | socket.MSG_DONTWAIT)
            except BlockingIOError:
                time.sleep(0.00002)
                continue
            except OSError:
                break
            for level, kind, value in anc:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPING and len(value) >= 16:
                    sec, nsec = struct.unpack_from("=qq", value)
                    if sec or nsec:
                        self.tx_stamps += 1
                        return sec * 1_000_000_000 + nsec
            break
        return before

    def recv(self, timeout: float | None) -> Received | None:
        """The next packet, or None after `timeout` seconds (None: wait for ever)."""
        if timeout is not None:
            r, _, _ = select.select([self.sock], [], [], max(timeout, 0.0))
            if not r:
                return None
        data, anc, _flags, addr = self.sock.recvmsg(65535, _ANC)
        return self._received(data, anc, addr)

    def _received(self, data: bytes, anc: list[tuple[int, int, bytes]],
                  addr: tuple[object, ...]) -> Received:
        ts_ns = time.time_ns()
        ifindex = 0
        dst = b""
        hops = 0
        flowinfo = 0
        for level, kind, value in anc:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(value) >= 16:
                sec, nsec = struct.unpack_from("=qq", value)
                ts_ns = sec * 1_000_000_000 + nsec
            elif level == SOL_IP and kind == IP_PKTINFO and len(value) >= 12:
                ifindex = struct.unpack_from("=i", value)[0]
            elif level == SOL_IPV6 and kind == IPV6_PKTINFO and len(value) >= 20:
                dst = value[:16]
                ifindex = struct.unpack_from("=i", value, 16)[0]
            elif level == SOL_IPV6 and kind == IPV6_HOPLIMIT and len(value) >= 4:
                hops = struct.unpack_from("=i", value)[0]
            elif level == SOL_IPV6 and kind == IPV6_FLOWINFO and len(value) >= 4:
                flowinfo = struct.unpack_from("!I", value)[0]
        src = str(addr[0]).split("%")[0]
        rebuilt = False
        if self.family == socket.AF_INET6:
            hdr = ipv6_header(packed(src), dst or bytes(16), self.proto, len(data),
                              hop_limit=hops, traffic_class=(flowinfo >> 20) & 0xFF,
                              flow_label=flowinfo & 0xFFFFF)
            data = hdr + data
            rebuilt = True
        return Received(ts_ns, data, self.family, src, ifindex, self.ifnames.get(ifindex),
                        rebuilt)


def open_raw(family: int, proto: int, *, netns: str | None = None, hdrincl: bool = False,
             mark: int | None = None, bind: str | None = None,
             hop_limit: int | None = None) -> RawSocket:
    """socket(family, SOCK_RAW, proto) inside `netns`, set up to report what it receives.

    hdrincl: AF_INET only, we write the IPv4 header (IP_HDRINCL). mark: SO_MARK
    on what we send (nft.py tells our own RSTs from the kernel's by it). bind:
    the source address (AF_INET6 builds no header of ours, so bind fixes it).
    hop_limit: AF_INET6 unicast hop limit.
    """
    what = f"open {FAMILY_NAME.get(family, family)} SOCK_RAW socket (protocol {proto})"
    with entered(netns):
        try:
            s = socket.socket(family, socket.SOCK_RAW, proto)
        except OSError as exc:
            raise explain(exc, what) from None
        ifnames = dict(socket.if_nameindex())
    try:
        s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        try:
            s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPING, SOF_TIMESTAMPING_TX_SOFTWARE
                         | SOF_TIMESTAMPING_SOFTWARE | SOF_TIMESTAMPING_OPT_TSONLY)
        except OSError:
            pass  # no transmit timestamps: send_timed() reads the clock instead
        if family == socket.AF_INET:
            s.setsockopt(SOL_IP, IP_PKTINFO, 1)
            if hdrincl:
                s.setsockopt(SOL_IP, socket.IP_HDRINCL, 1)
        else:
            s.setsockopt(SOL_IPV6, IPV6_RECVPKTINFO, 1)
            s.setsockopt(SOL_IPV6, IPV6_RECVHOPLIMIT, 1)
            s.setsockopt(SOL_IPV6, IPV6_FLOWINFO, 1)
            # the flow label of what we send stays 0, so the header we show is the one sent
            s.setsockopt(SOL_IPV6, IPV6_AUTOFLOWLABEL, 0)
            if hop_limit is not None:
                s.setsockopt(SOL_IPV6, socket.IPV6_UNICAST_HOPS, hop_limit)
        if mark is not None:
            s.setsockopt(socket.SOL_SOCKET, SO_MARK, mark)
        if bind is not None:
            s.bind((bind, 0))
    except OSError as exc:
        s.close()
        raise explain(exc, f"set up the raw socket ({what})") from None
    except BaseException:
        s.close()
        raise
    return RawSocket(s, family, proto, ifnames)


def wait_any(socks: list[RawSocket], timeout: float) -> RawSocket | None:
    """The first of `socks` with a packet waiting, or None after `timeout` seconds."""
    r, _, _ = select.select(socks, [], [], max(timeout, 0.0))
    return r[0] if r else None
