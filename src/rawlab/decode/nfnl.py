"""nfnetlink (NETLINK_NETFILTER) messages: subsystems, message names, attribute types.

    nfnl.msg_type(0x0100)      # MsgType "IPCTNL_MSG_CT_NEW": nfgenmsg, then nfct_msg's map
    nfnl.msg_type(0x0a06).name # "NFT_MSG_NEWRULE"
    nfnl.subsystem(0x0a06)     # "nftables"

A message type is ``subsystem << 8 | message``; every message starts with
``nfgenmsg`` (nfgen_family: the address family the message is about; version;
res_id, big-endian). Names and attribute types come from
:mod:`rawlab.decode.family_maps` (pyroute2's ctnetlink, ipset and nftables maps,
as data); :func:`rawlab.decode.rtnl.decode` reads the attributes with them.
Values stay as pyroute2's maps read them: nfnetlink's integers are big-endian and
arrive as numbers.
"""

from __future__ import annotations

import struct

from rawlab.decode.rtnl import EMPTY, MsgType, schema_by_id

# subsystems (linux/netfilter/nfnetlink.h)
NFNL_SUBSYS_CTNETLINK = 1
NFNL_SUBSYS_CTNETLINK_EXP = 2
NFNL_SUBSYS_QUEUE = 3
NFNL_SUBSYS_ULOG = 4
NFNL_SUBSYS_IPSET = 6
NFNL_SUBSYS_NFTABLES = 10
SUBSYSTEMS = {0: "none", 1: "ctnetlink", 2: "ctnetlink_exp", 3: "queue", 4: "ulog", 5: "osf",
              6: "ipset", 7: "acct", 8: "cttimeout", 9: "cthelper", 10: "nftables",
              11: "nft_compat", 12: "hook"}

# multicast groups (enum nfnetlink_groups)
NFNLGRP_CONNTRACK_NEW = 1
NFNLGRP_CONNTRACK_UPDATE = 2
NFNLGRP_CONNTRACK_DESTROY = 3
NFNLGRP_CONNTRACK_EXP_NEW = 4
NFNLGRP_CONNTRACK_EXP_UPDATE = 5
NFNLGRP_CONNTRACK_EXP_DESTROY = 6
NFNLGRP_NFTABLES = 7
NFNLGRP_ACCT_QUOTA = 8
NFNLGRP_NFTRACE = 9

# a batch of changes (nftables, ipset) is framed by these, res_id naming the subsystem
BATCH = {0x10: "NFNL_MSG_BATCH_BEGIN", 0x11: "NFNL_MSG_BATCH_END"}
NFGENMSG = struct.Struct(">BBH")  # nfgen_family, version, res_id (network order)
_HEADER_FIELDS = ("nfgen_family", "version", "res_id")
_HEADER_SPEC = [("nfgen_family", struct.Struct(">B"), 0), ("version", struct.Struct(">B"), 1),
                ("res_id", struct.Struct(">H"), 2)]
_TYPES: dict[int, MsgType] = {}


def subsystem(mtype: int) -> str:
    """The subsystem's name (``ctnetlink``, ``nftables`` ...), or its number as text."""
    return SUBSYSTEMS.get(mtype >> 8, str(mtype >> 8))


def msg_type(mtype: int) -> MsgType:
    """The :class:`MsgType` of an nfnetlink message type (built on first use)."""
    t = _TYPES.get(mtype)
    if t is None:
        t = _TYPES[mtype] = _build(mtype)
    return t


def _build(mtype: int) -> MsgType:
    from rawlab.decode.family_maps import NFNL

    sub, msg = mtype >> 8, mtype & 0xFF
    name, sid = BATCH.get(mtype, str(mtype)), None
    if sub in NFNL:
        _subsys, names, sids = NFNL[sub]
        name = names.get(msg) or f"{SUBSYSTEMS.get(sub, sub)}:{msg}"
        sid = sids.get(msg)
    schema = schema_by_id(sid) if sid is not None else EMPTY
    return MsgType(name, _HEADER_FIELDS, NFGENMSG, NFGENMSG.size, schema, _HEADER_SPEC)
