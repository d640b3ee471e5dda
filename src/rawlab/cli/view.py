"""`rawlab view`: the interactive explorer (rawlab.view) for a file, a live capture or the
netlink monitor."""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

import click


@click.command()
@click.argument("file", required=False, type=click.Path(dir_okay=False, readable=False))
@click.option("-i", "iface", metavar="IFACE", help="View a live capture on IFACE (or 'any'); "
              "the trailing filter is attached in the kernel, as `rawlab capture`'s.")
@click.option("--netns", metavar="NAME", help="Live or --netlink: inside this network "
              "namespace.")
@click.option("--netlink", is_flag=True, help="View the rtnetlink monitor's events "
              "(as `rawlab netlink monitor`).")
@click.option("--groups", metavar="G,G,...", help="--netlink: the multicast groups (default: "
              "as `ip monitor all`).")
@click.option("-Y", "--display-filter", "display", metavar="EXPR",
              help="Start with this display filter (docs/view.md).")
@click.option("--ring-mb", type=click.IntRange(min=1), default=64, show_default=True,
              help="Live: capture ring size.")
@click.argument("words", nargs=-1, metavar="[EXPRESSION]")
def view(file: str | None, iface: str | None, netns: str | None, netlink: bool,
         groups: str | None, display: str | None, ring_mb: int,
         words: tuple[str, ...]) -> None:
    """Explore a pcap/pcapng FILE, a live capture (-i IFACE) or netlink events (--netlink)
    in the terminal: the packet list, the decoded tree and the bytes, linked.

    A tcpdump filter EXPRESSION after the file (or interface) selects packets (a
    file: in the background, like the display filter bar; live: in the kernel).
    A file opens at once and is indexed in the background (a truncated file shows
    every whole record and says where it ends). Keys: ? help, / display filter,
    f BPF filter, c TCP connections (Enter: ladder and followed stream), w write
    the listed frames to pcapng, q or Ctrl-C quit.
    """
    from rawlab.sockets.stop import stop_on_signals

    if sum(map(bool, (file, iface, netlink))) != 1:
        raise click.UsageError("give one of FILE, -i IFACE or --netlink")
    if not sys.stdout.isatty() or not sys.stdin.isatty():
        raise click.UsageError("rawlab view needs a terminal (for text output: rawlab read)")
    expression = " ".join(words) or None
    source: Any
    bpf = None
    if file:
        from rawlab.view.frames import FileFrames

        frames = FileFrames(file)  # a bad file fails here, in one line, before the screen
        bpf = expression
        frames.start(hold=True)  # its first page now, the rest once the screen is drawn
        from rawlab.view.app import PacketSource

        source = PacketSource(frames)
    elif iface:
        source = _live(iface, netns, expression, ring_mb)
    else:
        from rawlab.sockets.netlink_monitor import DEFAULT_GROUPS
        from rawlab.view.netlink import NetlinkEvents, NetlinkSource

        names = [g.strip() for g in (groups.split(",") if groups else DEFAULT_GROUPS)
                 if g.strip()]
        source = NetlinkSource(NetlinkEvents(names, netns=netns))
        source.start()
    try:
        if bpf or display:
            source.judge(bpf, display)  # a bad filter fails here, in one line
        from rawlab.view.app import ViewerApp

        app = ViewerApp(source, bpf=bpf, display=display)
        # SIGINT/SIGTERM: quit as `q` does (the terminal restored); SIGHUP: the terminal is
        # gone, nothing to restore (and writing to it could block): leave at once
        with stop_on_signals(app.request_stop, (signal.SIGINT, signal.SIGTERM)), \
                stop_on_signals(lambda: os._exit(0), (signal.SIGHUP,)):
            app.run()
    finally:
        source.close()


def _live(iface: str, netns: str | None, expression: str | None, ring_mb: int) -> Any:
    from rawlab.sockets.packet import RingConfig, open_ring
    from rawlab.view.app import PacketSource
    from rawlab.view.frames import LiveFrames

    ring = open_ring(iface, bpf=expression, netns=netns, config=RingConfig(ring_mb=ring_mb))
    frames = LiveFrames(ring)
    frames.start()
    return PacketSource(frames, live=True)
