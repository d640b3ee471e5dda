"""`rawlab lesson`: small live demonstrations of what the kernel answers."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from rawlab.cli.options import Seconds

JSON_HELP = "One JSON document (docs/json.md, lesson)."


def _emit(lesson: Any, as_json: bool) -> None:
    from rawlab.present import lesson as present

    if as_json:
        json.dump(present.to_json(lesson), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        present.render(lesson, sys.stdout)


@click.group()
def lesson() -> None:
    """Socket fundamentals, shown live: each lesson does it and prints what the kernel said.

    sigpipe, flags and families take well under a second; pipe-vs-socket moves
    --mib MiB through each transport (default 64). TCP uses 127.0.0.1 only.
    """


@lesson.command()
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def sigpipe(as_json: bool) -> None:
    """Write to a pipe and a socket whose reader is gone: SIGPIPE death, EPIPE, TCP FIN vs RST.

    Forks a child per case so the default SIGPIPE can kill it, then shows EPIPE
    with SIGPIPE ignored, blocked, and with MSG_NOSIGNAL; then a TCP peer on
    127.0.0.1 that closed (first write ok, then EPIPE) vs one that reset
    (ECONNRESET).
    """
    from rawlab.lessons import sigpipe as mod

    _emit(mod.run(), as_json)


@lesson.command()
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def flags(as_json: bool) -> None:
    """SOCK_NONBLOCK (EAGAIN at once) and SOCK_CLOEXEC (gone after exec), with fcntl views.

    Execs a child that lists its /proc/<pid>/fd, and shows F_GETFL/F_GETFD of
    sockets made with each flag and of Python's own descriptors (PEP 446).
    """
    from rawlab.lessons import flags as mod

    _emit(mod.run(), as_json)


@lesson.command()
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@click.option("--all", "every", is_flag=True,
              help="Try every AF_* number the kernel defines (1..45), not only the usual "
                   "ones. As root, socket() of an unloaded family may autoload its module.")
def families(as_json: bool, every: bool) -> None:
    """socket(domain, type, protocol) for each family and type, and the errno it refuses with.

    Only socket() and close(), as `rawlab doctor` does: nothing is bound or
    connected (AF_VSOCK included).
    """
    from rawlab.lessons import families as mod

    _emit(mod.run(every=every), as_json)


@lesson.command("pipe-vs-socket")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@click.option("--mib", default=64, show_default=True, type=click.IntRange(1, 4096),
              help="MiB to move through each transport for the throughput run.")
@click.option("--seconds", default=5.0, show_default=True, type=Seconds(0.1, 60, lo_open=False),
              help="Time limit per transport for the throughput run.")
def pipe_vs_socket(as_json: bool, mib: int, seconds: float) -> None:
    """The same bytes through a pipe, a socketpair and TCP on 127.0.0.1.

    Direction (a pipe's read end refuses writes: EBADF), buffering (F_GETPIPE_SZ,
    SO_SNDBUF/SO_RCVBUF, bytes queued before EAGAIN), message boundaries
    (SOCK_SEQPACKET keeps them, streams merge) and throughput side by side.
    """
    from rawlab.lessons import pipe_vs_socket as mod

    _emit(mod.run(mib, seconds), as_json)
