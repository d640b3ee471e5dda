"""The lab's throwaway namespaces: made, used, and always removed."""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from rawlab.errors import RawlabError
from rawlab.lab import netns


def test_veth_pair_carries_traffic_between_two_namespaces(lab: netns.Lab) -> None:
    a, b = lab.netns("a"), lab.netns("b")
    v = lab.veth(a, b, "10.250.0.1/24", "10.250.0.2/24",
                 extra_addrs=(("fd00:250::1/64", "fd00:250::2/64"),))
    assert a.name in netns.list_namespaces() and b.name in netns.list_namespaces()
    assert netns.NAME_RE.match(a.name)
    out = a.run(["ping", "-c", "1", "-W", "2", v.right_ip or ""], check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    with b.entered():
        srv = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        srv.bind(("fd00:250::2", 0))
    with a.entered():
        cli = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    try:
        cli.sendto(b"hello", ("fd00:250::2", srv.getsockname()[1]))
        srv.settimeout(3)
        data, peer = srv.recvfrom(100)
        assert data == b"hello"
        assert peer[0] == "fd00:250::1"
    finally:
        cli.close()
        srv.close()


def test_entered_sockets_live_in_that_namespace(lab: netns.Lab) -> None:
    a, b = lab.netns("a"), lab.netns("b")
    lab.veth(a, b, "10.251.0.1/24", "10.251.0.2/24")
    with a.entered():
        s = socket.socket()
        s.bind(("10.251.0.1", 0))  # only exists in `a`
        s.close()
    s = socket.socket()
    with pytest.raises(OSError) as ei:
        s.bind(("10.251.0.1", 0))  # back home: not ours
    s.close()
    assert ei.value.errno == errno.EADDRNOTAVAIL


def test_offloads_off(lab: netns.Lab) -> None:
    a, b = lab.netns("a"), lab.netns("b")
    lab.veth(a, b, "10.252.0.1/24", "10.252.0.2/24", offloads=False)
    feats = a.run(["ethtool", "-k", "veth0"]).stdout
    for f in ("tcp-segmentation-offload: off", "generic-segmentation-offload: off",
              "generic-receive-offload: off", "tx-checksumming: off"):
        assert f in feats


def test_lab_removes_everything_even_on_failure() -> None:
    names = []
    with pytest.raises(ZeroDivisionError), netns.Lab() as lab:
        a, b = lab.netns("a"), lab.netns("b")
        lab.veth(a, b, "10.253.0.1/24", "10.253.0.2/24")
        names = [a.name, b.name]
        1 / 0  # noqa: B018
    assert names
    for n in names:
        assert n not in netns.list_namespaces()


def test_unknown_namespace_is_a_clear_error() -> None:
    with pytest.raises(RawlabError, match="no network namespace named 'rl-nope'"), \
            netns.entered("rl-nope"):
        pass


def test_cleanup_removes_what_a_killed_run_left_behind() -> None:
    # a child makes a namespace and is SIGKILLed before it can remove it
    code = ("import time; from rawlab.lab.netns import Lab\n"
            "lab = Lab(); ns = lab.netns('orphan'); print(ns.name, flush=True); time.sleep(60)\n")
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout is not None
        name = p.stdout.readline().strip()
        assert name in netns.list_namespaces()
    finally:
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
    time.sleep(0.1)
    out = subprocess.run([os.path.join(os.path.dirname(sys.executable), "rawlab"), "lab",
                          "cleanup"], capture_output=True, text=True, check=True)
    assert name in out.stdout
    assert name not in netns.list_namespaces()


def test_cleanup_removes_nftables_tables_of_killed_raw_handshakes(lab: netns.Lab) -> None:
    ns = lab.netns("nft")
    dead = "rawlab_4194305_4321"  # a pid that cannot exist
    subprocess.run(["nft", "add", "table", "inet", dead], check=True)
    ns.run(["nft", "add", "table", "inet", dead])
    alive = f"rawlab_{os.getpid()}_4322"  # ours: still running, must stay
    subprocess.run(["nft", "add", "table", "inet", alive], check=True)
    try:
        out = subprocess.run([os.path.join(os.path.dirname(sys.executable), "rawlab"), "lab",
                              "cleanup"], capture_output=True, text=True, check=True).stdout
        assert f"{dead}, {dead} (netns {ns.name})" in out
        tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True,
                                check=True).stdout
        assert dead not in tables and alive in tables
        assert dead not in ns.run(["nft", "list", "tables"]).stdout
    finally:
        subprocess.run(["nft", "delete", "table", "inet", alive], check=False)


def test_a_command_heals_what_a_killed_run_left() -> None:
    """SIGKILL cannot be caught: the next command that makes namespaces removes those whose
    owner is gone first, and says so in one line (issue 13)."""
    dead = f"rl-orphan-{4194304 + 7}-cafe"  # a pid beyond pid_max: its owner is gone
    subprocess.run(["ip", "netns", "add", dead], check=True)
    try:
        p = subprocess.run([os.path.join(os.path.dirname(sys.executable), "rawlab"),
                            "handshake", "--no-ladder"], capture_output=True, text=True,
                           timeout=120, check=False)
        assert p.returncode == 0, p.stderr
        assert p.stderr.splitlines()[0] == ("rawlab: removed 1 network namespace(s) left by "
                                            f"killed runs: {dead}")
        assert dead not in netns.list_namespaces()
    finally:
        subprocess.run(["ip", "netns", "del", dead], check=False, capture_output=True)


def test_cleanup_as_nobody_with_nothing_to_remove_still_says_it_cannot_look() -> None:
    from _creds import NOBODY
    from _creds import run as run_as

    p = run_as(NOBODY, ["lab", "cleanup"])
    assert p.returncode == 3, (p.stdout, p.stderr)
    assert "not permitted" in p.stderr and "CAP_NET_ADMIN" in p.stderr


def test_a_live_owner_in_another_pid_namespace_is_not_cleaned_up() -> None:
    """The pid in a name cannot be seen from another PID namespace (sandboxes, parallel
    CI jobs): the owner lock tells a live namespace from an abandoned one."""
    name = f"rl-other-{4194304 + 11}-f00d"  # its pid is invisible from here
    code = ("import sys, time, subprocess\n"
            "from rawlab.lab import owner\n"
            f"fd = owner.hold({name!r}); assert fd is not None\n"
            f"subprocess.run(['ip', 'netns', 'add', {name!r}], check=True)\n"
            "print('ready', flush=True); time.sleep(60)\n")
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        assert name not in netns.cleanup_stale()  # held: its owner lives
        assert name in netns.list_namespaces()
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        assert name in netns.cleanup_stale()  # the lock went with the process
        assert name not in netns.list_namespaces()
    finally:
        if p.poll() is None:
            p.kill()
        subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)
