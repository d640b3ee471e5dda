"""The pure parts of the VM launcher: kernel choice, guest script, vng argv.

No guest is booted here; tests/vm does that.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rawlab.errors import Exit, RawlabError
from rawlab.lab import guest, qemu, vm

pytestmark = pytest.mark.unit


def fake_root(tmp_path: Path, images: list[str], modules: list[str]) -> Path:
    (tmp_path / "boot").mkdir()
    for rel in images:
        (tmp_path / "boot" / f"vmlinuz-{rel}").write_bytes(b"\0" * 64)
    for rel in modules:
        (tmp_path / "lib" / "modules" / rel).mkdir(parents=True)
    return tmp_path


# ------------------------------------------------------------- find_kernel


def test_running_kernel_wins_when_usable(tmp_path: Path) -> None:
    root = fake_root(
        tmp_path, ["6.1.0-9-amd64", "6.1.0-56-amd64"], ["6.1.0-9-amd64", "6.1.0-56-amd64"]
    )
    k = guest.find_kernel(root=root, running="6.1.0-9-amd64")
    assert k == guest.Kernel(
        root / "boot/vmlinuz-6.1.0-9-amd64", "6.1.0-9-amd64", root / "lib/modules/6.1.0-9-amd64"
    )


def test_newest_installed_with_modules_when_running_unusable(tmp_path: Path) -> None:
    # the running kernel has modules but no image (a VM's own kernel); 6.10 has no modules
    root = fake_root(
        tmp_path,
        ["6.1.0-9-amd64", "6.1.0-56-amd64", "6.10.0-1-amd64", "6.1.0-60-amd64.dpkg-tmp"],
        ["6.1.0-9-amd64", "6.1.0-56-amd64", "6.18.44-fc"],
    )
    k = guest.find_kernel(root=root, running="6.18.44-fc")
    assert k.release == "6.1.0-56-amd64"  # natural order: 56 > 9
    assert k.path == root / "boot/vmlinuz-6.1.0-56-amd64"
    assert k.modules_dir == root / "lib/modules/6.1.0-56-amd64"


def test_natural_order_across_minor_versions(tmp_path: Path) -> None:
    rels = ["6.1.0-56-amd64", "6.10.0-1-amd64", "6.9.12-amd64"]
    root = fake_root(tmp_path, rels, rels)
    assert guest.find_kernel(root=root, running="5.0").release == "6.10.0-1-amd64"


def test_no_kernel_says_how_to_get_one(tmp_path: Path) -> None:
    root = fake_root(tmp_path, ["6.1.0-56-amd64"], [])  # image without modules
    with pytest.raises(RawlabError) as err:
        guest.find_kernel(root=root, running="6.18.44-fc")
    assert err.value.code == Exit.UNSUPPORTED
    assert "apt-get install linux-image-amd64" in str(err.value)
    assert "./setup.sh --test" in str(err.value)


def test_no_boot_dir_at_all(tmp_path: Path) -> None:
    with pytest.raises(RawlabError) as err:
        guest.find_kernel(root=tmp_path, running="6.18.44-fc")
    assert err.value.code == Exit.UNSUPPORTED


def test_explicit_path_wins(tmp_path: Path) -> None:
    root = fake_root(tmp_path, ["6.1.0-56-amd64", "6.1.0-9-amd64"], ["6.1.0-56-amd64"])
    k = guest.find_kernel(root / "boot/vmlinuz-6.1.0-9-amd64", root=root, running="6.1.0-56-amd64")
    assert k.release == "6.1.0-9-amd64"
    assert k.modules_dir is None  # none installed for it: the guest finds out


def test_explicit_missing_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(RawlabError) as err:
        guest.find_kernel(tmp_path / "bzImage", root=tmp_path)
    assert err.value.code == Exit.USAGE


def bzimage(path: Path, version: bytes) -> Path:
    img = bytearray(0x1000)
    img[0x202:0x206] = b"HdrS"
    img[0x20E:0x210] = (0x600).to_bytes(2, "little")  # string at 0x600 + 0x200
    img[0x800 : 0x800 + len(version) + 1] = version + b"\0"
    path.write_bytes(bytes(img))
    return path


def test_explicit_build_tree_image_reads_release_from_header(tmp_path: Path) -> None:
    img = bzimage(tmp_path / "bzImage", b"6.12.0-rc1+ (me@box) #3 SMP PREEMPT_DYNAMIC")
    (tmp_path / "lib/modules/6.12.0-rc1+").mkdir(parents=True)
    k = guest.find_kernel(img, root=tmp_path)
    assert k.release == "6.12.0-rc1+"
    assert k.modules_dir == tmp_path / "lib/modules/6.12.0-rc1+"


def test_release_unknown_when_not_a_bzimage(tmp_path: Path) -> None:
    img = tmp_path / "kernel.bin"
    img.write_bytes(b"\x7fELF" + b"\0" * 1000)
    assert guest.kernel_release_from_image(img) is None
    assert guest.find_kernel(img, root=tmp_path).release == "unknown"


def test_missing_modules_reads_dep_and_builtin(tmp_path: Path) -> None:
    mods = tmp_path / "lib/modules/6.1"
    mods.mkdir(parents=True)
    (mods / "modules.dep").write_text(
        "kernel/drivers/net/nlmon.ko: \n"
        "kernel/net/vmw_vsock/vsock_loopback.ko.xz: kernel/net/vmw_vsock/vsock.ko.xz\n"
    )
    (mods / "modules.builtin").write_text("kernel/net/sched/sch-netem.ko\n")
    k = guest.Kernel(tmp_path / "vmlinuz", "6.1", mods)
    assert guest.missing_modules(k, ["nlmon", "vsock-loopback", "sch_netem", "vsockmon"]) == [
        "vsockmon"
    ]
    assert guest.missing_modules(guest.Kernel(k.path, "x", None), ["anything"]) == []


# ------------------------------------------------------------ guest script


def run_script_locally(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=False)


@pytest.mark.parametrize("status", [0, 7, 255])
def test_guest_script_reports_the_commands_own_status(status: int) -> None:
    script = vm.guest_script(f"echo 'it''s'; exit {status}")
    done = run_script_locally(script)
    assert done.returncode == status
    assert done.stdout.splitlines() == ["its", f"{vm.RC_MARKER} {status}"]


def test_guest_script_survives_a_syntax_error_in_the_command() -> None:
    done = run_script_locally(vm.guest_script("if then"))
    assert done.returncode == 2
    assert done.stdout.strip() == f"{vm.RC_MARKER} 2"


def test_guest_script_loads_modules_first() -> None:
    script = vm.guest_script("true", ["nlmon", "vsock_loopback"])
    lines = script.splitlines()
    assert lines[0].startswith("modprobe nlmon || ")
    assert lines[1].startswith("modprobe vsock_loopback || ")
    assert f"exit {vm.NOMOD_STATUS}" in lines[0]


def test_guest_script_refuses_odd_module_names() -> None:
    with pytest.raises(RawlabError):
        vm.guest_script("true", ["nlmon; reboot"])


# -------------------------------------------------------------------- argv

KERNEL = guest.Kernel(Path("/boot/vmlinuz-6.1.0-56-amd64"), "6.1.0-56-amd64", None)


def test_argv_tcg() -> None:
    machine = guest.Machine(KERNEL, "tcg", "2G", 1, (Path("/tmp/out"), Path("/srv/x")))
    argv = vm.vng_argv("SCRIPT", machine, vng="/v/bin/vng", cwd=Path("/work/main"))
    assert argv == [
        "/v/bin/vng", "--run", "/boot/vmlinuz-6.1.0-56-amd64", "--disable-kvm",
        "--memory", "2G", "--cpus", "1", "--cwd", "/work/main",
        "--rwdir", "/tmp/out", "--rwdir", "/srv/x", "--exec", "SCRIPT",
    ]  # fmt: skip


def test_argv_kvm_has_no_disable_flag() -> None:
    argv = vm.vng_argv("S", guest.Machine(KERNEL, "kvm", "1G", 2), vng="vng")
    assert "--disable-kvm" not in argv
    assert argv[-2:] == ["--exec", "S"]
    assert argv[argv.index("--memory") + 1] == "1G"
    assert argv[argv.index("--cpus") + 1] == "2"


@pytest.mark.parametrize(
    "kw",
    [
        {"rwdirs": (Path("/tmp/a b"),)},
        {"rwdirs": (Path("/tmp/a=b"),)},
        {"cwd": Path("/tmp/$(reboot)")},
        {"memory": "1G; reboot"},
        {"cpus": 0},
    ],
)
def test_argv_refuses_what_vng_would_mangle(kw: dict[str, object]) -> None:
    cwd = kw.pop("cwd", None)
    with pytest.raises(RawlabError) as err:
        machine = guest.Machine(KERNEL, "tcg", **{"memory": "1G", "cpus": 2, **kw})  # type: ignore[arg-type]
        vm.vng_argv("S", machine, vng="vng", cwd=cwd)  # type: ignore[arg-type]
    assert err.value.code == Exit.USAGE


def test_child_env_puts_venv_bin_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/usr/bin:/v/bin:/bin")
    monkeypatch.setenv(qemu.ACCEL_ENV, "tcg")
    env = vm._child_env("/v/bin/vng")
    assert env["PATH"] == "/v/bin:/usr/bin:/bin"
    assert qemu.ACCEL_ENV not in env


def test_vng_path_prefers_the_interpreters_bin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "vng"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    assert vm.vng_path() == str(fake)
    fake.unlink()
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    with pytest.raises(RawlabError) as err:
        vm.vng_path()
    assert err.value.code == Exit.UNSUPPORTED
    assert "virtme-ng" in str(err.value)


# --------------------------------------------------------------------- kvm


def test_kvm_env_override_and_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[guest.Kernel] = []

    def probe(kernel: guest.Kernel) -> tuple[bool, str]:
        calls.append(kernel)
        return False, "probe says no"

    monkeypatch.setattr(qemu, "_probe_kvm", probe)
    monkeypatch.setattr(qemu, "_kvm_cache", {})
    monkeypatch.setenv(qemu.ACCEL_ENV, "kvm")
    assert qemu.kvm_usable(KERNEL) == (True, "RAWLAB_VM_ACCEL=kvm")
    monkeypatch.setenv(qemu.ACCEL_ENV, "TCG")
    assert qemu.kvm_usable(KERNEL)[0] is False
    monkeypatch.setenv(qemu.ACCEL_ENV, "hvf")
    with pytest.raises(RawlabError) as err:
        qemu.kvm_usable(KERNEL)
    assert err.value.code == Exit.USAGE
    assert calls == []
    monkeypatch.delenv(qemu.ACCEL_ENV)
    assert qemu.kvm_usable(KERNEL) == (False, "probe says no")
    assert qemu.kvm_usable(KERNEL) == (False, "probe says no")
    assert calls == [KERNEL]  # probed once per process


def test_no_dev_kvm_is_reported_without_starting_qemu(monkeypatch: pytest.MonkeyPatch) -> None:
    real_exists = os.path.exists
    monkeypatch.setattr(os.path, "exists", lambda p: False if p == "/dev/kvm" else real_exists(p))
    monkeypatch.setattr(qemu, "qemu_binary", lambda: pytest.fail("qemu must not start"))
    assert qemu._probe_kvm(KERNEL) == (False, "no /dev/kvm")


def test_a_script_too_long_for_the_kernel_command_line_is_refused() -> None:
    vm.guest_script("echo " + "x" * 500)  # fits
    with pytest.raises(RawlabError, match="too long for the kernel command line"):
        vm.guest_script("echo " + "x" * 2000)
