"""Decoded packets for people and programs: a tcpdump-like line, a field tree
with byte offsets, and the NDJSON object of docs/json.md ("packet").

Decoders hand over ints and bytes; this module is where they become text.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterable
from typing import Any

from rawlab.decode.checksum import ChecksumStatus, Verdict
from rawlab.decode.dispatch import Packet
from rawlab.decode.tcp import TcpFlag, flag_letters
from rawlab.decode.view import View
from rawlab.records import Direction, Record

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

def mac(b: bytes) -> str:
    return ":".join(f"{x:02x}" for x in b)


def ip(b: bytes) -> str:
    if len(b) == 4:
        return str(ipaddress.IPv4Address(b))
    if len(b) == 16:
        return str(ipaddress.IPv6Address(b))
    return b.hex()


def _addr_fields(layer: str) -> dict[str, Any]:
    if layer in ("eth", "sll", "sll2"):
        return {"src": mac, "dst": mac, "addr": mac}
    if layer in ("ipv4", "ipv6"):
        return {"src": ip, "dst": ip}
    if layer == "arp":
        return {"sha": mac, "tha": mac, "spa": ip, "tpa": ip}
    if layer in ("icmpv6",):
        return {"target": ip}
    return {}


def jsonable(value: Any, fmt: Any = None) -> Any:
    """ints stay ints; bytes become addresses (where the field is one) or hex."""
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        b = bytes(value)
        return fmt(b) if fmt else b.hex()
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return str(value)


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
    fmts = _addr_fields(view.name)
    d: dict[str, Any] = {}
    for k, v in view.fields().items():
        d[k] = jsonable(v, fmts.get(k))
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

def timestamp(ts_ns: int) -> str:
    sec, ns = divmod(ts_ns, 1_000_000_000)
    return time.strftime("%H:%M:%S", time.localtime(sec)) + f".{ns // 1000:06d}"


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


def line(frame: int, rec: Record, pkt: Packet, interface: str | None = None) -> str:
    """tcpdump-like: time, interface, addresses/ports, flags, seq/ack, win, len; the
    checksum verdict only when it is not good."""
    head = timestamp(rec.ts_ns)
    if interface:
        head += f" {interface}"
        if rec.direction:
            head += " In " if rec.direction == Direction.INBOUND else " Out"
    body = summary(pkt, rec.wirelen)
    if pkt.truncated:
        body += " [|truncated]"
    if pkt.malformed:
        body += " [malformed]"
    return f"{head} {body}"


def summary(pkt: Packet, wirelen: int) -> str:
    names = pkt.names
    net = pkt.layer("ipv4") or pkt.layer("ipv6")
    if net is not None:
        n: Any = net
        fam = "IP" if net.name == "ipv4" else "IP6"
        netnote = _csum_note("ip", pkt.checksum("ipv4")) if net.name == "ipv4" else ""
        src, dst = ip(n.src), ip(n.dst)
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
            return f"ARP, Request who-has {ip(a.tpa)} tell {ip(a.spa)}, length {len(a.buf)}"
        if a.op == 2:
            return f"ARP, Reply {ip(a.spa)} is-at {mac(a.sha)}, length {len(a.buf)}"
        return f"ARP, op {a.op}, length {len(a.buf)}"
    nl: Any = pkt.layer("netlink")
    if nl is not None:
        msgs = nl.messages
        types = ",".join(str(m.type) for m in msgs[:4]) + ("…" if len(msgs) > 4 else "")
        return f"NETLINK {len(msgs)} message(s), types {types}, length {wirelen}"
    vs: Any = pkt.layer("vsock")
    if vs is not None:
        return vsock_summary(vs)
    e: Any = pkt.layer("eth")
    if e is not None:
        et = e.ethertype
        return (f"{mac(e.src)} > {mac(e.dst)}, ethertype {ETHERTYPES.get(et, 'unknown')} "
                f"(0x{et:04x}), length {wirelen}")
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
    if payload is not None and len(payload):
        yield f"  payload @{base}: {len(payload)} bytes: {bytes(payload[:32]).hex()}" + (
            "…" if len(payload) > 32 else "")
