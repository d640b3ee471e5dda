"""Monitor bookkeeping (overflow -> re-dump -> diff), attribution, decode CLI: no privilege."""

from __future__ import annotations

import json
import os
import socket
import struct
from pathlib import Path

import pytest
from click.testing import CliRunner

from rawlab.analysis import netlink as an
from rawlab.cli import main
from rawlab.decode import rtnl
from rawlab.sockets import netlink_monitor as nm
from rawlab.sockets import proc as sproc
from rawlab.sockets.netlink_wire import NlMsg

pytestmark = pytest.mark.unit


def attr(atype: int, payload: bytes) -> bytes:
    raw = struct.pack("=HH", 4 + len(payload), atype) + payload
    return raw + b"\0" * (-len(raw) % 4)


def msg(mtype: int, body: bytes, *, pid: int = 0) -> bytes:
    return struct.pack("=IHHII", 16 + len(body), mtype, 0, 0, pid) + body


def route(dst: int, *, gw: int = 1, delete: bool = False, pid: int = 0) -> bytes:
    body = struct.pack("=BBBBBBBBI", 2, 32, 0, 0, 254, 4, 0, 1, 0)
    body += attr(15, struct.pack("=I", 254)) + attr(1, bytes([10, 9, 0, dst]))
    body += attr(5, bytes([10, 0, 0, gw])) + attr(4, struct.pack("=I", 2))
    return msg(25 if delete else 24, body, pid=pid)


def dumped(*bufs: bytes) -> list[NlMsg]:
    return [m for b in bufs for m in rtnl.decode_buffer(b)]


def test_events_in_order_with_nsid_and_group() -> None:
    mon = an.Monitor(["route"])
    anc = [(270, 8, struct.pack("=i", 5)), (270, 3, struct.pack("=I", 7))]
    evs = mon.feed(nm.Datagram(1, route(1) + route(2), anc))
    assert [e.n for e in evs] == [1, 2]  # type: ignore[union-attr]
    assert all(e.nsid == 5 and e.group == 7 for e in evs)  # type: ignore[union-attr]
    assert mon.tables["route"] == {}  # other namespaces' events do not touch our table


def test_overflow_redump_reports_exactly_the_missed_changes() -> None:
    mon = an.Monitor(["route"])
    mon.seed("route", dumped(route(1), route(2), route(3)))
    mon.feed(nm.Datagram(1, route(4)))
    mon.feed(nm.Datagram(2, route(2, delete=True)))
    (ov,) = mon.feed(nm.Overflow(3))
    assert isinstance(ov, an.OverflowEvent) and ov.resync == ("route",)
    assert mon.resync_needed == {"route"}
    # meanwhile (lost): 5 added, 1 removed, 3 moved to another gateway
    changes = mon.resync("route", dumped(route(3, gw=9), route(4), route(5)))
    got = sorted((c.what, c.msg.attrs["RTA_DST"][3]) for c in changes)
    assert got == [("added", 5), ("changed", 3), ("removed", 1)]
    assert mon.changes == {"added": 1, "removed": 1, "changed": 1}
    assert not mon.resync_needed
    # the event for 5 that was still in flight is marked as already reported
    (ev,) = mon.feed(nm.Datagram(4, route(5)))
    assert ev.resynced  # type: ignore[union-attr]
    (ev,) = mon.feed(nm.Datagram(5, route(6)))
    assert not ev.resynced  # type: ignore[union-attr]


def test_volatile_link_counters_are_not_changes() -> None:
    def link(rx: int) -> bytes:
        stats = struct.pack("=23I", rx, *([0] * 22))
        return msg(16, struct.pack("=BxHiII", 0, 1, 3, 0x1043, 0) + attr(3, b"v0\0")
                   + attr(7, stats))

    mon = an.Monitor(["link"])
    mon.seed("link", dumped(link(1)))
    assert mon.resync("link", dumped(link(99))) == []


def test_ancillary_parsing() -> None:
    assert nm.ancillary([(270, 8, struct.pack("=i", 3))]) == (3, None)
    assert nm.ancillary([(1, 8, b"\0\0\0\0")]) == (None, None)


def test_proc_net_netlink_parse() -> None:
    text = ("sk               Eth Pid        Groups   Rmem     Wmem     Dump  Locks    Drops  "
            "Inode\n"
            "ffff8c2e0c3a5800 0   4171       00000550 0        0        0     2        0      "
            "31337\n"
            "ffff8c2e0c3a6000 0   4294966873 00000000 0        0        0     2        0      7\n")
    assert sproc.parse_proc_net_netlink(text) == {(0, 4171): 31337, (0, 4294966873): 7}


def test_port_owner_by_socket_inode(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    (proc / "4242" / "fd").mkdir(parents=True)
    (proc / "4242" / "comm").write_text("bird\n")
    os.symlink("socket:[31337]", proc / "4242" / "fd" / "5")
    (proc / "77" / "fd").mkdir(parents=True)
    net = tmp_path / "netlink"
    net.write_text("sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode\n"
                   "ffff 0 3000000000 0 0 0 0 2 0 31337\n")
    owners = sproc.PortOwners(str(proc), str(net))
    who = owners.lookup(3000000000)
    assert who == sproc.Process(4242, "bird", "socket")
    assert owners.lookup(0) is None
    (proc / "77" / "comm").write_text("ip\n")
    assert owners.lookup(77) == sproc.Process(77, "ip", "pid")  # socket gone, pid = port id


def test_decode_cli_hex_and_json() -> None:
    hexs = route(7).hex()
    r = CliRunner().invoke(main, ["netlink", "decode", hexs])
    assert r.exit_code == 0, r.output
    assert "[RTM_NEWROUTE] 10.9.0.7 via 10.0.0.1 dev if2 proto static" in r.output
    r = CliRunner().invoke(main, ["netlink", "decode", hexs, "--json"])
    rec = json.loads(r.output.splitlines()[0])
    assert rec["nlmsg_type"] == "RTM_NEWROUTE" and rec["attrs"]["RTA_DST"] == "10.9.0.7"
    r = CliRunner().invoke(main, ["netlink", "decode", "not-hex-nor-file"])
    assert r.exit_code == 5 and "neither a file nor hex" in r.output


def test_decode_cli_reads_an_nlmon_pcapng(tmp_path: Path) -> None:
    from rawlab.pcap.writer import PcapngWriter

    def cooked(pkttype: int, payload: bytes) -> bytes:
        return struct.pack(">HHH8sH", pkttype, 824, 0, b"", 0) + payload

    path = tmp_path / "nl.pcapng"
    w = PcapngWriter(str(path))
    i = w.add_interface(253, "nlmon0")
    req = msg(26, struct.pack("=BBBBBBBBI", 2, 0, 0, 0, 0, 0, 0, 0, 0))
    w.write(i, 1_000, cooked(7, req))
    w.write(i, 2_000, cooked(6, route(1) + route(2)))
    w.close()
    r = CliRunner().invoke(main, ["netlink", "decode", str(path), "--json"])
    assert r.exit_code == 0, r.output
    recs = [json.loads(x) for x in r.output.splitlines()]
    assert [(x["frame"], x["msg_index"], x["nlmsg_type"], x["direction"]) for x in recs] == [
        (1, 0, "RTM_GETROUTE", "to_kernel"), (2, 0, "RTM_NEWROUTE", "to_user"),
        (2, 1, "RTM_NEWROUTE", "to_user")]
    r = CliRunner().invoke(main, ["netlink", "decode", str(path), "-v"])
    assert "user→kernel" in r.output and "RTA_GATEWAY (gateway) = 10.0.0.1" in r.output


def test_read_and_netlink_decode_print_the_same_type_names(tmp_path: Path) -> None:
    from rawlab.pcap.writer import PcapngWriter

    def cooked(pkttype: int, payload: bytes, proto: int = 0) -> bytes:
        return struct.pack(">HHH8sH", pkttype, 824, 0, b"", proto) + payload

    path = tmp_path / "nl.pcapng"
    w = PcapngWriter(str(path))
    i = w.add_interface(253, "nlmon0")
    w.write(i, 1_000, cooked(7, msg(26, struct.pack("=BBBBBBBBI", 2, 0, 0, 0, 0, 0, 0, 0, 0))))
    w.write(i, 2_000, cooked(6, route(1) + route(2) + msg(3, struct.pack("=i", 0))))
    w.write(i, 3_000, cooked(6, msg(2, struct.pack("=i", 0) + bytes(16)), proto=16))
    w.close()
    r = CliRunner().invoke(main, ["read", str(path)])
    assert r.exit_code == 0, r.output
    read = [ln.split(" types ")[1].split(", length")[0].split(",") for ln in r.output.splitlines()]
    r = CliRunner().invoke(main, ["netlink", "decode", str(path), "--json"])
    decoded: dict[int, list[str]] = {}
    for x in r.output.splitlines():
        rec = json.loads(x)
        decoded.setdefault(rec["frame"], []).append(rec["nlmsg_type"])
    assert read == list(decoded.values()) == [
        ["RTM_GETROUTE"], ["RTM_NEWROUTE", "RTM_NEWROUTE", "NLMSG_DONE"], ["NLMSG_ERROR"]]


def test_group_names() -> None:
    assert nm.group_numbers(["link", "route"]) == [1, 7, 11]
    with pytest.raises(ValueError):
        nm.group_numbers(["bogus"])


def test_dump_requests_carry_kernel_filters() -> None:
    from rawlab.sockets import netlink as nl
    from rawlab.sockets.netlink_wire import nlattr

    mtype, body = nl.dump_request("routes", family=socket.AF_INET, table=1000, ifindex=3)
    assert mtype == 26 and body[4] == 0  # rtm_table: RT_TABLE_UNSPEC, the table is in RTA_TABLE
    assert nlattr(15, struct.pack("=I", 1000)) in body
    assert nlattr(4, struct.pack("=I", 3)) in body
    mtype, body = nl.dump_request("neigh", ifindex=7)
    assert mtype == 30 and nlattr(8, struct.pack("=I", 7)) in body
    mtype, body = nl.dump_request("addrs", ifindex=7)
    assert struct.unpack_from("=BBBBI", body)[4] == 7


def test_port_owner_says_why_and_names_exited_senders_by_their_exit_record(tmp_path: Path
                                                                          ) -> None:
    proc = tmp_path / "proc"
    proc.mkdir()
    net = tmp_path / "netlink"
    net.write_text("sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode\n")

    class Exits:  # what rawlab.sockets.proc.TaskExits answers: the kernel's exit records
        def name(self, pid: int) -> str | None:
            return {3756: "ip"}.get(pid)

    plain = sproc.PortOwners(str(proc), str(net))
    kernel = plain.attribute(0)
    assert isinstance(kernel, sproc.Unnamed) and kernel.how == "kernel" and kernel.why
    gone = plain.attribute(3756)
    assert isinstance(gone, sproc.Unnamed) and gone.how == "gone" and "3756" in gone.why
    named = sproc.PortOwners(str(proc), str(net), exits=Exits())  # type: ignore[arg-type]
    assert named.attribute(3756) == sproc.Process(3756, "ip", "pid")
    # libnl's ports: pid + n << 22
    assert named.attribute(3756 + (2 << 22)) == sproc.Process(3756, "ip", "pid")
    # answers travel with the datagram: one sender, or {nlmsg_pid: answer}
    one = msg(20, b"\0" * 8, pid=3756)
    assert named.at_receipt(one) == sproc.Process(3756, "ip", "pid")
    both = named.at_receipt(one + msg(20, b"\0" * 8, pid=0))
    assert both[3756].comm == "ip" and both[0].how == "kernel"


def test_monitor_json_explains_an_unnamed_sender() -> None:
    import io

    from rawlab.present.netlink import MonitorPrinter

    mon = an.Monitor(["route"])
    gone = sproc.Unnamed(77, "gone", "no socket holds port 77")
    (ev,) = mon.feed(nm.Datagram(1, route(1, pid=77), owner=gone))
    out = io.StringIO()
    MonitorPrinter(out, as_json=True).show(ev)
    assert json.loads(out.getvalue())["process"] == {
        "pid": None, "comm": None, "how": "gone", "why": "no socket holds port 77"}
    out = io.StringIO()
    MonitorPrinter(out).show(ev)
    assert out.getvalue().rstrip().endswith("(pid 77: gone, exited before the message was read)")


def test_task_exits_stops_reading_a_closed_socket() -> None:
    """TaskExits reads until EAGAIN; a socket closed under it (the monitor's end, while the
    drain thread still names a sender) ends the read instead of spinning on EBADF."""
    import socket
    import threading

    from rawlab.sockets.proc import TaskExits

    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    a.setblocking(False)
    exits = TaskExits(a)
    b.send(b"\x00" * 8)  # shorter than a netlink header: no record, read on
    a.close()
    t = threading.Thread(target=exits.name, args=(1,), daemon=True)
    t.start()
    t.join(5)
    assert not t.is_alive() and exits.names == {}
    b.close()


def test_the_drain_queue_times_out_when_a_signal_handler_outlasts_the_wait() -> None:
    """The monitor's main thread waits on the drain's queue 0.2 s at a time and its stop is
    a signal handler. CPython 3.11's SimpleQueue.get(timeout) then waits for ever once a
    handler runs past the timeout (one CI run: `netlink monitor` ignored SIGTERM for 43
    minutes, stopped set, blocked in get); the drain's queue must time out regardless."""
    import subprocess
    import sys

    code = """
import os, queue, signal, threading, time
from rawlab.sockets.netlink_monitor import Drain
d = Drain([]).start()
signal.signal(signal.SIGUSR1, lambda s, f: time.sleep(0.3))
threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGUSR1)).start()
t = time.monotonic()
try:
    d.queue.get(timeout=0.2)
except queue.Empty:
    print("empty", round(time.monotonic() - t, 1))
d.stop()
"""
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=20, check=False)
    assert p.returncode == 0 and p.stdout.split()[0] == "empty", (p.stdout, p.stderr)
    assert float(p.stdout.split()[1]) < 1.0
