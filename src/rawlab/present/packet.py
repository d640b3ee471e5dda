"""Decoded packets for people and programs: a tcpdump-like line, a field tree
with byte offsets, and the NDJSON object of docs/json.md ("packet").

    line(frame, rec, pkt, "eth0") / tree(...) / packet_json(...)   # one packet
    LineSink(out), TreeSink(out), JsonSink(out)     # the same as outputs of pipeline.run

Decoders hand over ints and bytes; this module is where they become text.
"""

from __future__ import annotations

import functools
import json
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TextIO

from rawlab.decode.checksum import ChecksumStatus, Verdict
from rawlab.decode.dispatch import Packet
from rawlab.decode.rtnl import type_name
from rawlab.decode.tcp import TcpFlag, flag_letters
from rawlab.decode.view import View
from rawlab.present import app
from rawlab.present.fmt import ascii_text, hex_lines, ip_text, json_line, jsonable, mac_text
from rawlab.records import (
    PACKET_OUTGOING,
    Direction,
    Interface,
    LinkType,
    Record,
    linktype_name,
)

# TCP option kinds (IANA)
TCPOPT_NAMES = {0: "eol", 1: "nop", 2: "mss", 3: "wscale", 4: "sackOK", 5: "sack",
                8: "timestamp", 28: "user_timeout", 29: "tcp_ao", 30: "mptcp", 34: "tfo"}
ICMP_TYPES = {0: "echo reply", 3: "destination unreachable", 5: "redirect", 8: "echo request",
              11: "time exceeded", 12: "parameter problem", 13: "timestamp request",
              14: "timestamp reply"}
ICMP6_TYPES = {1: "destination unreachable", 2: "packet too big", 3: "time exceeded",
               4: "parameter problem", 128: "echo request", 129: "echo reply",
               133: "router solicitation", 134: "router advertisement",
               135: "neighbor solicitation", 136: "neighbor advertisement", 137: "redirect"}
ETHERTYPES = {0x0800: "IPv4", 0x0806: "ARP", 0x86DD: "IPv6", 0x8100: "802.1Q",
              0x88A8: "802.1ad", 0x88CC: "LLDP", 0x8847: "MPLS"}
VSOCK_OPS = {0: "invalid", 1: "request", 2: "response", 3: "rst", 4: "shutdown", 5: "rw",
             6: "credit_update", 7: "credit_request"}
MON_OPS = {1: "connect", 2: "disconnect", 3: "control", 4: "payload"}


# ---- small formatters --------------------------------------------------------

def _addr_fields(layer: str) -> dict[str, Any]:
    if layer in ("eth", "sll", "sll2"):
        return {"src": mac_text, "dst": mac_text, "addr": mac_text}
    if layer in ("ipv4", "ipv6"):
        return {"src": ip_text, "dst": ip_text}
    if layer == "arp":
        return {"sha": mac_text, "tha": mac_text, "spa": ip_text, "tpa": ip_text}
    if layer in ("icmpv6",):
        return {"target": ip_text}
    return {}


def tcp_option_json(kind: int, data: bytes, value: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": kind, "name": TCPOPT_NAMES.get(kind, f"unknown-{kind}")}
    if kind == 8 and isinstance(value, tuple):
        out["tsval"], out["tsecr"] = value
    elif kind == 5 and isinstance(value, tuple):
        out["blocks"] = [list(b) for b in value]
    elif kind in (2, 3, 28):
        out["value"] = value
    elif data:
        out["hex"] = bytes(data).hex()
    return out


def layer_json(view: View, csum: ChecksumStatus | None) -> dict[str, Any]:
    d: dict[str, Any] | None = app.layer_json(view) if view.application else None
    if d is None:
        fmts = _addr_fields(view.name)
        d = {k: jsonable(v, fmts.get(k)) for k, v in view.fields().items()}
    if view.name == "tcp":
        t: Any = view
        d["flags"] = flag_letters(t.flags)
        d["flags_int"] = t.flags
        d["options"] = [tcp_option_json(o.kind, o.data, o.value()) for o in t.options]
        d["len"] = len(t.payload)
    elif view.name == "udp":
        d["len"] = len(view.payload)
    if csum is not None:
        d["checksum_status"] = csum.verdict.value
        if csum.verdict is Verdict.BAD and csum.expected is not None:
            d["checksum_expected"] = csum.expected
    if view.truncated:
        d["truncated"] = True
    if view.malformed:
        d["malformed"] = True
    return d


def packet_json(frame: int, rec: Record, pkt: Packet,
                interface: str | int | None) -> dict[str, Any]:
    """One NDJSON object (docs/json.md, "packet")."""
    out: dict[str, Any] = {"frame": frame, "ts": rec.ts_ns / 1e9, "caplen": rec.caplen,
                           "len": rec.wirelen, "interface": interface}
    if rec.direction:
        out["direction"] = "in" if rec.direction == Direction.INBOUND else "out"
    if rec.vlan is not None:
        out["vlan"] = rec.vlan
    out["layers"] = list(pkt.names)
    for view, csum in zip(pkt.layers, pkt.checksums, strict=False):
        key = view.name
        if key in out:  # a second layer of one kind (tunnels): key it by position
            key = f"{key}{pkt.names.index(key)}"
        out[key] = layer_json(view, csum)
    if pkt.truncated:
        out["truncated"] = True
    if pkt.malformed:
        out["malformed"] = True
    return out


# ---- the one-line summary -------------------------------------------------------

@dataclass(frozen=True)
class LineStyle:
    """tcpdump's choices for the one-line view.

    ``clock``: a function of ts_ns giving the time column (:class:`Clock`; None: local
    time of day, tcpdump's default). ``link``: -e, the link-level header first.
    ``dump``: "x"/"X" (-x/-X: hex, with ASCII, from the network header), "xx"/"XX"
    (-xx/-XX: from the link header), "A" (-A: ASCII), "payload" (the transport payload
    as -X), or "" (none).
    """

    clock: Callable[[int], str] | None = None
    link: bool = False
    dump: str = ""


DEFAULT_STYLE = LineStyle()


class Clock:
    """tcpdump's -t forms: "" (-t: none), "epoch" (-tt: seconds.µs since the epoch), "delta"
    (-ttt: since the previous packet), "date" (-tttt: date and time of day), "since"
    (-ttttt: since the first packet); "time" (default: time of day)."""

    def __init__(self, form: str = "time") -> None:
        self.form = form
        self._first: int | None = None
        self._prev: int | None = None

    def __call__(self, ts_ns: int) -> str:
        f = self.form
        if f == "time":
            return timestamp(ts_ns)
        if f == "":
            return ""
        if f == "epoch":
            sec, ns = divmod(ts_ns, 1_000_000_000)
            return f"{sec}.{ns // 1000:06d}"
        if f == "date":
            sec, ns = divmod(ts_ns, 1_000_000_000)
            return timestamp(ts_ns, "%Y-%m-%d %H:%M:%S")
        if self._first is None:
            self._first = self._prev = ts_ns
        ref = self._prev if f == "delta" else self._first
        self._prev = ts_ns
        d = max(ts_ns - (ref or ts_ns), 0) // 1000
        sec, us = divmod(d, 1_000_000)
        h, rest = divmod(sec, 3600)
        return f" {h:02d}:{rest // 60:02d}:{rest % 60:02d}.{us:06d}"


def cooked_direction(pkt: Packet) -> int:
    """In or out from a cooked header's packet type (files keep no other direction)."""
    first: Any = pkt.layers[0] if pkt.layers else None
    if first is None or first.name != "sll":
        return Direction.UNKNOWN
    return Direction.OUTBOUND if first.pkttype == PACKET_OUTGOING else Direction.INBOUND


def link_text(pkt: Packet, wirelen: int) -> str:
    """tcpdump -e: the link-level header (Ethernet addresses and ethertype, VLAN tags; the
    cooked header's interface, type and address), '' for link types without one."""
    if not pkt.layers:
        return ""
    first: Any = pkt.layers[0]
    if first.name == "eth":
        types = [t.tpid for t in first.tags] + [first.ethertype]
        out = (f"{mac_text(first.src)} > {mac_text(first.dst)}, ethertype {_etype(types[0])}, "
               f"length {wirelen}")
        for t, nxt in zip(first.tags, types[1:], strict=False):
            out += f": vlan {t.vid}, p {t.pcp}, ethertype {_etype(nxt)}"
        return out
    if first.name in ("sll", "sll2"):
        idx = f"ifindex {first.ifindex} " if hasattr(first, "ifindex") else ""
        addr = mac_text(bytes(first.addr)[: first.halen]) if first.halen else ""
        return f"{idx}{addr} ethertype {_etype(first.protocol)}, length {wirelen}"
    return ""


def _etype(et: int) -> str:
    return f"{ETHERTYPES.get(et, 'Unknown')} (0x{et:04x})"


def dump_text(pkt: Packet, form: str) -> str:
    """The -x/-X/-xx/-XX/-A dump lines (see :class:`LineStyle`)."""
    data = bytes(pkt.data)
    link = pkt.layers[0].header_len if pkt.layers and pkt.layers[0].name in (
        "eth", "sll", "sll2") else 0
    if form in ("x", "X"):
        data = data[link:]
    elif form == "payload":
        data = bytes(pkt.payload) if len(pkt.layers) > 1 else b""
    if form == "A":
        return ascii_text(data)
    return "\n".join(hex_lines(data, ascii=form in ("X", "XX", "payload")))


def timestamp(ts_ns: int, fmt: str = "%H:%M:%S") -> str:
    """Local time of `ts_ns` as `fmt` plus microseconds; a time the C library cannot
    show (a file's absurd if_tsresol or if_tsoffset) as seconds since the epoch."""
    sec, ns = divmod(ts_ns, 1_000_000_000)
    try:
        return time.strftime(fmt, time.localtime(sec)) + f".{ns // 1000:06d}"
    except (OverflowError, OSError, ValueError):
        return f"{sec}.{ns // 1000:06d}"


# ints: IntFlag arithmetic per packet costs
_TCPDUMP_FLAGS = tuple((int(f), ch) for f, ch in (
    (TcpFlag.SYN, "S"), (TcpFlag.FIN, "F"), (TcpFlag.PSH, "P"), (TcpFlag.RST, "R"),
    (TcpFlag.URG, "U"), (TcpFlag.ECE, "E"), (TcpFlag.CWR, "W")))
_ACK = int(TcpFlag.ACK)


def tcpdump_flags(flags: int) -> str:
    """tcpdump's order and letters: S F P R U E W, '.' for ACK."""
    out = ""
    for bit, ch in _TCPDUMP_FLAGS:
        if flags & bit:
            out += ch
    if flags & _ACK:
        out += "."
    return out or "none"


def tcp_options_text(t: Any) -> str:
    """tcpdump's form of the options, in wire order (NOPs too): the parsed list of the
    view (rawlab.decode.tcp.parse_options; each value from option_value)."""
    parts = []
    for o in t.options:
        v = o.value()
        if o.kind == 1:
            parts.append("nop")
        elif o.kind == 0:
            parts.append("eol")
        elif o.kind == 2:
            parts.append(f"mss {v}")
        elif o.kind == 3:
            parts.append(f"wscale {v}")
        elif o.kind == 4:
            parts.append("sackOK")
        elif o.kind == 8 and isinstance(v, tuple):
            parts.append(f"TS val {v[0]} ecr {v[1]}")
        elif o.kind == 5 and isinstance(v, tuple):
            parts.append(f"sack {len(v)} " + " ".join(f"{{{a}:{b}}}" for a, b in v))
        else:
            parts.append(f"{TCPOPT_NAMES.get(o.kind, f'unknown-{o.kind}')} 0x{bytes(o.data).hex()}")
    return ",".join(parts)


def _csum_note(name: str, c: ChecksumStatus | None) -> str:
    if c is None or c.verdict is Verdict.GOOD:
        return ""
    if c.verdict is Verdict.BAD:
        exp = f" -> 0x{c.expected:04x}" if c.expected is not None else ""
        return f" [bad {name} cksum 0x{c.value:04x}{exp}!]"
    return f" [{name} cksum {c.verdict.value}]"


def line(frame: int, rec: Record, pkt: Packet, interface: str | None = None,
         style: LineStyle | None = None) -> str:
    """tcpdump-like: time, interface, addresses/ports, flags, seq/ack, win, len; the
    checksum verdict only when it is not good. `style` holds tcpdump's -t*, -e, -x/-X/-A
    choices (None: tcpdump's defaults)."""
    st = style or DEFAULT_STYLE
    head = timestamp(rec.ts_ns) if st.clock is None else st.clock(rec.ts_ns)
    if interface:
        direction = rec.direction or cooked_direction(pkt)
        if direction:
            inbound = direction == Direction.INBOUND
            head += f" {interface:<5} {'In ' if inbound else 'Out'}"
        else:
            head += f" {interface}"
    body = summary(pkt, rec.wirelen)
    if pkt.layers and pkt.layers[-1].application:
        body += app.suffix(pkt)
    if st.link:
        link = link_text(pkt, rec.wirelen)
        if link:
            body = link + ": " + body.removeprefix("IP6 ").removeprefix("IP ").removeprefix(
                "ARP, ")
    if pkt.truncated:
        body += " [|truncated]"
    if pkt.malformed:
        body += " [malformed]"
    text = f"{head} {body}" if head else body
    if st.dump:
        text += "\n" + dump_text(pkt, st.dump)
    return text


def summary(pkt: Packet, wirelen: int) -> str:
    names = pkt.names
    net = pkt.layer("ipv4") or pkt.layer("ipv6")
    if net is not None:
        n: Any = net
        fam = "IP" if net.name == "ipv4" else "IP6"
        netnote = _csum_note("ip", pkt.checksum("ipv4")) if net.name == "ipv4" else ""
        src, dst = ip_text(n.src), ip_text(n.dst)
        t: Any = pkt.layer("tcp")
        if t is not None:
            plen = len(t.payload)
            seq = f"seq {t.seq}:{(t.seq + plen) & 0xFFFFFFFF}" if plen else f"seq {t.seq}"
            s = (f"{fam} {src}.{t.sport} > {dst}.{t.dport}: Flags [{tcpdump_flags(t.flags)}], "
                 f"{seq}")
            if t.flags & _ACK:
                s += f", ack {t.ack}"
            s += f", win {t.window}"
            if t.options:
                s += f", options [{tcp_options_text(t)}]"
            return s + f", length {plen}" + _csum_note("tcp", pkt.checksum("tcp")) + netnote
        u: Any = pkt.layer("udp")
        if u is not None:
            return (f"{fam} {src}.{u.sport} > {dst}.{u.dport}: UDP, length {len(u.payload)}"
                    + _csum_note("udp", pkt.checksum("udp")) + netnote)
        ic: Any = pkt.layer("icmp") or pkt.layer("icmpv6")
        if ic is not None:
            v6 = ic.name == "icmpv6"
            what = (ICMP6_TYPES if v6 else ICMP_TYPES).get(ic.type, f"type {ic.type}")
            extra = ""
            if ic.type in ((128, 129) if v6 else (0, 8)):
                extra = f", id {ic.rest >> 16}, seq {ic.rest & 0xFFFF}"
            return (f"{fam} {src} > {dst}: {'ICMP6, ' if v6 else 'ICMP '}{what}{extra}, "
                    f"length {len(ic.payload) + 8}"
                    + _csum_note("icmp6" if v6 else "icmp", pkt.checksum(ic.name)) + netnote)
        proto = getattr(n, "proto", None)
        return f"{fam} {src} > {dst}: ip-proto-{proto}, length {len(n.payload)}{netnote}"
    a: Any = pkt.layer("arp")
    if a is not None:
        if a.op == 1:
            return (f"ARP, Request who-has {ip_text(a.tpa)} tell {ip_text(a.spa)}, "
                    f"length {len(a.buf)}")
        if a.op == 2:
            return f"ARP, Reply {ip_text(a.spa)} is-at {mac_text(a.sha)}, length {len(a.buf)}"
        return f"ARP, op {a.op}, length {len(a.buf)}"
    nl: Any = pkt.layer("netlink")
    if nl is not None:
        msgs = nl.messages
        types = ",".join(type_name(m.type, nl.family) for m in msgs[:4]) + (
            "…" if len(msgs) > 4 else "")
        return f"NETLINK {len(msgs)} message(s), types {types}, length {wirelen}"
    vs: Any = pkt.layer("vsock")
    if vs is not None:
        return vsock_summary(vs)
    e: Any = pkt.layer("eth")
    if e is not None:
        et = e.ethertype
        return (f"{mac_text(e.src)} > {mac_text(e.dst)}, ethertype {ETHERTYPES.get(et, 'unknown')} "
                f"(0x{et:04x}), length {wirelen}")
    if names == ("data",):
        lt = pkt.linktype
        return f"link type {linktype_name(lt)} ({lt}), not decoded, length {wirelen}"
    return f"{'/'.join(names) or 'data'}, length {wirelen}"


VSOCK_TYPES = {1: "stream", 2: "seqpacket"}


def vsock_flags(op: int, flags: int) -> str:
    """EOM/EOR on seqpacket data, RCV/SEND on shutdown; others as hex."""
    names = {5: ((1, "EOM"), (2, "EOR")), 4: ((1, "RCV"), (2, "SEND"))}.get(op, ())
    out = [n for bit, n in names if flags & bit]
    rest = flags & ~sum(bit for bit, _ in names)
    if rest:
        out.append(f"0x{rest:x}")
    return ",".join(out)


def vsock_summary(vs: Any) -> str:
    """`VSOCK 3:1234 > 2:5000: payload rw seqpacket [EOM,EOR] len 5, buf_alloc 262144 fwd_cnt 5`"""
    s = (f"VSOCK {vs.src_cid}:{vs.src_port} > {vs.dst_cid}:{vs.dst_port}: "
         f"{MON_OPS.get(vs.op, f'op {vs.op}')}")
    v = getattr(vs, "virtio", None)
    if v is None:
        return s + f", length {len(vs.payload)}"
    s += (f" {VSOCK_OPS.get(v.op, f'op {v.op}')} "
          f"{VSOCK_TYPES.get(v.type, f'type {v.type}')}")
    f = vsock_flags(v.op, v.flags)
    if f:
        s += f" [{f}]"
    return s + f" len {v.len}, buf_alloc {v.buf_alloc} fwd_cnt {v.fwd_cnt}"


# ---- the -v tree ----------------------------------------------------------------

def tree(frame: int, rec: Record, pkt: Packet, interface: str | int | None) -> Iterable[str]:
    """Every field of every layer, with its byte offset in the frame."""
    yield (f"frame {frame}: {rec.wirelen} bytes on wire, {rec.caplen} captured, "
           f"ts {rec.ts_ns / 1e9:.9f}" + (f", interface {interface}" if interface is not None
                                          else ""))
    base = 0
    for view, csum in zip(pkt.layers, pkt.checksums, strict=False):
        marks = "".join(m for m, on in ((" [truncated]", view.truncated),
                                        (" [malformed]", view.malformed)) if on)
        lines = app.tree_lines(view) if view.application else None
        if lines is not None:
            frames = getattr(view, "frames", ())
            where = (f"reassembled from {len(frames)} segments" if len(frames) > 1
                     else f"@{base}")
            yield f"  {view.name} {where}, {len(view.buf)} bytes{marks}"
            yield from (f"           {x}" for x in lines)
            base += view.header_len
            continue
        yield f"  {view.name} @{base}, header {view.header_len} bytes{marks}"
        fmts = _addr_fields(view.name)
        fields = view.fields()
        fixed = {f[0] for f in view.FIELDS}
        for name, off, size in view.FIELDS:
            val = fields.get(name)
            shown = jsonable(val, fmts.get(name))
            if isinstance(val, int) and not isinstance(val, bool) and size <= 4:
                shown = f"{val} (0x{val:0{size * 2}x})"
            yield f"    {base + off:5d}  {name:<14} {shown}"
        for name, val in fields.items():  # derived fields (options, tags, ext headers)
            if name in fixed or (view.name == "tcp" and name == "options"):
                continue
            yield f"           {name:<14} {jsonable(val, fmts.get(name))}"
        if view.name == "tcp":
            t: Any = view
            yield f"           {'flags':<14} {flag_letters(t.flags)} [{tcpdump_flags(t.flags)}]"
            for o in t.options:
                yield (f"    {base + o.offset:5d}  option {TCPOPT_NAMES.get(o.kind, o.kind)}"
                       f" = {jsonable(o.value())}")
        if csum is not None:
            exp = f", expected 0x{csum.expected:04x}" if csum.expected is not None else ""
            yield f"           {'checksum':<14} {csum.verdict.value}{exp}"
        base += view.header_len
    payload = pkt.payload
    if payload is not None and len(payload) and not pkt.layers[-1].application:
        yield f"  payload @{base}: {len(payload)} bytes: {bytes(payload[:32]).hex()}" + (
            "…" if len(payload) > 32 else "")


@functools.lru_cache(maxsize=256)
def ifindex_name(ifindex: int) -> str:
    """The name of interface `ifindex` on this machine (what tcpdump prints for a LINUX_SLL2
    packet), else ``ifindex N``."""
    try:
        return socket.if_indextoname(ifindex)
    except OSError:
        return f"ifindex {ifindex}"


# ---- sinks: the outputs of rawlab.pipeline.run -----------------------------------

class LineSink:
    """One tcpdump-like line per packet (`style`: tcpdump's -t*, -e, -x/-X/-A)."""

    decodes = True

    def __init__(self, out: TextIO, style: LineStyle | None = None) -> None:
        self._write = out.write
        self._out = out
        self.style = style

    def packet(self, frame: int, rec: Record, pkt: Packet | None,
               iface: Interface | None) -> None:
        assert pkt is not None
        name = iface.name if iface is not None else None
        if rec.linktype == LinkType.LINUX_SLL2 and name in (None, "any") and pkt.layers:
            name = ifindex_name(pkt.layers[0].ifindex)  # as tcpdump names SLL2's interface
        self._write(line(frame, rec, pkt, name, self.style) + "\n")

    def close(self) -> None:
        self._out.flush()


class TreeSink(LineSink):
    """Every field of every layer, with byte offsets; a blank line after each packet."""

    def packet(self, frame: int, rec: Record, pkt: Packet | None,
               iface: Interface | None) -> None:
        assert pkt is not None
        app.with_scapy(pkt)
        name = iface.name if iface is not None and iface.name else rec.interface
        self._write("\n".join(tree(frame, rec, pkt, name)) + "\n\n")


class JsonSink(LineSink):
    """One NDJSON object per packet (docs/json.md, "packet")."""

    def packet(self, frame: int, rec: Record, pkt: Packet | None,
               iface: Interface | None) -> None:
        assert pkt is not None
        app.with_scapy(pkt)
        name = iface.name if iface is not None and iface.name else rec.interface
        self._write(json_line(packet_json(frame, rec, pkt, name)))


def sink_for(out: TextIO, *, verbose: bool = False, as_json: bool = False,
             style: LineStyle | None = None) -> LineSink:
    """The packet output the options name: ``-v`` tree, ``--json`` NDJSON, else lines."""
    kind = JsonSink if as_json else TreeSink if verbose else LineSink
    return kind(out, style)


def plural(n: int, word: str) -> str:
    """``1 packet``, ``0 packets``, ``2 packets`` (tcpdump's PLURAL_SUFFIX)."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def capture_summary(st: Any) -> str:
    """tcpdump's three lines at the end of a capture (a CaptureStats' counts)."""
    text = (f"{plural(st.captured, 'packet')} captured\n"
            f"{plural(st.received, 'packet')} received by filter\n"
            f"{plural(st.dropped, 'packet')} dropped by kernel")
    if st.pending:
        text += f"\n{plural(st.pending, 'packet')} arrived after the stop (not captured)"
    return text


def capture_summary_json(st: Any, interface: str, expression: str | None) -> str:
    """The ``summary`` line that ends ``capture --json`` (docs/json.md): a CaptureStats'
    counts, the interface and the filter."""
    return json.dumps({"summary": {
        "captured": st.captured, "received": st.received, "dropped": st.dropped,
        "freeze_q": st.freeze_q, "losing_blocks": st.losing_blocks, "skipped": st.skipped,
        "pending": st.pending, "interface": interface, "filter": expression}}) + "\n"


_IFF = ((0x1, "Up"), (0x40, "Running"), (0x8, "Loopback"))


def interface_list(rows: list[tuple[int, str, int]]) -> str:
    """``tcpdump -D``: the capture's choices, numbered, with their state."""
    lines = ["1.any (Pseudo-device that captures on all interfaces) [Up, Running]"]
    for n, (_index, name, flags) in enumerate(rows, 2):
        words = [w for bit, w in _IFF if flags & bit] or ["none"]
        lines.append(f"{n}.{name} [{', '.join(words)}]")
    return "\n".join(lines)
