"""`rawlab lesson ...` run inside throwaway network namespaces: the kernel's answers, asserted.

Each lesson runs as `python -m rawlab lesson NAME --json` in a namespace the
`lab` fixture made (its own loopback), and what it reports is checked against
the kernel: the signal that killed a child, errno names, fds seen after exec,
and the families matrix against socket(2) called here through libc.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import select
import signal
import socket
import subprocess
import sys
from typing import Any

import pytest
from _creds import NOBODY, RAWLAB

from rawlab.lab.netns import Lab, Netns


def lesson_json(ns: Netns, *args: str, prefix: tuple[str, ...] = (),
                exe: tuple[str, ...] = (sys.executable, "-m", "rawlab")) -> dict[str, Any]:
    p = ns.run([*prefix, *exe, "lesson", *args, "--json"], check=False, timeout=60, cwd="/")
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr
    return json.loads(p.stdout)


def by_id(rows: list[dict[str, Any]], key: str = "id") -> dict[str, dict[str, Any]]:
    return {r[key]: r for r in rows}


# --- sigpipe --------------------------------------------------------------------------

def test_sigpipe_kills_by_default_then_epipe(lab: Lab) -> None:
    doc = lesson_json(lab.netns("sigpipe"), "sigpipe")
    assert doc["schema"] == "rawlab.lesson.sigpipe/1"
    assert doc["sigpipe_number"] == signal.SIGPIPE == 13
    assert doc["python_disposition"] == "ignored"  # CPython's own startup choice
    local = by_id(doc["local"])
    for endpoint in ("pipe", "socketpair"):
        dead = local[f"{endpoint}.default"]
        assert dead["signal"] == 13 and dead["errno"] is None and dead["exit_code"] is None
        assert os.WIFSIGNALED(dead["wait_status"])
        assert os.WTERMSIG(dead["wait_status"]) == signal.SIGPIPE
        ignored = local[f"{endpoint}.ignored"]
        assert ignored["signal"] is None and ignored["errno"] == "EPIPE"
        assert ignored["exit_code"] == 0 and ignored["pending"] == []
    blocked = local["pipe.blocked"]
    assert blocked["errno"] == "EPIPE" and blocked["pending"] == [signal.SIGPIPE]
    nosig = local["socketpair.nosignal"]
    assert nosig["disposition"] == "default" and nosig["flags"] == socket.MSG_NOSIGNAL
    assert nosig["errno"] == "EPIPE" and nosig["signal"] is None and nosig["exit_code"] == 0

    tcp = by_id(doc["tcp"])
    closed, reset = tcp["tcp.closed"], tcp["tcp.reset"]
    assert closed["eof"] and not closed["linger_zero"]
    assert closed["writes"][0] == {"written": 5, "errno": None}  # taken into our buffer
    assert closed["revents_between"] & select.POLLERR  # the closed peer answered RST
    assert closed["writes"][1] == {"written": None, "errno": "EPIPE"}
    assert reset["linger_zero"] and reset["revents_before"] & select.POLLERR
    assert [w["errno"] for w in reset["writes"]] == ["ECONNRESET", "EPIPE"]


def test_tcp_lesson_with_loopback_down_is_one_line_and_a_fix(lab: Lab) -> None:
    ns = lab.netns("lodown")
    ns.run(["ip", "link", "set", "lo", "down"])
    p = ns.run([RAWLAB, "lesson", "sigpipe"], check=False, timeout=60, cwd="/")
    assert p.returncode == 1
    assert "Traceback" not in p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("rawlab: error: TCP over loopback"), lines
    assert "fix: ip link set lo up" in lines[0]


# --- flags ------------------------------------------------------------------------------

def test_nonblock_eagain_at_once_and_cloexec_absent_after_exec(lab: Lab) -> None:
    ns = lab.netns("flags")
    quick = ("SOCK_NONBLOCK", "fcntl(O_NONBLOCK)", "MSG_DONTWAIT")
    for _attempt in range(3):  # a loaded machine may preempt one run for 20 ms
        doc = lesson_json(ns, "flags")
        recv = by_id(doc["recv"])
        if all(recv[rid]["elapsed_ns"] < 20_000_000 for rid in quick):
            break
    assert doc["sock_nonblock"] == socket.SOCK_NONBLOCK == os.O_NONBLOCK
    assert doc["sock_cloexec"] == socket.SOCK_CLOEXEC
    assert all(r["errno"] == "EAGAIN" for r in recv.values())
    blocking = recv["blocking+SO_RCVTIMEO"]
    assert not blocking["o_nonblock"] and blocking["elapsed_ns"] >= blocking["rcvtimeo_ns"] * 0.9
    for rid in quick:
        assert recv[rid]["elapsed_ns"] < 20_000_000, recv[rid]  # at once, not 100 ms
    assert recv["SOCK_NONBLOCK"]["o_nonblock"] and recv["fcntl(O_NONBLOCK)"]["o_nonblock"]
    assert not recv["MSG_DONTWAIT"]["o_nonblock"]
    assert recv["MSG_DONTWAIT"]["flags"] == socket.MSG_DONTWAIT

    execs = by_id(doc["exec"])
    for eid in ("socket(SOCK_CLOEXEC)", "python:socket.socket()"):
        assert execs[eid]["fd_cloexec"] and not execs[eid]["in_child"], execs[eid]
    for eid in ("socket()", "python:set_inheritable(True)"):
        e = execs[eid]
        assert not e["fd_cloexec"] and e["in_child"], e
        assert e["child_target"] == f"socket:[{e['inode']}]"  # the very same socket
    assert doc["exec_child_pid"] > 0

    views = by_id(doc["fcntl"])
    for vid, v in views.items():
        assert v["o_nonblock"] == ("NONBLOCK" in vid) == bool(v["fl"] & os.O_NONBLOCK)
        assert v["fd_cloexec"] == ("CLOEXEC" in vid) == (not v["inheritable"])
    py = by_id(doc["python_defaults"])
    for vid, v in py.items():
        if vid.startswith("python:"):
            assert v["fd_cloexec"] and not v["inheritable"], v  # PEP 446
    assert py["python:settimeout(1.0)"]["o_nonblock"]
    assert not py["python:socket.socket()"]["o_nonblock"]


# --- families -------------------------------------------------------------------------

def libc_socket_errno(domain: int, stype: int, proto: int) -> str | None:
    """socket(2) through libc, bypassing Python's socket module and rawlab: the check."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.socket(domain, stype, proto)
    if fd >= 0:
        os.close(fd)
        return None
    err = ctypes.get_errno()
    return "EOPNOTSUPP" if err == errno.EOPNOTSUPP else errno.errorcode[err]


def test_families_match_the_kernel(lab: Lab) -> None:
    ns = lab.netns("families")
    doc = lesson_json(ns, "families")
    assert doc["schema"] == "rawlab.lesson.families/1"
    assert doc["euid"] == 0 and doc["cap_net_raw"]
    with ns.entered():
        for p in doc["probes"]:
            want = libc_socket_errno(p["domain"], p["type"], p["protocol"])
            assert p["errno"] == want, p
            assert p["ok"] == (want is None)
    cells = {(p["domain_name"], p["type_name"]): p for p in doc["probes"]}
    assert cells["AF_INET", "SOCK_STREAM"]["ok"]
    assert cells["AF_INET", "SOCK_RAW"]["ok"] and cells["AF_PACKET", "SOCK_RAW"]["ok"]  # root
    assert cells["AF_INET", "SOCK_SEQPACKET"]["errno"] == "ESOCKTNOSUPPORT"
    # whatever this kernel says about Bluetooth, the lesson says the same
    bt = cells["AF_BLUETOOTH", "SOCK_RAW"]
    assert bt["errno"] == libc_socket_errno(31, socket.SOCK_RAW, 1)
    assert {"AF_UNIX", "AF_INET6", "AF_NETLINK", "AF_VSOCK", "AF_CAN", "AF_TIPC", "AF_ALG",
            "AF_XDP"} <= {p["domain_name"] for p in doc["probes"]}


@pytest.mark.usefixtures("nobody_can_run_rawlab")
def test_families_as_nobody_get_eperm_for_raw(lab: Lab) -> None:
    ns = lab.netns("famnobody")
    doc = lesson_json(ns, "families", prefix=tuple(NOBODY), exe=(RAWLAB,))
    assert doc["euid"] == 65534 and not doc["cap_net_raw"]
    cells = {(p["domain_name"], p["type_name"]): p for p in doc["probes"]}
    for dom in ("AF_INET", "AF_INET6", "AF_PACKET"):
        assert cells[dom, "SOCK_RAW"]["errno"] == "EPERM", cells[dom, "SOCK_RAW"]
    assert cells["AF_PACKET", "SOCK_DGRAM"]["errno"] == "EPERM"
    assert cells["AF_INET", "SOCK_STREAM"]["ok"] and cells["AF_UNIX", "SOCK_STREAM"]["ok"]
    assert cells["AF_NETLINK", "SOCK_RAW"]["ok"]  # netlink needs no capability to open
    text = ns.run([*NOBODY, RAWLAB, "lesson", "families"], check=False, cwd="/")
    assert text.returncode == 0 and "EPERM" in text.stdout and "CAP_NET_RAW" in text.stdout


# --- pipe vs socket ------------------------------------------------------------------------

def test_pipe_vs_socket(lab: Lab) -> None:
    ns = lab.netns("pvs")
    mib = 8
    doc = lesson_json(ns, "pipe-vs-socket", "--mib", str(mib))
    d = by_id(doc["direction"])
    assert d["pipe: write(read end)"]["errno"] == "EBADF"
    assert d["pipe: read(write end)"]["errno"] == "EBADF"
    for did in ("pipe: write(write end)", "socketpair: a -> b", "socketpair: b -> a",
                "tcp: client -> server", "tcp: server -> client"):
        assert d[did]["errno"] is None and d[did]["written"] == d[did]["received"] == 4

    buf = by_id(doc["buffering"], "transport")
    page = os.sysconf("SC_PAGESIZE")
    assert buf["pipe"]["pipe_size"] == 16 * page == 65536  # PIPE_DEF_BUFFERS pages
    assert buf["pipe"]["filled"] == 65536 and buf["pipe"]["readable"] == 65536
    wmem = int(ns.run(["cat", "/proc/sys/net/core/wmem_default"]).stdout)
    assert buf["socketpair"]["sndbuf"] == wmem
    for b in buf.values():
        assert b["errno"] == "EAGAIN" and b["filled"] > 0
    assert buf["socketpair"]["readable"] == buf["socketpair"]["filled"]

    m = by_id(doc["boundaries"], "transport")
    for kept in ("unix seqpacket", "unix dgram"):
        assert m[kept]["reads"] == ["hello", "world"] and m[kept]["kept"]
    for merged in ("pipe", "unix stream", "tcp"):
        assert m[merged]["reads"] == ["helloworld"] and not m[merged]["kept"]

    tp = by_id(doc["throughput"], "transport")
    assert set(tp) == {"pipe", "pipe-1m", "socketpair", "tcp"}
    for t in tp.values():
        assert t["complete"] and t["moved"] == t["requested"] == mib << 20
        assert t["elapsed_ns"] > 0 and t["mb_per_s"] > 0
    assert tp["pipe-1m"]["buffer"] == 1 << 20


def test_pipe_vs_socket_bounds_are_usage_errors(lab: Lab) -> None:
    ns = lab.netns("pvsbad")
    p = ns.run([RAWLAB, "lesson", "pipe-vs-socket", "--mib", "0"], check=False, cwd="/")
    assert p.returncode == 2 and "Traceback" not in p.stderr
    helptext = subprocess.run([RAWLAB, "lesson", "--help"], capture_output=True, text=True,
                              check=True).stdout
    listed = [ln.split()[0] for ln in helptext.split("Commands:")[1].splitlines() if ln.strip()]
    assert listed == ["families", "flags", "pipe-vs-socket", "sigpipe"]
