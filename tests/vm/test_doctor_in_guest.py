"""vm tier: inside a guest running Debian's kernel, doctor finds what this
machine's kernel lacks: vsock_loopback, vsock_diag, nlmon, vsockmon.

These tests run inside ONE virtme-ng guest booted by tests/conftest.py (the
modules vsock_loopback, vsock_diag, nlmon and vsockmon are loaded there first).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

RAWLAB = str(Path(sys.executable).with_name("rawlab"))


def doctor() -> dict[str, dict]:
    p = subprocess.run([RAWLAB, "doctor", "--json"], capture_output=True, text=True,
                       check=True, timeout=120)
    return {c["id"]: c for c in json.loads(p.stdout)["checks"]}


def test_we_are_in_the_guest_on_debians_kernel() -> None:
    assert os.environ.get("RAWLAB_IN_GUEST") == "1"
    rel = os.uname().release
    assert rel.endswith("-amd64"), rel  # Debian's linux-image-amd64, not the build host's
    assert Path(f"/lib/modules/{rel}/modules.dep").exists()


def test_doctor_reports_the_vm_only_features() -> None:
    rows = doctor()
    assert rows["vsock.transport.loopback"]["status"] == "ok"
    assert rows["vsock.transport.loopback"]["detail"].startswith("bind to CID 1 works")
    assert rows["vsock.diag"]["status"] == "ok"
    assert rows["monitor.nlmon"]["status"] == "ok"
    assert rows["monitor.vsockmon"]["status"] == "ok"
    assert rows["system.kernel"]["detail"].split()[1] == os.uname().release


def test_vsock_loopback_really_carries_a_message() -> None:
    # CID 1 is this guest itself (vsock_loopback): safe, and proves the row above
    srv = socket.socket(socket.AF_VSOCK, socket.SOCK_SEQPACKET)
    srv.bind((1, socket.VMADDR_PORT_ANY))
    srv.listen(1)
    port = srv.getsockname()[1]
    cli = socket.socket(socket.AF_VSOCK, socket.SOCK_SEQPACKET)
    cli.settimeout(10)
    cli.connect((1, port))
    conn, peer = srv.accept()
    cli.send(b"one")
    cli.send(b"two")
    assert conn.recv(100) == b"one"  # SEQPACKET keeps the boundaries
    assert conn.recv(100) == b"two"
    assert peer[0] == 1
    for s in (cli, conn, srv):
        s.close()
