"""vm tier: rawlab and socat talk vsock to each other over CID 1, both ways."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from rawlab import cli

RAWLAB = str(Path(sys.executable).with_name("rawlab"))
WAIT = 60

pytestmark = pytest.mark.skipif(shutil.which("socat") is None,
                                reason="socat not installed (apt-get install socat)")


def wait_listening(port: int) -> None:
    from rawlab.analysis.netlink import wait_vsock_listening

    assert wait_vsock_listening(port), f"nothing listens on vsock port {port}"


def check_socat_connect_to_rawlab_listen() -> None:
    p = subprocess.Popen([RAWLAB, "vsock", "listen", "any", "--echo", "--once", "--json"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout is not None
        port = json.loads(p.stdout.readline())["local"]["port"]
        res = subprocess.run(["socat", "-t", "5", "-", f"VSOCK-CONNECT:1:{port}"],
                             input="hello from socat\n", capture_output=True, text=True,
                             timeout=WAIT, check=False)
        assert res.returncode == 0, res.stderr
        assert res.stdout == "hello from socat\n"
        out, err = p.communicate(timeout=WAIT)
        assert p.returncode == 0, err
    finally:
        if p.poll() is None:
            p.kill()
    ev = [json.loads(line) for line in out.splitlines()]
    assert ev[0]["event"] == "accepted" and ev[0]["peer"]["cid"] == 1
    assert ev[-1]["event"] == "closed" and ev[-1]["bytes_in"] == 17


def check_rawlab_connect_to_socat_listen() -> None:
    port = 41001
    socat = subprocess.Popen(["socat", f"VSOCK-LISTEN:{port}", "EXEC:tr a-z A-Z"],
                             stderr=subprocess.PIPE, text=True)
    try:
        wait_listening(port)
        res = CliRunner().invoke(cli.main, ["vsock", "connect", f"1:{port}", "--send",
                                            "shout this"])
        assert res.exit_code == 0, res.output
        assert res.stdout == "SHOUT THIS"
        socat.wait(timeout=WAIT)
        assert socat.returncode == 0
    finally:
        if socat.poll() is None:
            socat.kill()


def test_socat() -> None:
    check_socat_connect_to_rawlab_listen()
    check_rawlab_connect_to_socat_listen()
