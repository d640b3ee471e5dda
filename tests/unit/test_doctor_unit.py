"""Doctor pieces that need no privilege: capability parsing, the JSON document."""

from __future__ import annotations

import errno
import json

from rawlab import doctor
from rawlab.sockets import vsock

STATUS = """Name:\tpython3
CapInh:\t0000000000000000
CapPrm:\t0000000000002000
CapEff:\t0000000000002000
CapBnd:\t000001ffffffffff
CapAmb:\t0000000000002000
"""


def test_cap_sets_parses_proc_status() -> None:
    sets = doctor.cap_sets(STATUS)
    assert sets["CapEff"] == 1 << 13  # CAP_NET_RAW only
    assert sets["CapAmb"] == 1 << 13
    assert sets["CapBnd"] == 0x1FFFFFFFFFF


def test_capability_rows_with_a_fake_userns_probe(monkeypatch) -> None:
    monkeypatch.setattr(doctor, "cap_sets",
                        lambda text=None: {"CapEff": 1 << 13, "CapBnd": (1 << 41) - 1})
    monkeypatch.setattr(doctor.os, "geteuid", lambda: 1000)

    def refuse(fn, **kw):
        raise OSError(errno.EPERM, "Operation not permitted")

    rows = {c.id: c for c in doctor.capability_checks(probe=refuse)}
    assert rows["cap.net_raw"].status == doctor.OK
    assert rows["cap.net_admin"].status == doctor.NO_PRIVILEGE
    assert "--ambient-caps +net_admin" in rows["cap.net_admin"].fix
    assert rows["userns.self"].status == doctor.NO_PRIVILEGE
    assert "max_user_namespaces" in rows["userns.self"].fix
    assert "userns.unprivileged" not in rows  # non-root: "you" is the unprivileged answer


def test_report_is_the_documented_document() -> None:
    checks = [doctor.Check("a.b", "sockets", "A", doctor.OK, "opens"),
              doctor.Check("c.d", "vsock", "C", doctor.UNSUPPORTED, "no", "modprobe x", "ENODEV")]
    rep = json.loads(json.dumps(doctor.report(checks)))
    assert rep["schema"] == "rawlab.doctor/1"
    assert set(rep) == {"schema", "rawlab", "kernel", "euid", "checks", "summary"}
    assert rep["summary"] == {"checks": 2, "ok": 1, "not_ok": 1}
    assert rep["checks"][1] == {"id": "c.d", "group": "vsock", "title": "C",
                                "status": "unsupported", "detail": "no", "fix": "modprobe x",
                                "errno": "ENODEV", "ok": False}


def test_errname_says_eopnotsupp() -> None:
    assert doctor.errname(errno.EOPNOTSUPP) == "EOPNOTSUPP"
    assert doctor.errname(errno.EPERM) == "EPERM"


def test_module_state_reads_modules_dep(tmp_path, monkeypatch) -> None:
    rel = "6.1.0-99-amd64"
    monkeypatch.setattr(vsock.os, "uname", type("U", (), {"release": rel}))
    d = tmp_path / "lib/modules" / rel
    d.mkdir(parents=True)
    (d / "modules.dep").write_text(
        "kernel/net/vmw_vsock/vsock_loopback.ko.xz: kernel/net/vmw_vsock/vsock.ko.xz\n")
    (tmp_path / "sys/module/vsock").mkdir(parents=True)
    assert vsock.module_state("vsock_loopback", tmp_path) == vsock.ModuleState(
        "vsock_loopback", loaded=False, on_disk=True)
    assert vsock.module_state("vsock", tmp_path).loaded is True
    assert vsock.module_state("nlmon", tmp_path) == vsock.ModuleState("nlmon", False, False)
