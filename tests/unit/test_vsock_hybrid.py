"""Hybrid vsock (Firecracker / Cloud Hypervisor) against a fake VMM on a Unix socket in tmp.

Only AF_UNIX sockets here: the fake VMM answers `CONNECT <port>\\n` with `OK <n>\\n`
and echoes, or closes when "nothing listens" in its pretend guest.
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from rawlab import cli
from rawlab.errors import Exit, RawlabError
from rawlab.sockets import hybrid
from rawlab.sockets import vsock as vs


@pytest.fixture(autouse=True)
def no_vsock_connect(monkeypatch: pytest.MonkeyPatch) -> None:
    real = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> None:
        assert self.family != vs.AF_VSOCK, "a unit test tried to connect AF_VSOCK"
        real(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    monkeypatch.setattr(vs, "_libc_connect", lambda *a: pytest.fail("libc vsock connect"))


class FakeVmm:
    """Firecracker's host side: CONNECT <port> → OK <n> and an echoing guest port."""

    def __init__(self, path: Path, ports: set[int], reply: bytes | None = None,
                 silent: bool = False) -> None:
        self.path, self.ports, self.reply, self.silent = path, ports, reply, silent
        self.requests: list[bytes] = []
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(str(path))
        self.srv.listen(8)
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while True:
            try:
                conn, _ = self.srv.accept()
            except OSError:
                return
            threading.Thread(target=self.handle, args=(conn,), daemon=True).start()

    def handle(self, conn: socket.socket) -> None:
        with conn:
            line = hybrid.read_line(conn)
            self.requests.append(line)
            if self.silent:
                time.sleep(2)
                return
            port = int(line.split()[1]) if line.startswith(b"CONNECT ") else -1
            if port not in self.ports:
                return  # nothing listens in the guest: the VMM just closes
            conn.sendall(self.reply or b"OK 1073741824\n")
            while data := conn.recv(65536):
                conn.sendall(data)

    def close(self) -> None:
        self.srv.close()


@pytest.fixture
def vmm(tmp_path: Path) -> Iterator[FakeVmm]:
    v = FakeVmm(tmp_path / "v.sock", {5000})
    yield v
    v.close()


def test_parse_connect_and_listen() -> None:
    a = hybrid.parse_connect("unix:/run/fc/v.sock:5000")
    assert (a.path, a.port) == ("/run/fc/v.sock", 5000)
    assert str(a) == "unix:/run/fc/v.sock:5000"
    assert hybrid.parse_connect("unix:/a:b/c:7").path == "/a:b/c"
    for bad in ("unix:/x", "unix:/x:", "unix::5", "/x:5", "unix:/x:99999999999"):
        with pytest.raises(ValueError):
            hybrid.parse_connect(bad)
    la = hybrid.parse_listen("unix:/run/fc/v.sock_5000")
    assert la.path == "/run/fc/v.sock_5000" and la.port == 5000
    assert hybrid.parse_listen("unix:/tmp/x").port is None
    with pytest.raises(ValueError):
        hybrid.parse_listen("unix:")


def test_handshake_lines() -> None:
    assert hybrid.connect_request(5000) == b"CONNECT 5000\n"
    assert hybrid.parse_ok(b"OK 1073741824\n") == "1073741824"
    assert hybrid.parse_ok(b"OK abc\n") == "abc"  # opaque
    for bad in (b"OK\n", b"ok 1\n", b"OK 1", b"ERR 1\n", b""):
        with pytest.raises(ValueError):
            hybrid.parse_ok(bad)


def test_connect_does_the_handshake_and_keeps_what_follows(vmm: FakeVmm) -> None:
    s, n = hybrid.connect(hybrid.HybridAddr(str(vmm.path), 5000), timeout=5)
    with s:
        assert n == "1073741824"
        s.sendall(b"ping")
        assert s.recv(10) == b"ping"
    assert vmm.requests == [b"CONNECT 5000\n"]


def test_nothing_listening_in_the_guest_is_econnreset(vmm: FakeVmm) -> None:
    with pytest.raises(RawlabError) as ei:
        hybrid.connect(hybrid.HybridAddr(str(vmm.path), 6000), timeout=5)
    assert ei.value.code == Exit.PEER
    assert "nothing listens on vsock port 6000 in the guest (ECONNRESET)" in ei.value.message


def test_no_socket_file(tmp_path: Path) -> None:
    with pytest.raises(RawlabError) as ei:
        hybrid.connect(hybrid.HybridAddr(str(tmp_path / "none"), 1), timeout=1)
    assert "(ENOENT)" in ei.value.message and "uds_path" in ei.value.message


def test_not_an_ok_line(tmp_path: Path) -> None:
    v = FakeVmm(tmp_path / "w.sock", {1}, reply=b"HELLO\n")
    try:
        with pytest.raises(RawlabError) as ei:
            hybrid.connect(hybrid.HybridAddr(str(v.path), 1), timeout=5)
        assert "not `OK <n>`" in ei.value.message
    finally:
        v.close()


def test_handshake_timeout(tmp_path: Path) -> None:
    v = FakeVmm(tmp_path / "t.sock", {1}, silent=True)
    try:
        with pytest.raises(RawlabError) as ei:
            hybrid.connect(hybrid.HybridAddr(str(v.path), 1), timeout=0.2)
        assert "(ETIMEDOUT)" in ei.value.message and ei.value.code == Exit.PEER
    finally:
        v.close()


def test_listen_removes_a_stale_socket_but_not_a_live_one(tmp_path: Path) -> None:
    path = tmp_path / "v.sock_5000"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()  # the file stays, nobody accepts
    la = hybrid.parse_listen(f"unix:{path}")
    s = hybrid.listen(la)
    with pytest.raises(RawlabError) as ei:
        hybrid.listen(la)
    assert "(EADDRINUSE)" in ei.value.message
    s.close()
    hybrid.unlink(la)
    assert not path.exists()


# --- the CLI over hybrid vsock -----------------------------------------------------------


def test_cli_connect_sends_and_prints_the_echo(vmm: FakeVmm) -> None:
    res = CliRunner().invoke(cli.main, ["vsock", "connect", f"unix:{vmm.path}:5000",
                                        "--send", "hello vsock", "-v"])
    assert res.exit_code == 0, res.output
    assert res.stdout == "hello vsock"
    assert "connected to unix:" in res.stderr and "sent 11 B" in res.stderr


def test_cli_connect_stdin(vmm: FakeVmm) -> None:
    res = CliRunner().invoke(cli.main, ["vsock", "connect", f"unix:{vmm.path}:5000"],
                             input=b"a" * 200_000)
    assert res.exit_code == 0
    assert res.stdout_bytes == b"a" * 200_000


def test_cli_connect_nothing_listening_is_one_line_exit_6(vmm: FakeVmm) -> None:
    res = CliRunner().invoke(cli.main, ["vsock", "connect", f"unix:{vmm.path}:6000",
                                        "--send", "x"])
    assert res.exit_code == 6
    assert res.stderr.count("\n") == 1 and "ECONNRESET" in res.stderr


@pytest.mark.parametrize("args", [
    ["connect", "unix:/x:5", "--type", "seqpacket"],
    ["connect", "unix:/x:5", "--to-host"],
    ["connect", "unix:/x", "--send", "a"],
    ["connect", "nonsense", "--send", "a"],
    ["connect", "3:5000", "--send", "a", "--file", "/dev/null"],
    ["listen", "unix:", "--once"],
    ["listen", "nope"],
    ["bench", "3:5000", "--size", "4Q"],
    ["bench", "3:5000", "--bytes", "0"],
])
def test_usage_errors_exit_2_before_any_socket(args: list[str]) -> None:
    res = CliRunner().invoke(cli.main, ["vsock", *args])
    assert res.exit_code == 2, res.output


def _wait_for(path: Path) -> None:
    deadline = time.monotonic() + 5
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.01)


@pytest.fixture
def deadline() -> Iterator[None]:
    """A listener waits in accept(): if the peer thread fails, fail here, don't hang."""
    def expired(signum: int, frame: object) -> None:
        raise TimeoutError("the peer never connected (see the thread's error above)")

    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(30)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def test_cli_listen_accepts_a_guest_initiated_connection(tmp_path: Path, deadline: None) -> None:
    path = tmp_path / "v.sock_5001"

    def guest() -> None:  # the VMM connecting on behalf of a guest to host port 5001
        _wait_for(path)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
            c.connect(str(path))
            c.sendall(b"from the guest")
            c.shutdown(socket.SHUT_WR)
            assert c.recv(100) == b"from the guest"

    t = threading.Thread(target=guest)
    t.start()
    res = CliRunner().invoke(cli.main, ["vsock", "listen", f"unix:{path}", "--echo", "--once",
                                        "--json"])
    t.join(5)
    assert res.exit_code == 0, res.output
    events = [json.loads(line) for line in res.stdout.splitlines()]
    assert [e["event"] for e in events] == ["listening", "accepted", "data", "closed"]
    assert events[0]["schema"] == "rawlab.vsock.listen/1"
    assert events[0]["local"] == {"unix": str(path)}
    assert bytes.fromhex(events[2]["head_hex"]) == b"from the guest" and events[2]["echoed"]
    assert events[3]["bytes_in"] == events[3]["bytes_out"] == 14
    assert not path.exists()  # removed on exit


def test_cli_bench_over_hybrid(tmp_path: Path) -> None:
    """bench-server on unix:PATH_PORT, bench via a fake VMM that splices CONNECT to it."""
    server_path = tmp_path / "v.sock_7000"
    vmm_path = tmp_path / "v.sock"
    from rawlab.sockets import vsockbench as vb

    la = hybrid.parse_listen(f"unix:{server_path}")
    listener = hybrid.listen(la)  # (CliRunner swaps sys.stdout: one CLI run at a time)
    sessions: list[object] = []

    def serve() -> None:
        with contextlib.suppress(OSError):  # the listener closes at the end
            sessions.extend(vb.serve(listener, "stream", str(la)))

    threading.Thread(target=serve, daemon=True).start()

    def splice(a: socket.socket, b: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := a.recv(65536):
                b.sendall(data)
            b.shutdown(socket.SHUT_WR)

    front = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    front.bind(str(vmm_path))
    front.listen(8)

    def vmm() -> None:
        while True:
            try:
                c, _ = front.accept()
            except OSError:
                return
            assert hybrid.read_line(c) == b"CONNECT 7000\n"
            back = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            back.connect(str(server_path))
            c.sendall(b"OK 1\n")
            threading.Thread(target=splice, args=(c, back), daemon=True).start()
            threading.Thread(target=splice, args=(back, c), daemon=True).start()

    threading.Thread(target=vmm, daemon=True).start()
    res = CliRunner().invoke(cli.main, ["vsock", "bench", f"unix:{vmm_path}:7000", "--json",
                                        "--size", "4K", "--bytes", "256K", "--count", "50",
                                        "--connects", "5"])
    deadline = time.monotonic() + 5  # the server records a session after its last reply
    while len(sessions) < 8 and time.monotonic() < deadline:
        time.sleep(0.01)
    front.close()
    listener.shutdown(socket.SHUT_RDWR)
    listener.close()
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["schema"] == "rawlab.vsock.bench/1"
    assert doc["throughput"][0]["bytes"] == 256 * 1024 and doc["throughput"][0]["verified"]
    assert doc["latency"][0]["count"] == 50 and doc["connect"]["count"] == 5
    modes = [getattr(x, "mode", None) for x in sessions]
    assert modes.count("connect") == 5 and "throughput" in modes and "latency" in modes


def test_cli_listen_raw_writes_payload_to_stdout(tmp_path: Path) -> None:
    path = tmp_path / "v.sock_5002"

    def guest() -> None:
        _wait_for(path)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
            c.connect(str(path))
            c.sendall(b"\x00raw bytes\xff")

    t = threading.Thread(target=guest)
    t.start()
    res = CliRunner().invoke(cli.main, ["vsock", "listen", f"unix:{path}", "--once", "--raw"])
    t.join(5)
    assert res.exit_code == 0, res.output
    assert res.stdout_bytes == b"\x00raw bytes\xff"
    assert res.stderr.startswith(f"listening on unix:{path} (stream)\naccepted unix:")
