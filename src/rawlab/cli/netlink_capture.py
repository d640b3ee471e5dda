"""`rawlab netlink capture` (an nlmon tap into pcapng) and `rawlab netlink decode` (read it)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import click

from rawlab.cli.options import Seconds

NLMON_SEES = "ROUTE, USERSOCK, SOCK_DIAG, NFLOG, XFRM, FIB_LOOKUP, NETFILTER and GENERIC"
NLMON_MISSES = ("AUDIT, KOBJECT_UEVENT (uevent), CONNECTOR, SELINUX, ISCSI, RDMA, CRYPTO, "
                "SCSITRANSPORT and SMC")


@click.command()
@click.argument("source", metavar="FILE|HEX|-")
@click.option("--json", "as_json", is_flag=True, help="NDJSON, one object per message.")
@click.option("-v", "verbose", is_flag=True, help="pyroute2's names beside the byte layout.")
@click.option("--protocol", type=int, default=0, show_default=True,
              help="For HEX: the netlink family of the bytes (0 = ROUTE).")
def decode(source: str, as_json: bool, verbose: bool, protocol: int) -> None:
    """Decode netlink messages from a pcap/pcapng (LINKTYPE_NETLINK, e.g. an nlmon
    capture) or from hex bytes: every message of every packet. `-` reads standard
    input (a capture file, or hex text). Generic netlink families are named once the
    capture's nlctrl replies have named their ids.

    Bytes that are not whole netlink messages (too short, a length past the end or
    below the header, bytes left over) are printed as what they are, and the command
    then exits 5, as `rawlab read` does on a damaged file.
    """
    import os

    from rawlab.decode.genl import GenlIds
    from rawlab.decode.rtnl import decode_buffer
    from rawlab.errors import Exit, RawlabError
    from rawlab.present.netlink import record_lines
    from rawlab.sockets.netlink import nlmon_direction

    if as_json and verbose:
        raise click.UsageError("choose one of -v, --json")
    if source == "-":
        recs = _stdin_records(protocol)
    elif os.path.exists(source):
        recs = _file_records(source)
    else:
        recs = _hex_records(source, protocol)
    write = sys.stdout.write
    bad = total = 0
    ids = GenlIds()  # generic netlink families, as the capture's nlctrl replies name them
    for rec in recs:
        msgs = decode_buffer(rec.data, rec.protocol, genl=ids) if rec.protocol >= 0 else []
        direction = nlmon_direction(rec.pkttype, rec.data) if rec.pkttype >= 0 else None
        total += 1
        bad += not whole(rec.data, msgs)
        for text in record_lines(rec, msgs, direction, as_json=as_json, verbose=verbose,
                                 genl=ids):
            write(text + "\n")
    if bad:
        sys.stdout.flush()
        where = "the input" if total == 1 else f"{bad} of {total} records"
        raise RawlabError(f"{where}: not whole netlink messages (too short, cut off, or a "
                          "length that does not fit); fix: give complete messages "
                          "(nlmsg_len covers header and payload)", Exit.BAD_INPUT)


def whole(data: bytes, msgs: list[Any]) -> bool:
    """The bytes are one or more complete, consistent messages and nothing else."""
    if not msgs or not all(m.ok for m in msgs):
        return False
    return msgs[-1].next_offset >= len(data)


def _stdin_records(protocol: int) -> Iterator[Any]:
    """Standard input: a capture file (by its magic) or hex text."""
    import io

    data = sys.stdin.buffer.read()
    if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1",
                    b"\xa1\xb2\x3c\x4d", b"\x0a\x0d\x0d\x0a"):
        return _file_records(io.BytesIO(data), "<stdin>")
    return _hex_records(data.decode("ascii", "replace"), protocol)


def _file_records(path: Any, name: str | None = None) -> Iterator[Any]:
    """Each LINKTYPE_NETLINK record of a capture file, its cooked header read."""
    from rawlab.decode.netlink import NetlinkRecord, nlmon_record
    from rawlab.errors import Exit, RawlabError
    from rawlab.pcap.reader import read_records
    from rawlab.records import LinkType

    seen_nl = False
    frame = 0
    for rec in read_records(path):
        frame += 1
        if rec.linktype == LinkType.NETLINK:
            seen_nl = True
            proto, pkttype, data = nlmon_record(bytes(rec.data))
            yield NetlinkRecord(frame, rec.ts_ns, proto, pkttype, bytes(data))
    if frame and not seen_nl:
        raise RawlabError(f"{name or path}: no LINKTYPE_NETLINK (253) records; fix: capture with "
                          "`rawlab netlink capture` (nlmon)", Exit.BAD_INPUT)


def _hex_records(text: str, protocol: int) -> Iterator[Any]:
    from rawlab.decode.netlink import NetlinkRecord
    from rawlab.errors import Exit, RawlabError

    clean = "".join(ch for ch in text if ch not in " :\n\t\r-").removeprefix("0x")
    try:
        data = bytes.fromhex(clean)
    except ValueError:
        raise RawlabError(f"'{text[:40]}' is neither a file nor hex bytes; fix: give a "
                          "pcap/pcapng path or hex like 2400000018000506...", Exit.BAD_INPUT) \
            from None
    yield NetlinkRecord(1, None, protocol, -1, data)


@click.command()
@click.option("-w", "out", required=True, type=click.Path(dir_okay=False), metavar="FILE",
              help="pcapng file to write (LINKTYPE_NETLINK).")
@click.option("--netns", metavar="NAME", help="Capture this network namespace's netlink.")
@click.option("-c", "count", type=click.IntRange(min=1), metavar="N",
              help="Stop after N messages.")
@click.option("--duration", type=Seconds(), metavar="SECONDS", help="Stop after SECONDS.")
def capture(out: str, netns: str | None, count: int | None, duration: float | None) -> None:
    """Capture netlink traffic through an nlmon device into pcapng (opens in Wireshark).

    Creates an nlmon link (removed on exit, also on Ctrl-C or SIGTERM) and
    captures it with the AF_PACKET engine. Direction (pcapng flags): to the
    kernel = outbound, to a user socket = inbound, from pkt_type when it says
    (PACKET_KERNEL/PACKET_USER), else from NLM_F_REQUEST. nlmon sees ROUTE,
    USERSOCK, SOCK_DIAG, NFLOG, XFRM, FIB_LOOKUP, NETFILTER and GENERIC; it
    cannot see AUDIT, KOBJECT_UEVENT (uevent), CONNECTOR, SELINUX, ISCSI, RDMA,
    CRYPTO, SCSITRANSPORT or SMC. Where the kernel has no nlmon (exit 4), use
    `rawlab netlink monitor`.
    """
    from rawlab.decode.netlink import nlmon_record
    from rawlab.pcap.writer import CaptureWriter
    from rawlab.records import Direction, Interface
    from rawlab.sockets.monlink import monitor_link
    from rawlab.sockets.netlink import nlmon_direction
    from rawlab.sockets.packet import open_ring

    with monitor_link("nlmon", netns=netns) as name:
        ring = None
        writer = CaptureWriter(out)
        n = 0
        try:
            ring = open_ring(name, netns=netns)
            click.echo(f"rawlab: capturing netlink on {name}"
                       f"{' in netns ' + netns if netns else ''} into {out}; nlmon sees "
                       f"{NLMON_SEES}, not {NLMON_MISSES}. Ctrl-C to stop", err=True)
            info = Interface(0, ring.linktype, 262144, name=name)
            with ring.stopped_by_signals():
                for rec in ring.records(count=count, duration=duration,
                                        block_done=writer.flush):
                    _proto, pkttype, data = nlmon_record(rec.data)
                    toward = nlmon_direction(pkttype, data)
                    rec.direction = (Direction.OUTBOUND if toward == "to_kernel"
                                     else Direction.INBOUND)
                    writer.write(rec, info)
                    n += 1
        finally:
            writer.close()
            if ring is not None:
                ring.close()
    click.echo(f"{n} netlink messages captured into {out}", err=True)
