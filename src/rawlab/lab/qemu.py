"""qemu-system-x86_64 for lab guests: the binary, a direct kernel boot's command line,
9p shares, the vhost-vsock device, and whether KVM really runs a guest here.

On the build machine (kernel 6.18 with kvm-pvm) ``/dev/kvm`` opens, yet qemu
aborts at once with vng's ``-cpu host`` ("failed to set MSR 0x10a", exit 134):
:func:`kvm_usable` boots the kernel under KVM to its first panic to find out
and callers fall back to software emulation (TCG).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from rawlab.errors import Exit, RawlabError
from rawlab.lab.guest import Kernel, Machine, describe_status, find_kernel

__all__ = [
    "ACCEL_ENV",
    "QEMU_FIX",
    "boot_argv",
    "kvm_usable",
    "qemu_binary",
    "share",
    "vsock_device",
]

QEMU = "qemu-system-x86_64"
QEMU_FIX = "apt-get install qemu-system-x86 (or ./setup.sh --test)"
ACCEL_ENV = "RAWLAB_VM_ACCEL"

# The KVM probe boots the kernel without a root device: it panics, panic=-1
# reboots and -no-reboot makes qemu exit 0: a few seconds under TCG, about one with a
# KVM that works (bench/README.md, "Lab guests"), so 20 s means "hangs".
KVM_PROBE_TIMEOUT = 20.0

_kvm_cache: dict[Path | None, tuple[bool, str]] = {}


def qemu_binary() -> str | None:
    """qemu-system-x86_64 on PATH, if any."""
    return shutil.which(QEMU)


# -------------------------------------------------------------------- argv


def boot_argv(qemu: str, machine: Machine, append: Sequence[str], *,
              initrd: str | None = None, cpu: str = "host") -> list[str]:
    """qemu booting `machine`'s kernel directly (`append` its command line), no
    devices but the serial console on stdio, exiting instead of rebooting.
    `cpu` is the CPU model under KVM (TCG keeps qemu's default)."""
    argv = [qemu, "-machine", f"pc,accel={machine.accel}"]
    if machine.accel == "kvm":
        argv += ["-cpu", cpu]
    argv += [
        "-m", machine.memory, "-smp", str(machine.cpus), "-nodefaults", "-no-user-config",
        "-display", "none", "-serial", "stdio", "-no-reboot",
        "-kernel", str(machine.kernel.path),
    ]  # fmt: skip
    if initrd is not None:
        argv += ["-initrd", initrd]
    return [*argv, "-append", " ".join(append)]


def share(path: str, tag: str, *, readonly: bool = False) -> list[str]:
    """A host directory the guest mounts over 9p (virtio) as `tag`."""
    ro = ",readonly=on" if readonly else ""
    return ["-virtfs", f"local,path={path},mount_tag={tag},security_model=none{ro},"
                       "multidevs=remap"]


def vsock_device(cid: int) -> list[str]:
    """A vhost-vsock device: the guest is `cid`, this machine CID 2."""
    return ["-device", f"vhost-vsock-pci,guest-cid={cid}"]


# --------------------------------------------------------------------- kvm


def _probe_kvm(kernel: Kernel) -> tuple[bool, str]:
    """Boot `kernel` under KVM to its first panic, as vng would start it."""
    import platform

    if not os.path.exists("/dev/kvm"):
        return False, "no /dev/kvm"
    try:
        os.close(os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC))
    except OSError as exc:
        return False, f"cannot open /dev/kvm: {exc.strerror}"
    if platform.machine() != "x86_64":
        return True, f"/dev/kvm opens (not probed on {platform.machine()})"
    qemu = qemu_binary()
    if qemu is None:
        return False, "qemu-system-x86_64 not found"
    argv = boot_argv(qemu, Machine(kernel, "kvm", "256", 1),
                     ["console=ttyS0", "panic=-1", "loglevel=4", "root=/dev/rawlab-kvm-probe"],
                     cpu="host,topoext=on")  # the CPU model vng uses
    start = time.monotonic()
    # A qemu that aborts may leave a core file in its cwd: keep it out of the repo.
    with tempfile.TemporaryDirectory(prefix="rawlab-kvm-probe-") as scratch:
        try:
            proc = subprocess.run(
                argv, stdin=subprocess.DEVNULL, capture_output=True, cwd=scratch,
                timeout=KVM_PROBE_TIMEOUT, check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            return False, f"a KVM guest did not boot to its first panic in {KVM_PROBE_TIMEOUT:g} s"
        except OSError as exc:
            return False, f"cannot start {qemu}: {exc.strerror}"
    took = time.monotonic() - start
    out = (proc.stdout + proc.stderr).decode(errors="replace")
    if proc.returncode == 0:
        return True, f"a KVM guest booted to its first panic in {took:.1f} s"
    lines = [ln.strip() for ln in out.splitlines() if ln.strip()]
    detail = next((ln for ln in lines if "error" in ln.lower()), lines[0] if lines else "")
    return False, (
        f"qemu with KVM exited {describe_status(proc.returncode)} after {took:.2f} s"
        + (f": {detail}" if detail else "")
    )


def kvm_usable(kernel: Kernel | None = None) -> tuple[bool, str]:
    """Whether KVM really runs a stock guest here, and why (cached per process).

    ``RAWLAB_VM_ACCEL=kvm|tcg`` overrides the probe.  The probe boots `kernel`
    (default: :func:`~rawlab.lab.guest.find_kernel`) under KVM with vng's CPU model
    until it panics for want of a root device.  ``/dev/kvm`` existing is not
    enough: on a kvm-pvm host qemu aborts setting MSR 0x10a with ``-cpu host``.
    """
    forced = os.environ.get(ACCEL_ENV, "").strip().lower()
    if forced == "kvm":
        return True, f"{ACCEL_ENV}=kvm"
    if forced == "tcg":
        return False, f"{ACCEL_ENV}=tcg"
    if forced:
        raise RawlabError(
            f"{ACCEL_ENV}={forced!r} is not an accelerator; fix: set it to kvm or tcg, "
            "or unset it to probe",
            Exit.USAGE,
        )
    if kernel is None:
        try:
            kernel = find_kernel()
        except RawlabError as exc:
            return False, f"no kernel to probe KVM with ({exc.message})"
    key = kernel.path
    if key not in _kvm_cache:
        _kvm_cache[key] = _probe_kvm(kernel)
    return _kvm_cache[key]
