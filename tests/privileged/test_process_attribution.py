"""`--processes`, `--pid`: every frame of a flow attributed to the process that owns each
end, across namespaces, for a Python client, curl and a client that connects and exits
at once; a connection that existed before the capture; tshark reading the comments.

Namespace A (clients, 10.66.0.1) and B (servers, 10.66.0.2) are joined by a veth pair;
rawlab captures on B's veth1, so every client socket lives in another namespace than
the capture's (its namespace is resolved, not assumed).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from _background import started_capture
from rawlab.lab.netns import Lab, Netns

RAWLAB = str(Path(sys.executable).with_name("rawlab"))
PY = sys.executable
A_IP, B_IP = "10.66.0.1", "10.66.0.2"
PORT = 8080
FAST_PORT = 8081

# B: a TCP server that answers each request after 800 ms (so clients such as curl, which
# exit once answered, are still alive when rawlab, perhaps behind on a loaded machine,
# looks their socket up) and a UDP echo
SERVER = r"""
import socket, threading, time
def serve(c):
    with c:
        try:
            c.recv(4096)
            time.sleep(0.8)
            c.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
            c.shutdown(socket.SHUT_WR)
            while c.recv(4096):
                pass
        except OSError:
            pass
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("@B@", @PORT@)); s.listen(64)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("@B@", 5353))
def echo():
    while True:
        d, a = u.recvfrom(2048); u.sendto(d, a)
threading.Thread(target=echo, daemon=True).start()
f = socket.socket(); f.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
f.bind(("@B@", @FAST@)); f.listen(64)
def fast():  # answers after 20 ms: a client of it is gone long before its block is read
    while True:
        c, _ = f.accept()
        with c:
            c.recv(4096)
            time.sleep(0.02)
            c.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
threading.Thread(target=fast, daemon=True).start()
print("READY", flush=True)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
""".replace("@B@", B_IP).replace("@PORT@", str(PORT)).replace("@FAST@", str(FAST_PORT))

# A: a client that keeps its connection while the server answers; prints its local port
CLIENT = r"""
import socket, sys, time
c = socket.create_connection(("@B@", @PORT@))
print(c.getsockname()[1], flush=True)
c.sendall(b"GET / HTTP/1.0\r\n\r\n")
while c.recv(4096):
    pass
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.sendto(b"ping", ("@B@", 5353)); u.settimeout(2); u.recv(100)
print(u.getsockname()[1], flush=True)
time.sleep(0.3)  # rawlab looks the socket up when the capture's block arrives
sys.stdin.read()  # and the test may keep it longer: until it closes our stdin
""".replace("@B@", B_IP).replace("@PORT@", str(PORT))

# A: connects, sends one byte and exits at once (the kernel finishes for it)
SHORT = r"""
import socket, os
c = socket.create_connection(("@B@", @PORT@))
print(c.getsockname()[1], flush=True)
c.sendall(b"x")
os._exit(0)
""".replace("@B@", B_IP).replace("@PORT@", str(PORT))


# A: one connection to each (address, port), each sending a byte, reading the answer and
# closed 20 ms later (over IPv6 for an address with a colon, v4-mapped ones too); prints
# the local ports, then exits
CONNECTS = r"""
import socket, time
ports = []
for host, port in @DSTS@:
    c = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    if ":" in host:
        c.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    c.connect((host, port))
    ports.append(c.getsockname()[1])
    c.sendall(b"x")
    while c.recv(100):
        pass
    time.sleep(0.02)
    c.close()
print("\n".join(map(str, ports)), flush=True)
"""

# A: five connections to the server that answers after 20 ms, long before the capture's
# ring block is read (up to 100 ms)
FAST = CONNECTS.replace("@DSTS@", repr([(B_IP, FAST_PORT)] * 5))


# A: three ICMP echo requests to B, over a ping socket (the kernel sets the identifier:
# the socket's port) or a raw socket (identifier 0x4242); prints the identifier, and
# lives on until its stdin closes
PINGER = r"""
import socket, struct, sys
def csum(b):
    t = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    t = (t >> 16) + (t & 0xFFFF)
    return ~(t + (t >> 16)) & 0xFFFF
if sys.argv[1] == "ping":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
    s.connect(("@B@", 0))
    ident = s.getsockname()[1]
else:
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    ident = 0x4242
print(ident, flush=True)
s.settimeout(3)
for seq in range(3):
    msg = struct.pack("!BBHHH", 8, 0, 0, ident, seq) + b"rawlab"
    msg = msg[:2] + struct.pack("!H", csum(msg)) + msg[4:]
    s.sendto(msg, ("@B@", 0))
    s.recv(1024)
sys.stdin.read()
""".replace("@B@", B_IP)


def _pair(lab: Lab) -> tuple[Netns, Netns]:
    a, b = lab.netns("pa"), lab.netns("pb")
    lab.veth(a, b, f"{A_IP}/24", f"{B_IP}/24", offloads=False)
    return a, b


@pytest.fixture
def server(lab: Lab) -> Iterator[tuple[Netns, Netns, subprocess.Popen[str]]]:
    a, b = _pair(lab)
    p = b.popen([PY, "-c", SERVER], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout is not None and p.stdout.readline().strip() == "READY"
        yield a, b, p
    finally:
        p.kill()
        p.wait()


def _capture(b: Netns, *args: str, cmd: str = "capture") -> subprocess.Popen[str]:
    """rawlab capturing on B's veth1, once its ring is bound (the existing sockets are
    learnt before the ring opens)."""
    return started_capture(b, [RAWLAB, cmd, "-i", "veth1", "--netns", b.name, *args],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _stop(p: subprocess.Popen[str]) -> tuple[str, str]:
    time.sleep(0.6)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    return out, err


@contextlib.contextmanager
def _client(a: Netns, code: str, ports: int) -> Iterator[tuple[int, list[int]]]:
    """The client's pid and the `ports` it printed; it lives on (CLIENT waits on its stdin)
    until the block ends, so a capture that lags behind on a loaded machine still finds
    its sockets."""
    p = a.popen([PY, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout is not None
        yield p.pid, [int(p.stdout.readline()) for _ in range(ports)]
    finally:
        p.communicate(timeout=30)


def _packets(out: str) -> list[dict[str, Any]]:
    return [r for r in map(json.loads, out.splitlines()) if "frame" in r]


def _ends(pkt: dict[str, Any], port: int) -> tuple[dict[str, Any] | None, str]:
    """The owner of the end with this port in a packet, and which end it is."""
    layer = pkt.get("tcp") or pkt.get("udp")
    end = "src" if layer["sport"] == port else "dst"
    return pkt["process"][end], end


def test_clients_in_another_namespace_are_attributed_on_every_frame(server: Any) -> None:
    a, b, srv = server
    cap = _capture(b, "--processes", "--json")
    with _client(a, CLIENT, 2) as (py_pid, (py_port, py_udp)):
        curl_port = None
        curl_pid = None
        if shutil.which("curl"):
            c = a.popen(["curl", "-s", "-o", "/dev/null", "-w", "%{local_port}",
                         f"http://{B_IP}:{PORT}/"], stdout=subprocess.PIPE, text=True)
            out, _ = c.communicate(timeout=30)
            curl_pid, curl_port = c.pid, int(out)
        with _client(a, SHORT, 1) as (short_pid, (short_port,)):
            pass
        out, err = _stop(cap)
    pkts = _packets(out)
    a_ns = int(Path(f"/run/netns/{a.name}").stat().st_ino)

    def frames(port: int, proto: str) -> list[dict[str, Any]]:
        return [p for p in pkts if proto in p and port in (p[proto]["sport"], p[proto]["dport"])]

    clients = [(py_pid, py_port, "tcp", "python"), (py_pid, py_udp, "udp", "python")]
    if curl_port is not None:
        clients.append((curl_pid, curl_port, "tcp", "curl"))
    for pid, port, proto, comm in clients:
        got = frames(port, proto)
        assert len(got) >= (2 if proto == "udp" else 8), (port, proto, len(got))
        assert proto == "udp" or got[0]["tcp"]["flags"] == "S"  # the whole connection
        for p in got:
            owner, _ = _ends(p, port)
            assert owner is not None and owner["state"] == "process", (p["frame"], owner)
            assert owner["pid"] == pid and owner["comm"].startswith(comm)
            assert owner["netns"] == a_ns and owner["netns_name"] == a.name
            assert owner["uid"] == 0
    # the server end: B's python, in the capture's namespace
    srv_frames = frames(py_port, "tcp")
    owners = [_ends(p, PORT)[0] for p in srv_frames]
    assert all(o is not None and o["state"] in ("process", "closed") for o in owners)
    assert any(o["pid"] == srv.pid for o in owners if o["state"] == "process")
    # the client that exited at once: its own pid, or honestly not known; never another
    short = frames(short_port, "tcp")
    assert short
    for p in short:
        owner, _ = _ends(p, short_port)
        assert owner is not None
        assert owner["state"] in ("process", "closed", "unknown"), owner
        if owner["state"] == "process":
            assert owner["pid"] == short_pid
    summary = json.loads(out.splitlines()[-1])["summary"]["processes"]
    assert summary["attributed"] >= len(frames(py_port, "tcp")) + len(frames(py_udp, "udp"))
    assert summary["destroy_groups"] is True
    assert "processes:" in err and "frames attributed" in err
    watch = summary["syn_watch"]  # (the python client's, the short one's, curl's SYNs)
    assert watch["off"] is None and watch["syns"] >= 2 and watch["dropped"] == 0, watch
    assert 1 <= watch["named"] <= watch["syns"], watch
    assert f"SYN watch: {watch['syns']} SYNs, {watch['named']} named at their SYN" in err


def test_a_client_gone_before_its_block_is_read_is_named_by_its_syn(server: Any) -> None:
    """The SYN watch asks for the connecting socket as its SYN passes: a client whose
    connections are over (and which has exited) before the ring's block reaches rawlab
    (Python's, and curl's) is still named, on every frame of its end (capture) and as
    each connection's client (tcp -i)."""
    a, b, _srv = server
    a_ns = int(Path(f"/run/netns/{a.name}").stat().st_ino)

    def named(owner: dict[str, Any] | None, pid: int) -> bool:
        return (owner is not None and owner["state"] == "process" and owner["pid"] == pid
                and owner["comm"].startswith(("python", "curl")) and owner["netns"] == a_ns)

    cap = _capture(b, "--processes", "--json")
    with _client(a, FAST, 5) as (pid, ports):
        pass
    clients = [(pid, port) for port in ports]
    if shutil.which("curl"):  # curl, done in a few milliseconds
        for _ in range(3):
            c = a.popen(["curl", "-s", "-o", "/dev/null", "-w", "%{local_port}",
                         f"http://{B_IP}:{FAST_PORT}/"], stdout=subprocess.PIPE, text=True)
            out, _ = c.communicate(timeout=30)
            clients.append((c.pid, int(out)))
    out, err = _stop(cap)
    pkts = _packets(out)
    for pid, port in clients:
        got = [p for p in pkts if "tcp" in p and port in (p["tcp"]["sport"], p["tcp"]["dport"])]
        assert len(got) >= 6 and got[0]["tcp"]["flags"] == "S", (port, len(got))
        for p in got:
            owner, _ = _ends(p, port)
            assert named(owner, pid), (port, p["frame"], owner)
    assert "processes:" in err

    cap = _capture(b, "--processes", "--json", cmd="tcp")
    with _client(a, FAST, 5) as (pid, ports):
        pass
    out, err = _stop(cap)
    conns = {r["client_port"]: r for r in map(json.loads, out.splitlines())
             if r.get("type") == "connection"}
    for port in ports:
        assert named(conns[port]["process"]["client"], pid), (port, conns.get(port))


def _watch_clients(a: Netns, b: Netns, code: str, n: int,
                   end: Any) -> tuple[int, list[Any], Any]:
    """The SYN watch (its compiled thread) on B's veth1 while A's client `code` makes `n`
    connections, then each one's client end asked (`end(i, port)`: OwnerLookup.owner's
    arguments): (the client's pid, the owners, the watch, stopped)."""
    from rawlab.analysis.syn_watch import SynWatch
    from rawlab.sockets.owners import OwnerLookup

    look = OwnerLookup(b.name)
    try:
        look.start()
        watch = SynWatch(look, "veth1", netns=b.name).start()
        try:
            assert watch.off is None
            with _client(a, code, n) as (pid, ports):
                pass
            time.sleep(0.3)
            owners = [look.owner(*end(i, port)).owner for i, port in enumerate(ports)]
        finally:
            watch.close()
    finally:
        look.close()
    return pid, owners, watch


def test_the_syn_watch_thread_names_each_connection_as_it_connects(server: Any) -> None:
    """The SYN watch's compiled thread (rawlab._syn_watch) on B's veth1: a client's first
    SYN needs a walk of /proc, which the thread makes, reading the process's files at
    once; the next ones are found where the client held the one before; each owner
    answers the first question about its end, also once the client has exited."""
    import socket

    a, b, _srv = server
    pid, owners, watch = _watch_clients(a, b, FAST, 5, lambda i, port: (
        socket.AF_INET, socket.IPPROTO_TCP, socket.inet_aton(A_IP), port,
        socket.inet_aton(B_IP), FAST_PORT))
    assert all(o is not None and o.state == "process" and o.pid == pid for o in owners), owners
    counts = watch._counts
    assert counts["syns"] == 5 and counts["hit"] + counts["miss"] == 5, counts
    assert counts["hit"] >= 3 and watch.found == 5 and watch.errors == 0, counts
    assert counts["walks"] >= 1, counts  # (the first: the thread walked /proc itself)


def test_the_syn_watch_thread_names_the_accepting_end_once_accepted(server: Any) -> None:
    """After each SYN to a server of this machine, the compiled thread asks for the
    accepting end until a process holds it: the server that answers after 20 ms and
    closes (its socket is gone long before the capture's block is read) is named as the
    server end of each of the five connections (a process it was hinted, whose fds it
    reads), and counted apart from the SYNs' own."""
    import socket

    a, b, srv = server
    _pid, owners, watch = _watch_clients(a, b, FAST, 5, lambda i, port: (
        socket.AF_INET, socket.IPPROTO_TCP, socket.inet_aton(B_IP), FAST_PORT,
        socket.inet_aton(A_IP), port))
    assert all(o is not None and o.state == "process" and o.pid == srv.pid
               and o.comm.startswith("python") for o in owners), owners
    counts = watch._counts
    assert counts["accepts"] == 5 and watch.accepted == 5, counts
    assert 5 <= counts["accept_asks"] <= 5 * 9, counts  # (9 tries a connection at most)
    assert counts["syns"] == 5 and counts["hit"] + counts["miss"] == 5, counts


def test_the_syn_watch_thread_sleeps_when_its_interface_goes_down(server: Any) -> None:
    """The interface going down leaves an error on the watch's packet socket (ENETDOWN):
    the compiled thread reads it (which clears it) and sleeps again, instead of being
    woken at once forever, at real-time priority. Its CPU time over the next second
    stays near zero."""
    import os

    from rawlab.analysis.syn_watch import SynWatch
    from rawlab.sockets.owners import OwnerLookup

    a, b, _srv = server
    look = OwnerLookup(b.name)
    try:
        look.start()
        before = set(os.listdir("/proc/self/task"))
        watch = SynWatch(look, "veth1", netns=b.name).start()
        try:
            assert watch.off is None
            threads = sorted(set(os.listdir("/proc/self/task")) - before, key=int)
            with _client(a, FAST, 5) as (_pid, _ports):
                pass
            b.run(["ip", "link", "set", "veth1", "down"])
            time.sleep(0.2)
            clocks = [(~int(t) << 3) | 6 for t in threads]  # (each thread's CPU clock)
            spent = [time.clock_gettime(c) for c in clocks]
            time.sleep(1.0)
            spent = [time.clock_gettime(c) - s for c, s in zip(clocks, spent, strict=True)]
            assert max(spent) < 0.05, spent
            assert watch._watcher.failed is None
        finally:
            b.run(["ip", "link", "set", "veth1", "up"], check=False)
            watch.close()
    finally:
        look.close()


A6, B6 = "fd00:66::1", "fd00:66::2"
DUAL_PORT = 8082

# B: one dual-stack listener on [::]:DUAL_PORT (IPv4 clients arrive v4-mapped), answering
# after 20 ms
DUAL = r"""
import socket
f = socket.socket(socket.AF_INET6); f.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
f.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
f.bind(("::", @PORT@)); f.listen(64)
print("READY", flush=True)
while True:
    c, _ = f.accept()
    with c:
        c.recv(4096)
        c.sendall(b"ok")
""".replace("@PORT@", str(DUAL_PORT))

# A: five connections over IPv6, then five from IPv6 sockets to B's v4-mapped address
# (the SYN on the wire is IPv4; the socket is AF_INET6)
DUAL_CLIENT = CONNECTS.replace("@DSTS@", repr([(B6, DUAL_PORT)] * 5
                                              + [("::ffff:" + B_IP, DUAL_PORT)] * 5))


def test_the_syn_watch_thread_reads_ipv6_and_v4_mapped_syns(lab: Lab) -> None:
    """The compiled thread on IPv6 SYNs and on IPv4 SYNs of an AF_INET6 socket (a
    v4-mapped address): each connection's client named at its SYN, by the thread."""
    import socket

    a, b = lab.netns("pa"), lab.netns("pb")
    lab.veth(a, b, f"{A_IP}/24", f"{B_IP}/24", offloads=False,
             extra_addrs=((f"{A6}/64", f"{B6}/64"),), static_neighbours=True)
    six = [socket.inet_pton(socket.AF_INET6, x) for x in (A6, B6)]
    four = [socket.inet_aton(x) for x in (A_IP, B_IP)]
    srv = b.popen([PY, "-c", DUAL], stdout=subprocess.PIPE, text=True)
    try:
        assert srv.stdout is not None and srv.stdout.readline().strip() == "READY"
        pid, owners, watch = _watch_clients(a, b, DUAL_CLIENT, 10, lambda i, port: (
            (socket.AF_INET6, socket.IPPROTO_TCP, six[0], port, six[1], DUAL_PORT) if i < 5
            else (socket.AF_INET, socket.IPPROTO_TCP, four[0], port, four[1], DUAL_PORT)))
    finally:
        srv.kill()
        srv.wait()
    for o in owners:  # (the first five over IPv6, the others v4-mapped)
        assert o is not None and o.state == "process" and o.pid == pid, owners
    counts = watch._counts
    assert counts["syns"] == 10 and counts["hit"] + counts["miss"] == 10, counts
    assert watch.found == 10 and watch.errors == 0, counts


# A: `n` SYNs from a raw socket, as fast as Python sends them (no socket of A holds them)
SYNS = r"""
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
for i in range(int(sys.argv[1])):
    s.sendto(struct.pack("!HHIIBBHHH", 20000 + i, 9, 1, 0, 5 << 4, 0x02, 1024, 0, 0),
             ("@B@", 0))
""".replace("@B@", B_IP)


def test_the_syn_watch_thread_leaves_real_time_for_a_flood_and_comes_back(
        server: Any) -> None:
    """The compiled thread runs SCHED_FIFO (root may); 1,000 SYNs within a few
    milliseconds (over 500 in 100 ms) put it back among the other threads, and a quiet
    window after brings it back; every SYN is still asked about (none held by a socket:
    gone)."""
    from rawlab.analysis.syn_watch import SynWatch
    from rawlab.sockets.owners import OwnerLookup

    a, b, _srv = server
    look = OwnerLookup(b.name)
    look.start()
    watch = SynWatch(look, "veth1", netns=b.name, bpf="dst port 9").start()

    def counts(syns: int) -> dict[str, int]:  # once the thread has read them all
        deadline = time.monotonic() + 5
        while watch._watcher.counts["syns"] < syns and time.monotonic() < deadline:
            time.sleep(0.01)
        return dict(watch._watcher.counts)

    try:
        assert watch.off is None and watch._watcher.counts["realtime"] == 1
        a.run([PY, "-c", SYNS, "1000"])
        flooded = counts(1000)
        time.sleep(0.25)
        a.run([PY, "-c", SYNS, "1"])
        after = counts(1001)
    finally:
        watch.close()
        look.close()
    assert flooded["syns"] == 1000 and flooded["demoted"] == 1, flooded
    assert flooded["realtime"] == 0 and flooded["gone"] == 1000, flooded
    assert after["syns"] == 1001 and after["realtime"] == 1 and after["demoted"] == 1, after


def test_icmp_echoes_are_named_by_their_ping_socket(server: Any) -> None:
    """An ICMP echo's pinging end in A is the ping socket whose port is the echo
    identifier (from the namespace's /proc/net/icmp: sock_diag lists no ping sockets);
    an echo a raw socket sent is not known (a raw socket takes every ICMP packet: which
    one sent it cannot be told), nor is B's end, where the kernel answers."""
    a, b, _srv = server
    a.run(["sysctl", "-qw", "net.ipv4.ping_group_range=0 2147483647"])
    a_ns = int(Path(f"/run/netns/{a.name}").stat().st_ino)
    cap = _capture(b, "--processes", "--json", "icmp")
    pids = {}
    for kind in ("ping", "raw"):
        with _client(a, PINGER.replace("sys.argv[1]", repr(kind)), 1) as (pid, (ident,)):
            pids[kind] = (ident, pid)
            time.sleep(0.5)  # alive until the capture reads its block (no watch for ICMP)
    out, err = _stop(cap)
    pkts = [p for p in _packets(out) if "icmp" in p]
    for kind, (ident, pid) in pids.items():
        mine = [p for p in pkts if p["icmp"]["rest"] >> 16 == ident]
        assert [p["icmp"]["type"] for p in mine] == [8, 0] * 3, (ident, mine)
        for p in mine:
            end = "src" if p["icmp"]["type"] == 8 else "dst"
            owner, theirs = p["process"][end], p["process"]["dst" if end == "src" else "src"]
            if kind == "ping":
                assert owner["state"] == "process" and owner["pid"] == pid, (ident, p)
                assert owner["comm"].startswith("python") and owner["netns"] == a_ns
            else:
                assert owner["state"] == "unknown" and owner["netns"] == a_ns, (ident, p)
            assert theirs["state"] == "unknown" and theirs["netns_name"] == b.name
    assert "6 frames attributed" in err


def test_a_connection_older_than_the_capture_is_attributed(server: Any) -> None:
    a, b, _srv = server
    code = r"""
import socket, sys, time
c = socket.create_connection(("@B@", @PORT@))
print(c.getsockname()[1], flush=True)
sys.stdin.readline()
c.sendall(b"GET / HTTP/1.0\r\n\r\n")
while c.recv(4096):
    pass
c.close()
time.sleep(0.5)
""".replace("@B@", B_IP).replace("@PORT@", str(PORT))
    p = a.popen([PY, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None and p.stdin is not None
    port = int(p.stdout.readline())
    cap = _capture(b, "--processes", "--json")
    p.stdin.write("go\n")
    p.stdin.flush()
    p.wait(timeout=30)
    out, _ = _stop(cap)
    got = [x for x in _packets(out) if "tcp" in x and port in (x["tcp"]["sport"],
                                                                 x["tcp"]["dport"])]
    assert len(got) >= 5
    assert all(_ends(x, port)[0]["pid"] == p.pid for x in got)


def test_pid_filter_keeps_only_that_process_and_counts_the_rest(server: Any,
                                                                 tmp_path: Path) -> None:
    a, b, _srv = server
    keeper = a.popen([PY, "-c", "import time; time.sleep(60)"])  # holds no socket yet
    try:
        other = a.popen([PY, "-c", "import sys; sys.stdin.readline()\n" + CLIENT],
                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        mine = a.popen([PY, "-c", "import sys; sys.stdin.readline()\n" + CLIENT],
                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        out_file = tmp_path / "mine.pcapng"
        cap = _capture(b, "--pid", str(mine.pid), "-w", str(out_file), "--print")
        for q in (other, mine):
            assert q.stdin is not None
            q.stdin.write("go\n")
            q.stdin.flush()
        mine_ports = [int(x) for x in mine.communicate(timeout=30)[0].split()]
        other_ports = [int(x) for x in other.communicate(timeout=30)[0].split()]
        out, err = _stop(cap)
    finally:
        keeper.kill()
        keeper.wait()
    lines = [x for x in out.splitlines() if " > " in x]
    a_ns = int(Path(f"/run/netns/{a.name}").stat().st_ino)
    assert lines and all(f"[{mine.pid}]" in x for x in lines)
    assert any(f".{mine_ports[0]} " in x for x in lines)
    assert not any(f".{p} " in x for x in lines for p in other_ports)
    assert "dropped by the process filter" in err
    # the file holds the same frames, each commented; tshark reads the comments
    tsh = subprocess.run(["tshark", "-r", str(out_file), "-T", "fields", "-e", "frame.comment"],
                         capture_output=True, text=True, timeout=60, check=True)
    comments = tsh.stdout.splitlines()
    assert len(comments) == len(lines)
    assert all(f"[{mine.pid}]" in c for c in comments)
    # where its sockets live: said once, in its process block, not in each packet's comment
    assert not any(f"[{mine.pid}] netns=" in c for c in comments)
    assert out_file.read_bytes().count(f"netns={a_ns} netns_name={a.name}".encode()) == 1
    back = subprocess.run([RAWLAB, "read", str(out_file)], capture_output=True, text=True,
                          timeout=60, check=True).stdout.splitlines()
    assert [x.split(" ", 1)[1] for x in back] == [x.split(" ", 1)[1] for x in lines]


def test_tcp_live_table_has_process_columns(server: Any) -> None:
    a, b, _srv = server
    p = _capture(b, "--processes", cmd="tcp")
    with _client(a, CLIENT, 2) as (pid, (port, _udp)):
        out, _err = _stop(p)
    table = out.splitlines()[out.splitlines().index("") + 1:]
    assert table[0].split()[:6] == ["stream", "client", "client", "process", "server", "server"]
    row = next(x for x in table if f"{A_IP}:{port}" in x)
    assert f"python[{pid}]" in row or f"python3[{pid}]" in row


def test_handshake_names_both_ends() -> None:
    p = subprocess.run([RAWLAB, "handshake"], capture_output=True, text=True, timeout=120,
                       check=False)
    assert p.returncode == 0, p.stderr
    head = next(x for x in p.stdout.splitlines() if x.startswith(" frame   time ms"))
    # client and server are sockets of the demo's own process, in two namespaces
    assert head.count("rawlab[") == 2
