"""Generic netlink: the controller's families (as `genl ctrl list`), and any family's messages.

    for fam in families_of(genl.family_dump()):   # raw replies, decoded, by id
        fam.id, fam.name, fam.version, fam.hdrsize, fam.maxattr
        fam.ops        # [GenlOp(id, flags)]; flags GENL_ADMIN_PERM, GENL_CMD_CAP_DO ...
        fam.mcast_groups  # [GenlGroup(name, id)]
    ids = GenlIds.of(families)                    # {family id: name}, given at run time
    decode_buffer(buf, NETLINK_GENERIC, genl=ids) # m.name "nl80211", m.cmd "NL80211_CMD_...",
                                                  # m.header {cmd, version, reserved}, m.attrs

Unknown top-level attributes of a family record are kept as bytes in ``attrs``.
The messages of every family pyroute2 has maps for (nl80211, ethtool, devlink,
wireguard, taskstats, l2tp, mptcp_pm, IPVS, acpi_event, VFS_DQUOT, thermal) and of
the team driver's are read with :mod:`rawlab.decode.family_maps`; other families
keep their attributes by number. The request and the I/O are
:mod:`rawlab.sockets.genl`'s; the attribute walk the wire module's.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from rawlab.decode.rtnl import MsgType
from rawlab.sockets.genl import GENLMSGHDR
from rawlab.sockets.netlink_wire import NLMSG_HDRLEN, NlMsg, attr_items

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


# ---- generic netlink messages of any family -------------------------------------------

GENL_ID_CTRL = 0x10
CTRL_CMD_NEWFAMILY = 1
NLM_F_REQUEST = 0x01
_HEADER_FIELDS = ("cmd", "version", "reserved")
_HEADER_SPEC = [("cmd", struct.Struct("=B"), 0), ("version", struct.Struct("=B"), 1),
                ("reserved", struct.Struct("=H"), 2)]
_TYPES: dict[tuple[str, int, bool], MsgType] = {}


class GenlIds(dict[int, str]):
    """Generic netlink family ids -> names, in one namespace (the kernel gives ids at run
    time; nlctrl is always 0x10). :meth:`learn` adds what an nlctrl reply names, so a
    capture that holds a CTRL_CMD_GETFAMILY exchange names the family it asked for."""

    def __init__(self, names: dict[int, str] | None = None) -> None:
        super().__init__({GENL_ID_CTRL: "nlctrl"})
        if names:
            self.update(names)

    @classmethod
    def of(cls, families: Iterable[GenlFamily]) -> GenlIds:
        """From a CTRL_CMD_GETFAMILY dump (:func:`families_of`)."""
        return cls({f.id: f.name for f in families if f.id})

    def learn(self, m: NlMsg) -> None:
        if m.type == GENL_ID_CTRL and m.header.get("cmd") == CTRL_CMD_NEWFAMILY:
            fid, name = m.attrs.get("CTRL_ATTR_FAMILY_ID"), m.attrs.get("CTRL_ATTR_FAMILY_NAME")
            if isinstance(fid, int) and isinstance(name, str) and fid:
                self[fid] = name


def msg_type(family: str, cmd: int, to_kernel: bool) -> MsgType | None:
    """The :class:`MsgType` of a command of a known family (None: no map for the family).

    Requests (to the kernel) and the kernel's messages are numbered apart in some
    families (ethtool's replies and notifications, thermal's events)."""
    key = (family, cmd, to_kernel)
    t = _TYPES.get(key)
    if t is None:
        from rawlab.decode.family_maps import GENL
        from rawlab.decode.rtnl import EMPTY, schema_by_id

        known = GENL.get(family)
        if known is None:
            return None
        names, sids, kernel = known
        if kernel is not None and not to_kernel:
            names, sids = kernel
        sid = sids.get(cmd, sids.get(-1))
        t = _TYPES[key] = MsgType(names.get(cmd) or str(cmd), _HEADER_FIELDS, GENLMSGHDR,
                                  GENLMSGHDR.size,
                                  schema_by_id(sid) if sid is not None else EMPTY,
                                  _HEADER_SPEC)
    return t


def msg_type_of(m: NlMsg, ids: Mapping[int, str] | None) -> MsgType | None:
    """How to read a generic netlink message: its family by id (``ids``), its command from
    genlmsghdr; sets ``m.name`` (the family) and ``m.cmd`` (the command's name)."""
    family = (ids or {GENL_ID_CTRL: "nlctrl"}).get(m.type)
    if family is None:
        return None
    m.name = family
    body = m.offset + NLMSG_HDRLEN
    if body + GENLMSGHDR.size > m.end:
        return None
    t = msg_type(family, m.buf[body], bool(m.flags & NLM_F_REQUEST))
    if t is not None:
        m.cmd = t.name
    return t
