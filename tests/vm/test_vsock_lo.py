"""vm tier: `rawlab vsock` over vsock_loopback (CID 1) inside the lab guest.

Few test functions with short names on purpose: the guest gets the node ids on the
kernel command line (virtme-ng, 2048 bytes on x86), so each id costs budget.

Runs inside ONE virtme-ng guest (tests/conftest.py); CID 1 is the guest itself,
so nothing here reaches a real hypervisor. /work is read-only in the guest.

A Python start-up costs ~5 s under software emulation, so the listeners are
long-lived `rawlab` processes shared by the module's tests and the clients run
in-process through click's CliRunner (same code path as the command line).
"""

from __future__ import annotations

import json
import os
import queue
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from rawlab import cli

RAWLAB = str(Path(sys.executable).with_name("rawlab"))
WAIT = 60.0


class Listener:
    """A background `rawlab vsock listen any --cid local --json ...` and its events."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [RAWLAB, "vsock", "listen", "any", "--cid", "local", "--json", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        try:
            first = self.next()
            assert first["event"] == "listening" and first["local"]["cid"] == 1, first
        except BaseException:
            self.stop()  # never leave a listener behind in the guest
            raise
        self.port = int(first["local"]["port"])

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.events.put(json.loads(line))

    def next(self) -> dict[str, Any]:
        try:
            return self.events.get(timeout=WAIT)
        except queue.Empty:
            self.stop()
            raise AssertionError(f"no event from the listener; stderr: {self.proc.stderr.read()}"
                                 if self.proc.stderr else "no event") from None

    def session(self) -> list[dict[str, Any]]:
        """The events of the next connection, accepted → closed."""
        out = [self.next()]
        while out[-1]["event"] != "closed":
            out.append(self.next())
        return out

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def stream_echo() -> Iterator[Listener]:
    lst = Listener("--echo")
    yield lst
    lst.stop()


@pytest.fixture(scope="module")
def seq_echo() -> Iterator[Listener]:
    lst = Listener("--type", "seqpacket", "--echo")
    yield lst
    lst.stop()


def rawlab(*args: str, stdin: bytes | None = None) -> Result:
    return CliRunner().invoke(cli.main, ["vsock", *args], input=stdin)


def check_stream_echo(stream_echo: Listener) -> None:
    res = rawlab("connect", f"1:{stream_echo.port}", "--send", "hello vsock")
    assert res.exit_code == 0, res.output
    assert res.stdout == "hello vsock"
    ev = stream_echo.session()
    assert ev[0]["event"] == "accepted" and ev[0]["peer"]["cid"] == 1
    assert ev[0]["type"] == "stream"
    got = b"".join(bytes.fromhex(e["head_hex"]) for e in ev if e["event"] == "data")
    assert got == b"hello vsock"
    assert ev[-1]["reason"] == "eof" and ev[-1]["bytes_in"] == ev[-1]["bytes_out"] == 11


def check_stream_echo_of_a_large_input(stream_echo: Listener) -> None:
    payload = os.urandom(3 << 20)  # larger than both ends' buffers
    res = rawlab("connect", f"local:{stream_echo.port}", stdin=payload)
    assert res.exit_code == 0, res.output
    assert res.stdout_bytes == payload
    assert stream_echo.session()[-1]["bytes_in"] == 3 << 20


def check_seqpacket_boundaries_and_msg_eor(seq_echo: Listener) -> None:
    with socket.socket(socket.AF_VSOCK, socket.SOCK_SEQPACKET) as c:
        c.settimeout(WAIT)
        c.connect((1, seq_echo.port))
        c.sendmsg([b"one"], [], socket.MSG_EOR)
        c.send(b"two-two")  # no MSG_EOR
        c.sendmsg([b"x" * 70000], [], socket.MSG_EOR)
        back = [c.recvmsg(100000) for _ in range(3)]
    assert [(d, bool(f & socket.MSG_EOR)) for d, _, f, _ in back][:2] == \
        [(b"one", True), (b"two-two", False)]  # the echo keeps boundaries and EOR
    data = [e for e in seq_echo.session() if e["event"] == "data"]
    assert [(e["bytes"], e["eor"]) for e in data] == [(3, True), (7, False), (70000, True)]
    assert bytes.fromhex(data[0]["head_hex"]) == b"one"


def check_seqpacket_echo_with_the_cli_on_both_ends(seq_echo: Listener) -> None:
    res = rawlab("connect", f"1:{seq_echo.port}", "--type", "seqpacket", "--send", "abc")
    assert res.exit_code == 0, res.output
    assert res.stdout == "abc"
    data = [e for e in seq_echo.session() if e["event"] == "data"]
    assert [(e["bytes"], e["eor"], e["echoed"]) for e in data] == [(3, True, True)]


def check_to_host_flag_timeout_and_buffer_size(stream_echo: Listener) -> None:
    # svm_flags through a raw sockaddr_vm and libc connect(); CID 1 still routes to
    # vsock_loopback. The timeval and u64 options go through libc setsockopt().
    res = rawlab("connect", f"1:{stream_echo.port}", "--to-host", "--timeout", "1.5",
                 "--buffer-size", "1M", "-v", stdin=b"through libc connect()\n")
    assert res.exit_code == 0, res.output
    assert res.stdout == "through libc connect()\n"
    assert "buffer 1048576 B" in res.stderr
    stream_echo.session()


def check_nothing_listening_is_econnreset_exit_6() -> None:
    res = rawlab("connect", "1:40999", "--send", "x")
    assert res.exit_code == 6
    assert res.stderr.count("\n") == 1
    assert "ECONNRESET" in res.stderr and "nothing listens on vsock port 40999" in res.stderr
    assert "rawlab vsock listen 40999" in res.stderr


def check_bind_to_a_non_local_cid_is_eaddrnotavail_exit_4() -> None:
    res = rawlab("listen", "5000", "--cid", "99")
    assert res.exit_code == 4
    assert res.stderr.count("\n") == 1
    assert "EADDRNOTAVAIL" in res.stderr and "CID 99 is not local" in res.stderr


def check_dgram_has_no_transport_here() -> None:
    res = rawlab("listen", "5000", "--type", "dgram")
    assert res.exit_code == 4, res.output
    assert "ENODEV" in res.stderr and "DGRAM" in res.stderr


def check_cid_reports_the_loopback_transport() -> None:
    res = rawlab("cid", "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["schema"] == "rawlab.vsock.cid/1"
    assert doc["transports"]["loopback"] == "ok"


@pytest.fixture
def vhost() -> Iterator[None]:
    if subprocess.run(["modprobe", "vhost_vsock"], check=False).returncode != 0:
        pytest.skip("no vhost_vsock module in the guest kernel")
    yield
    subprocess.run(["rmmod", "vhost_vsock"], check=False)


def check_guest_cid_taken_and_vhost_permissions(vhost: None) -> None:
    from rawlab.sockets import vsock as vs

    assert rawlab("cid", "--check-guest-cid", "4242").exit_code == 0
    fd = vs.claim_guest_cid(4242)  # a "VM" holding CID 4242
    try:
        res = rawlab("cid", "--check-guest-cid", "4242")
        assert res.exit_code == 1
        assert "EADDRINUSE" in res.stderr and "guest CID 4242 is already taken" in res.stderr
    finally:
        os.close(fd)
    nobody = subprocess.run(["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups",
                             RAWLAB, "vsock", "cid", "--check-guest-cid", "4242"],
                            capture_output=True, text=True, timeout=WAIT, check=False)
    assert nobody.returncode == 3, nobody.stderr
    assert "EACCES" in nobody.stderr and "/dev/vhost-vsock" in nobody.stderr


def test_stream(stream_echo: Listener) -> None:
    check_stream_echo(stream_echo)
    check_stream_echo_of_a_large_input(stream_echo)
    check_to_host_flag_timeout_and_buffer_size(stream_echo)


def test_seqpacket(seq_echo: Listener) -> None:
    check_seqpacket_boundaries_and_msg_eor(seq_echo)
    check_seqpacket_echo_with_the_cli_on_both_ends(seq_echo)


def test_errors() -> None:
    check_nothing_listening_is_econnreset_exit_6()
    check_bind_to_a_non_local_cid_is_eaddrnotavail_exit_4()
    check_dgram_has_no_transport_here()
    check_cid_reports_the_loopback_transport()


def test_vhost(vhost: None) -> None:
    check_guest_cid_taken_and_vhost_permissions(vhost)
