"""Process attribution, the sans-I/O part: rawlab.analysis.processes fed real frames and a
table of answers (what the kernel and /proc would say), the pcapng comment form, the
cgroup readings, and the presentation of owners."""

from __future__ import annotations

import shutil
import socket
import struct
import subprocess
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tcp_synth import tcp_ipv4

from rawlab.analysis.processes import Attribution, ProcessMatch, flow_of
from rawlab.pcap.owners import facts_comment, owner_comment, parse_comment, with_facts
from rawlab.pcap.reader import read_records
from rawlab.pcap.writer import CaptureWriter
from rawlab.present.processes import label, mark_endpoints, owners_json
from rawlab.records import (
    CLOSED,
    NO_SOCKET,
    PROCESS,
    UNKNOWN,
    Direction,
    Interface,
    LinkType,
    Record,
    SocketOwner,
)
from rawlab.sockets.proc import SocketHolders, cgroup_path, container_id

C, S = bytes((10, 0, 0, 1)), bytes((10, 0, 0, 2))
ETH = bytes(6) + bytes((2, 0, 0, 0, 0, 1)) + b"\x08\x00"
CURL = SocketOwner(PROCESS, 1234, 1234, "curl", ("curl", "-s", "http://10.0.0.2/"), 1000,
                   "/user.slice/a.scope", None, 4026531840, None)
NGINX = SocketOwner(PROCESS, 77, None, "nginx", ("nginx: worker",), 33, "/system.slice",
                    None, 4026531840, None)
NGINX2 = SocketOwner(PROCESS, 78, None, "nginx", ("nginx: worker",), 33, "/system.slice",
                     None, 4026531840, None)


@dataclass
class Ans:
    owner: SocketOwner | None
    final: bool = True


@dataclass
class Table:
    """A lookup answering from a table {(local port): [answers in turn]} (the last repeats)."""

    answers: dict[int, list[Ans]]
    asked: list[tuple[int, int, bytes, int, bytes, int]] = field(default_factory=list)

    def owner(self, family: int, protocol: int, local: bytes, lport: int, remote: bytes,
              rport: int) -> Ans:
        self.asked.append((family, protocol, local, lport, remote, rport))
        got = self.answers.get(lport, [Ans(None)])
        return got.pop(0) if len(got) > 1 else got[0]


def tcp(t_ms: float, client: bool, flags: int, cport: int = 40000, sport: int = 80) -> Record:
    src, dst, a, b = (C, S, cport, sport) if client else (S, C, sport, cport)
    data = ETH + tcp_ipv4(src, dst, a, b, 1, 1, flags, 100)
    return Record(int(t_ms * 1e6), len(data), LinkType.ETHERNET, data)


def udp(t_ms: float, sport: int, dport: int, src: bytes = C, dst: bytes = S,
        linktype: int = LinkType.ETHERNET) -> Record:
    body = struct.pack("!HHHH", sport, dport, 12, 0) + b"abcd"
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(body), 1, 0, 64, 17, 0, src, dst)
    if linktype == LinkType.LINUX_SLL2:
        head = struct.pack("!HHIHBB8s", 0x0800, 0, 2, 1, 0, 6, bytes(8))
    else:
        head = ETH
    data = head + ip + body
    return Record(int(t_ms * 1e6), len(data), linktype, data)


def test_a_flow_is_looked_up_once_then_each_direction_has_its_owners() -> None:
    look = Table({40000: [Ans(CURL)], 80: [Ans(NGINX)]})
    attr = Attribution(look)
    recs = [tcp(0, True, 0x02), tcp(0.1, False, 0x12), tcp(0.2, True, 0x10),
            tcp(0.3, True, 0x18), tcp(0.4, False, 0x10), tcp(0.5, False, 0x11)]
    assert all(attr(r) for r in recs)
    assert len(look.asked) == 2  # both ends, once
    assert {a[3] for a in look.asked} == {40000, 80}
    assert [r.owners for r in recs] == [(CURL, NGINX), (NGINX, CURL), (CURL, NGINX),
                                        (CURL, NGINX), (NGINX, CURL), (NGINX, CURL)]
    assert attr.counts.attributed == 6 and attr.counts.flows == 1
    # the client's end was asked as its own local end, with the server as the remote
    assert (2, 6, C, 40000, S, 80) in look.asked


def test_a_syn_on_a_known_tuple_looks_it_up_again() -> None:
    look = Table({40000: [Ans(CURL), Ans(CURL)], 80: [Ans(NGINX), Ans(NGINX2)]})
    attr = Attribution(look)
    first = [tcp(0, True, 0x02), tcp(1, False, 0x12), tcp(2, True, 0x10)]
    for r in first:
        attr(r)
    again = tcp(100, True, 0x02)  # the same 4-tuple, a new connection
    attr(again)
    assert len(look.asked) == 4
    assert again.owners == (CURL, NGINX2)
    assert first[2].owners == (CURL, NGINX)


def test_a_new_connection_on_a_known_tuple_never_gets_the_last_ones_owners() -> None:
    """A SYN on a 4-tuple whose last connection was fully known, answered only
    provisionally (the listener stands in): its SYN-ACK (the compiled path) and ACK are
    the new connection's, not the last one's."""
    curl2 = SocketOwner(PROCESS, 7, 7, "curl2", ("curl2",))
    look = Table({40000: [Ans(CURL), Ans(curl2)], 80: [Ans(NGINX), Ans(NGINX, final=False)]})
    attr = Attribution(look, retry_ns=1_000_000)
    for r in (tcp(0, True, 0x02), tcp(0.1, False, 0x12), tcp(0.2, True, 0x10)):
        attr(r)
    syn, synack, ack = tcp(100, True, 0x02), tcp(100.1, False, 0x12), tcp(100.2, True, 0x10)
    for r in (syn, synack, ack):
        attr(r)
    assert syn.owners == (curl2, NGINX) and synack.owners == (NGINX, curl2)
    assert ack.owners == (curl2, NGINX)


def test_a_listener_stands_in_until_the_connection_is_accepted() -> None:
    look = Table({40000: [Ans(CURL)], 80: [Ans(NGINX, final=False), Ans(NGINX2)]})
    attr = Attribution(look, retry_ns=1_000_000)
    syn, synack = tcp(0, True, 0x02), tcp(0.5, False, 0x12)
    ack, data = tcp(2, True, 0x10), tcp(3, True, 0x18)
    for r in (syn, synack, ack, data):
        attr(r)
    assert syn.owners == (CURL, NGINX) and synack.owners == (NGINX, CURL)  # provisional
    assert ack.owners == (CURL, NGINX2) and data.owners == (CURL, NGINX2)  # asked again
    assert len(look.asked) == 3  # the two ends, then the provisional one once more


def test_a_frame_with_an_end_closed_before_lookup_is_not_counted_attributed() -> None:
    """A frame whose client is named but whose server's socket closed before its look-up
    counts as closed before lookup (its attribution is not whole); one whose other end is
    no socket (the kernel answered) counts as attributed."""
    look = Table({40000: [Ans(CURL)], 80: [Ans(SocketOwner(CLOSED))],
                  40001: [Ans(CURL)], 81: [Ans(SocketOwner(NO_SOCKET))]})
    attr = Attribution(look)
    half = [tcp(t, True, 0x10) for t in range(3)]
    rst = [tcp(10 + t, True, 0x10, cport=40001, sport=81) for t in range(2)]
    for r in half + rst:
        assert attr(r)
    assert half[0].owners == (CURL, SocketOwner(CLOSED))
    c = attr.counts
    assert (c.attributed, c.closed, c.unattributed, c.total) == (2, 3, 0, 5)


def test_udp_is_checked_again_after_recheck_ns() -> None:
    look = Table({5353: [Ans(CURL)], 53: [Ans(NGINX)]})
    attr = Attribution(look, recheck_ns=1_000_000_000)
    for t in range(5):
        attr(udp(t, 5353, 53))
    assert len(look.asked) == 2
    attr(udp(1500, 5353, 53))
    assert len(look.asked) == 4


def test_the_process_filter_keeps_only_matching_flows_and_counts_the_rest() -> None:
    look = Table({40000: [Ans(CURL)], 80: [Ans(None)], 40001: [Ans(SocketOwner(CLOSED))],
                  40002: [Ans(SocketOwner(NO_SOCKET))], 5000: [Ans(NGINX)]})
    attr = Attribution(look, ProcessMatch(comms=frozenset({"curl"})))
    kept = [attr(tcp(t, True, 0x10, cport=40000)) for t in range(3)]
    closed = [attr(tcp(10 + t, True, 0x10, cport=40001)) for t in range(2)]
    nosock = attr(tcp(20, True, 0x10, cport=40002))
    other = attr(udp(30, 5000, 80))
    arp = Record(0, 42, LinkType.ETHERNET, bytes(12) + b"\x08\x06" + bytes(28))
    assert kept == [True] * 3 and closed == [False] * 2 and not nosock and not other
    assert not attr(arp) and arp.owners is None
    c = attr.counts
    assert (c.attributed, c.closed, c.unattributed, c.dropped, c.total) == (4, 2, 2, 5, 8)
    assert ProcessMatch(pids=frozenset({77}))(NGINX)
    assert ProcessMatch(cgroups=("/user.slice",))(CURL)
    assert not ProcessMatch(cgroups=("/user",))(CURL)
    assert not ProcessMatch(pids=frozenset({1234}))(SocketOwner(CLOSED))


def test_slow_shapes_ipv6_and_cooked_v2_are_attributed_too() -> None:
    look = Table({5353: [Ans(CURL)]})
    attr = Attribution(look)
    sll2 = udp(0, 5353, 53, linktype=LinkType.LINUX_SLL2)
    attr(sll2)
    assert sll2.owners == (CURL, None)
    src6, dst6 = bytes(15) + b"\x01", bytes(15) + b"\x02"
    body = struct.pack("!HHHH", 5353, 53, 8, 0)
    ip6 = struct.pack("!IHBB16s16s", 6 << 28, len(body), 17, 64, src6, dst6)
    data = ETH[:12] + b"\x86\xdd" + ip6 + body
    assert flow_of(data, LinkType.ETHERNET) == (6, 17, src6, 5353, dst6, 53, 0)
    r6 = Record(1, len(data), LinkType.ETHERNET, data)
    attr(r6)
    assert r6.owners == (CURL, None)
    assert look.asked[-1] == (10, 17, src6, 5353, dst6, 53)


def test_the_comment_form_reads_back_and_ignores_other_comments() -> None:
    for end, o in (("src", CURL), ("dst", NGINX), ("src", SocketOwner(CLOSED, uid=7)),
                   ("dst", SocketOwner(UNKNOWN, netns=3, netns_name="blue")),
                   ("src", SocketOwner(PROCESS, 5, None, "Web Content", ("a b", "'q'"), 0,
                                       "/a b", "x" * 64, 1, None))):
        # per packet: who (the uid and the namespace if no process), the namespace also
        # where the process block says another
        for where in (None, (o.netns, o.netns_name), (5, "red")):
            text = owner_comment(end, o, where=where)
            got = parse_comment(text)
            assert got is not None and got[0] == end, text
            # the process block's comment (the namespace of its first socket)
            block = o if where is None else replace(o, netns=where[0], netns_name=where[1])
            facts = parse_comment("src " + facts_comment(block))
            assert facts is not None
            assert with_facts(got[1], facts[1]) == o, (text, where)
    assert owner_comment("src", CURL) == "src curl[1234] netns=4026531840"
    assert owner_comment("src", CURL, where=(4026531840, None)) == "src curl[1234]"
    assert owner_comment("src", CURL, where=(4026531840, "blue")) == \
        "src curl[1234] netns=4026531840"
    no_ns = replace(CURL, netns=None)
    assert owner_comment("dst", no_ns, where=(4026531840, None)) == "dst curl[1234] netns=0"
    got = parse_comment("dst curl[1234] netns=0")
    assert got is not None and with_facts(got[1], CURL) == no_ns
    assert facts_comment(CURL) == ("curl[1234] tid=1234 uid=1000 cgroup=/user.slice/a.scope "
                                   "netns=4026531840 cmdline: curl -s http://10.0.0.2/")
    assert owner_comment("dst", SocketOwner(CLOSED, uid=7, netns=9)) == \
        "dst closed-before-lookup uid=7 netns=9"
    assert parse_comment("a note by hand") is None
    assert parse_comment("src is where it came from") is None


def _write(path: Path, recs: list[Record]) -> None:
    w = CaptureWriter(str(path))
    for r in recs:
        w.write(r, Interface(0, LinkType.ETHERNET, 262144, name="veth0"))
    w.close()


def test_pcapng_carries_the_owners_and_reads_them_back(tmp_path: Path) -> None:
    recs = [tcp(0, True, 0x02), tcp(1, False, 0x12), tcp(2, True, 0x10)]
    recs[0].owners = (CURL, NGINX)
    recs[1].owners = (NGINX, CURL)
    recs[1].direction = Direction.OUTBOUND
    path = tmp_path / "o.pcapng"
    _write(path, recs)
    back = list(read_records(path))
    assert [r.owners for r in back] == [(CURL, NGINX), (NGINX, CURL), None]
    assert back[0].owners is not None and back[0].owners[0] == CURL
    raw = path.read_bytes()
    assert raw.count(struct.pack("<I", 0x80000001)) == 2  # a Darwin block per process


def test_a_namespace_is_said_per_packet_only_where_its_process_block_says_another(
        tmp_path: Path) -> None:
    red = replace(CURL, netns=5, netns_name="red")  # the same process, a socket elsewhere
    none = replace(CURL, netns=None)
    plan = [(CURL, NGINX), (red, NGINX), (none, None), (CURL, NGINX)]
    recs = []
    for i, owners in enumerate(plan):
        r = tcp(i, True, 0x10, cport=40000 + i)
        r.owners = owners
        recs.append(r)
    path = tmp_path / "o.pcapng"
    _write(path, recs)
    assert [r.owners for r in read_records(path)] == plan
    raw = path.read_bytes()
    assert raw.count(b"netns=4026531840") == 2  # in each process block, never per packet
    assert raw.count(b"src curl[1234] netns=5 netns_name=red") == 1
    assert raw.count(b"src curl[1234] netns=0") == 1
    assert raw.count(b"src curl[1234]\0") == 2  # (the option padded with zeros)


def test_each_packet_keeps_its_own_owners_and_direction_between_flows(tmp_path: Path) -> None:
    # the writer reuses the last packet's option run while owners and direction stay the same
    a, b, a2 = (CURL, NGINX), (NGINX2, None), (CURL, NGINX)  # a2: equal to a, another object
    plan = [(a, 1), (a, 1), (a, 2), (b, 1), (a, 1), (None, 1), (a2, 0), (a, 0), (b, 2), (b, 2)]
    recs = []
    for i, (owners, d) in enumerate(plan):
        r = tcp(i, True, 0x10, cport=40000 + i)
        r.owners, r.direction = owners, Direction(d)
        recs.append(r)
    path = tmp_path / "o.pcapng"
    _write(path, recs)
    back = list(read_records(path))
    assert [(r.owners, int(r.direction)) for r in back] == [(o, d) for o, d in plan]
    assert [r.data for r in back] == [r.data for r in recs]


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed "
                    "(./setup.sh --test installs it)")
def test_tshark_shows_the_comments(tmp_path: Path) -> None:
    recs = [tcp(0, True, 0x02), tcp(1, False, 0x12)]
    recs[0].owners = (CURL, None)
    recs[1].owners = (None, SocketOwner(CLOSED, uid=1000))
    path = tmp_path / "o.pcapng"
    _write(path, recs)
    out = subprocess.run(["tshark", "-r", str(path), "-T", "fields", "-e", "frame.comment",
                          "-e", "tcp.srcport"], capture_output=True, text=True, check=True,
                         timeout=60).stdout.splitlines()
    assert out == ["src curl[1234]\t40000",  # (its namespace: in curl's process block)
                   "dst closed-before-lookup uid=1000\t80"]
    # Debian's Wireshark 4.0 reads Apple's blocks only in its file-format view
    view = subprocess.run(["tshark", "-r", str(path), "-X", "read_format:MIME Files Format",
                           "-V"], capture_output=True, text=True, check=True,
                          timeout=60).stdout
    assert "Darwin Process ID: 1234" in view and "Darwin Process Name: curl" in view
    assert "DPEB ID: 0" in view
    assert f"Comment: {facts_comment(CURL)}" in view  # the process's facts, once


def test_labels_beside_the_endpoints_and_json() -> None:
    body = "IP 10.0.0.1.40000 > 10.0.0.2.80: Flags [S], seq 1, win 100, length 0"
    assert mark_endpoints(body, (CURL, NGINX)) == (
        "IP 10.0.0.1.40000 curl[1234] > 10.0.0.2.80 nginx[77]: Flags [S], seq 1, win 100, "
        "length 0")
    assert mark_endpoints(body, (None, SocketOwner(CLOSED))) == (
        "IP 10.0.0.1.40000 > 10.0.0.2.80 [closed before lookup]: Flags [S], seq 1, win 100, "
        "length 0")
    assert label(SocketOwner(NO_SOCKET)) == "[no socket]"
    j = owners_json((CURL, None))
    assert j["dst"] is None and j["src"]["pid"] == 1234 and j["src"]["cmdline"] == [
        "curl", "-s", "http://10.0.0.2/"]


def test_cgroups_and_container_ids() -> None:
    docker = "0::/system.slice/docker-" + "ab" * 32 + ".scope\n"
    assert container_id(docker) == "ab" * 32
    assert container_id("0::/kubepods/burstable/pod1/" + "cd" * 32) == "cd" * 32
    assert container_id("0::/machine.slice/libpod-" + "ef" * 32 + ".scope/container") \
        == "ef" * 32
    assert container_id("0::/lxc.payload.web/init.scope") == "web"
    assert container_id("0::/user.slice/user-1000.slice/session-2.scope") is None
    hybrid = "4:memory:/process_api/b76\n1:name=systemd:/\n0::/\n"
    assert cgroup_path(hybrid) == "/process_api/b76"
    assert cgroup_path("0::/user.slice/x.scope\n") == "/user.slice/x.scope"
    assert cgroup_path("1:name=systemd:/a\n0::/\n") == "/a"


def _fake_fds(root: Path, pid: int, fds: dict[int, str]) -> None:
    """/proc/PID/fd under `root`: each fd a link to its target (``socket:[INODE]``)."""
    d = root / str(pid) / "fd"
    d.mkdir(parents=True, exist_ok=True)
    for fd, target in fds.items():
        (d / str(fd)).unlink(missing_ok=True)
        (d / str(fd)).symlink_to(target)


def test_socket_holders_find_a_new_socket_by_a_partial_walk(tmp_path: Path) -> None:
    def proc(pid: int, fds: dict[int, str]) -> None:
        _fake_fds(tmp_path, pid, fds)

    proc(10, {0: "/dev/null", 3: "socket:[100]"})
    proc(11, {3: "socket:[200]"})
    h = SocketHolders(str(tmp_path))
    h.walk()
    assert h.find(100) == [(10, 3)] and h.find(200) == [(11, 3)]
    proc(12, {4: "socket:[300]"})  # a new process
    walks = h.walks
    assert h.find(300) == [(12, 4)] and h.walks > walks
    proc(10, {3: "socket:[400]"})  # fd 3 of pid 10 now holds another socket
    assert h.find(100) == [] and h.find(400) == [(10, 3)]


def test_gone_sockets_find_by_4_tuple_zeros_match_anything_and_age_out() -> None:
    from rawlab.sockets.owners import GoneSockets

    a, b, z = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]), bytes(4)
    port = (1, 6, 5001)
    g = GoneSockets(keep_s=10.0, most=1000)
    for i in range(500):  # a busy server port: 500 connections gone
        g.add(float(i) / 100, port, b, a, 40000 + i, 1000 + i)
    assert g.cookie(port, b, a, 40123) == 1123
    assert g.cookie(port, b, a, 39999) is None
    assert g.cookie((2, 6, 5001), b, a, 40123) is None  # another namespace
    g.add(5.0, port, z, a, 40123, 77)  # an aborted socket: local address reset
    assert g.cookie(port, b, a, 40123) is None  # two sockets match: no answer
    assert g.cookie(port, b, a, 40124) == 1124
    udp = (1, 17, 5001)
    g.add(5.0, udp, b, z, 0, 88)  # an unconnected UDP socket: matches any peer
    assert g.cookie(udp, b, a, 5) == 88 and g.cookie(udp, a, a, 5) is None
    g.prune(12.0)  # forgets what is older than 2.0 s
    assert len(g) == 302
    assert g.cookie(port, b, a, 40100) is None and g.cookie(port, b, a, 40200) == 1200
    g2 = GoneSockets(keep_s=1e9, most=3)
    for i in range(5):
        g2.add(0.0, port, b, a, i + 1, i)
    g2.prune(0.0)
    assert len(g2) == 3 and g2.cookie(port, b, a, 1) is None and g2.cookie(port, b, a, 5) == 4


def test_socket_holders_ask_hints_first_rawlab_last_and_stop_when_the_socket_is_gone(
        tmp_path: Path) -> None:
    import os

    def proc(pid: int, fds: dict[int, str]) -> None:
        _fake_fds(tmp_path, pid, fds)

    own = os.getpid()
    proc(10, {3: "socket:[100]"})
    proc(11, {3: "socket:[200]"})
    proc(own, {7: "socket:[500]"})
    h = SocketHolders(str(tmp_path))
    h.walk()
    proc(11, {4: "socket:[201]"})  # pid 11 makes a new socket: the hint finds it at once
    walks = h.walks
    assert h.find(201, [(11, 3)]) == [(11, 4)] and h.walks == walks + 1
    proc(11, {4: "socket:[202]"})  # the same fd again: read alone, no walk
    assert h.find(202, [(11, 4)]) == [(11, 4)] and h.walks == walks + 1
    # a socket rawlab shares with another process (after a fork): the other is named
    proc(12, {5: "socket:[600]"})
    proc(own, {8: "socket:[600]"})
    assert h.find(600) == [(12, 5)]
    asked = []

    def gone() -> bool:
        asked.append(1)
        return False

    walks = h.walks
    assert h.find(999, [(10, 3)], alive=gone) == [] and asked == [1]
    assert h.walks == walks + 1  # the hint only: not the recent ones, nor every process
    asked.clear()
    walks = h.walks
    assert h.find(998, [], alive=lambda: len(asked.append(1) or asked) < 2) == []
    # nothing new; the recent ones walked; gone before the next group (rawlab's own)
    assert h.walks == walks + 1 and len(asked) == 2


def test_fd_sockets_reads_socket_links_as_python_would(tmp_path: Path) -> None:
    from rawlab._kernels import fd_sockets

    d = tmp_path / "fd"
    d.mkdir()
    links = {0: "/dev/null", 3: "socket:[4026]", 4: "pipe:[77]", 5: "socket:[]",
             6: "socket:[12x]", 17: "socket:[18446744]", 9: "anon_inode:[eventfd]"}
    for fd, target in links.items():
        (d / str(fd)).symlink_to(target)
    (d / "not-a-number").symlink_to("socket:[5]")
    assert sorted(fd_sockets(str(d))) == [(3, 4026), (17, 18446744)]
    assert fd_sockets(str(tmp_path / "gone")) is None
    import os
    import socket

    with socket.socket() as s:
        assert (s.fileno(), os.fstat(s.fileno()).st_ino) in fd_sockets("/proc/self/fd")


_REF_SHAPES = {1: struct.Struct("!12xHB5xHxB2x12s9xB"), 113: struct.Struct("!14xHB5xHxB2x12s9xB"),
               276: struct.Struct("!H18xB5xHxB2x12s9xB")}


def _reference_at(linktype: int, buf: bytes, start: int, caplen: int, ts: int,
                  sweep: int, tcp: dict[bytes, Any], udp: dict[bytes, Any],
                  n: list[int]) -> Any:
    """The fast path as it was written in Python (one struct unpack, one dict get)."""
    shape = _REF_SHAPES.get(linktype)
    if shape is not None and caplen >= shape.size and ts < sweep:
        et, vihl, frag, proto, key, flags = shape.unpack_from(buf, start)
        if et == 0x0800 and vihl == 0x45 and not frag & 0x1FFF:
            e = (tcp.get(key) if proto == 6 and flags & 0x12 != 0x02
                 else udp.get(key) if proto == 17 else None)
            if e is not None:
                n[e[2]] += 1
                return e
    return ("slow", bytes(buf[start:start + caplen]), ts)


@settings(max_examples=300, deadline=None)
@given(linktype=st.sampled_from([1, 113, 276, 101]), proto=st.sampled_from([6, 17, 1]),
       flags=st.integers(0, 255), vihl=st.sampled_from([0x45, 0x46, 0x65]),
       frag=st.sampled_from([0, 0x4000, 0x2000, 1]), known=st.booleans(),
       lead=st.integers(0, 5), cut=st.integers(0, 60), late=st.booleans(),
       et=st.sampled_from([0x0800, 0x86DD]))
def test_the_compiled_flow_reader_is_the_python_fast_path(
        linktype: int, proto: int, flags: int, vihl: int, frag: int, known: bool, lead: int,
        cut: int, late: bool, et: int) -> None:
    from rawlab._kernels import FlowReader

    from rawlab.analysis.processes import _SHAPES

    et_at, ip_at = {1: (12, 14), 113: (14, 16), 276: (0, 20)}.get(linktype, (-1, -1))
    assert _SHAPES.get(linktype, (-1, -1)) == (et_at, ip_at)
    link = bytearray(max(ip_at, 14))
    if et_at >= 0:
        link[et_at:et_at + 2] = et.to_bytes(2, "big")
    ip = bytes([vihl, 0, 0, 60, 0, 1]) + frag.to_bytes(2, "big") + bytes([64, proto, 0, 0])
    key = bytes([10, 0, 0, 1, 10, 0, 0, 2, 0x1F, 0x90, 0xC3, 0x50])
    l4 = bytes(13) + bytes([flags]) + bytes(6)
    frame = bytes(link) + ip + key[:8] + key[8:] + l4[4:] + bytes(8)
    buf = bytes(lead) + frame
    caplen = max(0, len(frame) - cut)
    entry = ((None, None), True, 1)
    tcp = {key: entry} if known and proto == 6 else {}
    udp = {key: entry} if known and proto == 17 else {}
    ts, sweep = (5, 10) if not late else (10, 10)
    calls: list[Any] = []

    def slow(b: Any, s: int, c: int, t: int) -> Any:
        calls.append(1)
        return ("slow", bytes(b[s:s + c]), t)

    n_py = [0] * 6
    reader = FlowReader(et_at, ip_at, [sweep, 0], tcp, udp, slow)
    got = reader(buf, lead, caplen, ts)
    want = _reference_at(linktype, buf, lead, caplen, ts, sweep, tcp, udp, n_py)
    assert got == want and list(reader.counts) == n_py
    assert bool(calls) == (want[0] == "slow")
    again = reader(buf, lead, caplen, ts)  # (the entry kept from the frame before)
    assert again == want and list(reader.counts) == [2 * n for n in n_py]


def test_the_flow_reader_keeps_the_last_entry_until_the_generation_changes() -> None:
    from rawlab._kernels import FlowReader

    frame = bytes(12) + b"\x08\x00\x45" + bytes(8) + b"\x11" + bytes(2) \
        + bytes([10, 0, 0, 1, 10, 0, 0, 2, 0, 53, 0, 9]) + bytes(16)
    key = frame[26:38]
    first, second = ((None, None), True, 0), ((None, None), False, 5)
    udp = {key: first}
    sweep = [100, 0]
    slowed: list[int] = []

    def slow(b: Any, s: int, c: int, t: int) -> Any:
        slowed.append(t)
        return ("slow",)

    at = FlowReader(12, 14, sweep, {}, udp, slow)
    assert at(frame, 0, len(frame), 1) is first and at(frame, 0, len(frame), 2) is first
    udp[key] = second  # changed without a new generation: the kept entry is still given
    assert at(frame, 0, len(frame), 3) is first
    sweep[1] += 1  # a new generation: the tables are read again
    assert at(frame, 0, len(frame), 4) is second and at.counts == (3, 0, 0, 0, 0, 1)
    del udp[key]
    sweep[1] += 1
    assert at(frame, 0, len(frame), 5) == ("slow",) and slowed == [5]
    udp[key] = first
    sweep[0], sweep[1] = 10, sweep[1] + 1  # a sweep is due: every frame from then on is slow
    assert at(frame, 0, len(frame), 10) == ("slow",) and slowed == [5, 10]
    assert at.counts == (3, 0, 0, 0, 0, 1)


def test_flow_reader_refuses_what_it_cannot_read() -> None:
    from rawlab._kernels import FlowReader

    def slow(*a: Any) -> Any:
        return a

    with pytest.raises(ValueError):
        FlowReader(14, 12, [0, 0], {}, {}, slow)  # EtherType after the IP header
    with pytest.raises(ValueError):
        FlowReader(12, 14, [0], {}, {}, slow)  # no generation
    with pytest.raises(TypeError):
        FlowReader(12, 14, [0, 0], {}, {}, slow)(b"", 0, 0)
    frame = bytes(12) + b"\x08\x00\x45" + bytes(33)
    bad = FlowReader(12, 14, [1 << 62, 0], {}, {frame[26:38]: ("x",)}, slow)
    with pytest.raises(ValueError):  # an entry that is not (owners, keep, category)
        bad(frame[:12] + frame[12:23] + b"\x11" + frame[24:], 0, 48, 0)


def test_process_facts_read_a_command_line_that_is_not_utf8(tmp_path: Path) -> None:
    from rawlab.sockets.proc import process_facts

    d = tmp_path / "42"
    (d / "task" / "42").mkdir(parents=True)
    (d / "stat").write_text("42 (caf\u00e9 x) S " + " ".join(["0"] * 18) + " 777 0 0\n")
    (d / "comm").write_bytes(b"caf\xe9\n")
    (d / "cmdline").write_bytes(b"/bin/caf\xe9\0--name=\xff\xfe\0")
    (d / "status").write_text("Name:\tx\nUid:\t1000\t1000\t1000\t1000\n")
    (d / "cgroup").write_text("0::/user.slice/x.scope\n")
    cache: dict[int, Any] = {}
    f = process_facts(42, str(tmp_path), cache)
    assert f is not None and f.start == 777 and f.uid == 1000 and f.threads == 1
    assert f.comm == "caf\ufffd" and f.cmdline == ("/bin/caf\ufffd", "--name=\ufffd\ufffd")
    assert f.cgroup == "/user.slice/x.scope"
    assert owner_comment("src", SocketOwner(PROCESS, 42, 42, f.comm, f.cmdline)).encode()
    assert process_facts(42, str(tmp_path), cache) is f  # the same start: cached
    from rawlab.sockets.proc import facts_from

    assert facts_from(42, *(open(d / n, "rb").read()  # noqa: SIM115
                            for n in ("stat", "comm", "cmdline", "status", "cgroup")), 1) == f
    assert facts_from(42, b"garbage", b"", b"", b"", b"", 1) is None
    assert process_facts(43, str(tmp_path), cache) is None


def test_the_syn_watch_reads_the_connecting_end_of_each_syn() -> None:
    """What the compiled thread reads of a frame (rawlab._syn_watch.syn_of): the SYN's
    source end is the connecting socket; a SYN-ACK, UDP, a later fragment or a frame cut
    short is not a SYN; Ethernet with VLAN tags and raw IP are read, other link types are
    not (the watch stays off). The kernel's filter lets the same SYNs through."""
    from rawlab._syn_watch import syn_of

    from rawlab.analysis.syn_watch import SYN_FILTER, SynWatch
    from rawlab.sockets.bpf import OfflineFilter

    a, b = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
    raw = int(LinkType.RAW)
    syn = tcp_ipv4(a, b, 40000, 80, 1, 0, 0x02, 1000)
    assert syn_of(syn, raw) == (4, a, 40000, b, 80)
    eth = bytes(12) + b"\x81\x00\x00\x05" + b"\x08\x00" + syn  # one 802.1Q tag
    assert syn_of(eth, int(LinkType.ETHERNET)) == (4, a, 40000, b, 80)
    v6 = bytes([0x60, 0, 0, 0, 0, 20, 6, 64]) + bytes(15) + b"\x01" + bytes(15) + b"\x02" \
        + syn[20:]
    assert syn_of(v6, raw) == (6, bytes(15) + b"\x01", 40000, bytes(15) + b"\x02", 80)
    udp = bytes([0x45, 0, 0, 28, 0, 1, 0, 0, 64, 17, 0, 0]) + a + b + bytes([0, 53, 0, 53, 0, 8,
                                                                          0, 0])
    synack = tcp_ipv4(b, a, 80, 40000, 1, 2, 0x12, 1000)
    later = syn[:6] + b"\x00\x10" + syn[8:]  # fragment offset 16
    for not_syn in (udp, synack, later, syn[:33], b"\x45\x00", b""):
        assert syn_of(not_syn, raw) is None
    assert syn_of(syn, int(LinkType.LINUX_SLL)) is False
    w = SynWatch(None, "veth1", bpf="port 80")  # type: ignore[arg-type]
    assert w.filter == f"(port 80) and ({SYN_FILTER})" and w.syns == 0
    f = OfflineFilter(SYN_FILTER)

    def keep(pkt: bytes) -> bool:
        return f.match(raw, pkt, len(pkt))

    assert keep(syn) and keep(v6)
    assert not keep(synack) and not keep(udp)
    assert not keep(tcp_ipv4(a, b, 40000, 80, 2, 2, 0x10, 1000))


def test_what_the_syn_watch_thread_found_is_finished_at_the_next_question(
        tmp_path: Path) -> None:
    """OwnerLookup._take_syns on the compiled thread's items: a hint that held the socket
    names its process (also when it has exited since, if it lived at the SYN), a miss
    goes on from the socket found, a gone socket leaves nothing (and drops an earlier
    answer of the 4-tuple), an address without a route is asked here, an error is
    counted; an accepting end the thread found once accepted is kept under its own
    4-tuple (local end first) and counted apart; each answers the capture's first
    question about that end only."""
    from rawlab._syn_watch import ASK, ERROR, GONE, HIT, MISS

    from rawlab.sockets.owners import Answer, Namespace, OwnerLookup

    a, b = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
    _fake_process(tmp_path, 40, "client", {3: "socket:[500]"})
    look = OwnerLookup(proc_root=str(tmp_path))
    ns = Namespace(5, "/nonexistent", "pa", addrs={a})
    ns.look = object()  # type: ignore[assignment]  (asked through _answer/_owner below)
    look.namespaces[5] = ns
    items: list[Any] = []
    hints: list[Any] = []

    class Scout:
        def take(self) -> list[Any]:
            out = items[:]
            items.clear()
            return out

        def hint(self, *args: Any) -> None:
            hints.append(args)

    look._scout = Scout()
    asked: list[Any] = []

    def answer(_ns: Any, s: Any, *args: Any) -> Answer:
        asked.append(("answer", s.inode, args[3]))
        return Answer(SocketOwner(CLOSED))

    def owner(*args: Any) -> Answer:
        asked.append(("owner", args[3]))
        return Answer(SocketOwner(PROCESS, 41, 41, "other", ("other",)))

    look._answer = answer  # type: ignore[method-assign]
    look._owner = owner  # type: ignore[method-assign]

    def item(kind: int, port: int, pid: int = -1, alive: int = -1,
             facts: Any = None) -> tuple[Any, ...]:
        found = (1, 500, 0, port, None)  # SYN_SENT, inode 500, uid 0, cookie
        return (kind, 4, a, port, b, 80, 5, found if kind in (HIT, MISS) else None, pid,
                3 if pid >= 0 else -1, alive, 5 if kind == ERROR else 0, facts, 0)

    # a new process the thread found by its walk, gone since: named by the files it read
    walked = (b"42 (cur l) S " + b"0 " * 18 + b"999 0\n", b"curl\n", b"curl\0-s\0",
              b"Uid:\t1000\t1000\t1000\t1000\n", b"0::/user.slice/x.scope\n", 1)
    items += [item(HIT, 40000, 40, 1), item(MISS, 40001), item(GONE, 40002),
              item(ASK, 40003), item(ERROR, 40004), item(MISS, 40005, 42, -1, walked)]
    look._at_syn[(6, a, 40002, b, 80)] = (0.0, SocketOwner(PROCESS, 1, 1, "old", ("old",)))
    look.take_syns()
    got = look._at_syn
    assert got[(6, a, 40000, b, 80)][1].pid == 40 and got[(6, a, 40000, b, 80)][1].comm == \
        "client"
    assert hints == [(5, 0, 40, 3), (5, 0, 42, 3)]
    assert look._hints[(5, 0)] == [(42, 3), (40, 3)]
    assert (6, a, 40001, b, 80) not in got and ("answer", 500, 40001) in asked
    assert (6, a, 40002, b, 80) not in got  # gone: the earlier answer dropped
    assert got[(6, a, 40003, b, 80)][1].pid == 41 and ("owner", 40003) in asked
    new = got[(6, a, 40005, b, 80)][1]
    assert (new.pid, new.comm, new.cmdline, new.cgroup) == (42, "curl", ("curl", "-s"),
                                                          "/user.slice/x.scope")
    assert look.syn_errors == 1 and look.syn_found == 3 and look.accept_found == 0
    # a connection from 10.0.0.2:80 to 10.0.0.1:40020: its accepting end, held by 40
    items.append((HIT, 4, a, 40020, b, 80, 5, (1, 501, 0, 77, None), 40, 3, 1, 0, None, 1))
    look.take_syns()
    assert got[(6, a, 40020, b, 80)][1].pid == 40
    assert look.syn_found == 3 and look.accept_found == 1
    # a SYN sent again after it was accepted: the same socket found again (its owner known
    # by its cookie), named again but not counted again
    look._answer = lambda _ns, s, *args: Answer(  # type: ignore[method-assign]
        look._cookies.get(s.cookie) or SocketOwner(CLOSED))
    items.append((HIT, 4, a, 40020, b, 80, 5, (1, 501, 0, 77, None), 40, 3, 1, 0, None, 1))
    look.take_syns()
    assert got[(6, a, 40020, b, 80)][1].pid == 40 and look.accept_found == 1
    look._answer = answer  # type: ignore[method-assign]
    assert hints == [(5, 0, 40, 3), (5, 0, 42, 3)]  # (a server's socket is no hint)
    assert look._hints[(5, 0)] == [(42, 3), (40, 3)]
    # the first question is answered from it, the next asks
    assert look.owner(socket.AF_INET, 6, a, 40000, b, 80).owner.pid == 40
    assert look.owner(socket.AF_INET, 6, a, 40000, b, 80).owner.pid == 41
    # a hint whose process has exited since: named if it lived at the SYN (its facts
    # were read while it lived, and are kept), else not
    import os
    import shutil
    import subprocess

    done = subprocess.Popen(["true"])
    pidfd = os.pidfd_open(done.pid)
    done.wait()
    look._facts._facts[40] = (look._facts._facts[40][0], pidfd)  # says it has exited
    shutil.rmtree(tmp_path / "40")
    items += [item(HIT, 40010, 40, 1)]
    look.take_syns()
    assert got[(6, a, 40010, b, 80)][1].pid == 40
    items += [item(HIT, 40011, 40, 0)]
    look.take_syns()
    assert (6, a, 40011, b, 80) not in got and ("answer", 500, 40011) in asked
    look._facts.close()


def test_facts_cache_keeps_a_live_process_and_reads_a_reused_pid_again(tmp_path: Path) -> None:
    import os

    from rawlab.sockets.proc import FactsCache

    c = FactsCache()  # the machine's /proc: pidfds
    me = c.get(os.getpid())
    assert me is not None and me.pid == os.getpid()
    assert c.get(os.getpid()) is me  # alive: not read again
    p = subprocess.Popen(["sleep", "30"])
    try:
        f = c.get(p.pid)
        assert f is not None and f.comm == "sleep" and c.get(p.pid) is f
    finally:
        p.kill()
        p.wait()
    assert c.get(p.pid) is None  # reaped: its pidfd says so, and /proc has no such pid
    # facts the SYN watch read while a process lived, kept after it exited: given to a
    # caller that knows that process lived then (its thread found the socket through the
    # /proc directory it opened for it), not to one that does not
    q = subprocess.Popen(["sleep", "30"])
    reader = FactsCache()
    read = reader.get(q.pid)
    reader.close()
    q.kill()
    q.wait()
    assert read is not None
    c.keep(read)
    assert c.get(q.pid, lived=True) is read
    later = replace(read, comm="next", start=read.start + 1)  # the pid's next process
    c.keep(later)
    assert c.get(q.pid, lived=True) is later
    assert c.get(q.pid) is None
    assert c.get(q.pid, lived=True) is None  # (forgotten: read again, and gone)
    c.close()
    # a /proc that is not the machine's: the start time tells a reused pid apart
    d = tmp_path / "42"
    (d / "task" / "42").mkdir(parents=True)

    def proc(start: int, comm: str) -> None:
        (d / "stat").write_text(f"42 ({comm}) S " + " ".join(["0"] * 18) + f" {start} 0\n")
        (d / "comm").write_text(comm + "\n")
        (d / "cmdline").write_bytes(comm.encode() + b"\0")

    proc(100, "old")
    c2 = FactsCache(str(tmp_path), most=1)
    first = c2.get(42)
    assert first is not None and first.comm == "old" and c2.get(42) is first
    proc(200, "new")
    again = c2.get(42)
    assert again is not None and again.comm == "new" and again.start == 200


def test_proc_net_tables_and_icmp_flows() -> None:
    from rawlab.sockets.proc import parse_proc_net_inet

    text = ("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid"
            "  timeout inode ref pointer drops\n"
            "   40: 01004E0A:749C 02004E0A:0000 01 00000000:00000000 00:00000000 00000000"
            "  1000        0 620694 2 0000000019fdcac3 0\n"
            "    1: 00000000:0001 00000000:0000 07 00000000:00000000 00:00000000 00000000"
            "     0        0 617986 2 0000000000000000 0\n"
            "  bad line\n")
    assert parse_proc_net_inet(text) == [
        (bytes([10, 78, 0, 1]), 0x749C, bytes([10, 78, 0, 2]), 0, 1000, 620694),
        (bytes(4), 1, bytes(4), 0, 0, 617986)]
    v6 = ("  sl  local_address                         remote_address                        st"
          " tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n"
          "    0: 000080FE00000000FF3388400D70B1F2:003A 00000000000000000000000000000000:0000"
          " 07 00000000:00000000 00:00000000 00000000     0        0 617987 2 0 0\n")
    (la, lp, ra, rp, uid, inode), = parse_proc_net_inet(v6)
    assert la == bytes.fromhex("fe80000000000000408833fff2b1700d") and lp == 58
    assert ra == bytes(16) and (rp, uid, inode) == (0, 0, 617987)
    # ICMP echo: the identifier is the pinging end's port (the request's source, the
    # reply's destination), the other end's 0; any other ICMP message is not attributed
    a, b = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
    ip = bytes([0x45, 0, 0, 28, 0, 1, 0, 0, 64, 1, 0, 0]) + a + b
    echo = ip + bytes([8, 0, 0, 0, 0x12, 0x34, 0, 1])
    assert flow_of(echo, int(LinkType.RAW)) == (4, 1, a, 0x1234, b, 0, 0)
    reply = ip + bytes([0, 0, 0, 0, 0x12, 0x34, 0, 1])
    assert flow_of(reply, int(LinkType.RAW)) == (4, 1, a, 0, b, 0x1234, 0)
    assert flow_of(ip + bytes([3, 3, 0, 0, 0, 0, 0, 0]), int(LinkType.RAW)) is None
    assert flow_of(echo[:25], int(LinkType.RAW)) is None  # no identifier
    v6echo = (bytes([0x60, 0, 0, 0, 0, 8, 58, 64]) + bytes(15) + b"\x01" + bytes(15) + b"\x02"
              + bytes([129, 0, 0, 0, 0xAB, 0xCD, 0, 7]))
    assert flow_of(v6echo, int(LinkType.RAW))[:6] == (6, 58, bytes(15) + b"\x01", 0,
                                                      bytes(15) + b"\x02", 0xABCD)
    ns6 = v6echo[:40] + bytes([135, 0, 0, 0, 0, 0, 0, 0])  # a neighbour solicitation
    assert flow_of(ns6, int(LinkType.RAW)) is None


def _fake_process(root: Path, pid: int, comm: str, fds: dict[int, str]) -> None:
    d = root / str(pid)
    (d / "task" / str(pid)).mkdir(parents=True, exist_ok=True)
    (d / "stat").write_text(f"{pid} ({comm}) S " + " ".join(["0"] * 18) + " 555 0\n")
    (d / "comm").write_text(comm + "\n")
    (d / "cmdline").write_bytes(comm.encode() + b"\0")
    (d / "status").write_text("Uid:\t0\t0\t0\t0\n")
    (d / "cgroup").write_text("0::/\n")
    _fake_fds(root, pid, fds)


def test_an_icmp_echo_is_named_by_the_ping_socket_of_its_identifier(tmp_path: Path) -> None:
    import os

    from rawlab.sockets.owners import Namespace, OwnerLookup

    a, b = bytes([10, 78, 0, 1]), bytes([10, 78, 0, 2])
    _fake_process(tmp_path, 77, "ping", {3: "socket:[620694]"})
    table = tmp_path / "icmp"
    table.write_text(
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid"
        "  timeout inode ref pointer drops\n"
        "   40: 01004E0A:749C 02004E0A:0000 01 00000000:00000000 00:00000000 00000000"
        "     0        0 620694 2 0000000019fdcac3 0\n"
        "   41: 00000000:0101 00000000:0000 07 00000000:00000000 00:00000000 00000000"
        "     0        0 999 2 0000000019fdcac3 0\n")
    look = OwnerLookup(proc_root=str(tmp_path))
    ns = Namespace(5, "/nonexistent", "pa", addrs={a})
    ns.tables["icmp"] = os.open(table, os.O_RDONLY)
    look.namespaces[5] = ns
    look._by_addr = {a: (ns,)}
    try:
        got = look.owner(socket.AF_INET, 1, a, 0x749C, b, 0).owner
        assert got is not None and (got.state, got.pid, got.comm) == (PROCESS, 77, "ping")
        assert (got.netns, got.netns_name) == (5, "pa")
        # another identifier; the answering end (0)
        assert look.owner(socket.AF_INET, 1, a, 0x749D, b, 0).owner.state == UNKNOWN
        assert look.owner(socket.AF_INET, 1, a, 0, b, 0x749C).owner.state == UNKNOWN
        # socket 999 is bound to every address with identifier 0x101: no process holds it
        assert look.owner(socket.AF_INET, 1, a, 0x101, b, 0).owner.state == UNKNOWN
        # an address that is not this machine's (asked last: the namespaces are looked
        # for again, and this fake /proc has none)
        assert look.owner(socket.AF_INET, 1, b, 0x749C, a, 0).owner is None
    finally:
        look.close()
    assert ns.tables == {}


def test_an_owner_found_at_a_syn_answers_the_first_question_only() -> None:
    from rawlab.sockets import owners
    from rawlab.sockets.owners import Answer, OwnerLookup

    a, b = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
    look = OwnerLookup()
    script: list[Any] = []
    asked: list[Any] = []

    def ask(*args: Any) -> Any:
        asked.append(args)
        return script.pop(0)

    look._owner = ask  # type: ignore[method-assign]
    items: list[Any] = []

    class Scout:  # the SYN watch's thread, which had no route for these addresses
        def take(self) -> list[Any]:
            out = items[:]
            items.clear()
            return out

    look._scout = Scout()

    def at_syn(port: int) -> None:
        from rawlab._syn_watch import ASK

        items.append((ASK, 4, a, port, b, 80, 0, None, -1, -1, -1, 0, None, 0))
        look.take_syns()
    curl = SocketOwner(PROCESS, 9, 9, "curl", ("curl",))
    script.append(Answer(curl))
    at_syn(40000)
    assert look.owner(socket.AF_INET, 6, a, 40000, b, 80).owner is curl  # not asked again
    assert len(asked) == 1
    script.append(Answer(SocketOwner(CLOSED)))
    assert look.owner(socket.AF_INET, 6, a, 40000, b, 80).owner.state == CLOSED  # asked
    # a SYN whose sender is not found removes what an earlier one of the 4-tuple left
    script += [Answer(curl), Answer(SocketOwner(CLOSED)), Answer(SocketOwner(UNKNOWN))]
    at_syn(40001)
    at_syn(40001)
    assert look.owner(socket.AF_INET, 6, a, 40001, b, 80).owner.state == UNKNOWN
    # an answer older than the time it is kept is not used
    script += [Answer(curl), Answer(SocketOwner(CLOSED))]
    at_syn(40002)
    keep = owners._AT_SYN_KEEP_S
    owners._AT_SYN_KEEP_S = 0.0
    try:
        assert look.owner(socket.AF_INET, 6, a, 40002, b, 80).owner.state == CLOSED
    finally:
        owners._AT_SYN_KEEP_S = keep
    assert script == []


def test_socket_holders_walk_the_sockets_namespace_first_when_it_holds_few(
        tmp_path: Path) -> None:
    from rawlab.sockets import proc as proc_mod

    for pid in range(10, 20):  # the host's processes, all holding sockets
        _fake_fds(tmp_path, pid, {3: f"socket:[{pid}]"})
    _fake_fds(tmp_path, 30, {3: "socket:[1]"})  # a lab namespace's one client
    h = SocketHolders(str(tmp_path))
    h.walk()
    _fake_fds(tmp_path, 30, {3: "socket:[2]"})  # its next connection
    walks = h.walks
    assert h.find(2, near=[30]) == [(30, 3)] and h.walks == walks + 1  # one directory read
    _fake_fds(tmp_path, 30, {3: "socket:[3]"})
    many = [*range(10, 10 + proc_mod.NEAR_MOST + 1), 30]  # the host's: the usual order
    assert h.find(3, near=many) == [(30, 3)]


def test_the_flow_reader_reads_time_stamps_of_every_size() -> None:
    """A frame goes the slow way exactly when its time stamp reaches the sweep's, for
    stamps of one, two and three 30-bit digits (read from the digits) and past them."""
    from rawlab._kernels import FlowReader

    frame = bytes(12) + b"\x08\x00\x45" + bytes(8) + b"\x11" + bytes(30)
    entry = ((None, None), True, 0)

    def slow(*_a: Any) -> Any:
        return ("slow",)

    for ts in (0, 1, 2**30 - 1, 2**30, 2**60 - 1, 2**60, 2**62 + 5, 2**63 - 2,
               1_700_000_000_123_456_789):
        for sweep in (ts, ts + 1):
            at = FlowReader(12, 14, [sweep, 0], {}, {frame[26:38]: entry}, slow)
            assert (at(frame, 0, len(frame), ts) == ("slow",)) == (ts >= sweep), (ts, sweep)
    with pytest.raises(OverflowError):
        FlowReader(12, 14, [0, 0], {}, {}, slow)(frame, 0, len(frame), 2**63)
    with pytest.raises(OverflowError):
        FlowReader(12, 14, [0, 0], {}, {}, slow)(frame, 0, len(frame), -(2**70))


def test_a_loopback_end_without_the_captures_namespace_is_unknown_not_an_error() -> None:
    import socket

    from rawlab.sockets.owners import OwnerLookup

    look = OwnerLookup()  # (not started: the capture's namespace was never asked)
    lo = bytes([127, 0, 0, 1])
    got = look.owner(socket.AF_INET, socket.IPPROTO_TCP, lo, 40000, lo, 80)
    assert got.owner == SocketOwner(UNKNOWN) and got.final


def test_socket_holders_walk_a_process_never_seen_before_the_recent_ones(
        tmp_path: Path) -> None:
    for pid in range(10, 16):  # six processes that hold sockets (the recent five among them)
        _fake_fds(tmp_path, pid, {3: f"socket:[{pid}]"})
    h = SocketHolders(str(tmp_path))
    h.walk()
    _fake_fds(tmp_path, 40, {3: "socket:[77]"})  # a curl started since
    walks = h.walks
    assert h.find(77) == [(40, 3)] and h.walks == walks + 1  # one directory read



def test_the_syn_watch_thread_object_keeps_its_own_fds_and_stops_once() -> None:
    """rawlab._syn_watch.Watcher without a SYN to read: it holds copies of the fds it is
    given (closing the caller's leaves it working), takes the sock_diag sockets handed to
    it (forget closes them, and drops that namespace's hints), stops at once after it
    starts (its thread may not have read its stop pipe yet) and twice without harm, and a
    lookup closed while attached lets it go."""
    import os

    from rawlab._syn_watch import Watcher

    from rawlab.sockets.owners import OwnerLookup

    for _ in range(20):  # stopped the moment it starts
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        with a, b:
            w = Watcher(a.fileno(), int(LinkType.RAW), "/proc", b.fileno())
            w.start()
            w.stop()
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    ev = os.eventfd(0, os.EFD_NONBLOCK)
    w = Watcher(a.fileno(), int(LinkType.RAW), "/proc", ev)
    a.close()
    os.close(ev)
    fd = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).detach()
    w.namespace(7, fd)
    w.hint(7, 0, os.getpid(), 0)
    w.routes(None, [(bytes([10, 0, 0, 1]), 7), (b"bad", 7)])
    w.members({7: [os.getpid()], 8: list(range(100))})
    w.start()
    assert w.take() == [] and w.failed is None
    w.forget(7)
    w.stop()
    w.stop()
    with pytest.raises(OSError):
        os.fstat(fd)  # (closed by the watcher, once forgotten)
    assert w.counts["syns"] == 0 and w.counts["dropped"] == 0
    b.close()
    look = OwnerLookup()
    look._scout = w
    look.close()
    assert look._scout is None


def test_the_syn_watch_thread_closes_the_proc_directories_it_gives_up_also_when_idle(
        ) -> None:
    """A hint names a process by its /proc directory, opened by the watcher; one given up
    is closed by the thread between SYNs (never under a copy it may read through). With
    no SYN coming, the thread is woken for them once a few wait: they never pile up; once
    it has stopped they are closed at once."""
    import os

    from rawlab._syn_watch import Watcher

    def open_fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    ev = os.eventfd(0, os.EFD_NONBLOCK)
    w = Watcher(a.fileno(), int(LinkType.RAW), "/proc", ev)
    pids = [os.getpid(), os.getppid(), 1]  # (processes that live through the test)
    try:
        w.start()
        before = open_fds()
        for i in range(300):  # three processes in turn: each new first one drops the third
            w.hint(7, 0, pids[i % 3], 3)
        time.sleep(0.2)
        assert open_fds() <= before + 2 + 16, (before, open_fds())
        w.stop()
        after_stop = open_fds()
        w.hint(7, 0, pids[0], 4)  # (stopped: what it gives up is closed at once)
        w.hint(7, 0, pids[1], 4)
        w.hint(7, 0, pids[2], 4)
        assert open_fds() <= after_stop + 1
        assert w.failed is None and w.counts["syns"] == 0
    finally:
        w.stop()
        a.close()
        b.close()
        os.close(ev)


def test_the_summary_says_what_the_syn_watch_did() -> None:
    """The summary line and the JSON summary carry the SYN watch's figures: SYNs read,
    named at their SYN, accepting ends named as accepted, not queued; or why it was
    off."""
    from types import SimpleNamespace

    from rawlab.analysis.processes import AttributionCounts
    from rawlab.present.processes import summary, summary_json

    counts = AttributionCounts(slow=[7, 1, 0, 2, 0, 0], flows=3)
    ran = SimpleNamespace(syns=12, found=11, accepted=0, dropped=0, off=None)
    text = summary(counts, False, ran)
    assert text.endswith("; SYN watch: 12 SYNs, 11 named at their SYN")
    both = SimpleNamespace(syns=12, found=11, accepted=10, dropped=0, off=None)
    assert summary(counts, False, both).endswith(
        "; SYN watch: 12 SYNs, 11 named at their SYN, 10 accepting ends named as accepted")
    full = SimpleNamespace(syns=5000, found=900, accepted=0, dropped=4000, off=None)
    assert summary(counts, False, full).endswith(
        "5000 SYNs, 900 named at their SYN, 4000 left to the capture's own questions (its "
        "queue was full)")
    stopped = SimpleNamespace(syns=3, found=3, accepted=0, dropped=0, off="stopped: EBADF")
    assert summary(counts, False, stopped).endswith(
        "; SYN watch: 3 SYNs, 3 named at their SYN, then off (stopped: EBADF)")
    off = SimpleNamespace(syns=0, found=0, accepted=0, dropped=0, off="link type 113: no")
    assert summary(counts, False, off).endswith("; SYN watch off (link type 113: no)")
    assert "SYN watch" not in summary(counts)
    assert summary_json(counts, 4, True, both)["syn_watch"] == {
        "syns": 12, "named": 11, "accepted": 10, "dropped": 0, "off": None}
    assert "syn_watch" not in summary_json(counts, 4, True)


def test_destroy_messages_are_taken_sooner_while_they_come_fast(monkeypatch: Any) -> None:
    from rawlab.sockets import owners
    from rawlab.sockets.diag import Destroyed
    from rawlab.sockets.owners import Namespace, OwnerLookup

    class Watch:
        lost = False

        def __init__(self) -> None:
            self.waiting = 0

        def drain(self) -> list[Destroyed]:
            n, self.waiting = self.waiting, 0
            return [Destroyed(2, 6, C, 40000 + i, S, 80, i + 1) for i in range(n)]

    clock = [100.0]
    monkeypatch.setattr(owners.time, "monotonic", lambda: clock[0])
    look = OwnerLookup()
    ns = Namespace(7, "/x", None)
    ns.watch = watch = Watch()  # type: ignore[assignment]
    look.namespaces[7] = ns
    assert look.drain_every == 0.25
    watch.waiting = 600  # many, after a long quiet spell (10 s): 60 a second is not fast
    clock[0] += 10.0
    look._drain()
    assert look.drain_every == 0.25
    watch.waiting = 100  # 100 in 250 ms: quiet
    clock[0] += 0.25
    look._drain()
    assert look.drain_every == 0.25
    watch.waiting = 80  # 80 in 10 ms, counted over 50 ms at least: 1,600 a second, fast
    clock[0] += 0.01
    look._drain()
    assert look.drain_every == 0.05
    clock[0] += 0.001  # a take right after (a look-up that found no socket) sees none:
    look._drain()      # still taken sooner, for a while
    assert look.drain_every == 0.05
    clock[0] += 6.0
    look._drain()
    assert look.drain_every == 0.25
    assert look._destroyed_cookie(ns, 6, C, 40079, S, 80) == 80  # (what was taken is kept)
