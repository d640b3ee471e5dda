"""Netlink messages as text (ip-like lines, a side-by-side layout for -v) and JSON.

The only place rtnetlink values become text: addresses, MACs, flag and state
names, the tables of /etc/iproute2 (rt_protos, rt_scopes, rt_tables). The
sinks at the end print what the commands produce: :class:`MonitorPrinter` (one
hook per monitor event) and :func:`record_lines` (a captured record's messages).
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple, TextIO

from rawlab.decode.rtnl import (
    HexBytes,
    IpAddr,
    MacAddr,
    Schema,
    Unknown,
    Via,
    type_name,
)
from rawlab.present.fmt import ip_text, json_text, mac_text
from rawlab.sockets.netlink_wire import NETLINK_NETFILTER, NlMsg

IfName = Callable[[int], str | None]

encode = json_text  # compact JSON, as every netlink command writes it (one line each)

NLM_F_BASE = ((0x01, "REQUEST"), (0x02, "MULTI"), (0x04, "ACK"), (0x08, "ECHO"),
              (0x10, "DUMP_INTR"), (0x20, "DUMP_FILTERED"))
NLM_F_NEW = ((0x100, "REPLACE"), (0x200, "EXCL"), (0x400, "CREATE"), (0x800, "APPEND"))
NLM_F_GET = ((0x100, "ROOT"), (0x200, "MATCH"), (0x400, "ATOMIC"))
NLM_F_DEL = ((0x100, "NONREC"), (0x200, "BULK"))
NLM_F_ACK = ((0x100, "CAPPED"), (0x200, "ACK_TLVS"))

RT_PROTOS = {0: "unspec", 1: "redirect", 2: "kernel", 3: "boot", 4: "static", 8: "gated",
             9: "ra", 10: "mrt", 11: "zebra", 12: "bird", 13: "dnrouted", 14: "xorp",
             15: "ntk", 16: "dhcp", 17: "mrouted", 18: "keepalived", 42: "babel",
             99: "openr", 186: "bgp", 187: "isis", 188: "ospf", 189: "rip", 192: "eigrp"}
RT_SCOPES = {0: "global", 200: "site", 253: "link", 254: "host", 255: "nowhere"}
RT_TABLES = {0: "unspec", 253: "default", 254: "main", 255: "local"}
RTN_TYPES = {0: "unspec", 1: "unicast", 2: "local", 3: "broadcast", 4: "anycast",
             5: "multicast", 6: "blackhole", 7: "unreachable", 8: "prohibit", 9: "throw",
             10: "nat", 11: "xresolve"}
NUD_STATES = ((0x01, "INCOMPLETE"), (0x02, "REACHABLE"), (0x04, "STALE"), (0x08, "DELAY"),
              (0x10, "PROBE"), (0x20, "FAILED"), (0x40, "NOARP"), (0x80, "PERMANENT"))
IFF_FLAGS = ((0x1, "UP"), (0x2, "BROADCAST"), (0x4, "DEBUG"), (0x8, "LOOPBACK"),
             (0x10, "POINTOPOINT"), (0x20, "NOTRAILERS"), (0x40, "RUNNING"), (0x80, "NOARP"),
             (0x100, "PROMISC"), (0x200, "ALLMULTI"), (0x400, "MASTER"), (0x800, "SLAVE"),
             (0x1000, "MULTICAST"), (0x2000, "PORTSEL"), (0x4000, "AUTOMEDIA"),
             (0x8000, "DYNAMIC"), (0x10000, "LOWER_UP"), (0x20000, "DORMANT"),
             (0x40000, "ECHO"))
OPERSTATES = {0: "UNKNOWN", 1: "NOTPRESENT", 2: "DOWN", 3: "LOWERLAYERDOWN", 4: "TESTING",
              5: "DORMANT", 6: "UP"}
RULE_ACTIONS = {1: "lookup", 2: "goto", 3: "nop", 6: "blackhole", 7: "unreachable",
                8: "prohibit"}
ARPHRD = {1: "ether", 768: "ipip", 769: "ip6ip6", 772: "loopback", 776: "sit", 778: "gre",
          823: "ip6gre", 824: "netlink", 826: "vsockmon", 65534: "none"}
FAMILIES = {0: "unspec", 1: "unix", 2: "inet", 7: "bridge", 10: "inet6", 28: "mpls",
            129: "ipmr"}
PROTOCOLS = {0: "route", 2: "usersock", 4: "sock_diag", 5: "nflog", 6: "xfrm",
             9: "audit", 10: "fib_lookup", 12: "netfilter", 15: "kobject_uevent",
             16: "generic"}


def bits(value: int, table: tuple[tuple[int, str], ...]) -> list[str]:
    out = [name for bit, name in table if value & bit]
    rest = value & ~sum(bit for bit, _ in table)
    if rest:
        out.append(hex(rest))
    return out


_FLAG_NAMES: dict[tuple[int, int], list[str]] = {}


def flag_names(mtype: int, flags: int) -> list[str]:
    """nlmsg_flags as names; the upper byte means different things per request kind."""
    key = (mtype if mtype < 16 else 16 + mtype % 4, flags)
    got = _FLAG_NAMES.get(key)
    if got is None:
        if mtype == 2:  # NLMSG_ERROR
            extra: tuple[tuple[int, str], ...] = NLM_F_ACK
        elif mtype < 16:
            extra = ()
        else:
            extra = (NLM_F_NEW, NLM_F_DEL, NLM_F_GET, NLM_F_NEW)[mtype % 4]
        got = _FLAG_NAMES[key] = bits(flags, NLM_F_BASE + extra)
    return list(got)


def link_addr_text(b: bytes) -> str:
    """A link-layer address; tunnels carry IP addresses as link addresses."""
    return ip_text(b) if len(b) in (4, 16) else mac_text(b)


def _unknown(v: Unknown) -> dict[str, Any]:
    return {"type": v.type, "hex": v.data.hex()}


def _via(v: Via) -> dict[str, Any]:
    return {"family": v.family, "addr": ip_text(v.addr)}


def _hex(v: bytes) -> str:
    return v.hex()


def _same(v: Any) -> Any:
    return v


_CONVERT: dict[type, Callable[[Any], Any]] = {
    int: _same, str: _same, bool: _same, type(None): _same, IpAddr: ip_text,
    MacAddr: link_addr_text, HexBytes: _hex, bytes: _hex, Unknown: _unknown, Via: _via}


def jsonable(v: Any) -> Any:
    """A decoded value as JSON-able data (the schema of docs/json.md, "netlink")."""
    conv = _CONVERT.get(type(v))
    if conv is not None:
        return conv(v)
    if isinstance(v, dict):
        return _attrs_json(v)
    if isinstance(v, list | tuple):
        return [jsonable(x) for x in v]
    return str(v)


def _attrs_json(attrs: dict[str, Any]) -> dict[str, Any]:
    out = {}
    get = _CONVERT.get
    for k, v in attrs.items():
        conv = get(type(v))
        out[k] = conv(v) if conv is not None else jsonable(v)
    return out


_TYPE_NAMES: dict[tuple[int, int | None], str] = {}


def msg_json(m: NlMsg, **extra: Any) -> dict[str, Any]:
    """One message as a JSON object: nlmsghdr, the family header, attrs."""
    mt = m.type
    name = m.name
    if name is None:
        key = (mt, m.protocol)
        name = _TYPE_NAMES.get(key) or _TYPE_NAMES.setdefault(key, type_name(mt, m.protocol))
    d: dict[str, Any] = {**extra, "nlmsg_type": name, "nlmsg_len": m.len,
                         "nlmsg_flags": m.flags, "nlmsg_flags_names": flag_names(mt, m.flags),
                         "nlmsg_seq": m.seq, "nlmsg_pid": m.pid, "family": m.family}
    d.update(m.header)
    if m.cmd is not None:
        d["cmd_name"] = m.cmd
    if m.error is not None:
        d["error"] = m.error
        d["errno"] = errno.errorcode.get(-m.error) if m.error < 0 else None
        if m.extack:
            d["extack"] = m.extack
    d["attrs"] = _attrs_json(m.attrs)
    if not m.ok:
        d["malformed"] = True
    return d


# ---- ip-like text -----------------------------------------------------------------

def _dev(ifname: IfName, idx: int | None) -> str:
    if idx is None:
        return "?"
    return ifname(idx) or f"if{idx}"


def _prefix(addr: Any, plen: int, family: int | None) -> str:
    if addr is None:
        return "default" if plen == 0 else f"0/{plen}"
    full = 32 if len(addr) == 4 else 128
    return ip_text(addr) if plen == full else f"{ip_text(addr)}/{plen}"


def route_text(m: NlMsg, ifname: IfName) -> str:
    h, a = m.header, m.attrs
    parts = []
    rtype = h.get("type", 1)
    if rtype != 1:
        parts.append(RTN_TYPES.get(rtype, str(rtype)))
    parts.append(_prefix(a.get("RTA_DST"), h.get("dst_len", 0), m.family))
    if "RTA_SRC" in a:
        parts.append(f"from {_prefix(a['RTA_SRC'], h.get('src_len', 0), m.family)}")
    if "RTA_GATEWAY" in a:
        parts.append(f"via {ip_text(a['RTA_GATEWAY'])}")
    if "RTA_OIF" in a:
        parts.append(f"dev {_dev(ifname, a['RTA_OIF'])}")
    table = a.get("RTA_TABLE", h.get("table", 254))
    if table != 254:
        parts.append(f"table {RT_TABLES.get(table, table)}")
    proto = h.get("proto", 0)
    if proto not in (0, 3):
        parts.append(f"proto {RT_PROTOS.get(proto, proto)}")
    scope = h.get("scope", 0)
    if scope:
        parts.append(f"scope {RT_SCOPES.get(scope, scope)}")
    if "RTA_PREFSRC" in a:
        parts.append(f"src {ip_text(a['RTA_PREFSRC'])}")
    if "RTA_PRIORITY" in a:
        parts.append(f"metric {a['RTA_PRIORITY']}")
    for nh in a.get("RTA_MULTIPATH") or ():
        gw = nh["attrs"].get("RTA_GATEWAY")
        parts.append(f"nexthop{' via ' + ip_text(gw) if gw else ''} dev "
                     f"{_dev(ifname, nh['oif'])} weight {nh['hops'] + 1}")
    return " ".join(parts)


def route_get_text(m: NlMsg, ifname: IfName) -> str:
    """`ip route get`'s answer: the route, ``uid N``, and ``cache`` for a cloned one."""
    from rawlab.present.ip_json import rta_uid

    text = route_text(m, ifname)
    uid = rta_uid(dict(m.attrs))
    if uid is not None:
        text += f" uid {uid}"
    if m.header.get("flags", 0) & 0x200:  # RTM_F_CLONED
        text += "\n    cache"
    return text


def link_text(m: NlMsg, ifname: IfName) -> str:
    h, a = m.header, m.attrs
    flags = ",".join(bits(h.get("flags", 0), IFF_FLAGS))
    s = f"{h.get('index')}: {a.get('IFLA_IFNAME', '?')}: <{flags}>"
    if "IFLA_MTU" in a:
        s += f" mtu {a['IFLA_MTU']}"
    if "IFLA_MASTER" in a:
        s += f" master {_dev(ifname, a['IFLA_MASTER'])}"
    if "IFLA_OPERSTATE" in a:
        s += f" state {OPERSTATES.get(a['IFLA_OPERSTATE'], a['IFLA_OPERSTATE'])}"
    kind = (a.get("IFLA_LINKINFO") or {}).get("IFLA_INFO_KIND") \
        if isinstance(a.get("IFLA_LINKINFO"), dict) else None
    if kind:
        s += f" kind {kind}"
    if "IFLA_ADDRESS" in a:
        hw = h.get("ifi_type", 0)
        s += f" link/{ARPHRD.get(hw, hw)} {link_addr_text(a['IFLA_ADDRESS'])}"
    return s


def addr_text_line(m: NlMsg, ifname: IfName) -> str:
    h, a = m.header, m.attrs
    fam = "inet6" if m.family == socket.AF_INET6 else "inet"
    local = a.get("IFA_LOCAL") or a.get("IFA_ADDRESS")
    s = f"{h.get('index')}: {_dev(ifname, h.get('index'))} {fam} " \
        f"{ip_text(local) if local else '?'}/{h.get('prefixlen')}"
    if a.get("IFA_ADDRESS") and a.get("IFA_LOCAL") and a["IFA_ADDRESS"] != a["IFA_LOCAL"]:
        s += f" peer {ip_text(a['IFA_ADDRESS'])}"
    if "IFA_BROADCAST" in a:
        s += f" brd {ip_text(a['IFA_BROADCAST'])}"
    s += f" scope {RT_SCOPES.get(h.get('scope', 0), h.get('scope'))}"
    if "IFA_LABEL" in a:
        s += f" {a['IFA_LABEL']}"
    return s


def neigh_text(m: NlMsg, ifname: IfName) -> str:
    h, a = m.header, m.attrs
    dst = a.get("NDA_DST")
    s = f"{ip_text(dst) if dst else '?'} dev {_dev(ifname, h.get('ifindex'))}"
    if "NDA_LLADDR" in a:
        s += f" lladdr {link_addr_text(a['NDA_LLADDR'])}"
    if h.get("flags", 0) & 0x80:
        s += " router"
    state = bits(h.get("state", 0), NUD_STATES) or ["NONE"]
    return s + " " + " ".join(state)


def rule_text(m: NlMsg, ifname: IfName) -> str:
    h, a = m.header, m.attrs
    s = f"{a.get('FRA_PRIORITY', 0)}:"
    src = a.get("FRA_SRC")
    s += f" from {_prefix(src, h.get('src_len', 0), m.family) if src else 'all'}"
    if "FRA_DST" in a:
        s += f" to {_prefix(a['FRA_DST'], h.get('dst_len', 0), m.family)}"
    if "FRA_FWMARK" in a:
        s += f" fwmark {a['FRA_FWMARK']:#x}"
    if "FRA_IIFNAME" in a:
        s += f" iif {a['FRA_IIFNAME']}"
    if "FRA_OIFNAME" in a:
        s += f" oif {a['FRA_OIFNAME']}"
    action = h.get("action", 1)
    if action == 1:
        table = a.get("FRA_TABLE", h.get("table", 0))
        s += f" lookup {RT_TABLES.get(table, table)}"
    else:
        s += f" {RULE_ACTIONS.get(action, action)}"
    return s


def nsid_text(m: NlMsg, ifname: IfName) -> str:
    a = m.attrs
    return f"nsid {a.get('NETNSA_NSID', '?')}" + (
        f" (pid {a['NETNSA_PID']})" if "NETNSA_PID" in a else "")


def generic_text(m: NlMsg, ifname: IfName) -> str:
    if m.error is not None:
        if m.type == 3:
            return "done" if not m.error else f"done, error {m.error}"
        if not m.error:
            return "ack"
        text = f"error {errno.errorcode.get(-m.error, m.error)}"
        return text + (f": {m.extack}" if m.extack else "")
    parts = [f"{k}={v}" for k, v in m.header.items()]
    for k, v in m.attrs.items():
        if type(v) is Unknown:
            parts.append(f"attr{v.type}=0x{v.data.hex()}")
        else:
            parts.append(f"{k}={json_text(jsonable(v))}")
    return " ".join(parts)


_TEXT = {16: link_text, 17: link_text, 20: addr_text_line, 21: addr_text_line,
         24: route_text, 25: route_text, 28: neigh_text, 29: neigh_text, 32: rule_text,
         33: rule_text, 88: nsid_text, 89: nsid_text}


def nfnl_text(m: NlMsg, ifname: IfName) -> str:
    """A conntrack entry as `conntrack -E`, an nftables change as `nft monitor`."""
    from rawlab.decode.conntrack import conntrack_of
    from rawlab.decode.nftables import change_of
    from rawlab.present import nfnl

    ct = conntrack_of(m)
    if ct is not None:
        return nfnl.conntrack_text(ct)
    ch = change_of(m)
    return nfnl.nft_text(ch) if ch is not None else generic_text(m, ifname)


def body_text(m: NlMsg, ifname: IfName = lambda i: None) -> str:
    """What the message says, the way `ip monitor` / `ip` (`conntrack -E`, `nft monitor`)
    would print it."""
    if m.protocol:
        fn = nfnl_text if m.protocol == NETLINK_NETFILTER and m.ok and m.type >= 16 \
            else generic_text
    else:
        fn = _TEXT.get(m.type, generic_text) if m.ok else generic_text
    try:
        return fn(m, ifname)
    except (KeyError, TypeError, ValueError, AttributeError):  # odd values: show them raw
        return generic_text(m, ifname)


def message_name(m: NlMsg) -> str:
    """``RTM_NEWROUTE``; ``NFT_MSG_NEWRULE``; a generic netlink family and its command
    (``nl80211 NL80211_CMD_NEW_INTERFACE``); else the type's number."""
    if m.name is None:
        return type_name(m.type, m.protocol)
    return m.name if m.cmd is None else f"{m.name} {m.cmd}"


def line(m: NlMsg, ifname: IfName = lambda i: None, *, prefix: str = "",
         sender: Any = None) -> str:
    """One line: [TYPE] what it says (pid, process: ``sender``, as
    rawlab.sockets.proc names it). A conntrack or nftables message is the line
    `conntrack -E` / `nft monitor` prints, which says its type itself; a conntrack
    change a process asked for ends as conntrack's does: ``[USERSPACE] portid=N
    progname=NAME``."""
    who = process_text(sender)
    if m.protocol == NETLINK_NETFILTER and m.ok and m.type >= 16:
        s = f"{prefix}{body_text(m, ifname)}"
        if m.pid and m.type >> 8 == 1:  # ctnetlink
            comm = getattr(sender, "comm", None)
            return s + f" [USERSPACE] portid={m.pid}" + (f" progname={comm}" if comm else "")
    else:
        s = f"{prefix}[{message_name(m)}] {body_text(m, ifname)}"
    if m.pid and who is not None:
        s += f"  (pid {m.pid}: {who})"
    elif m.pid:
        s += f"  (pid {m.pid})"
    if not m.ok:
        s += "  [malformed]"
    return s


def process_json(who: Any) -> dict[str, Any] | None:
    """The sender of a message (rawlab.sockets.proc.Process), or why it has no name
    (rawlab.sockets.proc.Unnamed: ``how`` kernel or gone, and ``why``), for JSON."""
    if who is None:
        return None
    if hasattr(who, "why"):
        return {"pid": None, "comm": None, "how": who.how, "why": who.why}
    return {"pid": who.pid, "comm": who.comm, "how": who.how}


def process_text(who: Any) -> str | None:
    """``ip[3756]``; ``gone: ...`` when the sender could not be named; None for the kernel
    (nlmsg_pid 0: the line has no pid to explain)."""
    if who is None or getattr(who, "how", None) == "kernel":
        return None
    if hasattr(who, "why"):
        return "gone, exited before the message was read"
    return f"{who.comm}[{who.pid}]"


def family_json(m: NlMsg) -> dict[str, Any]:
    """What a conntrack or nftables message means, beside its attributes (JSON)."""
    if m.protocol != NETLINK_NETFILTER or not m.ok:
        return {}
    from rawlab.decode.conntrack import conntrack_of
    from rawlab.decode.nftables import change_of
    from rawlab.present import nfnl

    ct = conntrack_of(m)
    if ct is not None:
        return {"conntrack": nfnl.conntrack_json(ct)}
    ch = change_of(m)
    return {"nftables": nfnl.nft_json(ch)} if ch is not None else {}


# ---- sinks --------------------------------------------------------------------------

class MonitorPrinter:
    """`rawlab netlink monitor`'s output: one hook per event (rawlab.analysis.netlink).

    Text: ip-monitor-like lines (``verbose``: each with its byte layout); JSON:
    one object per event (docs/json.md, netlink). ``ifname`` names devices.
    """

    def __init__(self, out: TextIO, *, as_json: bool = False, verbose: bool = False,
                 ifname: IfName = lambda i: None, stamp: str | None = None,
                 genl: Any = None) -> None:
        from rawlab.analysis.netlink import Change, Event, OverflowEvent

        self.genl = genl  # generic netlink ids, for -v layouts
        self.write = out.write
        self.as_json = as_json
        self.verbose = verbose
        self.ifname = ifname
        self.stamp = stamp  # text: "long" (ip -t monitor), "short" (ip -ts monitor), None
        self._hooks: dict[type, Callable[[Any], None]] = {
            Event: self.message, OverflowEvent: self.overflow, Change: self.change}

    def show(self, ev: Any) -> None:
        self._hooks[type(ev)](ev)

    def message(self, ev: Any) -> None:
        m, who = ev.msg, ev.process
        if self.as_json:
            d = msg_json(m, event="message", n=ev.n, ts_ns=ev.ts_ns, nsid=ev.nsid,
                         group=ev.group, resynced=ev.resynced, process=process_json(who))
            if m.protocol:
                d.update(family_json(m))
            self.write(encode(d) + "\n")
            return
        prefix = f"[nsid {ev.nsid}] " if ev.nsid is not None else ""
        if self.stamp is not None:
            prefix = self._stamp(ev.ts_ns) + prefix
        self.write(line(m, self.ifname, prefix=prefix, sender=who) + "\n")
        if self.verbose:
            self.write("\n".join(layout(m.buf, m.offset, m.protocol or 0, self.genl)) + "\n")

    def _stamp(self, ts_ns: int) -> str:
        """`ip -t monitor`'s line (``Timestamp: Tue Jan  9 10:00:00 2024 123456 usec``) or
        `ip -ts monitor`'s prefix (``[2024-01-09T10:00:00.123456] ``), local time."""
        import time

        sec, us = divmod(ts_ns // 1000, 1_000_000)
        t = time.localtime(sec)
        if self.stamp == "short":
            return f"[{time.strftime('%Y-%m-%dT%H:%M:%S', t)}.{us:06d}] "
        return f"Timestamp: {time.strftime('%a %b %e %H:%M:%S %Y', t)} {us} usec\n"

    def overflow(self, ev: Any) -> None:
        if self.as_json:
            self.write(encode({"event": "overflow", "ts_ns": ev.ts_ns, "count": ev.count,
                               "resync": list(ev.resync), "protocol": ev.protocol,
                               "protocol_name": PROTOCOLS.get(ev.protocol)}) + "\n")
        elif ev.resync:
            self.write(f"!! overflow #{ev.count}: the kernel dropped messages (ENOBUFS); "
                       f"re-dumping {', '.join(ev.resync)} to show what changed\n")
        else:
            self.write(f"!! overflow #{ev.count}: the kernel dropped "
                       f"{PROTOCOLS.get(ev.protocol, ev.protocol)} messages (ENOBUFS); they "
                       "cannot be re-dumped: raise --rcvbuf-kb\n")

    def change(self, ch: Any) -> None:
        if self.as_json:
            d = msg_json(ch.msg, event="resync", change=ch.what, kind=ch.kind)
            if ch.before is not None:
                d["before"] = msg_json(ch.before)
            self.write(encode(d) + "\n")
        else:
            self.write(f"[resync {ch.what} {ch.kind}] {body_text(ch.msg, self.ifname)}\n")

    def summary(self, summary: dict[str, Any]) -> str | None:
        """The closing counts: JSON, a last object on the output; text, a line for stderr."""
        if self.as_json:
            self.write(encode({"summary": summary}) + "\n")
            return None
        return summary_text(summary)


def summary_text(summary: dict[str, Any]) -> str:
    """The monitor's closing line: ``12 messages, 1 overflow (ENOBUFS), re-dump found 45,602
    added, 0 removed, 3 changed``."""
    n, overflows = summary["messages"], summary["overflows"]
    text = f"{n:,} message{'s' * (n != 1)}, {overflows:,} overflow{'s' * (overflows != 1)} " \
           "(ENOBUFS)"
    if overflows:
        text += ", re-dump found " + ", ".join(f"{v:,} {k}" for k, v in summary["resync"].items())
    if summary.get("truncated"):
        text += f", {summary['truncated']:,} datagrams cut short (MSG_TRUNC)"
    return text


def value_text(v: Any) -> str:
    """A decoded value as text for -v: scalars as JSON writes them, a struct or nested
    attributes as ``name=value name=value``, a list comma-separated (never a Python repr)."""
    j = jsonable(v)
    return _json_value_text(j)


def _json_value_text(j: Any) -> str:
    if isinstance(j, dict):
        return " ".join(f"{k}={_json_value_text(x)}" for k, x in j.items())
    if isinstance(j, list):
        return "[" + ", ".join(_json_value_text(x) for x in j) + "]"
    if isinstance(j, bool) or j is None:
        return json_text(j)
    return str(j)


ARROWS = {"to_kernel": "user→kernel", "to_user": "kernel→user"}


def record_lines(rec: Any, msgs: list[NlMsg], direction: str | None, *, as_json: bool,
                 verbose: bool, genl: Any = None) -> Iterator[str]:
    """`rawlab netlink decode`'s lines for one record (rawlab.decode.netlink.NetlinkRecord),
    one per message."""
    frame, ts_ns, protocol, pkttype, data = rec
    if not msgs:
        if as_json:
            yield encode({"frame": frame, "ts_ns": ts_ns, "protocol": protocol,
                          "malformed": True, "hex": data.hex()})
        else:
            yield f"#{frame} {len(data)} bytes: not a netlink message"
        return
    for i, m in enumerate(msgs):
        if as_json:
            yield encode(msg_json(m, frame=frame, msg_index=i, ts_ns=ts_ns, protocol=protocol,
                                  protocol_name=PROTOCOLS.get(protocol),
                                  pkttype=pkttype if pkttype >= 0 else None,
                                  direction=direction))
            continue
        prefix = f"#{frame}.{i} {PROTOCOLS.get(protocol, protocol)} " \
                 f"{ARROWS.get(direction or '', '')} ".replace("  ", " ")
        yield line(m, prefix=prefix)
        if verbose:
            yield from layout(m.buf, m.offset, protocol, genl)


# ---- -v: pyroute2's names beside the byte layout -------------------------------------

class LayoutRow(NamedTuple):
    """One line of :func:`layout`: its depth (0 the headers, 1.. attributes), pyroute2's
    name, the value as text, and the bytes it covers: ``offset`` from the message's start,
    ``size`` bytes (a nested attribute covers its children), of which the text shows the
    first ``shown`` in hex."""

    depth: int
    name: str
    value: str
    offset: int
    size: int
    shown: int


def layout(data: bytes, offset: int, protocol: int = 0, genl: Any = None) -> list[str]:
    """The message at ``data[offset]`` field by field: pyroute2 name = value | offset len hex.

    Offsets count from the start of the message. ``genl``: generic netlink ids, as
    rawlab.decode.rtnl.decode takes them.
    """
    rows = layout_rows(data, offset, protocol, genl)
    if rows is None:
        return [f"  {len(data) - offset} bytes, too short for a netlink header"]
    out = []
    for r in rows:
        left = f"{'  ' * r.depth}{r.name} = {r.value}"
        if len(left) > 58:
            left = left[:55] + "..."
        raw = data[offset + r.offset:offset + r.offset + r.shown]
        out.append(f"  {left:<58} | {r.offset:5d}  {raw.hex(' ')}")
    return out


def layout_rows(data: bytes, offset: int, protocol: int = 0,
                genl: Any = None) -> list[LayoutRow] | None:
    """:func:`layout`'s lines as rows (None: too short for a netlink header)."""
    from rawlab.decode.netlink import NlAttr, attr_tree
    from rawlab.decode.rtnl import decode, message_type, value_of
    from rawlab.sockets.netlink_wire import NLMSG_ERROR, NLMSG_HDRLEN, messages

    rows: list[LayoutRow] = []
    m = next(messages(data, offset, protocol), None)
    if m is None:
        return None
    decode(m, genl=genl)
    names = {"len": "nlmsg_len", "type": "nlmsg_type", "flags": "nlmsg_flags",
             "seq": "nlmsg_seq", "pid": "nlmsg_pid"}
    for fname, off, size in m.FIELDS:
        val: Any = getattr(m, fname)
        if fname == "type" and message_name(m) != str(val):
            val = f"{val} ({message_name(m)})"
        elif fname == "flags":
            val = f"{val:#06x} {','.join(flag_names(m.type, val))}"
        rows.append(LayoutRow(0, names[fname], str(val), off, size, size))
    body = NLMSG_HDRLEN
    body_len = m.end - offset - body
    schema: Schema | None = None
    t = message_type(m, genl=genl) if m.type >= 16 else None
    if t is not None:
        schema = t.schema
        if t.header_st is not None and t.header_st.size <= body_len:
            vals = t.header_st.unpack_from(data, offset + body)
            for (fname, st, foff), v in zip(t.header_spec, vals, strict=False):
                rows.append(LayoutRow(0, fname, str(v), body + foff, st.size, st.size))
    elif m.type == NLMSG_ERROR and m.error is not None:
        rows.append(LayoutRow(0, "error", f"{m.error} ({errno.errorcode.get(-m.error, 'ok')})",
                              body, 4, 4))

    def walk(attrs: tuple[NlAttr, ...], sch: Schema | None, depth: int) -> None:
        for a in attrs:
            spec = sch.by_type.get(a.type) if sch else None
            name = spec.name if spec else f"attr {a.type}"
            short = sch.pyroute2_name(name) if (sch and spec) else str(a.type)
            if spec is not None and spec.kind == 7 and a.children is None:  # K_NEST
                a.nested()
            at = a.offset - offset
            have = max(min(a.length, len(data) - a.offset), 0)
            if a.children is not None:
                sub = spec.schema() if (spec is not None and spec.kind == 7) else None
                rows.append(LayoutRow(depth, f"{name} ({short})",
                                      f"nested, {len(a.children)} attrs", at, have, 4))
                walk(a.children, sub, depth + 1)
                continue
            v = value_of(spec, a.data, m.family or 0) if spec else Unknown(a.type, a.data)
            flag = " TRUNCATED" if a.truncated else " MALFORMED" if a.malformed else ""
            rows.append(LayoutRow(depth, f"{name} ({short})", f"{value_text(v)}{flag}", at, have,
                                  min(a.length, 4 + 16)))

    walk(attr_tree(m), schema, 1)
    return rows
