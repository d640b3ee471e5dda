"""A small qemu guest with a vhost-vsock device, for real host↔guest vsock.

`rawlab lab vsock-pair` and the `hostguest` test tier use this.  virtme-ng is
far too slow nested (field notes: a vng guest inside a vng guest did not finish
in 12 min), so this boots plain ``qemu-system-x86_64 -kernel vmlinuz -initrd
<initramfs>``: the initramfs holds busybox-static, only the modules needed
(virtio_pci, 9pnet_virtio, 9p, the virtio vsock transport and their deps, taken
from ``/lib/modules/<release>``) and an ``/init`` that

* mounts the host's ``/`` read-only over 9p (``mount_tag=host``),
* mounts proc, sys, dev and a tmpfs on ``/tmp`` and ``/run`` inside it,
* chroots into it and runs the script named by ``rawlab.script=PATH`` on the
  kernel command line (a host path, written by :func:`start_guest`),
* prints :data:`RC_MARKER` with the script's status and powers off.

So the guest runs the host's own programs (the project's virtualenv included)
and sees the host's files, and writes stay in the guest (except ``rwdirs``).
The initramfs is built in Python (newc cpio, uncompressed: unpacking costs less
than decompressing under software emulation) and cached under ``/tmp`` keyed by
kernel release and content.

Measured on the 2-core build machine (software emulation): at the first level
the guest reaches its command in ~4 s and a short command is done in ~12 s.
Nested in the hostguest tier's virtme-ng guest (TCG, whose CPU model has SVM,
so its /dev/kvm works): with KVM the inner guest reaches its command in ~17 s
and a Python start-up over the two 9p layers costs ~25 s; under nested TCG the
boot alone takes ~2 min and each Python start-up ~2.5 min.  ``vm.kvm_usable``'s
20 s probe times out there, so :func:`choose_accel` treats "KVM started but
was slow" as usable.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import lzma
import os
import re
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rawlab.errors import Exit, RawlabError
from rawlab.lab import vm

__all__ = [
    "GUEST_MODULES",
    "RC_MARKER",
    "Entry",
    "NestedGuest",
    "build_initramfs",
    "choose_accel",
    "guest_command_script",
    "init_script",
    "initramfs_entries",
    "module_closure",
    "newc_archive",
    "qemu_argv",
    "start_guest",
    "vhost_vsock_problem",
]

# What the guest loads (with their dependencies, in modules.dep order).
GUEST_MODULES = ("virtio_pci", "9pnet_virtio", "9p", "vmw_vsock_virtio_transport")
RC_MARKER = "__rawlab_nested_rc__"
VHOST_VSOCK = Path("/dev/vhost-vsock")
BUSYBOX_FIX = "apt-get install busybox-static"
QEMU_FIX = "apt-get install qemu-system-x86 (or ./setup.sh --test)"
GUEST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
FIRST_CID = 3  # 0 hypervisor, 1 local, 2 host; -1U is "any"
LAST_CID = 0xFFFF_FFFE

_SAFE_ARG = re.compile(r"^[\w./+@%:-]+$")  # no commas (qemu), spaces (kernel cmdline) ...


# ------------------------------------------------------------------ modules


def _mod_name(path: str) -> str:
    return path.rsplit("/", 1)[-1].split(".ko", 1)[0].replace("-", "_")


def module_closure(modules_dir: Path, names: Sequence[str]) -> list[str]:
    """Paths (relative to `modules_dir`) of `names` and their deps, deps first.

    Built-in modules (``modules.builtin``) are left out.  Raises
    :class:`RawlabError` when one of `names` is neither a module nor built in.
    """
    try:
        dep_text = (modules_dir / "modules.dep").read_text(errors="replace")
    except OSError as exc:
        raise RawlabError(
            f"cannot read {modules_dir / 'modules.dep'}: {exc.strerror}; "
            f"fix: {vm.KERNEL_FIX}, or run depmod",
            Exit.UNSUPPORTED,
        ) from None
    try:
        builtin_text = (modules_dir / "modules.builtin").read_text(errors="replace")
    except OSError:
        builtin_text = ""
    builtin = {_mod_name(ln.strip()) for ln in builtin_text.splitlines() if ln.strip()}
    deps: dict[str, tuple[str, list[str]]] = {}  # name -> (path, dep paths)
    for line in dep_text.splitlines():
        if ":" not in line:
            continue
        path, rest = line.split(":", 1)
        deps[_mod_name(path.strip())] = (path.strip(), rest.split())

    order: list[str] = []
    seen: set[str] = set()

    def visit(path: str) -> None:
        if path in seen:
            return
        seen.add(path)
        for dep in deps.get(_mod_name(path), (path, []))[1]:
            visit(dep)
        order.append(path)

    for name in names:
        key = name.replace("-", "_")
        if key in deps:
            visit(deps[key][0])
        elif key not in builtin:
            raise RawlabError(
                f"kernel modules in {modules_dir} have no {name}; fix: boot a kernel that "
                f"has it (--kernel PATH), e.g. Debian's: {vm.KERNEL_FIX}",
                Exit.UNSUPPORTED,
            )
    return order


def _module_bytes(path: Path) -> bytes:
    """A module file's ELF bytes (busybox insmod takes plain .ko only)."""
    data = path.read_bytes()
    name = path.name
    if name.endswith(".ko.xz"):
        return lzma.decompress(data)
    if name.endswith(".ko.gz"):
        return gzip.decompress(data)
    if name.endswith(".ko.zst"):
        zstd = shutil.which("zstd")
        if zstd is None:
            raise RawlabError(f"{path} is zstd-compressed; fix: apt-get install zstd",
                              Exit.UNSUPPORTED)
        return subprocess.run([zstd, "-dc", str(path)], capture_output=True,
                              check=True).stdout
    return data


# --------------------------------------------------------------- initramfs


@dataclass(frozen=True)
class Entry:
    """One file, directory or symlink in the initramfs."""

    path: str  # inside the archive, no leading "/" (e.g. "bin/busybox")
    mode: int  # full st_mode: S_IFREG | 0o755 ...
    data: bytes = b""  # file contents, or a symlink's target


def init_script(modules: Sequence[str], *, share_tag: str = "host") -> str:
    """The guest's /init: load `modules` (file names under /modules, in order),
    mount the host's / over 9p, chroot and run ``rawlab.script=``, power off."""
    insmods = "\n".join(
        f"insmod /modules/{m} || echo 'rawlab-init: insmod {m} failed'" for m in modules
    )
    return f"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
{insmods}
script=
rwdirs=
keep=
for word in $(cat /proc/cmdline); do
    case "$word" in
        rawlab.script=*) script="${{word#rawlab.script=}}" ;;
        rawlab.rw=*) rwdirs="$rwdirs ${{word#rawlab.rw=}}" ;;
        rawlab.keep=*) keep="$keep ${{word#rawlab.keep=}}" ;;
    esac
done
rc=1
if ! mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144,cache=loose \\
        {share_tag} /newroot; then
    echo "rawlab-init: cannot mount the host's / over 9p (mount_tag={share_tag})"
elif [ -z "$script" ]; then
    echo "rawlab-init: no rawlab.script=PATH on the kernel command line"
else
    # the script may live under the host's /tmp, which a tmpfs hides next
    cp "/newroot$script" /rawlab-run.sh || echo "rawlab-init: cannot read $script"
    for d in proc sys dev; do mount --bind /$d /newroot/$d; done
    mkdir -p /hostro
    mount --bind /newroot /hostro  # the host's tree as it is, before the tmpfs cover it
    mount -t tmpfs tmpfs /newroot/tmp
    mount -t tmpfs tmpfs /newroot/run
    for p in $keep; do
        mkdir -p "/newroot$p"
        mount --bind "/hostro$p" "/newroot$p" || echo "rawlab-init: cannot keep $p"
    done
    cp /rawlab-run.sh /newroot/run/rawlab-run.sh
    n=0
    for d in $rwdirs; do
        mkdir -p "/newroot$d"
        mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 "rw$n" "/newroot$d" \\
            || echo "rawlab-init: cannot mount rw$n on $d"
        n=$((n + 1))
    done
    hostname rawlab-guest
    ip link set lo up 2>/dev/null
    chroot /newroot /usr/bin/env -i PATH="{GUEST_PATH}" HOME=/root TERM=dumb \\
        PYTHONDONTWRITEBYTECODE=1 RAWLAB_NESTED_GUEST=1 /bin/sh /run/rawlab-run.sh </dev/null
    rc=$?
fi
echo "{RC_MARKER} $rc"
sync
poweroff -f
"""


def initramfs_entries(kernel: vm.Kernel, *, busybox: Path | None = None) -> list[Entry]:
    """Everything the initramfs holds: dirs, busybox, /init, the modules."""
    if kernel.modules_dir is None:
        raise RawlabError(
            f"kernel {kernel.release} has no /lib/modules/{kernel.release}; fix: "
            f"{vm.KERNEL_FIX}, or pass --kernel of an installed kernel",
            Exit.UNSUPPORTED,
        )
    bb = busybox or _find_busybox()
    mods = module_closure(kernel.modules_dir, GUEST_MODULES)
    names = [m.rsplit("/", 1)[-1].removesuffix(".xz").removesuffix(".gz")
             .removesuffix(".zst") for m in mods]
    entries = [Entry(d, stat.S_IFDIR | 0o755)
               for d in ("bin", "dev", "proc", "sys", "tmp", "newroot", "modules")]
    entries.append(Entry("bin/busybox", stat.S_IFREG | 0o755, bb.read_bytes()))
    entries.append(Entry("bin/sh", stat.S_IFLNK | 0o777, b"busybox"))
    entries.append(Entry("init", stat.S_IFREG | 0o755, init_script(names).encode()))
    for rel, name in zip(mods, names, strict=True):
        entries.append(Entry(f"modules/{name}", stat.S_IFREG | 0o644,
                             _module_bytes(kernel.modules_dir / rel)))
    return entries


def _find_busybox() -> Path:
    for cand in ("/bin/busybox", "/usr/bin/busybox"):
        p = Path(cand)
        if p.is_file() and _is_static(p):
            return p
    raise RawlabError(f"no statically linked busybox in /bin or /usr/bin; fix: {BUSYBOX_FIX}",
                      Exit.UNSUPPORTED)


def _is_static(path: Path) -> bool:
    """An ELF file without a PT_INTERP program header (no dynamic loader)."""
    try:
        with path.open("rb") as f:
            head = f.read(64)
            if head[:4] != b"\x7fELF" or head[4] != 2:  # 64-bit only
                return False
            phoff = int.from_bytes(head[32:40], "little")
            phentsize = int.from_bytes(head[54:56], "little")
            phnum = int.from_bytes(head[56:58], "little")
            f.seek(phoff)
            table = f.read(phentsize * phnum)
    except OSError:
        return False
    types = (int.from_bytes(table[i:i + 4], "little") for i in range(0, len(table), phentsize))
    return 3 not in types  # PT_INTERP


def newc_archive(entries: Iterable[Entry]) -> bytes:
    """A cpio archive in the kernel's initramfs format ("newc", 070701)."""
    out = io.BytesIO()

    def record(ino: int, name: str, mode: int, data: bytes) -> None:
        nameb = name.encode() + b"\0"
        fields = (ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(nameb), 0)
        out.write(b"070701" + b"".join(b"%08X" % v for v in fields))
        out.write(nameb)
        out.write(b"\0" * (-(110 + len(nameb)) % 4))
        out.write(data)
        out.write(b"\0" * (-len(data) % 4))

    for ino, e in enumerate(entries, start=1):
        record(ino, e.path, e.mode, b"" if stat.S_ISDIR(e.mode) else e.data)
    record(0, "TRAILER!!!", 0, b"")
    out.write(b"\0" * (-out.tell() % 512))
    return out.getvalue()


def build_initramfs(kernel: vm.Kernel, *, busybox: Path | None = None,
                    cache_dir: Path = Path("/tmp")) -> Path:
    """The initramfs for `kernel`, built once and cached in `cache_dir`."""
    entries = initramfs_entries(kernel, busybox=busybox)
    digest = hashlib.sha256()
    for e in entries:
        digest.update(f"{e.path}\0{e.mode}\0{len(e.data)}\0".encode())
        digest.update(e.data)
    path = cache_dir / f"rawlab-nested-{kernel.release}-{digest.hexdigest()[:12]}.cpio"
    if path.is_file():
        return path
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", dir=cache_dir)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(newc_archive(entries))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


# -------------------------------------------------------------------- qemu


def _plain(what: str, value: str) -> str:
    if not _SAFE_ARG.fullmatch(value):
        raise RawlabError(
            f"{what} {value!r} has characters qemu or the kernel command line cannot take "
            "(spaces, commas, quotes ...); fix: use a plain path",
            Exit.USAGE,
        )
    return value


def kept_paths() -> list[Path]:
    """Paths the guest needs that live under /tmp or /run, which its /init covers
    with a tmpfs: this interpreter's environment and the working directory (e.g. a
    checkout cloned under /tmp). /init binds them back from the host's tree."""
    out: list[Path] = []
    for p in (Path(sys.prefix).resolve(), Path.cwd().resolve()):
        if p.parts[1:2] in (("tmp",), ("run",)) and p not in out:
            out.append(p)
    return out


def qemu_argv(
    kernel: vm.Kernel,
    initramfs: Path,
    *,
    cid: int,
    script: Path,
    accel: str,
    memory: str = "512M",
    cpus: int = 1,
    rwdirs: Sequence[Path] = (),
    qemu: str = "qemu-system-x86_64",
) -> list[str]:
    """The qemu command line for one guest (no shell involved)."""
    if accel not in ("kvm", "tcg"):
        raise ValueError(f"accel must be 'kvm' or 'tcg', not {accel!r}")
    if not FIRST_CID <= cid <= LAST_CID:
        raise RawlabError(f"guest CID {cid}: fix: use {FIRST_CID}..{LAST_CID} "
                          "(0-2 are the hypervisor, local and host)", Exit.USAGE)
    if not re.fullmatch(r"\d+[KMGT]?", memory, re.IGNORECASE):
        raise RawlabError(f"memory {memory!r}: fix: use a size like 512M or 2G", Exit.USAGE)
    if cpus < 1:
        raise RawlabError(f"cpus {cpus}: fix: use 1 or more", Exit.USAGE)
    append = ["console=ttyS0", "panic=-1", "quiet", "loglevel=3", "mitigations=off",
              f"rawlab.script={_plain('script', str(script))}"]
    append += [f"rawlab.rw={_plain('rwdir', str(d))}" for d in rwdirs]
    append += [f"rawlab.keep={_plain('path', str(p))}" for p in kept_paths()]
    argv = [qemu, "-machine", f"pc,accel={accel}"]
    if accel == "kvm":
        argv += ["-cpu", "host"]
    argv += [
        "-m", memory, "-smp", str(cpus), "-nodefaults", "-no-user-config",
        "-display", "none", "-serial", "stdio", "-no-reboot",
        "-kernel", _plain("kernel", str(kernel.path)),
        "-initrd", _plain("initramfs", str(initramfs)),
        "-append", " ".join(append),
        "-virtfs", "local,path=/,mount_tag=host,security_model=none,readonly=on,"
                   "multidevs=remap",
    ]  # fmt: skip
    for n, d in enumerate(rwdirs):
        argv += ["-virtfs", f"local,path={_plain('rwdir', str(d))},mount_tag=rw{n},"
                            "security_model=none,multidevs=remap"]
    argv += ["-device", f"vhost-vsock-pci,guest-cid={cid}"]
    return argv


def choose_accel(kernel: vm.Kernel) -> tuple[str, str]:
    """("kvm" or "tcg", why) for a guest of `kernel` on this machine.

    KVM when :func:`rawlab.lab.vm.kvm_usable` says so (``RAWLAB_VM_ACCEL``
    overrides it), and also when its probe only ran out of time: a KVM guest
    that boots slowly (KVM nested on emulated SVM) is still far faster than
    TCG nested in TCG.
    """
    ok, why = vm.kvm_usable(kernel)
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


@dataclass
class NestedGuest:
    """A running (or finished) guest: its console, status and wall clock."""

    proc: subprocess.Popen[bytes]
    cid: int
    accel: str
    kernel: vm.Kernel
    workdir: Path
    started: float = field(default_factory=time.monotonic)
    lines: list[str] = field(default_factory=list)
    seconds: float | None = None
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _reader: threading.Thread | None = None
    _echo: Callable[[str], None] | None = None

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for raw in iter(self.proc.stdout.readline, b""):
            line = raw.decode(errors="replace").rstrip("\r\n").replace("\r", "")
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()
            if self._echo is not None and not line.startswith(RC_MARKER):
                self._echo(line)
        with self._cond:
            self._cond.notify_all()

    @property
    def output(self) -> str:
        """The console so far, without the status marker."""
        with self._cond:
            return "".join(ln + "\n" for ln in self.lines if not ln.startswith(RC_MARKER))

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        """The first console line matching `pattern` (re.search), waiting up to `timeout`."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                for line in self.lines[seen:]:
                    m = rx.search(line)
                    if m:
                        return m
                seen = len(self.lines)
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None
                                 and not (self._reader and self._reader.is_alive())):
                    break
                self._cond.wait(min(left, 0.5))
        raise RawlabError(
            f"guest CID {self.cid}: no console line matched {pattern!r} in {timeout:g} s"
            + ("" if self.running else " (the guest has stopped)") + self._tail(),
            Exit.FAILED,
        )

    def _tail(self, n: int = 8) -> str:
        with self._cond:
            tail = [ln.strip() for ln in self.lines[-n:] if ln.strip()]
        return (": " + " | ".join(tail)) if tail else ""

    def wait(self, timeout: float | None = None) -> int:
        """The command's exit status in the guest, once the guest has powered off.

        Kills the guest and raises when `timeout` passes; raises when qemu died
        before the command finished (a taken CID, no /dev/vhost-vsock ...).
        """
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise RawlabError(
                f"guest CID {self.cid} ({self.accel}) did not finish in {timeout:g} s; it was "
                "killed; fix: raise the timeout, or check the command ends" + self._tail(),
                Exit.FAILED,
            ) from None
        if self._reader is not None:
            self._reader.join(timeout=10)
        if self.seconds is None:
            self.seconds = time.monotonic() - self.started
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
            f"its command finished (qemu exited {rc})" + self._tail(),
            Exit.FAILED,
        )

    def status(self) -> int | None:
        """The command's status when the guest has printed it, else None."""
        with self._cond:
            for line in self.lines:
                if line.startswith(RC_MARKER):
                    return int(line.split()[1])
        return None

    def stop(self) -> None:
        """Kill qemu (SIGTERM, then SIGKILL) if it still runs."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if self.proc.poll() is not None:
                break
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                continue
        if self.seconds is None:
            self.seconds = time.monotonic() - self.started
        if self._reader is not None:
            self._reader.join(timeout=5)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> NestedGuest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_guest(
    cid: int,
    command: str,
    *,
    kernel: vm.Kernel | None = None,
    memory: str = "512M",
    cpus: int = 1,
    rwdirs: Sequence[Path] = (),
    accel: str | None = None,
    echo: Callable[[str], None] | None = None,
    check_device: bool = True,
) -> NestedGuest:
    """Boot a guest with ``vhost-vsock-pci,guest-cid=<cid>`` running `command` (a shell
    string, in the caller's cwd, with this interpreter's bin dir first on PATH).

    Returns at once; the guest sees this machine as CID 2.  `accel` defaults to
    :func:`choose_accel`.  `echo` gets each console line as it arrives.  qemu
    gets SIGKILL when the calling *thread* ends (``setpriv --pdeathsig``), so a
    killed caller leaves no guest holding its CID; still call
    :meth:`NestedGuest.stop` (or use the guest as a context manager).
    """
    if check_device:
        problem = vhost_vsock_problem()
        if problem is not None:
            raise RawlabError(problem, Exit.UNSUPPORTED)
    qemu = shutil.which("qemu-system-x86_64")
    if qemu is None:
        raise RawlabError(f"qemu-system-x86_64 not found; fix: {QEMU_FIX}", Exit.UNSUPPORTED)
    kernel = kernel or vm.find_kernel()
    if accel is None:
        accel = choose_accel(kernel)[0]
    rw = [Path(d).absolute() for d in rwdirs]
    for d in rw:
        if not d.is_dir():
            raise RawlabError(f"rwdir {d} is not a directory; fix: create it first", Exit.USAGE)
    initramfs = build_initramfs(kernel)
    workdir = Path(tempfile.mkdtemp(prefix="rawlab-nested-"))
    script = workdir / "run.sh"
    script.write_text(guest_command_script(command, cwd=Path.cwd(),
                                           bindir=Path(sys.executable).parent))
    argv = qemu_argv(kernel, initramfs, cid=cid, script=script, accel=accel, memory=memory,
                     cpus=cpus, rwdirs=rw, qemu=qemu)
    setpriv = shutil.which("setpriv")  # util-linux: PR_SET_PDEATHSIG survives the exec
    if setpriv is not None:
        argv = [setpriv, "--pdeathsig", "KILL", "--", *argv]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, cwd=workdir, start_new_session=True)
    guest = NestedGuest(proc, cid, accel, kernel, workdir, _echo=echo)
    guest._reader = threading.Thread(target=guest._pump, name=f"rawlab-guest-{cid}",
                                     daemon=True)
    guest._reader.start()
    return guest
