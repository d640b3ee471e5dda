"""Connection tracking (ctnetlink) messages as records: what `conntrack -E` and `-L` show.

    m = decode_buffer(buf, NETLINK_NETFILTER)[0]     # IPCTNL_MSG_CT_NEW / _DELETE, decoded
    ct = conntrack_of(m)                             # Conntrack, or None for another message
    ct.event                                         # "new", "update", "destroy" (events)
    ct.orig.src, ct.orig.dst, ct.orig.sport          # IpAddr, ints; ct.reply likewise
    ct.state, ct.status, ct.timeout, ct.mark, ct.zone, ct.orig_counters ...

The attributes are read by :mod:`rawlab.decode.rtnl` with pyroute2's ctnetlink map
(:mod:`rawlab.decode.family_maps`); this module only gathers them. Values stay
ints and bytes; names (protocols, states, status bits) are here as tables beside
their numbers, and only ``present/`` writes text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rawlab.decode.nfnl import NFNL_SUBSYS_CTNETLINK
from rawlab.sockets.netlink_wire import NLM_F_CREATE, NLM_F_EXCL, NlMsg

IPCTNL_MSG_CT_NEW = 0
IPCTNL_MSG_CT_DELETE = 2
CT_NEW = NFNL_SUBSYS_CTNETLINK << 8 | IPCTNL_MSG_CT_NEW
CT_DELETE = NFNL_SUBSYS_CTNETLINK << 8 | IPCTNL_MSG_CT_DELETE

# enum ip_conntrack_status (IPS_*), by bit
STATUS_BITS = ((0x1, "EXPECTED"), (0x2, "SEEN_REPLY"), (0x4, "ASSURED"), (0x8, "CONFIRMED"),
               (0x10, "SRC_NAT"), (0x20, "DST_NAT"), (0x40, "SEQ_ADJUST"),
               (0x80, "SRC_NAT_DONE"), (0x100, "DST_NAT_DONE"), (0x200, "DYING"),
               (0x400, "FIXED_TIMEOUT"), (0x800, "TEMPLATE"), (0x1000, "UNTRACKED"),
               (0x2000, "HELPER"), (0x4000, "OFFLOAD"), (0x8000, "HW_OFFLOAD"))
IPS_SEEN_REPLY = 0x2
IPS_ASSURED = 0x4
IPS_OFFLOAD = 0x4000
IPS_HW_OFFLOAD = 0x8000
# TCP conntrack states as conntrack-tools names them
TCP_STATES = ("NONE", "SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT", "CLOSE_WAIT",
              "LAST_ACK", "TIME_WAIT", "CLOSE", "LISTEN", "MAX", "IGNORE")
# protocol names as conntrack-tools prints them
PROTO_NAMES = {1: "icmp", 2: "igmp", 6: "tcp", 17: "udp", 33: "dccp", 41: "ipv6",
               47: "gre", 58: "icmpv6", 132: "sctp", 136: "udplite"}


@dataclass
class CtTuple:
    """One direction of a connection: addresses, protocol, ports or ICMP id/type/code."""

    src: bytes | None = None
    dst: bytes | None = None
    proto: int | None = None
    sport: int | None = None
    dport: int | None = None
    icmp_type: int | None = None
    icmp_code: int | None = None
    icmp_id: int | None = None
    zone: int | None = None


@dataclass
class Conntrack:
    """One conntrack entry as a message carried it (unknown attributes stay in ``attrs``)."""

    event: str  # "new", "update", "destroy"
    family: int | None
    orig: CtTuple
    reply: CtTuple
    status: int | None = None
    state: int | None = None  # TCP (or SCTP, DCCP) state
    timeout: int | None = None
    mark: int | None = None
    zone: int | None = None
    id: int | None = None
    use: int | None = None
    secmark: int | None = None
    orig_counters: tuple[int, int] | None = None  # (packets, bytes), with accounting on
    reply_counters: tuple[int, int] | None = None
    timestamp: tuple[int | None, int | None] | None = None  # (start, stop) ns
    labels: bytes | None = None
    attrs: dict[str, Any] = field(default_factory=dict)


def event_of(m: NlMsg) -> str | None:
    """``new`` (IPCTNL_MSG_CT_NEW with NLM_F_CREATE), ``update`` (without), ``destroy``
    (IPCTNL_MSG_CT_DELETE), as `conntrack -E` tells them apart; None: not an entry."""
    if m.type == CT_NEW:
        return "new" if m.flags & (NLM_F_CREATE | NLM_F_EXCL) else "update"
    if m.type == CT_DELETE:
        return "destroy"
    return None


def _tuple(t: Any) -> CtTuple:
    out = CtTuple()
    if not isinstance(t, dict):
        return out
    ip, proto = t.get("CTA_TUPLE_IP"), t.get("CTA_TUPLE_PROTO")
    if isinstance(ip, dict):
        out.src = ip.get("CTA_IP_V4_SRC", ip.get("CTA_IP_V6_SRC"))
        out.dst = ip.get("CTA_IP_V4_DST", ip.get("CTA_IP_V6_DST"))
    if isinstance(proto, dict):
        out.proto = proto.get("CTA_PROTO_NUM")
        out.sport = proto.get("CTA_PROTO_SRC_PORT")
        out.dport = proto.get("CTA_PROTO_DST_PORT")
        out.icmp_type = proto.get("CTA_PROTO_ICMP_TYPE", proto.get("CTA_PROTO_ICMPV6_TYPE"))
        out.icmp_code = proto.get("CTA_PROTO_ICMP_CODE", proto.get("CTA_PROTO_ICMPV6_CODE"))
        out.icmp_id = proto.get("CTA_PROTO_ICMP_ID", proto.get("CTA_PROTO_ICMPV6_ID"))
    zone = t.get("4")  # CTA_TUPLE_ZONE: pyroute2's map has no name for it
    if zone is not None and len(getattr(zone, "data", b"")) >= 2:
        out.zone = int.from_bytes(zone.data[:2], "big")
    return out


def _counters(c: Any) -> tuple[int, int] | None:
    if not isinstance(c, dict) or "CTA_COUNTERS_PACKETS" not in c:
        return None
    return c["CTA_COUNTERS_PACKETS"], c.get("CTA_COUNTERS_BYTES", 0)


def _state(a: dict[str, Any]) -> int | None:
    info = a.get("CTA_PROTOINFO")
    if not isinstance(info, dict):
        return None
    for key, inner in (("CTA_PROTOINFO_TCP", "CTA_PROTOINFO_TCP_STATE"),
                       ("CTA_PROTOINFO_SCTP", "CTA_PROTOINFO_SCTP_STATE"),
                       ("CTA_PROTOINFO_DCCP", "CTA_PROTOINFO_DCCP_STATE")):
        sub = info.get(key)
        if isinstance(sub, dict) and inner in sub:
            return int(sub[inner])
    return None


def conntrack_of(m: NlMsg) -> Conntrack | None:
    """The entry a decoded ctnetlink NEW/DELETE message carries; None for other messages."""
    event = event_of(m)
    if event is None:
        return None
    a = dict(m.attrs)
    ts = a.get("CTA_TIMESTAMP")
    return Conntrack(
        event=event, family=m.family, orig=_tuple(a.get("CTA_TUPLE_ORIG")),
        reply=_tuple(a.get("CTA_TUPLE_REPLY")), status=a.get("CTA_STATUS"),
        state=_state(a), timeout=a.get("CTA_TIMEOUT"), mark=a.get("CTA_MARK"),
        zone=a.get("CTA_ZONE"), id=a.get("CTA_ID"), use=a.get("CTA_USE"),
        secmark=a.get("CTA_SECMARK"), orig_counters=_counters(a.get("CTA_COUNTERS_ORIG")),
        reply_counters=_counters(a.get("CTA_COUNTERS_REPLY")),
        timestamp=(ts.get("CTA_TIMESTAMP_START"), ts.get("CTA_TIMESTAMP_STOP"))
        if isinstance(ts, dict) else None,
        labels=a.get("CTA_LABELS") if isinstance(a.get("CTA_LABELS"), bytes) else None,
        attrs=a)
