"""Generic netlink families: a CTRL_CMD_GETFAMILY dump, as `genl ctrl list` shows it.

    for fam in genl.families():
        fam.id, fam.name, fam.version, fam.hdrsize, fam.maxattr
        fam.ops        # [GenlOp(id, flags)]; flags GENL_ADMIN_PERM, GENL_CMD_CAP_DO ...
        fam.mcast_groups  # [GenlGroup(name, id)]

Unknown top-level attributes are kept as bytes in ``attrs``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import NamedTuple

from rawlab.errors import RawlabError, explain
from rawlab.sockets.diag import iter_attrs
from rawlab.sockets.netlink import (
    NETLINK_GENERIC,
    NLM_F_DUMP,
    NLM_F_REQUEST,
    NetlinkError,
    NetlinkSocket,
    NlReply,
)

GENL_ID_CTRL = 0x10
CTRL_CMD_GETFAMILY = 3
CTRL_VERSION = 2
GENLMSGHDR = struct.Struct("=BBH")  # cmd, version, reserved

CTRL_ATTR_FAMILY_ID = 1
CTRL_ATTR_FAMILY_NAME = 2
CTRL_ATTR_VERSION = 3
CTRL_ATTR_HDRSIZE = 4
CTRL_ATTR_MAXATTR = 5
CTRL_ATTR_OPS = 6
CTRL_ATTR_MCAST_GROUPS = 7
CTRL_ATTR_OP_ID = 1
CTRL_ATTR_OP_FLAGS = 2
CTRL_ATTR_MCAST_GRP_NAME = 1
CTRL_ATTR_MCAST_GRP_ID = 2

# op flags (linux/genetlink.h)
GENL_ADMIN_PERM = 0x01
GENL_CMD_CAP_DO = 0x02
GENL_CMD_CAP_DUMP = 0x04
GENL_CMD_CAP_HASPOL = 0x08
GENL_UNS_ADMIN_PERM = 0x10
OP_FLAG_NAMES = {GENL_ADMIN_PERM: "admin_perm", GENL_CMD_CAP_DO: "do",
                 GENL_CMD_CAP_DUMP: "dump", GENL_CMD_CAP_HASPOL: "has_policy",
                 GENL_UNS_ADMIN_PERM: "uns_admin_perm"}


class GenlOp(NamedTuple):
    id: int
    flags: int


class GenlGroup(NamedTuple):
    name: str
    id: int


@dataclass
class GenlFamily:
    id: int
    name: str
    version: int = 0
    hdrsize: int = 0
    maxattr: int = 0
    ops: list[GenlOp] = field(default_factory=list)
    mcast_groups: list[GenlGroup] = field(default_factory=list)
    attrs: dict[int, bytes] = field(default_factory=dict)  # the ones not decoded above


def _uint(raw: bytes) -> int:
    return int.from_bytes(raw[:4] if len(raw) >= 4 else raw, "little" if struct.pack(
        "=H", 1)[0] else "big")


def _str(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def parse_family(rep: NlReply) -> GenlFamily | None:
    """One CTRL_CMD_NEWFAMILY message (genlmsghdr + attributes)."""
    if len(rep.payload) < GENLMSGHDR.size:
        return None
    fam = GenlFamily(id=0, name="")
    for atype, raw in iter_attrs(rep.payload, GENLMSGHDR.size):
        if atype == CTRL_ATTR_FAMILY_ID:
            fam.id = _uint(raw[:2])
        elif atype == CTRL_ATTR_FAMILY_NAME:
            fam.name = _str(raw)
        elif atype == CTRL_ATTR_VERSION:
            fam.version = _uint(raw)
        elif atype == CTRL_ATTR_HDRSIZE:
            fam.hdrsize = _uint(raw)
        elif atype == CTRL_ATTR_MAXATTR:
            fam.maxattr = _uint(raw)
        elif atype == CTRL_ATTR_OPS:
            for _idx, nested in iter_attrs(raw):
                op = dict(iter_attrs(nested))
                fam.ops.append(GenlOp(_uint(op.get(CTRL_ATTR_OP_ID, b"")),
                                      _uint(op.get(CTRL_ATTR_OP_FLAGS, b""))))
        elif atype == CTRL_ATTR_MCAST_GROUPS:
            for _idx, nested in iter_attrs(raw):
                grp = dict(iter_attrs(nested))
                fam.mcast_groups.append(GenlGroup(_str(grp.get(CTRL_ATTR_MCAST_GRP_NAME, b"")),
                                                  _uint(grp.get(CTRL_ATTR_MCAST_GRP_ID, b""))))
        else:
            fam.attrs[atype] = raw
    return fam


def families() -> list[GenlFamily]:
    """Every generic netlink family this namespace's kernel knows, by id."""
    req = GENLMSGHDR.pack(CTRL_CMD_GETFAMILY, CTRL_VERSION, 0)
    try:
        with NetlinkSocket(NETLINK_GENERIC) as nl:
            replies = nl.request(GENL_ID_CTRL, NLM_F_REQUEST | NLM_F_DUMP, req)
    except NetlinkError as exc:
        raise explain(exc, "generic netlink CTRL_CMD_GETFAMILY dump") from None
    except OSError as exc:
        raise explain(exc, "open NETLINK_GENERIC socket") from None
    fams = [f for f in map(parse_family, replies) if f is not None]
    if not fams:
        raise RawlabError("generic netlink returned no families (not even nlctrl)")
    return sorted(fams, key=lambda f: f.id)
