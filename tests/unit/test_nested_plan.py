"""The pure parts of the nested-guest launcher (rawlab.lab.nested) and `lab vsock-pair`.

No guest is booted and no vsock socket is opened here; tests/hostguest does that.
"""

from __future__ import annotations

import os
import shlex
import stat
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from rawlab import cli
from rawlab.errors import Exit, RawlabError
from rawlab.lab import guest, initramfs, nested, qemu

pytestmark = pytest.mark.unit

DEP = """\
kernel/drivers/virtio/virtio.ko:
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio_pci_legacy_dev.ko:
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko \
kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio.ko \
kernel/drivers/virtio/virtio_ring.ko
kernel/net/9p/9pnet.ko:
kernel/net/9p/9pnet_virtio.ko: kernel/net/9p/9pnet.ko kernel/drivers/virtio/virtio.ko \
kernel/drivers/virtio/virtio_ring.ko
kernel/fs/netfs/netfs.ko:
kernel/fs/fscache/fscache.ko: kernel/fs/netfs/netfs.ko
kernel/fs/9p/9p.ko: kernel/net/9p/9pnet.ko kernel/fs/fscache/fscache.ko kernel/fs/netfs/netfs.ko
kernel/net/vmw_vsock/vsock.ko:
kernel/net/vmw_vsock/vmw_vsock_virtio_transport_common.ko: kernel/net/vmw_vsock/vsock.ko
kernel/net/vmw_vsock/vmw_vsock_virtio_transport.ko: \
kernel/net/vmw_vsock/vmw_vsock_virtio_transport_common.ko kernel/net/vmw_vsock/vsock.ko \
kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
""".replace("\\\n", "")


def fake_kernel(tmp_path: Path, dep: str = DEP, builtin: str = "") -> guest.Kernel:
    mods = tmp_path / "lib/modules/6.1.0-9-amd64"
    mods.mkdir(parents=True)
    (mods / "modules.dep").write_text(dep)
    (mods / "modules.builtin").write_text(builtin)
    for line in dep.splitlines():
        rel = line.split(":", 1)[0]
        (mods / rel).parent.mkdir(parents=True, exist_ok=True)
        (mods / rel).write_bytes(b"\x7fELF" + rel.encode())
    image = tmp_path / "vmlinuz-6.1.0-9-amd64"
    image.write_bytes(b"\0" * 64)
    return guest.Kernel(image, "6.1.0-9-amd64", mods)


def fake_busybox(tmp_path: Path) -> Path:
    bb = tmp_path / "busybox"
    bb.write_bytes(b"\x7fELF static busybox")
    return bb


# ------------------------------------------------------------- modules


def test_module_closure_puts_dependencies_first(tmp_path: Path) -> None:
    k = fake_kernel(tmp_path)
    assert k.modules_dir is not None
    order = initramfs.module_closure(k.modules_dir, initramfs.GUEST_MODULES)
    names = [p.rsplit("/", 1)[-1] for p in order]
    assert len(names) == len(set(names)) == 13
    for mod, deps in (("virtio_pci.ko", ["virtio.ko", "virtio_ring.ko"]),
                      ("9p.ko", ["9pnet.ko", "fscache.ko", "netfs.ko"]),
                      ("fscache.ko", ["netfs.ko"]),
                      ("vmw_vsock_virtio_transport.ko",
                       ["vsock.ko", "vmw_vsock_virtio_transport_common.ko"])):
        assert all(names.index(d) < names.index(mod) for d in deps), names


def test_builtin_modules_are_skipped_and_missing_ones_refused(tmp_path: Path) -> None:
    dep = "kernel/net/vmw_vsock/vsock.ko:\n"
    k = fake_kernel(tmp_path, dep, builtin="kernel/drivers/virtio/virtio_pci.ko\n")
    assert k.modules_dir is not None
    assert initramfs.module_closure(k.modules_dir, ["virtio_pci", "vsock"]) == [
        "kernel/net/vmw_vsock/vsock.ko"]
    with pytest.raises(RawlabError, match="no 9pnet_virtio") as info:
        initramfs.module_closure(k.modules_dir, ["9pnet_virtio"])
    assert info.value.code == Exit.UNSUPPORTED


def test_compressed_modules_are_unpacked(tmp_path: Path) -> None:
    import gzip
    import lzma

    (tmp_path / "a.ko.xz").write_bytes(lzma.compress(b"\x7fELF-a"))
    (tmp_path / "b.ko.gz").write_bytes(gzip.compress(b"\x7fELF-b"))
    assert initramfs._module_bytes(tmp_path / "a.ko.xz") == b"\x7fELF-a"
    assert initramfs._module_bytes(tmp_path / "b.ko.gz") == b"\x7fELF-b"


# ----------------------------------------------------------- initramfs


def test_initramfs_holds_busybox_init_and_only_the_modules(tmp_path: Path) -> None:
    k = fake_kernel(tmp_path)
    entries = initramfs.initramfs_entries(k, busybox=fake_busybox(tmp_path))
    by_path = {e.path: e for e in entries}
    assert by_path["init"].mode == stat.S_IFREG | 0o755
    assert by_path["bin/busybox"].data == b"\x7fELF static busybox"
    assert stat.S_ISLNK(by_path["bin/sh"].mode) and by_path["bin/sh"].data == b"busybox"
    for d in ("dev", "proc", "sys", "newroot", "modules"):
        assert stat.S_ISDIR(by_path[d].mode)
    mods = sorted(p.removeprefix("modules/") for p in by_path if p.startswith("modules/"))
    assert len(mods) == 13 and "9p.ko" in mods and "vsock.ko" in mods
    init = by_path["init"].data.decode()
    # insmod in dependency order, as the script loads them
    loads = [ln.split()[1].removeprefix("/modules/") for ln in init.splitlines()
             if ln.startswith("insmod ")]
    assert sorted(loads) == mods
    assert loads.index("netfs.ko") < loads.index("fscache.ko") < loads.index("9p.ko")


def test_init_script_mounts_host_read_only_chroots_and_reports(tmp_path: Path) -> None:
    text = initramfs.init_script(["virtio.ko", "9p.ko"])
    assert text.startswith("#!/bin/busybox sh\n")
    assert "mount -t 9p -o trans=virtio,version=9p2000.L,ro" in text
    assert " host /newroot" in text
    assert "rawlab.script=*" in text and "chroot /newroot" in text
    assert "mount -t tmpfs tmpfs /newroot/tmp" in text
    # the script is read before a tmpfs hides the host's /tmp
    assert text.index('cp "/newroot$script"') < text.index("mount -t tmpfs tmpfs /newroot/tmp")
    assert f'echo "{initramfs.RC_MARKER} $rc"' in text and text.rstrip().endswith("poweroff -f")
    assert text.index("insmod /modules/virtio.ko") < text.index("insmod /modules/9p.ko")


def test_init_script_is_valid_shell(tmp_path: Path) -> None:
    script = tmp_path / "init"
    script.write_text(initramfs.init_script(["virtio.ko"]))
    subprocess.run(["sh", "-n", str(script)], check=True)


def test_newc_archive_is_read_by_cpio(tmp_path: Path) -> None:
    entries = [initramfs.Entry("bin", stat.S_IFDIR | 0o755),
               initramfs.Entry("bin/tool", stat.S_IFREG | 0o755, b"#!/bin/sh\necho hi\n"),
               initramfs.Entry("bin/sh", stat.S_IFLNK | 0o777, b"tool"),
               initramfs.Entry("odd", stat.S_IFREG | 0o644, b"x" * 5)]
    data = initramfs.newc_archive(entries)
    assert data.startswith(b"070701") and len(data) % 512 == 0
    if not Path("/usr/bin/cpio").exists():
        pytest.skip("cpio not installed (apt-get install cpio)")
    out = tmp_path / "x"
    out.mkdir()
    subprocess.run(["cpio", "-idm", "--quiet"], input=data, cwd=out, check=True)
    assert (out / "bin/tool").read_bytes() == b"#!/bin/sh\necho hi\n"
    assert os.readlink(out / "bin/sh") == "tool"
    assert (out / "odd").read_bytes() == b"xxxxx"
    listing = subprocess.run(["cpio", "-t", "--quiet"], input=data, capture_output=True,
                             check=True).stdout.decode().split()
    assert listing == ["bin", "bin/tool", "bin/sh", "odd"]


def test_initramfs_is_cached_by_release_and_content(tmp_path: Path) -> None:
    k = fake_kernel(tmp_path)
    bb = fake_busybox(tmp_path)
    first = initramfs.build_initramfs(k, busybox=bb, cache_dir=tmp_path)
    assert first.name.startswith("rawlab-nested-6.1.0-9-amd64-") and first.suffix == ".cpio"
    mtime = first.stat().st_mtime_ns
    assert initramfs.build_initramfs(k, busybox=bb, cache_dir=tmp_path) == first
    assert first.stat().st_mtime_ns == mtime
    bb.write_bytes(b"\x7fELF another busybox")
    assert initramfs.build_initramfs(k, busybox=bb, cache_dir=tmp_path) != first


def test_static_busybox_check() -> None:
    assert initramfs._is_static(Path("/bin/sh")) is False  # dynamically linked
    if Path("/bin/busybox").exists():
        assert initramfs._is_static(Path("/bin/busybox")) is True


# ---------------------------------------------------------------- qemu


def test_qemu_argv_tcg(tmp_path: Path) -> None:
    k = fake_kernel(tmp_path)
    argv = nested.qemu_argv(guest.Machine(k, "tcg", "512M", 1), Path("/tmp/i.cpio"), cid=7,
                            script=Path("/tmp/w/run.sh"), binary="qemu")
    assert argv[:3] == ["qemu", "-machine", "pc,accel=tcg"] and "-cpu" not in argv
    assert argv[argv.index("-kernel") + 1] == str(k.path)
    assert argv[argv.index("-initrd") + 1] == "/tmp/i.cpio"
    assert argv[argv.index("-m") + 1] == "512M" and argv[argv.index("-smp") + 1] == "1"
    assert argv[-2:] == ["-device", "vhost-vsock-pci,guest-cid=7"]
    virtfs = argv[argv.index("-virtfs") + 1]
    assert virtfs == ("local,path=/,mount_tag=host,security_model=none,readonly=on,"
                      "multidevs=remap")
    append = argv[argv.index("-append") + 1].split()
    assert "console=ttyS0" in append and "panic=-1" in append
    assert "rawlab.script=/tmp/w/run.sh" in append
    assert "-no-reboot" in argv and "-nodefaults" in argv


def test_qemu_argv_kvm_and_rwdirs(tmp_path: Path) -> None:
    k = fake_kernel(tmp_path)
    argv = nested.qemu_argv(guest.Machine(k, "kvm", "512M", 1, (Path("/tmp/out"),)), Path("/i"),
                            cid=3, script=Path("/s"))
    assert argv[argv.index("-cpu") + 1] == "host" and "pc,accel=kvm" in argv
    assert "local,path=/tmp/out,mount_tag=rw0,security_model=none,multidevs=remap" in argv
    assert "rawlab.rw=/tmp/out" in argv[argv.index("-append") + 1].split()


@pytest.mark.parametrize("kw, match", [
    ({"cid": 2}, "guest CID 2"),
    ({"cid": 0xFFFF_FFFF}, "guest CID"),
    ({"memory": "lots"}, "memory"),
    ({"cpus": 0}, "cpus"),
    ({"script": Path("/tmp/a b/run.sh")}, "plain path"),
    ({"rwdirs": (Path("/tmp/a,b"),)}, "plain path"),
])
def test_qemu_argv_refuses_bad_values(tmp_path: Path, kw: dict[str, object], match: str) -> None:
    k = fake_kernel(tmp_path)
    machine = {"memory": "512M", "cpus": 1, "rwdirs": ()}
    args: dict[str, object] = {"cid": 7, "script": Path("/s")}
    for key, value in kw.items():
        (machine if key in machine else args)[key] = value  # type: ignore[index]
    with pytest.raises(RawlabError, match=match) as info:
        nested.qemu_argv(guest.Machine(k, "tcg", **machine), Path("/i"),  # type: ignore[arg-type]
                         **args)  # type: ignore[arg-type]
    assert info.value.code == Exit.USAGE


def test_guest_command_script(tmp_path: Path) -> None:
    text = nested.guest_command_script("echo 'a b' && exit 3", cwd=Path("/work/x"),
                                       bindir=Path("/v/bin"))
    assert text.startswith("#!/bin/sh\n")
    assert 'PATH=/v/bin:"$PATH"' in text
    assert "cd /work/x 2>/dev/null || cd /" in text
    assert f"exec /bin/sh -c {shlex.quote(chr(39).join(['echo ', 'a b', ' && exit 3']))}" in text
    script = tmp_path / "run.sh"
    script.write_text(nested.guest_command_script("echo \"$0\" 'a b'; exit 3"))
    res = subprocess.run(["sh", str(script)], capture_output=True, text=True, check=False)
    assert res.returncode == 3 and res.stdout == "/bin/sh a b\n"


# ------------------------------------------------------- lab vsock-pair


def test_vhost_vsock_problem(tmp_path: Path) -> None:
    why = nested.vhost_vsock_problem(tmp_path / "vhost-vsock")
    assert why is not None and "modprobe vhost_vsock" in why
    assert "rawlab lab vm -m vhost_vsock -- rawlab lab vsock-pair" in why


def test_vsock_pair_without_vhost_vsock_says_what_to_do(monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: Path) -> None:
    monkeypatch.setattr(nested, "VHOST_VSOCK", tmp_path / "vhost-vsock")
    monkeypatch.setattr(nested.vhost_vsock_problem, "__defaults__", (tmp_path / "vhost-vsock",))

    def boom(*a: object, **k: object) -> None:
        raise AssertionError("no guest may start")

    monkeypatch.setattr(nested, "start_guest", boom)
    res = CliRunner().invoke(cli.main, ["lab", "vsock-pair", "--cid", "7"])
    assert res.exit_code == Exit.UNSUPPORTED
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "modprobe vhost_vsock" in lines[0], res.output


def test_vsock_pair_help_and_cid_range() -> None:
    res = CliRunner().invoke(cli.main, ["lab", "vsock-pair", "--help"])
    assert res.exit_code == 0 and "--cid" in res.output and "vhost-vsock" in res.output
    res = CliRunner().invoke(cli.main, ["lab", "vsock-pair", "--cid", "2"])
    assert res.exit_code == Exit.USAGE


@pytest.mark.parametrize("probe, want", [
    ((True, "a KVM guest booted to its first panic in 1.0 s"), "kvm"),
    ((False, "qemu with KVM exited on SIGABRT after 0.03 s: failed to set MSR"), "tcg"),
    ((False, "no /dev/kvm"), "tcg"),
    # the message qemu._probe_kvm gives on its timeout: KVM runs, slowly (nested)
    ((False, f"a KVM guest did not boot to its first panic in {qemu.KVM_PROBE_TIMEOUT:g} s"),
     "kvm"),
])
def test_choose_accel(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                      probe: tuple[bool, str], want: str) -> None:
    monkeypatch.setattr(qemu, "kvm_usable", lambda kernel=None: probe)
    assert nested.choose_accel(fake_kernel(tmp_path))[0] == want


def test_kvm_probe_timeout_message_is_what_choose_accel_reads() -> None:
    import inspect

    assert "did not boot to its first panic in" in inspect.getsource(qemu._probe_kvm)
