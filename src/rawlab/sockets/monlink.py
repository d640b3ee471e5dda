"""Monitor links (nlmon, vsockmon): made for one capture, always removed after it.

    with monitor_link("vsockmon", netns=None) as ifname:
        ring = open_ring(ifname, netns=None)   # ARPHRD_VSOCKMON -> LINKTYPE_VSOCK

The link is created up, in the named namespace if given, and deleted when the
block ends — normally, on an exception, or after SIGINT/SIGTERM turned into one.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator

from rawlab.errors import Exit, RawlabError, explain
from rawlab.sockets import netlink as nl
from rawlab.sockets.netns import entered

# what to do where the kernel lacks the link type
MISSING_FIX = {
    "nlmon": "`rawlab netlink monitor` shows rtnetlink events without it, or run the capture "
             "in `rawlab lab vm -m nlmon -- …`",
    "vsockmon": "load it (modprobe vsockmon), or run the capture in "
                "`rawlab lab vm -m vsockmon -m vsock_loopback -- …`",
}


@contextlib.contextmanager
def monitor_link(kind: str, *, netns: str | None = None) -> Iterator[str]:
    """Create an up `kind` link (e.g. rlvsockmon1234), yield its name, delete it."""
    name = f"rl{kind}{os.getpid() % 10000}"[:15]
    with entered(netns):
        ctl = nl.NetlinkSocket(nl.NETLINK_ROUTE)
    try:
        try:
            nl.link_add(ctl, name, kind)
            nl.link_set_up(ctl, name)
        except OSError as exc:
            if exc.errno in (errno.EOPNOTSUPP, errno.ENOENT, errno.EINVAL):
                raise RawlabError(
                    f"this kernel has no {kind} device (module {kind} not built or not "
                    f"loadable); fix: {MISSING_FIX.get(kind, 'use a kernel that has it')}",
                    Exit.UNSUPPORTED) from None
            raise explain(exc, f"create {kind} link {name}") from None
        try:
            yield name
        finally:
            nl.link_del(ctl, name)
    finally:
        ctl.close()
