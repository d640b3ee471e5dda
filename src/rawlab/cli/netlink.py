"""`rawlab netlink`: watch, dump, decode and capture netlink; sockets and genl."""

from __future__ import annotations

import click

from rawlab.cli import LazyGroup

# sub-command -> "module:attribute"; each appears once its module exists
SUBCOMMANDS = {
    "monitor": "rawlab.cli.netlink_monitor:monitor",
    "dump": "rawlab.cli.netlink_dump:dump",
    "decode": "rawlab.cli.netlink_capture:decode",
    "capture": "rawlab.cli.netlink_capture:capture",
    "sockets": "rawlab.cli.netlink_diag:sockets",
    "genl": "rawlab.cli.netlink_diag:genl",
    "trace": "rawlab.cli.netlink_trace:trace",
    "route": "rawlab.cli.netlink_dump:route",
}


@click.group(cls=LazyGroup, lazy=SUBCOMMANDS)
def netlink() -> None:
    """Netlink: lossless monitor, fast dumps, sock_diag sockets, generic netlink, nlmon,
    a command's conversation (trace)."""
