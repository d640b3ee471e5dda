"""nftables messages as records: the change `nft monitor` reports, a rule's expressions listed.

    m = decode_buffer(buf, NETLINK_NETFILTER)[0]   # NFT_MSG_NEWRULE ..., decoded
    ch = change_of(m)                               # NftChange, or None for another message
    ch.op, ch.object                                # "add"/"delete"/"get", "rule"/"table"...
    ch.family, ch.table, ch.chain, ch.name, ch.handle
    ch.expressions                                  # [Expr(name, data: {attr: value})] in order
    ch.elements                                     # set elements: [{"key": bytes, ...}]

The attributes are read by :mod:`rawlab.decode.rtnl` with pyroute2's nftables map
(each expression's attributes by its name: payload, cmp, meta, immediate ...);
this module only gathers them. The numbers the kernel uses in expressions
(registers, payload bases, meta and ct keys, comparison operators, verdicts) are
here as tables beside their values; only ``present/`` writes text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rawlab.decode.nfnl import NFNL_SUBSYS_NFTABLES
from rawlab.sockets.netlink_wire import NlMsg

# enum nf_tables_msg_types: message -> (operation, object)
MESSAGES = {0: ("add", "table"), 1: ("get", "table"), 2: ("delete", "table"),
            3: ("add", "chain"), 4: ("get", "chain"), 5: ("delete", "chain"),
            6: ("add", "rule"), 7: ("get", "rule"), 8: ("delete", "rule"),
            9: ("add", "set"), 10: ("get", "set"), 11: ("delete", "set"),
            12: ("add", "element"), 13: ("get", "element"), 14: ("delete", "element"),
            15: ("new", "generation"), 16: ("get", "generation"), 17: ("trace", "trace"),
            18: ("add", "object"), 19: ("get", "object"), 20: ("delete", "object"),
            21: ("reset", "object"), 22: ("add", "flowtable"), 23: ("get", "flowtable"),
            24: ("delete", "flowtable"), 25: ("reset", "rule"), 26: ("destroy", "table"),
            27: ("destroy", "chain"), 28: ("destroy", "rule"), 29: ("destroy", "set"),
            30: ("destroy", "element"), 31: ("destroy", "object"),
            32: ("destroy", "flowtable")}
# nfgen_family (NFPROTO_*) as nft names it
FAMILIES = {0: "unspec", 1: "inet", 2: "ip", 3: "arp", 5: "netdev", 7: "bridge", 10: "ip6"}
# the attribute that names each object, by object kind
_NAME = {"table": "NFTA_TABLE_NAME", "chain": "NFTA_CHAIN_NAME", "set": "NFTA_SET_NAME",
         "element": "NFTA_SET_ELEM_LIST_SET", "object": "NFTA_OBJ_NAME",
         "flowtable": "NFTA_FLOWTABLE_NAME"}
_HANDLE = {"table": "NFTA_TABLE_HANDLE", "chain": "NFTA_CHAIN_HANDLE",
           "rule": "NFTA_RULE_HANDLE", "set": "NFTA_SET_HANDLE",
           "object": "NFTA_OBJ_HANDLE", "flowtable": "NFTA_FLOWTABLE_HANDLE"}
_TABLE = {"chain": "NFTA_CHAIN_TABLE", "rule": "NFTA_RULE_TABLE", "set": "NFTA_SET_TABLE",
          "element": "NFTA_SET_ELEM_LIST_TABLE", "object": "NFTA_OBJ_TABLE",
          "flowtable": "NFTA_FLOWTABLE_TABLE", "table": "NFTA_TABLE_NAME"}

# the numbers inside expressions (linux/netfilter/nf_tables.h)
PAYLOAD_BASES = {0: "link", 1: "network", 2: "transport", 3: "inner", 4: "tunnel"}
CMP_OPS = {0: "eq", 1: "neq", 2: "lt", 3: "lte", 4: "gt", 5: "gte"}
META_KEYS = ("len", "protocol", "priority", "mark", "iif", "oif", "iifname", "oifname",
             "iiftype", "oiftype", "skuid", "skgid", "nftrace", "rtclassid", "secmark",
             "nfproto", "l4proto", "bri_iifname", "bri_oifname", "pkttype", "cpu",
             "iifgroup", "oifgroup", "cgroup", "prandom", "secpath", "iifkind", "oifkind",
             "bri_iifpvid", "bri_iifvproto", "time", "day", "hour", "sdif", "sdifname",
             "broute")
CT_KEYS = ("state", "direction", "status", "mark", "secmark", "expiration", "helper",
           "l3protocol", "src", "dst", "protocol", "proto_src", "proto_dst", "label",
           "packets", "bytes", "avgpkt", "zone", "event", "src_ip", "dst_ip", "src_ip6",
           "dst_ip6", "id")
# nftables' data types (nftables/include/datatype.h), as `nft` names a set's key type
DATA_TYPES = ("invalid", "verdict", "nf_proto", "bitmask", "integer", "string", "ll_addr",
              "ipv4_addr", "ipv6_addr", "ether_addr", "ether_type", "arp_op", "inet_proto",
              "inet_service", "icmp_type", "tcp_flag", "dccp_pkttype", "mh_type", "time",
              "mark", "iface_index", "iface_type", "realm", "classid", "uid", "gid",
              "ct_state", "ct_dir", "ct_status", "icmpv6_type", "ct_label", "pkt_type",
              "icmp_code", "icmpv6_code", "icmpx_code", "devgroup", "dscp", "ecn", "fib_addr",
              "boolean", "ct_event", "ifname", "igmp_type", "day", "hour", "time", "cgroupsv2")
# standard chain priorities of the ip, ip6 and inet families, as `nft` names them
PRIORITIES = {-300: "raw", -150: "mangle", -100: "dstnat", 0: "filter", 50: "security",
              100: "srcnat"}
VERDICTS = {0: "drop", 1: "accept", 2: "stolen", 3: "queue", 4: "repeat", 5: "stop",
            -1: "continue", -2: "break", -3: "jump", -4: "goto", -5: "return"}


@dataclass
class Expr:
    """One expression of a rule (or a set): its name and its attributes as decoded."""

    name: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class NftChange:
    """One nftables message: what it does to which object."""

    op: str  # add, delete, get, new (generation), destroy, reset
    object: str  # table, chain, rule, set, element, generation, object, flowtable
    family: int | None
    table: str | None = None
    chain: str | None = None
    name: str | None = None  # the object's own name (a set's, a chain's ...)
    handle: int | None = None
    expressions: list[Expr] = field(default_factory=list)
    elements: list[dict[str, Any]] = field(default_factory=list)
    attrs: dict[str, Any] = field(default_factory=dict)


def _expressions(v: Any) -> list[Expr]:
    out = []
    for e in v if isinstance(v, list) else ():
        if isinstance(e, dict):
            data = e.get("NFTA_EXPR_DATA")
            out.append(Expr(str(e.get("NFTA_EXPR_NAME", "?")),
                            dict(data) if isinstance(data, dict) else {}))
    return out


def _elements(v: Any) -> list[dict[str, Any]]:
    out = []
    for e in v if isinstance(v, list) else ():
        if not isinstance(e, dict):
            continue
        one: dict[str, Any] = {}
        for attr, key in (("NFTA_SET_ELEM_KEY", "key"), ("NFTA_SET_ELEM_KEY_END", "key_end"),
                          ("NFTA_SET_ELEM_DATA", "data")):
            d = e.get(attr)
            if isinstance(d, dict):
                one[key] = d.get("NFTA_DATA_VALUE", d.get("NFTA_DATA_VERDICT"))
        if "NFTA_SET_ELEM_FLAGS" in e:
            one["flags"] = e["NFTA_SET_ELEM_FLAGS"]
        out.append(one)
    return out


def change_of(m: NlMsg) -> NftChange | None:
    """What a decoded nftables message does; None for messages of other subsystems."""
    if m.type >> 8 != NFNL_SUBSYS_NFTABLES:
        return None
    op, obj = MESSAGES.get(m.type & 0xFF, ("?", str(m.type & 0xFF)))
    a = dict(m.attrs)
    ch = NftChange(op, obj, m.family, attrs=a)
    ch.table = a.get(_TABLE.get(obj, ""))
    ch.name = a.get(_NAME.get(obj, ""))
    ch.handle = a.get(_HANDLE.get(obj, ""))
    if obj == "rule":
        ch.chain = a.get("NFTA_RULE_CHAIN")
        ch.expressions = _expressions(a.get("NFTA_RULE_EXPRESSIONS"))
    elif obj == "chain":
        ch.chain = ch.name
    elif obj == "set":
        ch.expressions = _expressions(a.get("NFTA_SET_EXPRESSIONS"))
    elif obj == "element":
        ch.elements = _elements(a.get("NFTA_SET_ELEM_LIST_ELEMENTS"))
    return ch
