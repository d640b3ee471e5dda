"""Generic netlink: the controller's CTRL_CMD_GETFAMILY dump (what `genl ctrl list` asks).

    replies = genl.family_dump()     # [NlMsg], undecoded: rawlab.decode.genl reads them
"""

from __future__ import annotations

import struct

from rawlab.errors import explain
from rawlab.sockets.netlink import NetlinkError, NetlinkSocket
from rawlab.sockets.netlink_wire import NETLINK_GENERIC, NLM_F_DUMP, NLM_F_REQUEST, NlMsg

GENL_ID_CTRL = 0x10
CTRL_CMD_GETFAMILY = 3
CTRL_VERSION = 2
GENLMSGHDR = struct.Struct("=BBH")  # cmd, version, reserved


def family_dump() -> list[NlMsg]:
    """Every CTRL_CMD_NEWFAMILY reply of this namespace's kernel, undecoded."""
    req = GENLMSGHDR.pack(CTRL_CMD_GETFAMILY, CTRL_VERSION, 0)
    try:
        with NetlinkSocket(NETLINK_GENERIC) as nl:
            return nl.request(GENL_ID_CTRL, NLM_F_REQUEST | NLM_F_DUMP, req)
    except NetlinkError as exc:
        raise explain(exc, "generic netlink CTRL_CMD_GETFAMILY dump") from None
    except OSError as exc:
        raise explain(exc, "open NETLINK_GENERIC socket") from None
