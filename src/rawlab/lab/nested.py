"""A small qemu guest with a vhost-vsock device, for real host↔guest vsock.

`rawlab lab vsock-pair` and the `hostguest` test tier use this.  virtme-ng is
far too slow nested (field notes: a vng guest inside a vng guest did not finish
in 12 min), so this boots plain ``qemu-system-x86_64 -kernel vmlinuz -initrd
<initramfs>`` with the busybox initramfs of :mod:`rawlab.lab.initramfs`: its
``/init`` mounts the host's ``/`` read-only over 9p, covers ``/tmp`` and ``/run``
with a tmpfs, runs the script :func:`start_guest` wrote (``rawlab.script=``) in
a chroot and powers off.  So the guest runs the host's own programs (the
project's virtualenv included) and sees the host's files, and writes stay in
the guest (except ``rwdirs``).

Nested in the hostguest tier's virtme-ng guest (TCG, whose CPU model has SVM, so
its /dev/kvm works), KVM works but starts slowly, so ``qemu.kvm_usable``'s probe can
time out there: :func:`choose_accel` treats "KVM started but was slow" as usable.
How long each kind of guest takes on the build machine: bench/README.md, "Lab guests".
"""

from __future__ import annotations

import functools
import os
import shlex
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from rawlab.errors import Exit, RawlabError
from rawlab.lab import qemu
from rawlab.lab.guest import Guest, Kernel, Machine, find_kernel, host_dirs, plain_path
from rawlab.lab.initramfs import RC_MARKER, build_initramfs

__all__ = [
    "NestedGuest",
    "choose_accel",
    "guest_command_script",
    "kept_paths",
    "qemu_argv",
    "start_guest",
    "vhost_vsock_problem",
]

VHOST_VSOCK = Path("/dev/vhost-vsock")
FIRST_CID = 3  # 0 hypervisor, 1 local, 2 host; -1U is "any"
LAST_CID = 0xFFFF_FFFE
BOOT_ARGS = ("console=ttyS0", "panic=-1", "quiet", "loglevel=3", "mitigations=off")

# qemu's option syntax splits on commas, the kernel command line on spaces.
_plain = functools.partial(
    plain_path, cannot="qemu or the kernel command line cannot take (spaces, commas, quotes ...)",
    commas=False)


def kept_paths() -> list[Path]:
    """Paths the guest needs that live under /tmp or /run, which its /init covers
    with a tmpfs: this interpreter's environment and the working directory (e.g. a
    checkout cloned under /tmp). /init binds them back from the host's tree."""
    out: list[Path] = []
    for p in (Path(sys.prefix).resolve(), Path.cwd().resolve()):
        if p.parts[1:2] in (("tmp",), ("run",)) and p not in out:
            out.append(p)
    return out


def qemu_argv(machine: Machine, initramfs: Path, *, cid: int, script: Path,
              binary: str = qemu.QEMU) -> list[str]:
    """The qemu command line for one guest (no shell involved): the host's / read-only
    as 9p ``host``, each of ``machine.rwdirs`` as ``rw<n>``, vhost-vsock as `cid`."""
    if not FIRST_CID <= cid <= LAST_CID:
        raise RawlabError(f"guest CID {cid}: fix: use {FIRST_CID}..{LAST_CID} "
                          "(0-2 are the hypervisor, local and host)", Exit.USAGE)
    append = [*BOOT_ARGS, f"rawlab.script={_plain('script', str(script))}"]
    append += [f"rawlab.rw={_plain('rwdir', str(d))}" for d in machine.rwdirs]
    append += [f"rawlab.keep={_plain('path', str(p))}" for p in kept_paths()]
    _plain("kernel", str(machine.kernel.path))
    argv = qemu.boot_argv(binary, machine, append, initrd=_plain("initramfs", str(initramfs)))
    argv += qemu.share("/", "host", readonly=True)
    for n, d in enumerate(machine.rwdirs):
        argv += qemu.share(_plain("rwdir", str(d)), f"rw{n}")
    return argv + qemu.vsock_device(cid)


def choose_accel(kernel: Kernel) -> tuple[str, str]:
    """("kvm" or "tcg", why) for a guest of `kernel` on this machine.

    KVM when :func:`rawlab.lab.qemu.kvm_usable` says so (``RAWLAB_VM_ACCEL``
    overrides it), and also when its probe only ran out of time: a KVM guest
    that boots slowly (KVM nested on emulated SVM) is still far faster than
    TCG nested in TCG.
    """
    ok, why = qemu.kvm_usable(kernel)
    if ok:
        return "kvm", why
    if "did not boot to its first panic" in why:
        return "kvm", f"{why}, but it started: nested KVM, slow yet faster than emulation"
    return "tcg", why


def guest_command_script(command: str, *, cwd: Path | None = None,
                         bindir: Path | None = None) -> str:
    """The script the guest runs: this interpreter's bin dir first on PATH, the
    caller's cwd (when it exists in the guest), then `command` in its own shell."""
    lines = ["#!/bin/sh"]
    if bindir is not None:
        lines.append(f'PATH={shlex.quote(str(bindir))}:"$PATH"; export PATH')
    if cwd is not None:
        lines.append(f"cd {shlex.quote(str(cwd))} 2>/dev/null || cd /")
    lines.append(f"exec /bin/sh -c {shlex.quote(command)}")
    return "\n".join(lines) + "\n"


def vhost_vsock_problem(dev: Path = VHOST_VSOCK) -> str | None:
    """Why this machine cannot host a vsock guest, or None when it can."""
    if not dev.exists():
        return (f"no {dev} here (the vhost_vsock module is not loaded); fix: modprobe "
                "vhost_vsock, or run inside a lab VM: rawlab lab vm -m vhost_vsock -- "
                "rawlab lab vsock-pair")
    try:
        os.close(os.open(dev, os.O_RDWR | os.O_CLOEXEC))
    except OSError as exc:
        return (f"cannot open {dev}: {exc.strerror}; fix: run as root or join the group "
                f"that owns {dev} (libvirt: add it to cgroup_device_acl)")
    return None


# ------------------------------------------------------------------- guest


class NestedGuest(Guest):
    """A running (or finished) vsock guest: its console, status and wall clock."""

    def __init__(self, argv: Sequence[str], machine: Machine, *, cid: int, workdir: Path,
                 echo: Callable[[str], None] | None = None) -> None:
        super().__init__(argv, machine, marker=RC_MARKER, label=f"guest CID {cid}", echo=echo,
                         cwd=workdir)
        self.cid = cid
        self.workdir = workdir  # holds the guest's run.sh; removed when the guest ends

    def wait(self, timeout: float | None = None) -> int:
        """The command's exit status in the guest, once the guest has powered off.

        Kills the guest and raises when `timeout` passes; raises when qemu died
        before the command finished (a taken CID, no /dev/vhost-vsock ...).
        """
        rc = self.exit_code(timeout)
        if rc is None:
            raise RawlabError(
                f"guest CID {self.cid} ({self.accel}) did not finish in {timeout:g} s; it was "
                "killed; fix: raise the timeout, or check the command ends" + self.tail(),
                Exit.FAILED,
            )
        shutil.rmtree(self.workdir, ignore_errors=True)
        status = self.status()
        if status is not None:
            return status
        out = self.output
        if "unable to set guest cid" in out or "Address already in use" in out:
            raise RawlabError(
                f"guest CID {self.cid} is already taken on this host; fix: pick another "
                "--cid (each running guest needs its own)",
                Exit.UNSUPPORTED,
            )
        if "vhost-vsock" in out and ("No such file" in out or "Permission denied" in out):
            raise RawlabError(f"qemu could not open {VHOST_VSOCK}: "
                              + (vhost_vsock_problem() or out.strip()), Exit.UNSUPPORTED)
        raise RawlabError(
            f"guest CID {self.cid} ({self.accel}, kernel {self.kernel.release}) stopped before "
            f"its command finished (qemu exited {rc})" + self.tail(),
            Exit.FAILED,
        )

    def stop(self) -> None:
        """Kill qemu (SIGTERM, then SIGKILL) if it still runs."""
        super().stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def start_guest(
    cid: int,
    command: str,
    *,
    kernel: Kernel | None = None,
    memory: str = "512M",
    cpus: int = 1,
    rwdirs: Sequence[Path] = (),
    accel: str | None = None,
    echo: Callable[[str], None] | None = None,
) -> NestedGuest:
    """Boot a guest with ``vhost-vsock-pci,guest-cid=<cid>`` running `command` (a shell
    string, in the caller's cwd, with this interpreter's bin dir first on PATH).

    Returns at once; the guest sees this machine as CID 2.  `accel` defaults to
    :func:`choose_accel`.  `echo` gets each console line as it arrives.  qemu
    gets SIGKILL when the calling *thread* ends (``setpriv --pdeathsig``), so a
    killed caller leaves no guest holding its CID; still call
    :meth:`NestedGuest.stop` (or use the guest as a context manager).
    """
    problem = vhost_vsock_problem()
    if problem is not None:
        raise RawlabError(problem, Exit.UNSUPPORTED)
    binary = qemu.qemu_binary()
    if binary is None:
        raise RawlabError(f"qemu-system-x86_64 not found; fix: {qemu.QEMU_FIX}",
                          Exit.UNSUPPORTED)
    kernel = kernel or find_kernel()
    if accel is None:
        accel = choose_accel(kernel)[0]
    machine = Machine(kernel, accel, memory, cpus, host_dirs(rwdirs))
    initramfs = build_initramfs(kernel)
    workdir = Path(tempfile.mkdtemp(prefix="rawlab-nested-"))
    try:
        script = workdir / "run.sh"
        script.write_text(guest_command_script(command, cwd=Path.cwd(),
                                               bindir=Path(sys.executable).parent))
        argv = qemu_argv(machine, initramfs, cid=cid, script=script, binary=binary)
        setpriv = shutil.which("setpriv")  # util-linux: PR_SET_PDEATHSIG survives the exec
        if setpriv is not None:
            argv = [setpriv, "--pdeathsig", "KILL", "--", *argv]
        return NestedGuest(argv, machine, cid=cid, workdir=workdir, echo=echo)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
