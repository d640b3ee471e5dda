"""What `rawlab raw ...` prints: listen lines/trees/NDJSON, ping's lines and summary,
the SYN probe's verdict with both packets, the user-space handshake's ladder.

Library modules (rawlab.raw.*) hand over results of ints and bytes; only this
module turns them into text and JSON (docs/json.md, "raw").
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from typing import Any, TextIO

from rawlab.decode.dispatch import Decoder, Packet
from rawlab.present import packet as ppkt
from rawlab.present.fmt import endpoint, json_line, preview
from rawlab.records import LinkType, Record

FAMILY = {socket.AF_INET: "AF_INET", socket.AF_INET6: "AF_INET6"}
PROTO = {1: "IPPROTO_ICMP", 6: "IPPROTO_TCP", 17: "IPPROTO_UDP", 58: "IPPROTO_ICMPV6",
         255: "IPPROTO_RAW"}


def _family_num(family: int) -> int:
    return 6 if family == socket.AF_INET6 else 4


def _sock(family: int, proto: int) -> str:
    return f"{FAMILY.get(family, family)} SOCK_RAW {PROTO.get(proto, str(proto))}"


def _ip_record(data: bytes, ts_ns: int = 0) -> tuple[Record, Packet]:
    rec = Record(ts_ns, len(data), LinkType.RAW, data)
    return rec, Decoder().decode(data, LinkType.RAW)


# ---- listen ------------------------------------------------------------------------------

def listen_banner(family: int, proto: int, netns: str | None) -> str:
    where = f" in namespace {netns}" if netns else ""
    s = (f"rawlab raw listen: {_sock(family, proto)}{where}: a copy of every incoming packet of "
         "that protocol; outgoing packets never reach a raw socket")
    if family == socket.AF_INET6:
        s += ("; AF_INET6 raw sockets get no IPv6 header: it is rebuilt from ancillary data "
              "(extension headers are lost)")
    return s


def listen_line(n: int, got: Any, pkt: Packet) -> str:
    return ppkt.line(n, got.record(), pkt, got.ifname or str(got.ifindex or "?"))


def listen_tree(n: int, got: Any, pkt: Packet) -> Iterable[str]:
    yield from ppkt.tree(n, got.record(), pkt, got.ifname or got.ifindex)
    if got.rebuilt:
        yield "  (IPv6 header rebuilt from IPV6_PKTINFO, IPV6_HOPLIMIT, IPV6_FLOWINFO)"


def listen_json(n: int, got: Any, pkt: Packet) -> str:
    d = ppkt.packet_json(n, got.record(), pkt, got.ifname or got.ifindex)
    d["ip_header"] = "rebuilt" if got.rebuilt else "kernel"
    return json_line(d)


# ---- ping --------------------------------------------------------------------------------

def ping_banner(p: Any) -> str:
    v6 = p.family == socket.AF_INET6
    csum = ("ICMPv6 checksum computed by rawlab over the IPv6 pseudo-header; the kernel "
            "computes it again for every raw ICMPv6 socket (RFC 3542 §3.1), the same value"
            if v6 else "ICMP checksum computed by rawlab, sent as is")
    return (f"PING {p.target} from {p.source}: {p.size} data bytes over "
            f"{_sock(p.family, p.proto)}, id 0x{p.ident:04x}; {csum}")


def ping_line(ev: Any, v6: bool) -> str | None:
    from rawlab.raw.ping import Reply, Unreachable

    if isinstance(ev, Reply):
        c = ev.checksum
        exp = f" (expected 0x{c.expected:04x})" if c.expected is not None else ""
        return (f"{ev.size} bytes from {ev.src}: icmp_seq={ev.seq} "
                f"{'hlim' if v6 else 'ttl'}={ev.hop_limit} time={ev.rtt_ns / 1e6:.3f} ms, "
                f"checksum 0x{c.value:04x} {c.verdict.value}{exp}"
                + (" (DUP!)" if ev.duplicate else ""))
    if isinstance(ev, Unreachable):
        what = (ppkt.ICMP6_TYPES if v6 else ppkt.ICMP_TYPES).get(ev.type, f"type {ev.type}")
        return f"From {ev.src} icmp_seq={ev.seq} {what} (type {ev.type}, code {ev.code})"
    return None


def ping_json(ev: Any) -> str | None:
    from rawlab.raw.ping import Reply, Sent, Unreachable

    if isinstance(ev, Sent):
        return json_line({"type": "request", "seq": ev.seq, "ts_ns": ev.ts_ns,
                      "checksum": ev.checksum, "size": ev.size})
    if isinstance(ev, Reply):
        return json_line({"type": "reply", "seq": ev.seq, "id": ev.ident, "src": ev.src,
                      "size": ev.size, "hop_limit": ev.hop_limit, "rtt_ns": ev.rtt_ns,
                      "ts_ns": ev.received.ts_ns, "checksum": ev.checksum.value,
                      "checksum_status": ev.checksum.verdict.value,
                      "duplicate": ev.duplicate})
    if isinstance(ev, Unreachable):
        return json_line({"type": "error", "seq": ev.seq, "src": ev.src, "icmp_type": ev.type,
                      "icmp_code": ev.code, "ts_ns": ev.received.ts_ns})
    return None


def ping_summary(s: Any) -> str:
    extra = ""
    if s.duplicates:
        extra += f", +{s.duplicates} duplicates"
    if s.errors:
        extra += f", +{s.errors} errors"
    out = (f"\n--- {s.target} ping statistics ---\n"
           f"{s.transmitted} packets transmitted, {s.received} received{extra}, "
           f"{s.loss_pct:.4g}% packet loss, time {s.time_ns // 1_000_000}ms\n")
    if s.rtt_min_ns is not None:
        out += ("rtt min/avg/max/mdev = " + "/".join(
            f"{v / 1e6:.3f}" for v in (s.rtt_min_ns, s.rtt_avg_ns, s.rtt_max_ns, s.rtt_mdev_ns))
                + " ms\n")
    return out


def ping_summary_json(s: Any) -> str:
    return json_line({"type": "summary", "schema": "rawlab.raw.ping/1", "target": s.target,
                  "transmitted": s.transmitted, "received": s.received,
                  "duplicates": s.duplicates, "errors": s.errors,
                  "loss_pct": round(s.loss_pct, 3), "time_ns": s.time_ns,
                  "rtt_min_ns": s.rtt_min_ns, "rtt_avg_ns": s.rtt_avg_ns,
                  "rtt_max_ns": s.rtt_max_ns, "rtt_mdev_ns": s.rtt_mdev_ns})


# ---- syn ---------------------------------------------------------------------------------

def _why_rst(res: Any) -> str:
    return (f"why the RST: the SYN left from a raw socket, so no socket of this kernel owns "
            f"{endpoint(res.source, res.sport)} ↔ {endpoint(res.target, res.port)}. When the "
            "SYN-ACK arrived the TCP stack found no socket for it and answered with a RST "
            "whose seq is the SYN-ACK's ack (RFC 9293 §3.10.7.1), which also frees the "
            "listener's half-open connection. `rawlab raw handshake` holds that RST back "
            "with a temporary nftables rule and completes the connection from user space.")


def syn_report(res: Any, out: TextIO) -> None:
    w = out.write
    v6 = res.family == socket.AF_INET6
    how = "the kernel adds the IPv6 header" if v6 else "IP_HDRINCL: rawlab writes the IPv4 header"
    w(f"rawlab raw syn: {endpoint(res.source, res.sport)} → {endpoint(res.target, res.port)}, "
      f"{'hop limit' if v6 else 'TTL'} {res.ttl}, over {_sock(res.family, 6)} ({how})\n")
    rtt = f" after {res.rtt_ns / 1e6:.3f} ms" if res.rtt_ns is not None else ""
    w(f"\nport {res.port} is {res.state.upper()}: {res.reason}{rtt}\n")
    note = ("TCP checksum computed by rawlab over the IPv6 pseudo-header (IPV6_CHECKSUM is off "
            "for raw TCP sockets); the IPv6 header shown is the one the kernel adds (flow label "
            "0: IPV6_AUTOFLOWLABEL off)" if v6 else
            "IPv4 and TCP checksums computed by rawlab; for IP_HDRINCL the kernel fills total "
            "length and header checksum again, with the same values")
    w(f"\nsent ({note}):\n")
    rec, pkt = _ip_record(res.sent, res.sent_ts_ns)
    for ln in ppkt.tree(1, rec, pkt, None):
        w(ln + "\n")
    for label, got in (("answer", res.answer), ("ICMP error", res.icmp)):
        if got is None:
            continue
        src = "IPv6 header rebuilt from ancillary data" if got.rebuilt else "as delivered"
        w(f"\n{label} (received on the raw socket, {src}):\n")
        pkt = Decoder().decode(got.data, LinkType.RAW)
        for ln in ppkt.tree(2, got.record(), pkt, got.ifname):
            w(ln + "\n")
    if res.state == "open":
        rst = res.kernel_rst
        if rst is not None:
            w("\nour kernel's RST (captured with AF_PACKET on 'any': a raw socket never sees "
              "its host's outgoing packets):\n")
            pkt = Decoder().decode(rst.data, rst.linktype)
            w("  " + ppkt.line(3, rst, pkt) + "\n")
        elif res.capture_error:
            w(f"\n(no capture to show our kernel's RST: {res.capture_error})\n")
        w("\n" + _why_rst(res) + "\n")
    elif res.state == "closed":
        w(f"\nthe RST came from {res.target}'s kernel: no socket listens on port {res.port}, so "
          "it refused the SYN (RST with ack = our ISN + 1).\n")
    else:
        w("\nfiltered: no SYN-ACK and no RST came back; a firewall dropped the SYN or the "
          "answer (or an ICMP error said so), or the host is down.\n")


def syn_json(res: Any) -> str:
    def pj(data: bytes | None, ts: int, rebuilt: bool = False) -> dict[str, Any] | None:
        if data is None:
            return None
        rec, pkt = _ip_record(data, ts)
        d = ppkt.packet_json(1, rec, pkt, None)
        d["ip_header"] = "rebuilt" if rebuilt else "kernel"
        return d

    rst = res.kernel_rst if res.state == "open" else None
    rst_json = None
    if rst is not None:
        rst_json = ppkt.packet_json(1, rst, Decoder().decode(rst.data, rst.linktype), "any")
    a, i = res.answer, res.icmp
    return json_line({
        "schema": "rawlab.raw.syn/1", "target": res.target, "port": res.port,
        "source": res.source, "sport": res.sport, "family": _family_num(res.family),
        "ttl": res.ttl, "isn": res.isn, "state": res.state, "reason": res.reason,
        "rtt_ns": res.rtt_ns, "sent": pj(res.sent, res.sent_ts_ns),
        "answer": pj(a.data, a.ts_ns, a.rebuilt) if a else None,
        "icmp": pj(i.data, i.ts_ns, i.rebuilt) if i else None,
        "kernel_rst": rst_json, "capture_error": res.capture_error,
    })


# ---- handshake ---------------------------------------------------------------------------

def handshake_report(res: Any, out: TextIO) -> None:
    from rawlab.present.ladder import render

    w = out.write
    v6 = res.family == socket.AF_INET6
    how = "" if v6 else ", IP_HDRINCL"
    w(f"rawlab raw handshake: {endpoint(res.source, res.sport)} → "
      f"{endpoint(res.target, res.port)}, TCP in user space over {_sock(res.family, 6)}{how}\n")
    w("our kernel's RSTs held back by a temporary nftables table (ours carry SO_MARK "
      "and pass):\n")
    for ln in res.ruleset.rstrip().splitlines():
        w("    " + ln + "\n")
    w("captured with AF_PACKET on 'any' (a raw socket never sees its own host's outgoing "
      "packets)\n")
    render(res.events, out, explain_lines=True)
    tcp = res.tcp
    if tcp is not None:
        states = " → ".join([tcp.log[0].split(" → ")[0], *(s.split(" → ")[1] for s in tcp.log)]) \
            if tcp.log else tcp.state
        w(f"\nuser-space TCP: {states}; sent {len(tcp.data)} bytes, received "
          f"{len(tcp.received)}; {res.sent_segments} segments sent "
          f"({res.retransmissions} retransmitted)\n")
        if tcp.received:
            w(f"received: {preview(tcp.received, 200)}\n")
    dropped = "?" if res.rst_dropped is None else str(res.rst_dropped)
    w(f"the nftables rule dropped {dropped} RST(s) from our kernel; table {res.table} "
      f"{'removed' if res.table_removed else 'NOT removed'}\n")


def handshake_json(res: Any, out: TextIO) -> None:
    from rawlab.pipeline import replay
    from rawlab.present.tcp import JsonSink

    replay(res.events, [JsonSink(out)])
    tcp = res.tcp
    out.write(json_line({
        "type": "raw_handshake", "schema": "rawlab.raw.handshake/1", "target": res.target,
        "port": res.port, "source": res.source, "sport": res.sport,
        "family": _family_num(res.family), "state": tcp.state if tcp else None,
        "states": list(tcp.log) if tcp else [], "sent_bytes": len(tcp.data) if tcp else 0,
        "received_bytes": len(tcp.received) if tcp else 0,
        "segments_sent": res.sent_segments, "retransmissions": res.retransmissions,
        "nft_table": res.table, "nft_ruleset": res.ruleset, "rst_dropped": res.rst_dropped,
        "table_removed": res.table_removed, "captured": len(res.records),
    }))
