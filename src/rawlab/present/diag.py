"""`rawlab netlink sockets` and `rawlab netlink genl` output: tables, info lines, JSON.

The only place sock_diag and generic netlink records are formatted
(docs/json.md, "netlink sockets / genl", has the schemas).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

from rawlab.decode.genl import OP_FLAG_NAMES, GenlFamily
from rawlab.decode.sock_diag import (
    DiagSocket,
    InetAddr,
    NetlinkEnd,
    PacketEnd,
    UnixAddr,
    VsockEnd,
)
from rawlab.decode.tcp_info import TCP_CA_STATES, TCPI_OPT_WSCALE, TCPI_OPTIONS, TcpInfo
from rawlab.sockets.diag import TCP_CLOSE, TCP_LISTEN
from rawlab.sockets.proc import Owner

SOCKET_SCHEMA = "rawlab.netlink.socket/1"
GENL_SCHEMA = "rawlab.netlink.genl/1"

# ss's state names
STATE_NAMES = {
    0: "UNKNOWN", 1: "ESTAB", 2: "SYN-SENT", 3: "SYN-RECV", 4: "FIN-WAIT-1", 5: "FIN-WAIT-2",
    6: "TIME-WAIT", 7: "UNCONN", 8: "CLOSE-WAIT", 9: "LAST-ACK", 10: "LISTEN", 11: "CLOSING",
    12: "NEW-SYN-RECV", 13: "BOUND-INACTIVE",
}
TYPE_NAMES = {1: "STREAM", 2: "DGRAM", 3: "RAW", 4: "RDM", 5: "SEQPACKET", 6: "DCCP",
              10: "PACKET"}
FAMILY_NAMES = {1: "unix", 2: "inet", 10: "inet6", 16: "netlink", 17: "packet", 40: "vsock"}
NETLINK_PROTOCOLS = {
    0: "route", 2: "usersock", 3: "firewall", 4: "sock_diag", 5: "nflog", 6: "xfrm",
    7: "selinux", 8: "iscsi", 9: "audit", 10: "fib_lookup", 11: "connector", 12: "netfilter",
    13: "ip6_fw", 14: "dnrtmsg", 15: "kobject_uevent", 16: "generic", 18: "scsitransport",
    19: "ecryptfs", 20: "rdma", 21: "crypto", 22: "smc",
}
ETH_P_NAMES = {0x0003: "ALL", 0x0800: "IP", 0x0806: "ARP", 0x86DD: "IPv6", 0x8100: "802.1Q"}
VMADDR_ANY = 0xFFFFFFFF
U64_MAX = (1 << 64) - 1


def state_name(s: DiagSocket) -> str:
    if s.netid in ("netlink", "packet"):
        return "UNCONN" if s.state in (0, TCP_CLOSE) else STATE_NAMES.get(s.state, str(s.state))
    return STATE_NAMES.get(s.state, str(s.state))


def type_name(t: int) -> str:
    return TYPE_NAMES.get(t, str(t))


# ---- endpoints ----------------------------------------------------------------------------

def _ip_text(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    return f"[{addr}]" if addr.version == 6 else str(addr)


def unix_path_text(path: bytes | None) -> str:
    if not path:
        return "*"
    if path[:1] == b"\0":
        return "@" + path[1:].decode("utf-8", "backslashreplace")
    return path.decode("utf-8", "backslashreplace")


def endpoint_text(s: DiagSocket, ep: Any, *, local: bool,
                  ifnames: Mapping[int, str] | None = None) -> str:
    if isinstance(ep, InetAddr):
        port = str(ep.port) if ep.port else "*"
        scope = ""
        if ep.ifindex and ifnames is not None:
            scope = "%" + ifnames.get(ep.ifindex, str(ep.ifindex))
        return f"{_ip_text(ep.addr)}{scope}:{port}"
    if isinstance(ep, UnixAddr):
        return unix_path_text(ep.path) + f" {ep.inode}" if local else f"* {ep.inode}"
    if isinstance(ep, VsockEnd):
        cid = "*" if ep.cid == VMADDR_ANY else str(ep.cid)
        port = "*" if ep.port == VMADDR_ANY else str(ep.port)
        return f"{cid}:{port}"
    if isinstance(ep, NetlinkEnd):
        proto = NETLINK_PROTOCOLS.get(s.protocol, str(s.protocol))
        if local:
            return f"{proto}:{ep.portid}"
        return f"{ep.group}:{'kernel' if ep.portid == 0 else ep.portid}" if ep.group \
            else ("*" if ep.portid == 0 else str(ep.portid))
    if isinstance(ep, PacketEnd):
        proto = ETH_P_NAMES.get(ep.protocol, f"0x{ep.protocol:04x}")
        ifname = "*" if ep.ifindex == 0 else (ifnames or {}).get(ep.ifindex, str(ep.ifindex))
        return f"{proto}:{ifname}"
    return "*"


def endpoint_json(ep: Any, *, local: bool) -> dict[str, Any] | None:
    if isinstance(ep, InetAddr):
        d: dict[str, Any] = {"addr": str(ep.addr), "port": ep.port}
        if ep.ifindex:
            d["ifindex"] = ep.ifindex
        return d
    if isinstance(ep, UnixAddr):
        if local:
            return {"path": None if not ep.path else unix_path_text(ep.path),
                    "abstract": bool(ep.path and ep.path[:1] == b"\0"), "inode": ep.inode}
        return {"inode": ep.inode}
    if isinstance(ep, VsockEnd):
        return {"cid": ep.cid, "port": ep.port}
    if isinstance(ep, NetlinkEnd):
        return {"portid": ep.portid} if local else {"portid": ep.portid, "group": ep.group}
    if isinstance(ep, PacketEnd):
        return {"protocol": ep.protocol, "ifindex": ep.ifindex}
    return None


# ---- tcp_info ----------------------------------------------------------------------------

def _ms(us: int) -> str:
    return f"{us / 1000:.3f}".rstrip("0").rstrip(".") if us else "0"


def rate_text(bytes_per_s: int) -> str:
    bps = bytes_per_s * 8
    for unit, div in (("Gbps", 1e9), ("Mbps", 1e6), ("Kbps", 1e3)):
        if bps >= div:
            return f"{bps / div:.3g}{unit}"
    return f"{bps}bps"


def tcp_info_text(s: DiagSocket) -> str:
    """The --info line: ss -i's words, every field of tcp_info the kernel sent."""
    parts: list[str] = []
    if s.cong:
        parts.append(s.cong)
    t = s.tcp_info
    if t is not None:
        parts += _tcp_info_parts(t, listening=s.state == TCP_LISTEN)
        parts.append(f"tcp_info:{t.length}B")
    if s.cc_kind and s.cc_info:
        c = s.cc_info
        if s.cc_kind == "bbr":
            parts.append(f"bbr:(bw:{rate_text(c['bw'])},mrtt:{_ms(c['min_rtt'])},"
                         f"pacing_gain:{c['pacing_gain'] / 256:g},"
                         f"cwnd_gain:{c['cwnd_gain'] / 256:g})")
        else:
            parts.append(f"{s.cc_kind}:(" + ",".join(f"{k}:{v}" for k, v in c.items()) + ")")
    if s.skmeminfo:
        m = s.skmeminfo
        short = (("rmem_alloc", "r"), ("rcvbuf", "rb"), ("wmem_alloc", "t"), ("sndbuf", "tb"),
                 ("fwd_alloc", "f"), ("wmem_queued", "w"), ("optmem", "o"), ("backlog", "bl"),
                 ("drops", "d"))
        parts.append("skmem:(" + ",".join(f"{a}{m[k]}" for k, a in short if k in m) + ")")
    if s.shutdown:
        parts.append("shutdown:" + {1: "<", 2: ">", 3: "<>"}.get(s.shutdown, str(s.shutdown)))
    return " ".join(parts)


def _tcp_info_parts(t: TcpInfo, *, listening: bool = False) -> list[str]:
    f = t.fields()
    if listening:  # unacked/sacked hold the accept queue and backlog: Recv-Q/Send-Q already
        f.pop("unacked", None)
        f.pop("sacked", None)
    p: list[str] = []

    def add(key: str, text: str | None = None, *, nonzero: bool = True) -> None:
        if key in f and (not nonzero or f[key]):
            p.append(text if text is not None else f"{key}:{f[key]}")

    opts = f.get("options", 0)
    names = [n for bit, n in TCPI_OPTIONS.items() if opts & bit and bit != TCPI_OPT_WSCALE]
    p += names
    if opts & TCPI_OPT_WSCALE and "rcv_wscale" in f:
        p.append(f"wscale:{f['snd_wscale']},{f['rcv_wscale']}")
    add("ca_state", f"ca_state:{TCP_CA_STATES.get(f.get('ca_state', 0), f.get('ca_state'))}",
        nonzero=True)
    add("rto", f"rto:{_ms(f.get('rto', 0))}")
    add("backoff", nonzero=True)
    if f.get("rtt"):
        p.append(f"rtt:{_ms(f['rtt'])}/{_ms(f['rttvar'])}")
    add("ato", f"ato:{_ms(f.get('ato', 0))}", nonzero=True)
    add("snd_mss", f"mss:{f.get('snd_mss')}")
    add("pmtu")
    add("rcv_mss", f"rcvmss:{f.get('rcv_mss')}")
    add("advmss")
    add("snd_cwnd", f"cwnd:{f.get('snd_cwnd')}")
    if f.get("snd_ssthresh", 0) < 0x7FFFFFFF:
        add("snd_ssthresh", f"ssthresh:{f.get('snd_ssthresh')}")
    for k in ("bytes_sent", "bytes_retrans", "bytes_acked", "bytes_received", "segs_out",
              "segs_in", "data_segs_out", "data_segs_in"):
        add(k, nonzero=True)
    if f.get("rtt") and f.get("snd_mss") and f.get("snd_cwnd"):
        p.append("send " + rate_text(f["snd_mss"] * f["snd_cwnd"] * 1_000_000 // f["rtt"]))
    for k, name in (("last_data_sent", "lastsnd"), ("last_data_recv", "lastrcv"),
                    ("last_ack_recv", "lastack")):
        add(k, f"{name}:{f.get(k)}")
    if f.get("pacing_rate") not in (None, U64_MAX):
        p.append(f"pacing_rate {rate_text(f['pacing_rate'])}")
        if f.get("max_pacing_rate") not in (None, U64_MAX):
            p[-1] += f"/{rate_text(f['max_pacing_rate'])}"
    if f.get("delivery_rate"):
        p.append(f"delivery_rate {rate_text(f['delivery_rate'])}")
    add("delivered", nonzero=True)
    add("delivered_ce", nonzero=True)
    if f.get("delivery_rate_app_limited"):
        p.append("app_limited")
    for k, name in (("busy_time", "busy"), ("rwnd_limited", "rwnd_limited"),
                    ("sndbuf_limited", "sndbuf_limited")):
        if f.get(k):
            p.append(f"{name}:{f[k] // 1000}ms")
    if f.get("retrans") or f.get("total_retrans"):
        p.append(f"retrans:{f.get('retrans', 0)}/{f.get('total_retrans', 0)}")
    for k in ("unacked", "lost", "sacked", "fackets", "retransmits", "probes", "dsack_dups",
              "reord_seen", "rcv_ooopack", "notsent_bytes", "fastopen_client_fail",
              "rehash", "total_rto", "total_rto_recoveries", "total_rto_time", "received_ce",
              "delivered_e1_bytes", "delivered_e0_bytes", "delivered_ce_bytes",
              "received_e1_bytes", "received_e0_bytes", "received_ce_bytes",
              "accecn_fail_mode", "accecn_opt_seen"):
        add(k, nonzero=True)
    if f.get("reordering", 3) != 3:
        add("reordering")
    add("rcv_rtt", f"rcv_rtt:{_ms(f.get('rcv_rtt', 0))}", nonzero=True)
    add("rcv_space")
    add("rcv_ssthresh")
    add("min_rtt", f"minrtt:{_ms(f.get('min_rtt', 0))}")
    add("snd_wnd")
    add("rcv_wnd")
    return p


# ---- the table -----------------------------------------------------------------------------

HEADER = ("Netid", "Type", "State", "Recv-Q", "Send-Q", "Local", "Peer", "Inode", "UID")


def process_text(owners: Iterable[Owner]) -> str:
    return "users:(" + ",".join(f'("{o.comm}",pid={o.pid},fd={o.fd})' for o in owners) + ")"


def socket_row(s: DiagSocket, *, ifnames: Mapping[int, str] | None = None,
               owners: Mapping[int, list[Owner]] | None = None) -> list[str]:
    row = [s.netid, type_name(s.type), state_name(s),
           "-" if s.recv_q is None else str(s.recv_q),
           "-" if s.send_q is None else str(s.send_q),
           endpoint_text(s, s.local, local=True, ifnames=ifnames),
           endpoint_text(s, s.peer, local=False, ifnames=ifnames),
           str(s.inode), "-" if s.uid is None else str(s.uid)]
    if owners is not None:
        row.append(process_text(owners.get(s.inode, [])) if owners.get(s.inode) else "")
    return row


TIMER_NAMES = ("off", "on", "keepalive", "timewait", "persist", "unknown")


def ms_timer(ms: int) -> str:
    """A timer's time left as ss writes it: ``119min``, ``7.200ms``, ``59sec``, ``200ms``."""
    secs, msecs = divmod(ms, 1000)
    minutes, secs = divmod(secs, 60)
    out = ""
    if minutes:
        msecs = 0
        out += f"{minutes}min"
        if minutes > 9:
            secs = 0
    if secs:
        if secs > 9:
            msecs = 0
        out += f"{secs}{'.' if msecs else 'sec'}"
    if msecs:
        out += f"{msecs:03d}ms"
    return out


def extras_text(s: DiagSocket, *, timers: bool = False, extended: bool = False) -> str:
    """ss -o's ``timer:(keepalive,119min,0)``, ss -e's ``uid:0 ino:1234 sk:3e8 ...``."""
    parts = []
    if timers and s.timer:
        name = TIMER_NAMES[min(s.timer, 5)]
        parts.append(f"timer:({name},{ms_timer(s.expires or 0)},{s.retrans or 0})")
    if extended:
        if s.uid:
            parts.append(f"uid:{s.uid}")
        parts.append(f"ino:{s.inode}")
        parts.append(f"sk:{s.cookie:x}")
        if s.extra.get("mark"):
            parts.append(f"fwmark:0x{s.extra['mark']:x}")
        if s.extra.get("cgroup_id"):
            parts.append(f"cgroup:{s.extra['cgroup_id']}")
    return " ".join(parts)


def skmem_text(s: DiagSocket) -> str:
    """ss -m's ``skmem:(r0,rb131072,t0,tb2626560,f0,w0,o0,bl0,d0)``."""
    m = s.skmeminfo or {}
    short = (("rmem_alloc", "r"), ("rcvbuf", "rb"), ("wmem_alloc", "t"), ("sndbuf", "tb"),
             ("fwd_alloc", "f"), ("wmem_queued", "w"), ("optmem", "o"), ("backlog", "bl"),
             ("drops", "d"))
    return "skmem:(" + ",".join(f"{a}{m[k]}" for k, a in short if k in m) + ")"


def summary_lines(c: Mapping[str, int]) -> list[str]:
    """`ss -s`, from the counters rawlab.sockets.proc.sockstat reads (ss's arithmetic)."""
    g = c.get
    tcp4, tcp6, tw = g("TCP.inuse", 0), g("TCP6.inuse", 0), g("TCP.tw", 0)
    rows = (("RAW", g("RAW.inuse", 0), g("RAW6.inuse", 0)),
            ("UDP", g("UDP.inuse", 0), g("UDP6.inuse", 0)), ("TCP", tcp4, tcp6),
            ("INET", g("RAW.inuse", 0) + g("UDP.inuse", 0) + tcp4,
             g("RAW6.inuse", 0) + g("UDP6.inuse", 0) + tcp6),
            ("FRAG", g("FRAG.inuse", 0), g("FRAG6.inuse", 0)))
    return [f"Total: {g('sockets.used', 0)}",
            f"TCP:   {g('TCP.alloc', 0) + tw} (estab {g('Tcp.CurrEstab', 0)}, closed "
            f"{g('TCP.alloc', 0) - (tcp4 + tcp6 - tw)}, orphaned {g('TCP.orphan', 0)}, "
            f"timewait {tw})", "", "Transport Total     IP        IPv6",
            *(f"{name}\t  {v4 + v6:<9} {v4:<9} {v6:<9}" for name, v4, v6 in rows), ""]


def socket_table(socks: list[DiagSocket], *, info: bool = False, header: bool = True,
                 ifnames: Mapping[int, str] | None = None,
                 owners: Mapping[int, list[Owner]] | None = None, timers: bool = False,
                 extended: bool = False, memory: bool = False) -> Iterable[str]:
    """One aligned line per socket (an indented info line under each with --info; timers
    and extended facts at its end with ``timers``/``extended``; its memory under it with
    ``memory``)."""
    rows = [socket_row(s, ifnames=ifnames, owners=owners) for s in socks]
    head = list(HEADER) + (["Process"] if owners is not None else [])
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    right = {3, 4}

    def line(r: list[str]) -> str:
        cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w)
                 in enumerate(zip(r, widths, strict=True))]
        return "  ".join(cells).rstrip()

    if header:
        yield line(head)
    for s, r in zip(socks, rows, strict=True):
        more = extras_text(s, timers=timers, extended=extended)
        yield line(r) + (" " + more if more else "")
        if memory and s.skmeminfo and not info:
            yield "\t " + skmem_text(s)
        if info and (text := tcp_info_text(s) if s.netid == "tcp" else _other_info(s)):
            yield "\t " + text


def _other_info(s: DiagSocket) -> str:
    parts = [f"{k}:{v}" for k, v in s.extra.items() if not isinstance(v, (dict, list))]
    for k, v in s.extra.items():
        if isinstance(v, list):
            parts.append(f"{k}:" + ",".join(map(str, v)))
    if s.skmeminfo:
        parts.append("skmem:(" + ",".join(f"{k}={v}" for k, v in s.skmeminfo.items()) + ")")
    if s.shutdown:
        parts.append(f"shutdown:{s.shutdown}")
    if s.cong:
        parts.insert(0, s.cong)
    return " ".join(parts)


# ---- JSON ----------------------------------------------------------------------------------

def socket_json(s: DiagSocket, *, owners: Mapping[int, list[Owner]] | None = None,
                ) -> dict[str, Any]:
    d: dict[str, Any] = {
        "schema": SOCKET_SCHEMA, "netid": s.netid,
        "family": FAMILY_NAMES.get(s.family, str(s.family)),
        "type": type_name(s.type).lower(), "protocol": s.protocol,
        "state": state_name(s), "state_num": s.state,
        "recv_q": s.recv_q, "send_q": s.send_q,
        "local": endpoint_json(s.local, local=True), "peer": endpoint_json(s.peer, local=False),
        "inode": s.inode, "uid": s.uid, "cookie": s.cookie, "shutdown": s.shutdown,
    }
    if s.netid == "netlink":
        d["protocol_name"] = NETLINK_PROTOCOLS.get(s.protocol)
    if s.netid in ("tcp", "udp"):
        d.update(timer=s.timer, retrans=s.retrans, expires_ms=s.expires)
    if s.tcp_info is not None:
        d["tcp_info_len"] = s.tcp_info.length
        d["tcp_info"] = s.tcp_info.fields()
    if s.cong is not None:
        d["cong"] = s.cong
    if s.cc_kind is not None:
        d["cc_info"] = {"kind": s.cc_kind, **(s.cc_info or {})}
    if s.skmeminfo is not None:
        d["skmeminfo"] = s.skmeminfo
    if s.meminfo is not None:
        d["meminfo"] = s.meminfo
    if s.extra:
        d["extra"] = s.extra
    if owners is not None:
        d["process"] = [{"pid": o.pid, "comm": o.comm, "fd": o.fd}
                        for o in owners.get(s.inode, [])]
    return d


# ---- genl ----------------------------------------------------------------------------------

def op_flags_text(flags: int) -> str:
    words = {0x01: "requires admin permission", 0x02: "can doit", 0x04: "can dumpit",
             0x08: "has policy", 0x10: "requires namespace admin permission"}
    return "; ".join(w for bit, w in words.items() if flags & bit)


def genl_text(fams: list[GenlFamily]) -> Iterable[str]:
    """Like `genl ctrl list`, a little tighter."""
    for f in fams:
        yield f"Name: {f.name}"
        yield (f"\tID: 0x{f.id:x}  Version: 0x{f.version:x}  header size: {f.hdrsize}  "
               f"max attribs: {f.maxattr}")
        if f.ops:
            yield "\tcommands supported:"
            for n, op in enumerate(f.ops, 1):
                yield (f"\t\t#{n}:  ID-0x{op.id:x}  Capabilities (0x{op.flags:x}): "
                       f"{op_flags_text(op.flags)}")
        if f.mcast_groups:
            yield "\tmulticast groups:"
            for n, g in enumerate(f.mcast_groups, 1):
                yield f"\t\t#{n}:  ID-0x{g.id:x}  name: {g.name}"
        yield ""


def genl_json(f: GenlFamily) -> dict[str, Any]:
    return {
        "schema": GENL_SCHEMA, "id": f.id, "name": f.name, "version": f.version,
        "hdrsize": f.hdrsize, "maxattr": f.maxattr,
        "ops": [{"id": o.id, "flags": o.flags,
                 "flag_names": [n for bit, n in OP_FLAG_NAMES.items() if o.flags & bit]}
                for o in f.ops],
        "mcast_groups": [{"name": g.name, "id": g.id} for g in f.mcast_groups],
        "unknown_attrs": [{"type": t, "hex": v.hex()} for t, v in sorted(f.attrs.items())],
    }
