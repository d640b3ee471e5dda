"""Every claim of privileges.md, exercised: root, nobody, ambient capabilities,
file capabilities on an interpreter copy, and `unshare -rn`."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _creds import NOBODY, by_id, doctor_json, run

pytestmark = pytest.mark.usefixtures("nobody_can_run_rawlab")
RAW_ROWS = ("socket.inet.raw", "socket.inet6.raw", "socket.packet")


def test_root_may_open_raw_and_packet_sockets() -> None:
    rows = by_id(doctor_json([], "sockets", "capabilities"))
    for r in RAW_ROWS:
        assert rows[r]["status"] == "ok", rows[r]
    for cap in ("cap.net_raw", "cap.net_admin", "cap.sys_admin"):
        assert rows[cap]["status"] == "ok"
    assert rows["socket.netlink.route"]["status"] == "ok"
    assert rows["socket.unix"]["status"] == "ok"


def test_nobody_gets_eperm_and_the_fix() -> None:
    root = by_id(doctor_json([], "sockets", "capabilities", "system"))
    doc = doctor_json(NOBODY, "sockets", "capabilities", "system")
    assert doc["euid"] == 65534
    rows = by_id(doc)
    for r in RAW_ROWS:
        assert rows[r]["status"] == "no-privilege"
        assert rows[r]["errno"] == "EPERM"
        assert "CAP_NET_RAW" in rows[r]["detail"]
        assert "privileges.md" in rows[r]["fix"]
        assert root[r]["status"] == "ok"  # a different, true answer as root
    for cap in ("cap.net_raw", "cap.net_admin", "cap.sys_admin"):
        assert rows[cap]["status"] == "no-privilege"
        assert "--ambient-caps" in rows[cap]["fix"]
    # netlink needs no privilege to open
    assert rows["socket.netlink.route"]["status"] == "ok"
    # named namespaces need CAP_SYS_ADMIN
    assert rows["system.netns"]["status"] == "no-privilege"
    assert "CAP_SYS_ADMIN" in rows["system.netns"]["fix"]


def test_nobody_text_report_has_fixes_and_no_traceback() -> None:
    p = run(NOBODY, ["doctor"])
    assert p.returncode == 0
    assert "Traceback" not in p.stdout + p.stderr
    assert "no-privilege" in p.stdout
    assert "fix: run as root, or give cap_net_raw" in p.stdout
    assert "not available (each row says how to get it)" in p.stdout


def test_ambient_capability_via_setpriv() -> None:
    prefix = [*NOBODY, "--inh-caps=+net_raw", "--ambient-caps=+net_raw"]
    rows = by_id(doctor_json(prefix, "sockets", "capabilities"))
    for r in RAW_ROWS:
        assert rows[r]["status"] == "ok"
    assert rows["cap.net_raw"]["status"] == "ok"
    assert rows["cap.net_admin"]["status"] == "no-privilege"


def test_ambient_capability_via_capsh() -> None:
    prefix = ["capsh", "--caps=cap_net_raw+eip cap_setpcap,cap_setuid,cap_setgid+ep",
              "--keep=1", "--user=nobody", "--addamb=cap_net_raw", "--"]
    p = subprocess.run([*prefix, "-c", f"{sys.executable} -m rawlab doctor --json "
                        "--only capabilities"], capture_output=True, text=True, check=False,
                       cwd="/")
    assert p.returncode == 0, p.stderr
    import json

    rows = by_id(json.loads(p.stdout))
    assert rows["cap.net_raw"]["status"] == "ok"
    assert rows["cap.net_admin"]["status"] == "no-privilege"


def test_file_capability_on_a_dedicated_interpreter_copy(open_tmp: Path) -> None:
    tmp_path = open_tmp
    real = Path(sys.executable).resolve()
    copy = tmp_path / "python-netraw"
    shutil.copy2(real, copy)
    subprocess.run(["setcap", "cap_net_raw+ep", str(copy)], check=True)
    assert "cap_net_raw=ep" in subprocess.run(["getcap", str(copy)], capture_output=True,
                                              text=True, check=True).stdout
    probe = ("import socket; socket.socket(socket.AF_INET, socket.SOCK_RAW, 6); "
             "print(open('/proc/self/status').read().split('CapEff:')[1].split()[0])")
    ok = subprocess.run([*NOBODY, str(copy), "-c", probe], capture_output=True, text=True,
                        check=False)
    assert ok.returncode == 0, ok.stderr
    assert int(ok.stdout.strip(), 16) == 1 << 13  # exactly CAP_NET_RAW, for ANY script
    plain = subprocess.run([*NOBODY, str(real), "-c", probe], capture_output=True, text=True,
                           check=False)
    assert plain.returncode != 0 and "PermissionError" in plain.stderr
    # setcap refuses a symlink such as .venv/bin/python: it would have to change the target
    link = tmp_path / "link"
    link.symlink_to(real)
    bad = subprocess.run(["setcap", "cap_net_raw+ep", str(link)], capture_output=True,
                         text=True, check=False)
    assert bad.returncode != 0


def test_unshare_rn_gives_raw_sockets_in_an_empty_namespace() -> None:
    prefix = [*NOBODY, "unshare", "-rn"]
    doc = doctor_json(prefix, "sockets", "capabilities")
    rows = by_id(doc)
    assert doc["euid"] == 0  # root, but only in the new user namespace
    for r in RAW_ROWS:
        assert rows[r]["status"] == "ok"
    assert rows["cap.net_raw"]["status"] == "ok"
    links = subprocess.run([*prefix, "ip", "-o", "link", "show"], capture_output=True,
                           text=True, check=True).stdout.splitlines()
    assert [line.split(":")[1].strip() for line in links] == ["lo"]


def test_userns_row_answers_for_unprivileged_users_when_run_as_root() -> None:
    rows = by_id(doctor_json([], "capabilities"))
    for cid in ("userns.self", "userns.unprivileged"):
        assert rows[cid]["status"] == "ok"
        assert "CAP_NET_RAW, CAP_NET_ADMIN" in rows[cid]["detail"]


def test_cleanup_as_nobody_needs_sys_admin() -> None:
    import os
    import re

    from rawlab.lab import netns

    # a namespace whose owner pid cannot exist (beyond pid_max) looks abandoned
    name = f"rl-stale-{4194304 + 1}-beef"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        assert netns.NAME_RE.match(name)
        p = run(NOBODY, ["lab", "cleanup"])
        assert p.returncode == 3, p.stderr
        assert re.fullmatch(r"rawlab: error: remove network namespace rl-stale-\S+ failed: "
                            r"needs CAP_SYS_ADMIN \(E(PERM|ACCES)\); fix: .*privileges\.md\)\n",
                            p.stderr), p.stderr
        assert name in netns.list_namespaces()  # nothing was half-removed
        p = run([], ["lab", "cleanup"])
        assert p.returncode == 0 and name in p.stdout
        assert os.path.exists(f"/run/netns/{name}") is False
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)


def test_read_needs_no_privilege(open_tmp: Path) -> None:
    from scapy.all import IP, TCP, Ether, wrpcap

    f = open_tmp / "x.pcap"
    wrpcap(str(f), [Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP() / TCP()])
    f.chmod(0o644)
    p = run(NOBODY, ["read", str(f)])
    assert p.returncode == 0, p.stderr
    assert "Flags [S]" in p.stdout
    f.chmod(0o600)
    p = run(NOBODY, ["read", str(f)])
    assert p.returncode == 5
    assert p.stderr == f"rawlab: error: {f}: cannot open: Permission denied\n"


def test_raw_needs_net_raw_and_handshake_net_admin() -> None:
    p = run(NOBODY, ["raw", "ping", "127.0.0.1", "-c", "1"])
    assert p.returncode == 3
    assert p.stderr == ("rawlab: error: open AF_INET SOCK_RAW socket (protocol 1) failed: needs "
                        "CAP_NET_RAW (EPERM); fix: run as root, or grant cap_net_raw "
                        "(see privileges.md)\n")
    with_raw = [*NOBODY, "--inh-caps=+net_raw", "--ambient-caps=+net_raw"]
    p = run(with_raw, ["raw", "handshake", "127.0.0.1", "9"])
    assert p.returncode == 3
    assert "needs CAP_NET_ADMIN" in p.stderr and p.stderr.count("\n") == 1
    assert "Traceback" not in p.stderr
