"""Generic netlink controller replies (CTRL_CMD_NEWFAMILY): families as `genl ctrl list` shows them.

    for fam in families_of(genl.family_dump()):   # raw replies, decoded, by id
        fam.id, fam.name, fam.version, fam.hdrsize, fam.maxattr
        fam.ops        # [GenlOp(id, flags)]; flags GENL_ADMIN_PERM, GENL_CMD_CAP_DO ...
        fam.mcast_groups  # [GenlGroup(name, id)]

Unknown top-level attributes are kept as bytes in ``attrs``. The request and
the I/O are :mod:`rawlab.sockets.genl`'s; the attribute walk the wire module's.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from rawlab.sockets.genl import GENLMSGHDR
from rawlab.sockets.netlink_wire import NlMsg, attr_items

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
    return int.from_bytes(raw[:4], sys.byteorder)  # u8/u16/u32, host order


def _str(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def parse_family(m: NlMsg) -> GenlFamily | None:
    """One CTRL_CMD_NEWFAMILY message (genlmsghdr + attributes)."""
    p = m.payload
    if len(p) < GENLMSGHDR.size:
        return None
    fam = GenlFamily(id=0, name="")
    for atype, raw in attr_items(p, GENLMSGHDR.size):
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
            for _idx, nested in attr_items(raw):
                op = dict(attr_items(nested))
                fam.ops.append(GenlOp(_uint(op.get(CTRL_ATTR_OP_ID, b"")),
                                      _uint(op.get(CTRL_ATTR_OP_FLAGS, b""))))
        elif atype == CTRL_ATTR_MCAST_GROUPS:
            for _idx, nested in attr_items(raw):
                grp = dict(attr_items(nested))
                fam.mcast_groups.append(GenlGroup(_str(grp.get(CTRL_ATTR_MCAST_GRP_NAME, b"")),
                                                  _uint(grp.get(CTRL_ATTR_MCAST_GRP_ID, b""))))
        else:
            fam.attrs[atype] = raw
    return fam


def families_of(replies: Iterable[NlMsg]) -> list[GenlFamily]:
    """The families of a CTRL_CMD_GETFAMILY dump's replies, by id."""
    return sorted((f for f in map(parse_family, replies) if f is not None), key=lambda f: f.id)
