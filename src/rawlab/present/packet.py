"""Decoded packets for people and programs: a tcpdump-like line, a field tree
with byte offsets, and the NDJSON object of docs/json.md ("packet").

    line(frame, rec, pkt, "eth0") / tree(...) / packet_json(...)   # one packet
    tree_rows(...)                                  # the tree's lines with their bytes
    LineSink(out), TreeSink(out), JsonSink(out)     # the same as outputs of pipeline.run

Decoders hand over ints and bytes; this module is where they become text.
"""

from __future__ import annotations

import functools
import json
import socket
from collections.abc import Iterable
from typing import Any, NamedTuple, TextIO

from rawlab.decode.checksum import ChecksumStatus, Verdict
from rawlab.decode.dispatch import Packet
from rawlab.decode.rtnl import type_name
from rawlab.decode.tcp import flag_letters
from rawlab.decode.view import View
from rawlab.present import app
from rawlab.present.fmt import ascii_text, hex_lines, ip_text, json_line, jsonable, mac_text
from rawlab.present.layers import FIELD_FORMATS, LAYER_SHAPES
from rawlab.present.layers import summary as layers_summary
from rawlab.present.processes import mark_endpoints, owner_lines, owners_json
from rawlab.present.tcpdump import (  # (re-exported: the per-packet view's vocabulary)
    _ACK,
    DEFAULT_STYLE,
    LineStyle,
    TcpdumpSeq,
    tcpdump_flags,
    timestamp,
)
from rawlab.records import (
    PACKET_OUTGOING,
    PCAPNG_CUSTOM,
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
               130: "multicast listener query", 131: "multicast listener report",
               132: "multicast listener done", 133: "router solicitation",
               134: "router advertisement", 135: "neighbor solicitation",
               136: "neighbor advertisement", 137: "redirect", 138: "router renumbering",
               139: "node information query", 140: "node information reply",
               143: "multicast listener report v2", 155: "RPL", 160: "extended echo request",
               161: "extended echo reply"}
_UNREACH_CODES = ("net unreachable", "host unreachable", "protocol unreachable",
                  "port unreachable", "fragmentation needed", "source route failed",
                  "destination network unknown", "destination host unknown",
                  "source host isolated", "network administratively prohibited",
                  "host administratively prohibited", "network unreachable for TOS",
                  "host unreachable for TOS", "communication administratively prohibited",
                  "host precedence violation", "precedence cutoff in effect")
ICMP_CODES = {**{(3, c): n for c, n in enumerate(_UNREACH_CODES)},
              (5, 0): "redirect for network", (5, 1): "redirect for host",
              (5, 2): "redirect for TOS and network", (5, 3): "redirect for TOS and host",
              (11, 0): "time to live exceeded in transit",
              (11, 1): "fragment reassembly time exceeded",
              (12, 0): "pointer indicates the error", (12, 1): "missing a required option",
              (12, 2): "bad length"}
ICMP6_CODES = {(1, 0): "no route to destination",
               (1, 1): "communication administratively prohibited",
               (1, 2): "beyond scope of source address", (1, 3): "address unreachable",
               (1, 4): "port unreachable", (1, 5): "source address failed policy",
               (1, 6): "reject route to destination", (3, 0): "hop limit exceeded in transit",
               (3, 1): "fragment reassembly time exceeded",
               (4, 0): "erroneous header field", (4, 1): "unrecognized next header type",
               (4, 2): "unrecognized IPv6 option"}
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
    return FIELD_FORMATS.get(layer, {})


def tcp_option_json(kind: int, data: bytes, value: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": kind, "name": TCPOPT_NAMES.get(kind, f"unknown-{kind}")}
    if kind == 8 and isinstance(value, tuple):
        out["tsval"], out["tsecr"] = value
    elif kind == 5 and isinstance(value, tuple):
        out["blocks"] = [list(b) for b in value]
    elif kind in (2, 3, 28) and isinstance(value, int):
        out["value"] = value
    elif data:
        out["hex"] = bytes(data).hex()  # also a known kind of the wrong length
    return out


def layer_json(view: View, csum: ChecksumStatus | None,
               prev: View | None = None) -> dict[str, Any]:
    """One layer's object; `prev` is the layer before it (the IP header a transport
    header's lengths come from, as tshark's tcp.len). An application layer's object is
    its presenter's (present/app/)."""
    d: dict[str, Any] | None = app.layer_json(view) if view.application else None
    if d is None:
        fmts = _addr_fields(view.name)
        d = {k: jsonable(v, fmts.get(k), fmts) for k, v in view.fields().items()}
    ip: Any = prev if prev is not None and prev.name in ("ipv4", "ipv6") else None
    if view.name == "tcp":
        t: Any = view
        d["flags"] = flag_letters(t.flags)
        d["flags_int"] = t.flags
        d["options"] = [tcp_option_json(o.kind, o.data, o.value()) for o in t.options]
        d["len"] = max(ip.l4_length - t.header_len, 0) if ip is not None else len(t.payload)
    elif view.name == "udp":
        u: Any = view
        d["len"] = u.length - 8 if u.length >= 8 else len(view.payload)
    elif view.name in ("icmp", "icmpv6"):
        ic: Any = view
        names = ICMP6_TYPES if view.name == "icmpv6" else ICMP_TYPES
        d["type_name"] = names.get(ic.type, f"type {ic.type}")
        code = (ICMP6_CODES if view.name == "icmpv6" else ICMP_CODES).get((ic.type, ic.code))
        if code is not None:
            d["code_name"] = code
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
    known = rec.ts_known
    out: dict[str, Any] = {"frame": frame, "ts": rec.ts_ns / 1e9 if known else None,
                           "ts_ns": rec.ts_ns if known else None, "caplen": rec.caplen,
                           "len": rec.wirelen,
                           "interface": interface if rec.block is None else None}
    if rec.block is not None:
        out["block"] = {"type": rec.block[0], "pen": rec.block[1]}
    if rec.section:
        out["section"] = rec.section
    if rec.direction:
        out["direction"] = "in" if rec.direction == Direction.INBOUND else "out"
    if rec.vlan is not None:
        out["vlan"] = rec.vlan
    out["layers"] = list(pkt.names)
    prev = None
    re = pkt.reassembled
    for i, (view, csum) in enumerate(zip(pkt.layers, pkt.checksums, strict=False)):
        key = view.name
        if key in out:  # a second layer of one kind (tunnels): key it by its position
            key = f"{key}{i}"
        # above a reassembled datagram, lengths are the datagram's, not the last fragment's
        out[key] = layer_json(view, csum, None if re is not None and i == re.at + 1 else prev)
        prev = view
    if re is not None:  # the layers after layers[re.at] decode a reassembled datagram
        out["reassembled"] = {"layer": _json_key(pkt, re.at), "frames": list(re.frames),
                              "length": re.length}
    if pkt.truncated:
        out["truncated"] = True
    if pkt.malformed:
        out["malformed"] = True
    if rec.owners is not None:
        out["process"] = owners_json(rec.owners)
    return out


def _json_key(pkt: Packet, i: int) -> str:
    """The JSON key of layer ``i`` (a repeated name is keyed by its position)."""
    name = pkt.layers[i].name
    return name if pkt.names.index(name) == i else f"{name}{i}"


# ---- the one-line summary -------------------------------------------------------

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


_TD_OPT = {0: "eol", 1: "nop", 2: "mss", 3: "wscale", 4: "sackOK", 5: "sack", 6: "echo",
           7: "echoreply", 8: "TS", 11: "cc", 12: "ccnew", 13: "", 19: "md5", 20: "scps",
           28: "uto", 29: "tcp-ao", 30: "mptcp", 34: "tfo", 254: "exp"}
# the value bytes each fixed-size option has (the rest print their bytes, or their own way)
_TD_LEN = {2: 2, 3: 1, 6: 4, 7: 4, 8: 8, 11: 4, 12: 4, 13: 4, 19: 16, 20: 2, 28: 2}


def _td_option(kind: int, d: bytes, sack_base: int) -> str:
    """One option as tcpdump's print-tcp.c writes it (its name, then its value)."""
    name = _TD_OPT.get(kind, f"unknown-{kind}")
    want = _TD_LEN.get(kind)
    if want is not None and len(d) < want:
        raise ValueError
    if kind in (2, 20, 28):
        v = d[0] << 8 | d[1]
        return {2: f"{name} {v}", 20: f"{name} cap {d[0]:02x} id {d[1]}",
                28: f"{name} 0x{v:x} {(v >> 1) * 60 if v & 1 else v >> 1}"}[kind]
    if kind == 3:
        return f"{name} {d[0]}"
    if kind in (6, 7, 11, 12, 13):
        return f"{name} {int.from_bytes(d[:4], 'big')}"
    if kind == 8:
        return f"{name} val {int.from_bytes(d[:4], 'big')} ecr {int.from_bytes(d[4:8], 'big')}"
    if kind == 5:
        if len(d) % 8:
            return f"{name} invalid sack"
        blocks = "".join(
            f"{{{(int.from_bytes(d[i:i + 4], 'big') - sack_base) & 0xFFFFFFFF}:"
            f"{(int.from_bytes(d[i + 4:i + 8], 'big') - sack_base) & 0xFFFFFFFF}}}"
            for i in range(0, len(d), 8))
        return f"{name} {len(d) // 8} {blocks}"
    if kind == 19:
        return f"{name} shared secret not supplied with -M, can't check - {d[:16].hex()}"
    if kind == 29:
        if len(d) < 2:
            return f"{name} [invalid]"
        mac = f" mac 0x{d[2:].hex()}" if len(d) > 2 else ""
        return f"{name} keyid {d[0]} rnextkeyid {d[1]}{mac}"
    if kind == 34:
        return f"{name} cookiereq" if not d else f"{name} cookie {d.hex()}"
    if kind == 254:
        if len(d) < 2:
            raise ValueError
        return f"{name}-{d[0] << 8 | d[1]:04x}"
    return f"{name} 0x{d.hex()}" if d else name


def tcp_options_text(t: Any, sack_base: int = 0) -> str:
    """tcpdump's form of the options, in wire order (NOPs too), from the view's parsed
    list; SACK edges relative to `sack_base` (tcpdump's, 0 for absolute numbers); a
    broken list ends in ``[bad opt]`` as tcpdump's does."""
    parts = []
    for o in t.options:
        d = bytes(o.data)
        try:
            text = _td_option(o.kind, d, sack_base)
        except ValueError:
            parts.append("[bad opt")
            return ",".join(parts)
        want = _TD_LEN.get(o.kind)
        if want is not None and len(d) != want and o.kind not in (0, 1):
            text += f"[len {len(d) + 2}]"
        parts.append(text)
        if o.kind == 0:
            break
    if getattr(t, "_options_bad", False):
        parts.append("[bad opt")
    return ",".join(parts)


def _csum_note(name: str, c: ChecksumStatus | None) -> str:
    """A checksum known to be wrong (the only verdict the one-line view shows; -v and
    --json give every one: good, partial, kernel-verified, unverified)."""
    if c is None or c.verdict is not Verdict.BAD:
        return ""
    exp = f" -> 0x{c.expected:04x}" if c.expected is not None else ""
    return f" [bad {name} cksum 0x{c.value:04x}{exp}!]"


def line(frame: int, rec: Record, pkt: Packet, interface: str | None = None,
         style: LineStyle | None = None, seqs: TcpdumpSeq | None = None) -> str:
    """tcpdump-like: time, interface, addresses/ports, flags, seq/ack, win, len; the
    checksum verdict only when it is not good. `style` holds tcpdump's -t*, -e, -x/-X/-A
    choices (None: tcpdump's defaults); `seqs` the relative sequence numbers' state
    (None: absolute numbers)."""
    st = style or DEFAULT_STYLE
    head = timestamp(rec.ts_ns) if st.clock is None else st.clock(rec.ts_ns)
    if not rec.ts_known:  # a Simple Packet Block, a custom block: no time, as tshark
        head = ""
    if interface:
        direction = rec.direction or cooked_direction(pkt)
        if direction:
            inbound = direction == Direction.INBOUND
            head += f" {interface:<5} {'In ' if inbound else 'Out'}"
        else:
            head += f" {interface}"
    body = summary(pkt, rec.wirelen, seqs, st.quick)
    if pkt.layers and pkt.layers[-1].application:
        body += app.suffix(pkt)
    if rec.owners is not None:  # --processes: who holds each end (present/processes.py)
        body = mark_endpoints(body, rec.owners)
    if st.link:
        link = link_text(pkt, rec.wirelen)
        if link:
            body = link + ": " + body.removeprefix("IP6 ").removeprefix("IP ").removeprefix(
                "ARP, ")
    cut = header_cut(pkt)
    if cut:
        body += f" [|{cut}]"
    if pkt.malformed:
        body += " [malformed]"
    text = f"{head} {body}" if head else body
    if st.dump:
        text += "\n" + dump_text(pkt, st.dump)
    return text


def tcp_text(pkt: Packet, ip: Any, t: Any, fam: str, src: str, dst: str,
             seqs: TcpdumpSeq | None, quick: bool) -> str:
    """tcpdump's TCP line: lengths from the IP header (not what the snaplen kept), seq
    printed only with data or SYN/FIN/RST, relative numbers unless ``seqs`` is None."""
    head = f"{fam} {src}.{t.sport} > {dst}.{t.dport}: "
    length = ip.l4_length - t.header_len
    if t.truncated and len(t.buf) < 20:
        return head + "Flags [|tcp]"
    if quick:
        return head + f"tcp {max(length, 0)}"
    if length < 0:
        return head + f"Flags [{tcpdump_flags(t.flags)}], bad hdr length {t.header_len}"
    seq, ack, sack_base = t.seq, t.ack, 0
    if seqs is not None:
        seq, ack, sack_base = seqs.numbers(bytes(ip.src), bytes(ip.dst), t.sport, t.dport,
                                           seq, ack, t.flags)
    s = head + f"Flags [{tcpdump_flags(t.flags)}]"
    if length > 0 or t.flags & 0x07:
        s += f", seq {seq}:{(seq + length) & 0xFFFFFFFF}" if length > 0 else f", seq {seq}"
    if t.flags & _ACK:
        s += f", ack {ack}"
    s += f", win {t.window}"
    if t.flags & 0x20:
        s += f", urg {t.urgptr}"
    if t.options:
        s += f", options [{tcp_options_text(t, sack_base)}]"
    return s + f", length {length}" + _csum_note("tcp", pkt.checksum("tcp"))


_UNREACH = {0: "net {} unreachable", 1: "host {} unreachable",
            5: "{} unreachable - source route failed", 6: "net {} unreachable - unknown",
            7: "host {} unreachable - unknown", 8: "{} unreachable - source host isolated",
            9: "net {} unreachable - admin prohibited",
            10: "host {} unreachable - admin prohibited", 11: "net {} unreachable - tos prohibited",
            12: "host {} unreachable - tos prohibited",
            13: "host {} unreachable - admin prohibited filter",
            14: "host {} unreachable - host precedence violation",
            15: "host {} unreachable - precedence cutoff"}
_REDIRECT = {0: "redirect {} to net {}", 1: "redirect {} to host {}",
             2: "redirect-tos {} to net {}", 3: "redirect-tos {} to host {}"}
_ICMP_PLAIN = {4: "source quench", 10: "router solicitation", 15: "information request",
               16: "information reply", 17: "address mask request",
               42: "extended echo request", 43: "extended echo reply"}


def _quoted(pkt: Packet) -> tuple[Any, Any]:
    """(IP header, transport header) an ICMP error quotes, either None when absent."""
    inner = pkt.layers[pkt.quoted:]
    ip = inner[0] if inner and inner[0].name in ("ipv4", "ipv6") else None
    l4 = inner[1] if len(inner) > 1 and inner[1].name in ("tcp", "udp") else None
    return ip, l4


def _icmp4_what(pkt: Packet, ic: Any) -> str:
    """print-icmp.c's text for one ICMP message (without "ICMP " and the length)."""
    t, c, rest = ic.type, ic.code, ic.rest
    if t in (0, 8):
        return f"echo {'request' if t == 8 else 'reply'}, id {rest >> 16}, seq {rest & 0xFFFF}"
    qip, ql4 = _quoted(pkt)
    qdst = ip_text(qip.dst) if qip is not None else "?"
    if t == 3:
        if c == 2:
            return f"{qdst} protocol {qip.proto if qip is not None else '?'} unreachable"
        if c == 3:
            if qip is None:
                return f"{qdst} port unreachable"
            port = ql4.dport if ql4 is not None else int.from_bytes(
                bytes(qip.payload[2:4]), "big") if len(qip.payload) >= 4 else 0
            kind = {6: "tcp", 17: "udp"}.get(qip.proto)
            return (f"{qdst} {kind} port {port} unreachable" if kind else
                    f"{qdst} protocol {qip.proto} port {port} unreachable")
        if c == 4:
            mtu = rest & 0xFFFF
            return f"{qdst} unreachable - need to frag" + (f" (mtu {mtu})" if mtu else "")
        return _UNREACH.get(c, f"#{c} {{}} unreachable").format(qdst)
    if t == 5:
        return _REDIRECT.get(c, f"redirect-#{c} {{}} to net {{}}").format(
            qdst, ip_text(rest.to_bytes(4, "big")))
    if t == 11:
        return {0: "time exceeded in-transit", 1: "ip reassembly time exceeded"}.get(
            c, f"time exceeded-#{c}")
    if t == 12:
        return (f"parameter problem - code {c}" if c else
                f"parameter problem - octet {rest >> 24}")
    if t == 13:
        return f"time stamp query id {rest >> 16} seq {rest & 0xFFFF}"
    if t == 14:
        return f"time stamp reply id {rest >> 16} seq {rest & 0xFFFF}"
    if t == 18:
        return f"address mask is 0x{int.from_bytes(bytes(ic.payload[:4]), 'big'):08x}"
    if t == 9:
        return "router advertisement"
    return _ICMP_PLAIN.get(t, f"type-#{t}")


def _icmp6_what(ic: Any) -> tuple[str, str]:
    """print-icmp6.c's name for one ICMPv6 message and what follows it before the length."""
    t = ic.type
    if t in (128, 129):
        return (f"echo {'request' if t == 128 else 'reply'}, id {ic.rest >> 16}, "
                f"seq {ic.rest & 0xFFFF}", "")
    name = ICMP6_TYPES.get(t, f"type-#{t}")
    target = getattr(ic, "target", None)
    if t == 135 and target:
        return name, f", who has {ip_text(target)}"
    if t == 136 and target:
        return name, f", tgt is {ip_text(target)}"
    if t == 2:
        return name, f", mtu {ic.rest}"
    return name, ""


def icmp_text(pkt: Packet, ip: Any, ic: Any, fam: str, src: str, dst: str) -> str:
    """tcpdump's ICMP/ICMPv6 line (the quoted packet of an error named as tcpdump names
    it), the length from the IP header."""
    if ic.name == "icmpv6":
        what, tail = _icmp6_what(ic)
        body = f"ICMP6, {what}{tail}"
        note = _csum_note("icmp6", pkt.checksum(ic.name))
    else:
        body = f"ICMP {_icmp4_what(pkt, ic)}"
        note = _csum_note("icmp", pkt.checksum(ic.name))
    return f"{fam} {src} > {dst}: {body}, length {ip.l4_length}{note}"


def header_cut(pkt: Packet) -> str:
    """The name of the first layer whose header the capture cut short ('' when every
    header is whole: a payload cut by the snaplen is not worth a mark, as in tcpdump)."""
    for lay in pkt.layers:
        if lay.truncated and len(lay.buf) < lay.header_len:
            return lay.name
    return ""


def _transport(pkt: Packet) -> tuple[Any, Any] | None:
    """(IP layer, the transport layer after it or None) of the packet itself: the last IP
    layer before an ICMP error's quote (the inner one of a tunnel)."""
    layers = pkt.layers[: pkt.quoted]
    for i in range(len(layers) - 1, -1, -1):
        if layers[i].name in ("ipv4", "ipv6"):
            nxt = layers[i + 1] if i + 1 < len(layers) else None
            return layers[i], nxt if nxt is not None and nxt.name in _L4 else None
    return None


_L4 = frozenset({"tcp", "udp", "icmp", "icmpv6"})


def summary(pkt: Packet, wirelen: int, seqs: TcpdumpSeq | None = None,
            quick: bool = False) -> str:
    names = pkt.names
    if LAYER_SHAPES.get(names) is not False:  # tunnels, link types: present/layers.py
        text = layers_summary(pkt, names, wirelen,
                              lambda p, w: summary(p, w, seqs, quick))
        if text is not None:
            return text
    got = _transport(pkt)
    if got is not None:
        n, l4 = got
        fam = "IP" if n.name == "ipv4" else "IP6"
        netnote = _csum_note("ip", pkt.checksum("ipv4")) if n.name == "ipv4" else ""
        src, dst = ip_text(n.src), ip_text(n.dst)
        kind = l4.name if l4 is not None else ""
        if kind == "tcp":
            return tcp_text(pkt, n, l4, fam, src, dst, seqs, quick) + netnote
        if kind == "udp":
            u: Any = l4
            ln = u.length - 8 if u.length >= 8 else n.l4_length - 8
            if quick:
                return f"{fam} {src}.{u.sport} > {dst}.{u.dport}: UDP, length {ln}"
            return (f"{fam} {src}.{u.sport} > {dst}.{u.dport}: UDP, length {ln}"
                    + _csum_note("udp", pkt.checksum("udp")) + netnote)
        if kind in ("icmp", "icmpv6"):
            return icmp_text(pkt, n, l4, fam, src, dst) + netnote
        proto = getattr(n, "proto", None)
        return f"{fam} {src} > {dst}: ip-proto-{proto}, length {n.l4_length}{netnote}"
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
        if lt == PCAPNG_CUSTOM:
            return f"pcapng custom block, length {wirelen}"
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

class TreeRow(NamedTuple):
    """One line of the -v tree with the bytes it describes: ``depth`` 0 the frame, 1 a
    layer (or the payload), 2 a field; ``offset``/``size`` in the frame (``offset`` None
    for a value with no bytes of its own: derived, or a checksum's verdict)."""

    depth: int
    text: str
    offset: int | None
    size: int


def tree(frame: int, rec: Record, pkt: Packet, interface: str | int | None) -> Iterable[str]:
    """Every field of every layer, with its byte offset in the frame."""
    return (row.text for row in tree_rows(frame, rec, pkt, interface))


def tree_rows(frame: int, rec: Record, pkt: Packet,
              interface: str | int | None) -> Iterable[TreeRow]:
    """:func:`tree`'s lines with the bytes each describes (for a viewer's hex pane)."""
    ts = f"ts {rec.ts_ns / 1e9:.9f}" if rec.ts_known else "no timestamp"
    yield TreeRow(0, f"frame {frame}: {rec.wirelen} bytes on wire, {rec.caplen} captured, {ts}"
                  + (f", interface {interface}" if interface is not None else ""), 0, rec.caplen)
    if rec.owners is not None:
        for text in owner_lines(rec.owners):
            yield TreeRow(1, text, None, 0)
    base = 0
    whole = True  # offsets are the frame's (after a reassembled IP layer: the datagram's)

    def at(offset: int) -> int | None:
        return offset if whole else None

    re = pkt.reassembled
    for i, (view, csum) in enumerate(zip(pkt.layers, pkt.checksums, strict=False)):
        if re is not None and i == re.at + 1:  # offsets from here are the datagram's
            base, whole = 0, False
            yield TreeRow(1, f"  reassembled datagram: {re.length} bytes from frames "
                          f"{', '.join(map(str, re.frames))}", None, 0)
        marks = "".join(m for m, on in ((" [truncated]", view.truncated),
                                        (" [malformed]", view.malformed)) if on)
        lines = app.tree_lines(view) if view.application else None
        if lines is not None:
            frames = getattr(view, "frames", ())
            whole_here = len(frames) <= 1
            here = frames[-1][1] if frames else len(view.buf)  # its bytes in this frame
            where = f"@{base}" if whole_here else f"reassembled from {len(frames)} segments"
            yield TreeRow(1, f"  {view.name} {where}, {len(view.buf)} bytes{marks}",
                          at(base), here)
            yield from (TreeRow(2, f"           {x}", None, 0) for x in lines)
            base += here
            continue
        yield TreeRow(1, f"  {view.name} @{base}, header {view.header_len} bytes{marks}",
                      at(base), view.header_len)
        fmts = _addr_fields(view.name)
        fields = view.fields()
        fixed = {f[0] for f in view.FIELDS}
        for name, off, size in view.FIELDS:
            val = fields.get(name)
            shown = jsonable(val, fmts.get(name))
            if val is None:
                shown = "(not captured)"
            elif isinstance(val, int) and not isinstance(val, bool) and size <= 4:
                shown = f"{val} (0x{val:0{size * 2}x})"
            yield TreeRow(2, f"    {base + off:5d}  {name:<14} {shown}", at(base + off), size)
        for name, val in fields.items():  # derived fields (options, tags, ext headers)
            if name in fixed or (view.name == "tcp" and name == "options"):
                continue
            yield TreeRow(2, f"           {name:<14} {jsonable(val, fmts.get(name))}", None, 0)
        if view.name == "tcp":
            t: Any = view
            yield TreeRow(2, f"           {'flags':<14} {flag_letters(t.flags)} "
                          f"[{tcpdump_flags(t.flags)}]", None, 0)
            for o in t.options:
                try:
                    text = _td_option(o.kind, bytes(o.data), 0)
                except ValueError:
                    text = f"{_TD_OPT.get(o.kind, f'unknown-{o.kind}')} [bad: 0x{o.data.hex()}]"
                yield TreeRow(2, f"    {base + o.offset:5d}  option {text}", at(base + o.offset),
                              1 if o.kind in (0, 1) else 2 + len(o.data))
        if csum is not None:
            exp = f", expected 0x{csum.expected:04x}" if csum.expected is not None else ""
            yield TreeRow(2, f"           {'checksum':<14} {csum.verdict.value}{exp}", None, 0)
        base += view.header_len
    payload = pkt.payload
    if payload is not None and len(payload) and not pkt.layers[-1].application:
        yield TreeRow(1, f"  payload @{base}: {len(payload)} bytes: "
                      f"{bytes(payload[:32]).hex()}" + ("…" if len(payload) > 32 else ""),
                      at(base), len(payload))


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
        self.seqs = None if style is not None and style.absolute else TcpdumpSeq()

    def packet(self, frame: int, rec: Record, pkt: Packet | None,
               iface: Interface | None) -> None:
        assert pkt is not None
        self._write(self.text(frame, rec, pkt, iface) + "\n")

    def text(self, frame: int, rec: Record, pkt: Packet, iface: Interface | None) -> str:
        """The line of one packet (without its newline), with this sink's style and
        sequence-number state (the batch path prints its odd rows with it)."""
        name = None  # as tcpdump: only a LINUX_SLL2 packet (`-i any`) names its interface
        if rec.linktype == LinkType.LINUX_SLL2 and pkt.layers:
            name = iface.name if iface is not None and iface.name not in (None, "any") \
                else ifindex_name(pkt.layers[0].ifindex)
        text = line(frame, rec, pkt, name, self.style, self.seqs)
        if self.style is not None and self.style.colour:
            from rawlab.present.colour import paint_line

            text = paint_line(text)
        return text

    def close(self) -> None:
        self._out.flush()


class TreeSink(LineSink):
    """Every field of every layer, with byte offsets; a blank line after each packet.
    ``level`` 2 adds the whole frame in hex and ASCII, 3 each layer's bytes too."""

    level = 1

    def packet(self, frame: int, rec: Record, pkt: Packet | None,
               iface: Interface | None) -> None:
        assert pkt is not None
        app.with_scapy(pkt)
        name = iface.name if iface is not None and iface.name else rec.interface
        text = "\n".join(tree(frame, rec, pkt, name))
        if self.level >= 3:
            text += "\n" + "\n".join(layer_bytes(pkt))
        if self.level >= 2:
            text += "\n" + "\n".join(hex_lines(pkt.data))
        if self.style is not None and self.style.colour:
            from rawlab.present.colour import paint_tree

            text = paint_tree(text)
        self._write(text + "\n\n")


class JsonSink(LineSink):
    """One NDJSON object per packet (docs/json.md, "packet")."""

    def packet(self, frame: int, rec: Record, pkt: Packet | None,
               iface: Interface | None) -> None:
        assert pkt is not None
        app.with_scapy(pkt, payloads=False)
        name = iface.name if iface is not None and iface.name else rec.interface
        self._write(json_line(packet_json(frame, rec, pkt, name)))


def layer_bytes(pkt: Packet) -> list[str]:
    """Each layer's header bytes in hex, with its offset in the frame (-vvv)."""
    out, base = [], 0
    for lay in pkt.layers:
        hl = min(lay.header_len, len(lay.buf)) or len(lay.buf)
        out.append(f"  {lay.name} @{base}: {bytes(lay.buf[:hl]).hex(' ')}")
        base += lay.header_len
    return out


def sink_for(out: TextIO, *, verbose: int = 0, as_json: bool = False,
             style: LineStyle | None = None) -> LineSink:
    """The packet output the options name: ``-v`` tree (``-vv`` with the frame's dump,
    ``-vvv`` with each layer's bytes), ``--json`` NDJSON, else lines."""
    if as_json:
        return JsonSink(out, style)
    if verbose:
        sink = TreeSink(out, style)
        sink.level = verbose
        return sink
    return LineSink(out, style)


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


def capture_summary_json(st: Any, interface: str, expression: str | None,
                         extra: dict[str, Any] | None = None) -> str:
    """The ``summary`` line that ends ``capture --json`` (docs/json.md): a CaptureStats'
    counts, the interface and the filter (and `extra`'s keys)."""
    return json.dumps({"summary": {
        "captured": st.captured, "received": st.received, "dropped": st.dropped,
        "freeze_q": st.freeze_q, "losing_blocks": st.losing_blocks, "skipped": st.skipped,
        "pending": st.pending, "interface": interface, "filter": expression,
        **(extra or {})}}) + "\n"


_IFF = ((0x1, "Up"), (0x40, "Running"), (0x8, "Loopback"))


def interface_list(rows: list[tuple[int, str, int]]) -> str:
    """``tcpdump -D``: the capture's choices, numbered, with their state."""
    lines = ["1.any (Pseudo-device that captures on all interfaces) [Up, Running]"]
    for n, (_index, name, flags) in enumerate(rows, 2):
        words = [w for bit, w in _IFF if flags & bit] or ["none"]
        lines.append(f"{n}.{name} [{', '.join(words)}]")
    return "\n".join(lines)
