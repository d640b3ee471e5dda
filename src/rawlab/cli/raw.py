"""`rawlab raw`: AF_INET / AF_INET6 SOCK_RAW tools: listen, ping, syn, handshake."""

from __future__ import annotations

import sys

import click

from rawlab.cli.options import Seconds
from rawlab.errors import Exit

NETNS_HELP = "Open the raw socket inside this network namespace (`ip netns list`)."


def netns_option(f: click.decorators.FC) -> click.decorators.FC:
    return click.option("--netns", metavar="NAME", help=NETNS_HELP)(f)


@click.group()
def raw() -> None:
    """SOCK_RAW, shown live: what a raw IP socket receives, and packets built by hand.

    All need CAP_NET_RAW (root); `handshake` also CAP_NET_ADMIN for nftables.
    Send only to hosts you are allowed to probe.
    """


@raw.command()
@click.option("--proto", "proto", default="icmp", show_default=True, metavar="NAME|N",
              help="tcp, udp, icmp, icmpv6, raw (255) or a protocol number.")
@click.option("-6", "--ipv6", is_flag=True, help="AF_INET6 (implied by icmpv6).")
@click.option("-c", "--count", type=click.IntRange(1), help="Stop after N packets.")
@click.option("--duration", type=Seconds(), metavar="S",
              help="Stop after S seconds.")
@click.option("-v", "--verbose", is_flag=True, help="Every field with its offset.")
@click.option("--json", "as_json", is_flag=True, help="NDJSON (docs/json.md, raw listen).")
@netns_option
def listen(proto: str, ipv6: bool, count: int | None, duration: float | None, verbose: bool,
           as_json: bool, netns: str | None) -> None:
    """Print what a raw socket of one protocol receives, decoded, with checksums.

    \b
    What a SOCK_RAW socket gets (found by tests/privileged/test_raw_listen.py):
      * a COPY of every incoming packet of that protocol delivered to this
        host, also those a TCP/UDP socket owns and ICMP echo requests the
        kernel answers itself: the kernel handles them as usual;
      * AF_INET: with the IPv4 header (fragments reassembled);
        AF_INET6: WITHOUT the IPv6 header, which rawlab rebuilds from
        IPV6_PKTINFO, IPV6_HOPLIMIT and IPV6_FLOWINFO (extension headers lost).
    What it does NOT get:
      * outgoing packets, neither yours nor the kernel's (SYN-ACKs, RSTs, echo
        replies); on loopback they come back in and show once, as incoming;
      * packets the input firewall dropped (nftables input hook): AF_PACKET
        (`rawlab capture`) still sees those;
      * packets for other hosts; anything on an IPPROTO_RAW (255) socket,
        which is send-only.
    """
    import signal

    from rawlab.decode.dispatch import Decoder
    from rawlab.present import raw as present
    from rawlab.raw import listen as mod

    if verbose and as_json:
        raise click.UsageError("choose one of -v, --json")
    family, number = mod.parse_proto(proto, ipv6)
    dec = Decoder()
    out = sys.stdout
    sock = mod.open_listener(family, number, netns)
    if not as_json:
        out.write(present.listen_banner(family, number, netns) + "\n")
        out.flush()
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        for n, got in enumerate(mod.receive(sock, count=count, duration=duration), 1):
            pkt = dec.decode(got.data, got.record().linktype)
            if as_json:
                out.write(present.listen_json(n, got, pkt))
            elif verbose:
                for ln in present.listen_tree(n, got, pkt):
                    out.write(ln + "\n")
            else:
                out.write(present.listen_line(n, got, pkt) + "\n")
            out.flush()
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()


@raw.command()
@click.argument("host")
@click.option("-c", "--count", default=4, show_default=True, type=click.IntRange(1),
              help="Echo requests to send.")
@click.option("-s", "--size", default=56, show_default=True, type=click.IntRange(0, 65000),
              help="Payload bytes per request.")
@click.option("-i", "--interval", default=1.0, show_default=True,
              type=Seconds(0.002, lo_open=False), help="Seconds between requests.")
@click.option("-W", "--timeout", default=2.0, show_default=True, type=Seconds(0, lo_open=False),
              help="Seconds to wait for replies after the last request.")
@click.option("-6", "--ipv6", is_flag=True, help="Resolve names to IPv6 (literals decide).")
@click.option("--json", "as_json", is_flag=True, help="NDJSON (docs/json.md, raw ping).")
@netns_option
def ping(host: str, count: int, size: int, interval: float, timeout: float, ipv6: bool,
         as_json: bool, netns: str | None) -> None:
    """ICMP / ICMPv6 echo over a raw socket: RTT per reply and ping's summary.

    rawlab builds each echo request and computes its checksum (ICMPv6: over the
    IPv6 pseudo-header; the kernel computes it again for every raw ICMPv6
    socket, RFC 3542 §3.1, and cannot be told not to); it verifies the checksum
    of every reply. RTTs use the kernel's receive time (SO_TIMESTAMPNS).
    Exit 0 if any reply came back, 1 if none did.
    """
    import socket

    from rawlab.present import raw as present
    from rawlab.raw.ping import Pinger

    p = Pinger(host, count=count, size=size, interval=interval, timeout=timeout, netns=netns,
               ipv6=ipv6)
    v6 = p.family == socket.AF_INET6
    out = sys.stdout
    if not as_json:
        out.write(present.ping_banner(p) + "\n")
    try:
        for ev in p.run():
            text = present.ping_json(ev) if as_json else present.ping_line(ev, v6)
            if text:
                out.write(text if as_json else text + "\n")
                out.flush()
    except KeyboardInterrupt:
        pass
    s = p.summary()
    out.write(present.ping_summary_json(s) if as_json else present.ping_summary(s))
    if not s.received:
        sys.exit(Exit.FAILED)


@raw.command()
@click.argument("host")
@click.argument("port", type=click.IntRange(1, 65535))
@click.option("--ttl", default=64, show_default=True, type=click.IntRange(1, 255),
              help="IPv4 TTL / IPv6 hop limit of the SYN.")
@click.option("--sport", type=click.IntRange(1, 65535),
              help="Source port (default: random in 61000-65535, above Linux's ephemeral range).")
@click.option("-6", "--ipv6", is_flag=True, help="Resolve names to IPv6 (literals decide).")
@click.option("--timeout", default=2.0, show_default=True, type=Seconds(0, lo_open=False),
              help="Seconds to wait for an answer.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document (docs/json.md, raw syn).")
@netns_option
def syn(host: str, port: int, ttl: int, sport: int | None, ipv6: bool, timeout: float,
        as_json: bool, netns: str | None) -> None:
    """Send one hand-built SYN and classify the answer: open, closed or filtered.

    \b
    IPv4: IP_HDRINCL, rawlab builds the IPv4 header and the TCP segment.
    IPv6: the kernel adds the IPv6 header; rawlab computes the TCP checksum
    over the IPv6 pseudo-header. SYN-ACK → open, RST → closed, nothing (or
    an ICMP unreachable) → filtered. Shows both packets, every field with
    its offset. After a SYN-ACK our own kernel sends a RST: no socket owns
    the connection; rawlab shows it from an AF_PACKET capture (a raw socket
    never sees outgoing packets). Exit 0 whatever the port's state.
    """
    from rawlab.present import raw as present
    from rawlab.raw.syn import probe

    res = probe(host, port, ttl=ttl, sport=sport, ipv6=ipv6, timeout=timeout, netns=netns)
    if as_json:
        sys.stdout.write(present.syn_json(res))
    else:
        present.syn_report(res, sys.stdout)


@raw.command()
@click.argument("host")
@click.argument("port", type=click.IntRange(1, 65535))
@click.option("--data", default="hello from user space\n", show_default=False,
              help="What to send once connected (default: a line of text).")
@click.option("--sport", type=click.IntRange(1, 65535),
              help="Source port (default: random in 61000-65535).")
@click.option("-6", "--ipv6", is_flag=True, help="Resolve names to IPv6 (literals decide).")
@click.option("--timeout", default=5.0, show_default=True, type=Seconds(0, lo_open=False),
              help="Seconds for the whole connection, close included.")
@click.option("--json", "as_json", is_flag=True,
              help="NDJSON: the tcp segment/connection records, then a summary "
                   "(docs/json.md, raw handshake).")
@netns_option
def handshake(host: str, port: int, data: str, sport: int | None, ipv6: bool, timeout: float,
              as_json: bool, netns: str | None) -> None:
    """A whole TCP connection from user space: SYN, SYN-ACK, ACK, data, FIN, shown as a ladder.

    Our kernel would reset it (no socket owns the connection), so while it runs
    a temporary nftables table `inet rawlab_<pid>_<sport>` drops the kernel's
    RSTs to HOST:PORT from our port; rawlab's own packets carry SO_MARK and
    pass. The table is removed on every exit: done, error, Ctrl-C, SIGTERM
    (exit 130). The exchange is captured with AF_PACKET and drawn as
    `rawlab tcp`'s ladder. Needs root (CAP_NET_RAW and CAP_NET_ADMIN).
    """
    from rawlab.present import raw as present
    from rawlab.raw.handshake import run

    res = run(host, port, data.encode(), sport=sport, ipv6=ipv6, netns=netns, timeout=timeout)
    if as_json:
        present.handshake_json(res, sys.stdout)
    else:
        present.handshake_report(res, sys.stdout)
