"""Decoded rtnetlink messages in `ip -j`'s shapes and words (`--ip-json`), and `ip -br`'s
brief lines.

    route_json(m, names)        # {"dst": "10.60.0.0/24", "gateway": ..., "dev": "a0", ...}
    neigh_json(m, names)        # {"dst": ..., "dev": ..., "lladdr": ..., "state": [...]}
    rule_json(m)                # {"priority": 1000, "src": "10.70.0.0", "srclen": 16, ...}
    link_json(m, names)         # {"ifindex": 3, "link": "a1", "ifname": "a0", "flags": [...], ...}
    addr_json(link, addrs, names)  # ip -j addr: the link, its "addr_info" list
    brief_link(m, names), brief_addr(link, addrs, names)   # ip -br link / ip -br addr
    stats_lines(m), details_line(m)                        # ip -s link / ip -d link

Keys come in iproute2's order and with its rules for what it leaves out (a boot
protocol, global scope, the main table; the table when one was asked for).
Names of devices come from ``names`` (ifindex -> name).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from rawlab.present.fmt import ip_text
from rawlab.present.netlink import (
    ARPHRD,
    NUD_STATES,
    OPERSTATES,
    RT_PROTOS,
    RT_SCOPES,
    RT_TABLES,
    RTN_TYPES,
    bits,
    link_addr_text,
)
from rawlab.sockets.netlink_wire import NlMsg

Names = Callable[[int], str | None]

# iproute2's order of link flags, and its words
IP_FLAG_ORDER = ((0x8, "LOOPBACK"), (0x2, "BROADCAST"), (0x10, "POINTOPOINT"),
                 (0x1000, "MULTICAST"), (0x80, "NOARP"), (0x200, "ALLMULTI"),
                 (0x100, "PROMISC"), (0x400, "MASTER"), (0x800, "SLAVE"), (0x4, "DEBUG"),
                 (0x8000, "DYNAMIC"), (0x4000, "AUTOMEDIA"), (0x2000, "PORTSEL"),
                 (0x20, "NOTRAILERS"), (0x1, "UP"), (0x10000, "LOWER_UP"), (0x20000, "DORMANT"),
                 (0x40000, "ECHO"))
IFF_UP, IFF_RUNNING = 0x1, 0x40
RTNH_FLAGS = ((0x1, "dead"), (0x2, "pervasive"), (0x4, "onlink"), (0x8, "offload"),
              (0x10, "linkdown"), (0x20, "unresolved"), (0x40, "trap"))
RTM_F_CLONED = 0x200
PREFS = {0: "medium", 1: "high", 3: "low"}
IFA_FLAGS = ((0x01, "secondary"), (0x02, "nodad"), (0x04, "optimistic"), (0x08, "dadfailed"),
             (0x10, "home"), (0x20, "deprecated"), (0x40, "tentative"),
             (0x100, "mngtmpaddr"), (0x200, "noprefixroute"), (0x400, "autojoin"),
             (0x800, "stable-privacy"))
IFA_F_PERMANENT = 0x80
RULE_ACTIONS = {2: "goto", 3: "nop", 6: "blackhole", 7: "unreachable", 8: "prohibit"}


def _dev(names: Names, idx: Any) -> str:
    return (names(idx) or f"if{idx}") if isinstance(idx, int) else "?"


def _table(t: int) -> str:
    return RT_TABLES.get(t, str(t))


def _dst(addr: Any, plen: int) -> str:
    if addr is None:
        return "default" if plen == 0 else f"0/{plen}"
    full = 32 if len(addr) == 4 else 128
    return ip_text(addr) if plen == full else f"{ip_text(addr)}/{plen}"


def route_json(m: NlMsg, names: Names, *, table_asked: bool = False) -> dict[str, Any]:
    """One route as `ip -j route` prints it (``table_asked``: a table was named, so ip
    leaves the table out)."""
    h, a = m.header, m.attrs
    d: dict[str, Any] = {}
    rtype = h.get("type", 1)
    if rtype != 1:
        d["type"] = RTN_TYPES.get(rtype, str(rtype))
    d["dst"] = _dst(a.get("RTA_DST"), h.get("dst_len", 0))
    if "RTA_SRC" in a:
        d["from"] = _dst(a["RTA_SRC"], h.get("src_len", 0))
    if h.get("tos"):
        d["tos"] = f"0x{h['tos']:x}"
    if "RTA_GATEWAY" in a:
        d["gateway"] = ip_text(a["RTA_GATEWAY"])
    if "RTA_OIF" in a:
        d["dev"] = _dev(names, a["RTA_OIF"])
    table = a.get("RTA_TABLE", h.get("table", 254))
    if table != 254 and not table_asked:
        d["table"] = _table(table)
    cloned = h.get("flags", 0) & RTM_F_CLONED  # a route get's answer: ip leaves these out
    proto = h.get("proto", 0)
    if proto != 3 and not cloned:
        d["protocol"] = RT_PROTOS.get(proto, str(proto))
    if h.get("scope", 0) and not cloned:
        d["scope"] = RT_SCOPES.get(h["scope"], str(h["scope"]))
    if "RTA_PREFSRC" in a:
        d["prefsrc"] = ip_text(a["RTA_PREFSRC"])
    if "RTA_PRIORITY" in a:
        d["metric"] = a["RTA_PRIORITY"]
    d["flags"] = [n for bit, n in RTNH_FLAGS if h.get("flags", 0) & bit]
    metrics = a.get("RTA_METRICS")
    if isinstance(metrics, dict) and metrics:
        d["metrics"] = [{k.removeprefix("RTAX_").lower(): v} for k, v in metrics.items()]
    if "RTA_MULTIPATH" in a:
        d["nexthops"] = [_hop(nh, names) for nh in a["RTA_MULTIPATH"] or ()]
    uid = rta_uid(a)
    if uid is not None:
        d["uid"] = uid
    if cloned:
        d["cache"] = []
    if "RTA_PREF" in a:
        d["pref"] = PREFS.get(a["RTA_PREF"], str(a["RTA_PREF"]))
    return d


RTA_UID = 25  # pyroute2 0.9's map has no name for it: it stays an unknown attribute


def rta_uid(a: dict[str, Any]) -> int | None:
    """RTA_UID of a route (the uid a route get was asked for)."""
    v = a.get("RTA_UID", a.get(str(RTA_UID)))
    if isinstance(v, int):
        return v
    data = getattr(v, "data", None)
    return int.from_bytes(data[:4], sys.byteorder) if data and len(data) >= 4 else None


def _hop(nh: dict[str, Any], names: Names) -> dict[str, Any]:
    d: dict[str, Any] = {}
    if "RTA_GATEWAY" in nh["attrs"]:
        d["gateway"] = ip_text(nh["attrs"]["RTA_GATEWAY"])
    d["dev"] = _dev(names, nh["oif"])
    d["weight"] = nh["hops"] + 1
    d["flags"] = [n for bit, n in RTNH_FLAGS if nh["flags"] & bit]
    return d


def neigh_json(m: NlMsg, names: Names) -> dict[str, Any]:
    h, a = m.header, m.attrs
    d: dict[str, Any] = {"dst": ip_text(a["NDA_DST"]) if "NDA_DST" in a else None,
                         "dev": _dev(names, h.get("ifindex"))}
    if "NDA_LLADDR" in a:
        d["lladdr"] = link_addr_text(a["NDA_LLADDR"])
    if h.get("flags", 0) & 0x80:
        d["router"] = None
    if h.get("flags", 0) & 0x08:
        d["proxy"] = None
    d["state"] = bits(h.get("state", 0), NUD_STATES) or ["NONE"]
    return d


def rule_json(m: NlMsg) -> dict[str, Any]:
    h, a = m.header, m.attrs
    d: dict[str, Any] = {"priority": a.get("FRA_PRIORITY", 0)}
    if h.get("flags", 0) & 0x2:  # FIB_RULE_INVERT
        d["not"] = None
    if "FRA_SRC" in a:
        d["src"] = ip_text(a["FRA_SRC"])
        full = 32 if len(a["FRA_SRC"]) == 4 else 128
        if h.get("src_len", 0) != full:
            d["srclen"] = h.get("src_len", 0)
    else:
        d["src"] = "all"
    if "FRA_DST" in a:
        d["dst"] = ip_text(a["FRA_DST"])
        full = 32 if len(a["FRA_DST"]) == 4 else 128
        if h.get("dst_len", 0) != full:
            d["dstlen"] = h.get("dst_len", 0)
    if "FRA_FWMARK" in a:
        d["fwmark"] = f"0x{a['FRA_FWMARK']:x}"
    if "FRA_IIFNAME" in a:
        d["iif"] = a["FRA_IIFNAME"]
    if "FRA_OIFNAME" in a:
        d["oif"] = a["FRA_OIFNAME"]
    action = h.get("action", 1)
    table = a.get("FRA_TABLE", h.get("table", 0))
    if action == 1 and table:
        d["table"] = _table(table)
    elif action != 1:
        d["action"] = RULE_ACTIONS.get(action, str(action))
    return d


def _link_flags(flags: int) -> list[str]:
    out = [n for bit, n in IP_FLAG_ORDER if flags & bit]
    if flags & IFF_UP and not flags & IFF_RUNNING:
        out.insert(0, "NO-CARRIER")
    return out


def link_json(m: NlMsg, names: Names, *, linkmode: bool = True, stats: bool = False,
              details: bool = False) -> dict[str, Any]:
    """A link as `ip -j link` (``linkmode``; `ip -j addr` leaves it out) prints it;
    ``stats``: with "stats64" (ip -s); ``details``: with "linkinfo" and the rest (-d)."""
    h, a = m.header, m.attrs
    d: dict[str, Any] = {"ifindex": h.get("index")}
    if "IFLA_LINK" in a and a["IFLA_LINK"] != h.get("index"):
        if "IFLA_LINK_NETNSID" in a:
            d["link_index"] = a["IFLA_LINK"]
        else:
            d["link"] = names(a["IFLA_LINK"])
    d["ifname"] = a.get("IFLA_IFNAME")
    d["flags"] = _link_flags(h.get("flags", 0))
    for key, name in (("mtu", "IFLA_MTU"), ("qdisc", "IFLA_QDISC")):
        if name in a:
            d[key] = a[name]
    if "IFLA_MASTER" in a:
        d["master"] = names(a["IFLA_MASTER"])
    if "IFLA_OPERSTATE" in a:
        d["operstate"] = OPERSTATES.get(a["IFLA_OPERSTATE"], str(a["IFLA_OPERSTATE"]))
    if linkmode and "IFLA_LINKMODE" in a:
        d["linkmode"] = ("DEFAULT", "DORMANT", "TESTING")[a["IFLA_LINKMODE"]] \
            if a["IFLA_LINKMODE"] < 3 else str(a["IFLA_LINKMODE"])
    if "IFLA_GROUP" in a:
        d["group"] = "default" if a["IFLA_GROUP"] == 0 else str(a["IFLA_GROUP"])
    if "IFLA_TXQLEN" in a:
        d["txqlen"] = a["IFLA_TXQLEN"]
    hw = h.get("ifi_type", 0)
    d["link_type"] = ARPHRD.get(hw, str(hw))
    if "IFLA_ADDRESS" in a:
        d["address"] = link_addr_text(a["IFLA_ADDRESS"])
    if "IFLA_BROADCAST" in a:
        d["broadcast"] = link_addr_text(a["IFLA_BROADCAST"])
    if "IFLA_LINK_NETNSID" in a:
        d["link_netnsid"] = a["IFLA_LINK_NETNSID"]
    if details:
        d.update(_details(a))
    if stats and isinstance(a.get("IFLA_STATS64"), dict):
        s = a["IFLA_STATS64"]
        d["stats64"] = {
            "rx": {"bytes": s.get("rx_bytes"), "packets": s.get("rx_packets"),
                   "errors": s.get("rx_errors"), "dropped": s.get("rx_dropped"),
                   "over_errors": s.get("rx_over_errors"), "multicast": s.get("multicast")},
            "tx": {"bytes": s.get("tx_bytes"), "packets": s.get("tx_packets"),
                   "errors": s.get("tx_errors"), "dropped": s.get("tx_dropped"),
                   "carrier_errors": s.get("tx_carrier_errors"),
                   "collisions": s.get("collisions")}}
    return d


def _details(a: dict[str, Any]) -> dict[str, Any]:
    """`ip -d`'s extra keys that rawlab has: promiscuity, MTU bounds, the link kind."""
    d: dict[str, Any] = {}
    for key, name in (("promiscuity", "IFLA_PROMISCUITY"), ("allmulti", "IFLA_ALLMULTI"),
                      ("min_mtu", "IFLA_MIN_MTU"), ("max_mtu", "IFLA_MAX_MTU")):
        if name in a:
            d[key] = a[name]
    info = a.get("IFLA_LINKINFO")
    if isinstance(info, dict) and "IFLA_INFO_KIND" in info:
        d["linkinfo"] = {"info_kind": info["IFLA_INFO_KIND"]}
    for key, name in (("num_tx_queues", "IFLA_NUM_TX_QUEUES"),
                      ("num_rx_queues", "IFLA_NUM_RX_QUEUES"),
                      ("gso_max_size", "IFLA_GSO_MAX_SIZE"),
                      ("gso_max_segs", "IFLA_GSO_MAX_SEGS")):
        if name in a:
            d[key] = a[name]
    return d


def addr_info(m: NlMsg) -> dict[str, Any]:
    """One address as an item of `ip -j addr`'s "addr_info"."""
    h, a = m.header, m.attrs
    fam = "inet6" if m.family == 10 else "inet"
    local = a.get("IFA_LOCAL") or a.get("IFA_ADDRESS")
    d: dict[str, Any] = {"family": fam, "local": ip_text(local) if local else None}
    if a.get("IFA_ADDRESS") and a.get("IFA_LOCAL") and a["IFA_ADDRESS"] != a["IFA_LOCAL"]:
        d["address"] = ip_text(a["IFA_ADDRESS"])
    d["prefixlen"] = h.get("prefixlen")
    if "IFA_BROADCAST" in a:
        d["broadcast"] = ip_text(a["IFA_BROADCAST"])
    d["scope"] = RT_SCOPES.get(h.get("scope", 0), str(h.get("scope")))
    flags = a.get("IFA_FLAGS", h.get("flags", 0))
    if not flags & IFA_F_PERMANENT:
        d["dynamic"] = True
    for bit, name in IFA_FLAGS:
        if flags & bit:
            d["temporary" if name == "secondary" and fam == "inet6" else name] = True
    if "IFA_LABEL" in a:
        d["label"] = a["IFA_LABEL"]
    ci = a.get("IFA_CACHEINFO")
    if isinstance(ci, dict):
        d["valid_life_time"] = ci.get("ifa_valid")
        d["preferred_life_time"] = ci.get("ifa_preferred")
    return d


def addr_json(link: NlMsg, addrs: list[NlMsg], names: Names) -> dict[str, Any]:
    """A link and its addresses, as `ip -j addr` prints them."""
    d = link_json(link, names, linkmode=False)
    d["addr_info"] = [addr_info(m) for m in addrs]
    return d


def _brief_name(m: NlMsg, names: Names) -> str:
    a = m.attrs
    name = a.get("IFLA_IFNAME", "?")
    if "IFLA_LINK" in a and a["IFLA_LINK"] != m.header.get("index"):
        peer = names(a["IFLA_LINK"]) if "IFLA_LINK_NETNSID" not in a else None
        name += f"@{peer or 'if' + str(a['IFLA_LINK'])}"
    return name


def brief_link(m: NlMsg, names: Names) -> str:
    """`ip -br link`: name, state, address, flags."""
    a = m.attrs
    state = OPERSTATES.get(a.get("IFLA_OPERSTATE", 0), "UNKNOWN")
    addr = link_addr_text(a["IFLA_ADDRESS"]) if "IFLA_ADDRESS" in a else ""
    return (f"{_brief_name(m, names):<16} {state:<14} {addr} "
            f"<{','.join(_link_flags(m.header.get('flags', 0)))}> ")


def brief_addr(link: NlMsg, addrs: list[NlMsg], names: Names) -> str:
    """`ip -br addr`: name, state, every address with its prefix length."""
    a = link.attrs
    state = OPERSTATES.get(a.get("IFLA_OPERSTATE", 0), "UNKNOWN")
    text = "".join(f"{addr_info(m)['local']}/{m.header.get('prefixlen')} " for m in addrs)
    return f"{_brief_name(link, names):<16} {state:<14} {text}"


def stats_lines(m: NlMsg) -> list[str]:
    """`ip -s link`'s counters of a link (IFLA_STATS64)."""
    s = m.attrs.get("IFLA_STATS64")
    if not isinstance(s, dict):
        return []
    rx = ("rx_bytes", "rx_packets", "rx_errors", "rx_dropped", "rx_missed_errors", "multicast")
    tx = ("tx_bytes", "tx_packets", "tx_errors", "tx_dropped", "tx_carrier_errors",
          "collisions")
    return ["    RX:  bytes packets errors dropped  missed   mcast",
            "    " + "".join(f"{s.get(k, 0):>8}" for k in rx),
            "    TX:  bytes packets errors dropped carrier collsns",
            "    " + "".join(f"{s.get(k, 0):>8}" for k in tx)]


def details_line(m: NlMsg) -> str:
    """`ip -d link`'s details rawlab has, as ``key value`` words."""
    d = _details(m.attrs)
    kind = d.pop("linkinfo", {}).get("info_kind")
    words = [kind] if kind else []
    words += [f"{k.replace('_mtu', 'mtu').replace('_', '')} {v}" if k in ("min_mtu", "max_mtu")
              else f"{k} {v}" for k, v in d.items()]
    return "    " + " ".join(words)
