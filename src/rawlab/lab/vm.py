"""Boot a throwaway virtme-ng guest from Debian's kernel and run one command in it.

The `vm` test tier and ``rawlab lab vm`` use this to reach what the build
machine's own kernel lacks (nlmon, vsockmon, vsock_loopback, netem ...).
The guest sees the host's filesystem copy-on-write (``/`` read-only plus
overlays); only directories passed as ``rwdirs`` are written through to the host.

Measured on the build machine (2 cores, kernel 6.18 with kvm-pvm): a software
(TCG) guest boots, runs a short command and powers off in ~17-20 s.  KVM there
makes qemu abort at once ("failed to set MSR 0x10a", exit 134), so
:func:`kvm_usable` probes it (~40 ms when it fails) and :func:`run` falls back to
``--disable-kvm``.

Pitfalls this module handles:

* ``vng`` starts ``virtme-run`` through ``PATH``: the virtualenv's ``bin/`` goes
  first on the child's ``PATH``.
* ``virtme-run`` crashes when stdin is *closed* (``sys.stdin is None``) and
  falls back to console-only I/O when fds 0-2 cannot be reopened; no terminal
  is needed otherwise.  So stdin is always ``/dev/null`` and stdout/stderr one
  pipe, which works under ``setsid`` and in CI without ``script``.
* ``vng`` exits 255 for "qemu/kernel died before the command finished",
  which is also a valid exit code: the guest script prints a marker with the
  command's real status, so a dead guest raises instead of returning 255.
* ``vng`` pastes paths into a shell command line unquoted: paths that are not
  plain (spaces, quotes, ``$``, ``=``) are refused here.
"""

from __future__ import annotations

import base64
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rawlab.errors import Exit, RawlabError

__all__ = [
    "GuestResult",
    "Kernel",
    "find_kernel",
    "guest_script",
    "kernel_release_from_image",
    "kvm_usable",
    "missing_modules",
    "run",
    "vng_argv",
    "vng_path",
]

KERNEL_FIX = "apt-get install linux-image-amd64 (or ./setup.sh --test)"
VNG_FIX = "pip install virtme-ng (or ./setup.sh --test)"
ACCEL_ENV = "RAWLAB_VM_ACCEL"

# Lines the guest script prints so the host can tell the command's own exit
# status from a guest that died, and a missing module from a failing command.
RC_MARKER = "__rawlab_vm_rc__"
NOMOD_MARKER = "__rawlab_vm_nomod__"
NOMOD_STATUS = 97
MAX_SCRIPT_B64 = 1400  # see guest_script(): x86 COMMAND_LINE_SIZE 2048 minus virtme's part

# The KVM probe boots the kernel without a root device: it panics, panic=-1
# reboots and -no-reboot makes qemu exit 0.  Under TCG this takes ~4 s; a KVM
# guest that works takes ~1 s, so 20 s means "hangs".
KVM_PROBE_TIMEOUT = 20.0

_SAFE_PATH = re.compile(r"^[\w./+@%,:-]+$")
_SAFE_MEMORY = re.compile(r"^\d+[KMGT]?$", re.IGNORECASE)
_kvm_cache: dict[Path | None, tuple[bool, str]] = {}


@dataclass(frozen=True)
class Kernel:
    """A bootable kernel image and the modules built for it."""

    path: Path  # e.g. /boot/vmlinuz-6.1.0-56-amd64
    release: str  # e.g. "6.1.0-56-amd64"
    modules_dir: Path | None  # /lib/modules/<release>, None when absent


@dataclass
class GuestResult:
    """What one guest run produced."""

    returncode: int  # the command's own exit status inside the guest
    output: str  # its stdout and stderr, merged
    kernel: Kernel
    accel: str  # "kvm" or "tcg"
    seconds: float  # wall clock: vng start to guest power-off


# ----------------------------------------------------------------- kernels


def _version_key(release: str) -> tuple[tuple[int, int | str], ...]:
    """Natural sort key: 6.1.0-9 < 6.1.0-56 < 6.10.0-1."""
    return tuple(
        (0, int(chunk)) if chunk.isdigit() else (1, chunk)
        for chunk in re.findall(r"\d+|\D+", release)
    )


def kernel_release_from_image(path: Path) -> str | None:
    """The release string an x86 bzImage carries in its setup header, if any."""
    try:
        with path.open("rb") as f:
            head = f.read(0x4000)
            if len(head) < 0x210 or head[0x202:0x206] != b"HdrS":
                return None
            offset = int.from_bytes(head[0x20E:0x210], "little")
            if offset == 0:
                return None
            f.seek(offset + 0x200)
            text = f.read(256).split(b"\0", 1)[0].decode("ascii", "replace")
    except OSError:
        return None
    words = text.split()
    return words[0] if words else None


def _modules_dir(root: Path, release: str) -> Path | None:
    d = root / "lib" / "modules" / release
    return d if d.is_dir() else None


def find_kernel(
    explicit: str | Path | None = None,
    *,
    root: Path = Path("/"),
    running: str | None = None,
) -> Kernel:
    """The kernel a guest should boot.

    An explicit image wins.  Otherwise the running kernel, when its image and
    modules are installed (``/boot/vmlinuz-$(uname -r)``, ``/lib/modules/$(uname -r)``),
    else the newest ``/boot/vmlinuz-<release>`` that has ``/lib/modules/<release>``.
    `root` and `running` (default ``uname -r``) exist for tests.
    """
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            raise RawlabError(
                f"no kernel image at {path}; fix: pass a vmlinuz/bzImage file, "
                f"or omit --kernel to use an installed one ({KERNEL_FIX})",
                Exit.USAGE,
            )
        release = None
        if path.name.startswith("vmlinuz-"):
            release = path.name.removeprefix("vmlinuz-")
        release = release or kernel_release_from_image(path) or "unknown"
        return Kernel(path, release, _modules_dir(root, release))

    boot = root / "boot"
    release = running if running is not None else os.uname().release
    image = boot / f"vmlinuz-{release}"
    mods = _modules_dir(root, release)
    if image.is_file() and mods is not None:
        return Kernel(image, release, mods)

    candidates: list[Kernel] = []
    if boot.is_dir():
        for image in boot.glob("vmlinuz-*"):
            rel = image.name.removeprefix("vmlinuz-")
            if not rel or ".dpkg-" in rel or rel.endswith((".old", ".bak")):
                continue
            mods = _modules_dir(root, rel)
            if image.is_file() and mods is not None:
                candidates.append(Kernel(image, rel, mods))
    if candidates:
        return max(candidates, key=lambda k: _version_key(k.release))
    raise RawlabError(
        f"no kernel to boot a VM: the running kernel {release} has no "
        f"{image} with /lib/modules/{release}, and no other {boot}/vmlinuz-* has its "
        f"modules installed; fix: {KERNEL_FIX}, or pass --kernel PATH",
        Exit.UNSUPPORTED,
    )


def missing_modules(kernel: Kernel, modules: Sequence[str]) -> list[str]:
    """Those of `modules` that `kernel` has neither as a module nor built in.

    Empty when the kernel has no modules directory to check against (the guest
    then finds out).
    """
    if kernel.modules_dir is None:
        return []
    have: set[str] = set()
    for index in ("modules.dep", "modules.builtin"):
        try:
            text = (kernel.modules_dir / index).read_text(errors="replace")
        except OSError:
            return []
        for line in text.splitlines():
            path = line.split(":", 1)[0].strip()
            if not path:
                continue
            name = path.rsplit("/", 1)[-1].split(".ko", 1)[0]
            have.add(name.replace("-", "_"))
    return [m for m in modules if m.replace("-", "_") not in have]


# --------------------------------------------------------------------- kvm


def _qemu_binary() -> str | None:
    return shutil.which("qemu-system-x86_64")


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
    qemu = _qemu_binary()
    if qemu is None:
        return False, "qemu-system-x86_64 not found"
    argv = [
        qemu, "-machine", "accel=kvm", "-cpu", "host,topoext=on",  # what vng uses
        "-m", "256", "-smp", "1", "-nodefaults", "-no-user-config",
        "-display", "none", "-no-reboot", "-serial", "stdio",
        "-kernel", str(kernel.path),
        "-append", "console=ttyS0 panic=-1 loglevel=4 root=/dev/rawlab-kvm-probe",
    ]  # fmt: skip
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
        f"qemu with KVM exited {_describe_status(proc.returncode)} after {took:.2f} s"
        + (f": {detail}" if detail else "")
    )


def _describe_status(rc: int) -> str:
    if rc < 0:
        try:
            return f"on {signal.Signals(-rc).name}"
        except ValueError:
            return f"on signal {-rc}"
    return str(rc)


def kvm_usable(kernel: Kernel | None = None) -> tuple[bool, str]:
    """Whether KVM really runs a stock guest here, and why (cached per process).

    ``RAWLAB_VM_ACCEL=kvm|tcg`` overrides the probe.  The probe boots `kernel`
    (default: :func:`find_kernel`) under KVM with vng's CPU model until it
    panics for want of a root device.  ``/dev/kvm`` existing is not enough: on
    a kvm-pvm host qemu aborts setting MSR 0x10a with ``-cpu host``.
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


# --------------------------------------------------------------------- vng


def vng_path() -> str:
    """The `vng` next to this interpreter (the venv's bin) or on PATH."""
    beside = Path(sys.executable).parent / "vng"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("vng")
    if found:
        return found
    raise RawlabError(
        f"virtme-ng's `vng` not found beside {sys.executable} nor on PATH; fix: {VNG_FIX}",
        Exit.UNSUPPORTED,
    )


def _check_plain(what: str, value: str) -> str:
    # vng builds a shell command line from its options without quoting them.
    if not _SAFE_PATH.fullmatch(value):
        raise RawlabError(
            f"{what} {value!r} has characters vng cannot pass through its shell "
            "(spaces, quotes, $, = ...); fix: use a plain path",
            Exit.USAGE,
        )
    return value


def guest_script(command: str, modules: Sequence[str] = ()) -> str:
    """The shell script the guest runs: load `modules`, run `command`, report its status.

    The command runs in its own ``bash -c`` (virtme-init runs scripts with bash
    too) so that its ``exit`` and syntax errors stay its own; the script then
    prints the status on a marker line the host strips from the output.
    """
    lines = []
    for mod in modules:
        if not re.fullmatch(r"[\w-]+", mod):
            raise RawlabError(f"{mod!r} is not a module name", Exit.USAGE)
        lines.append(f"modprobe {mod} || {{ echo '{NOMOD_MARKER} {mod}'; exit {NOMOD_STATUS}; }}")
    lines.append(f"bash -c {shlex.quote(command)}")
    lines.append("rc=$?")
    lines.append(f'echo "{RC_MARKER} $rc"')
    lines.append('exit "$rc"')
    script = "\n".join(lines)
    encoded = len(base64.b64encode(script.encode()))
    if encoded > MAX_SCRIPT_B64:
        # virtme-ng passes the script base64-encoded on the kernel command line
        # (2048 bytes on x86, ~560 of them its own): a longer one is cut off and
        # the guest idles until the timeout. Refuse it at once instead.
        raise RawlabError(
            f"the guest command is too long for the kernel command line ({encoded} bytes "
            f"encoded, at most {MAX_SCRIPT_B64}); fix: put it in a script file and run that",
            Exit.USAGE)
    return script


def vng_argv(
    script: str,
    *,
    vng: str,
    kernel: Kernel,
    accel: str,
    memory: str = "1G",
    cpus: int = 2,
    rwdirs: Sequence[Path] = (),
    cwd: Path | None = None,
) -> list[str]:
    """The ``vng`` command line for one guest run (no shell involved on our side)."""
    if accel not in ("kvm", "tcg"):
        raise ValueError(f"accel must be 'kvm' or 'tcg', not {accel!r}")
    if not _SAFE_MEMORY.fullmatch(memory):
        raise RawlabError(f"memory {memory!r}: fix: use a size like 512M or 2G", Exit.USAGE)
    if cpus < 1:
        raise RawlabError(f"cpus {cpus}: fix: use 1 or more", Exit.USAGE)
    argv = [vng, "--run", _check_plain("kernel", str(kernel.path))]
    if accel == "tcg":
        argv.append("--disable-kvm")
    argv += ["--memory", memory, "--cpus", str(cpus)]
    if cwd is not None:
        argv += ["--cwd", _check_plain("working directory", str(cwd))]
    for d in rwdirs:
        argv += ["--rwdir", _check_plain("rwdir", str(d))]
    argv += ["--exec", script]
    return argv


def _child_env(vng: str) -> dict[str, str]:
    env = dict(os.environ)
    bindir = str(Path(vng).parent)
    rest = [p for p in env.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin").split(":") if p != bindir]
    env["PATH"] = ":".join([bindir, *rest])
    env.pop(ACCEL_ENV, None)
    return env


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL, the whole process group vng leads (vng, sh, virtme-run, qemu)."""
    for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            continue
        # vng is gone; qemu may linger a moment in the same group.
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run(
    command: str,
    *,
    kernel: Kernel | None = None,
    memory: str = "1G",
    cpus: int = 2,
    rwdirs: Sequence[Path] = (),
    modules: Sequence[str] = (),
    timeout: float = 900,
    echo: Callable[[str], None] | None = None,
) -> GuestResult:
    """Boot one guest, load `modules`, run `command` (a shell string) in the cwd.

    Returns the command's exit status and merged output; `echo` gets each output
    line as it arrives.  Raises :class:`RawlabError` when a module is missing,
    the guest dies before the command finishes, or `timeout` seconds pass (the
    whole qemu process tree is killed first).  Needs no terminal and no stdin.
    """
    kernel = kernel or find_kernel()
    missing = missing_modules(kernel, modules)
    if missing:
        raise RawlabError(
            f"kernel {kernel.release} has no module {', '.join(missing)} in "
            f"{kernel.modules_dir}; fix: boot a kernel that has it (--kernel PATH), "
            f"e.g. Debian's: {KERNEL_FIX}",
            Exit.UNSUPPORTED,
        )
    rw = []
    for d in rwdirs:
        p = Path(d).absolute()
        if not p.is_dir():
            raise RawlabError(f"rwdir {p} is not a directory; fix: create it first", Exit.USAGE)
        rw.append(p)
    usable, _why = kvm_usable(kernel)
    accel = "kvm" if usable else "tcg"
    vng = vng_path()
    argv = vng_argv(
        guest_script(command, modules), vng=vng, kernel=kernel, accel=accel,
        memory=memory, cpus=cpus, rwdirs=rw, cwd=Path.cwd(),
    )  # fmt: skip

    chunks: list[str] = []
    start = time.monotonic()
    proc = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env=_child_env(vng), start_new_session=True,
    )  # fmt: skip

    def pump() -> None:
        assert proc.stdout is not None
        for raw in iter(proc.stdout.readline, b""):
            line = raw.decode(errors="replace")
            chunks.append(line)
            if echo is not None and not line.startswith(RC_MARKER):
                echo(line.rstrip("\n"))

    reader = threading.Thread(target=pump, name="rawlab-vm-output", daemon=True)
    reader.start()
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        reader.join(timeout=5)
        raise RawlabError(
            f"the guest did not finish in {timeout:g} s ({accel}); it was killed; "
            "fix: raise the timeout, or check the command does not wait for input",
            Exit.FAILED,
        ) from None
    except BaseException:
        _kill_group(proc)
        raise
    reader.join(timeout=10)
    # qemu forked by virtme-run may hold the pipe a moment after vng exits.
    seconds = time.monotonic() - start

    status: int | None = None
    nomod: str | None = None
    kept: list[str] = []
    for line in "".join(chunks).splitlines(keepends=True):
        text = line.strip()
        if text.startswith(RC_MARKER):
            status = int(text.split()[1])
            continue
        if text.startswith(NOMOD_MARKER):
            nomod = text.split()[1]
        kept.append(line)
    output = "".join(kept)

    if nomod is not None and rc == NOMOD_STATUS:
        raise RawlabError(
            f"modprobe {nomod} failed inside the guest (kernel {kernel.release}); "
            f"fix: boot a kernel that has it (--kernel PATH), e.g. {KERNEL_FIX}",
            Exit.UNSUPPORTED,
        )
    if status is None:
        tail = " | ".join(ln.strip() for ln in output.splitlines()[-5:] if ln.strip())
        hint = (
            f"; fix: unset {ACCEL_ENV} or set it to tcg"
            if accel == "kvm" and os.environ.get(ACCEL_ENV)
            else ""
        )
        raise RawlabError(
            f"the guest ({accel}, kernel {kernel.release}) stopped before the command "
            f"finished (vng exited {_describe_status(rc)})" + (f": {tail}" if tail else "") + hint,
            Exit.FAILED,
        )
    return GuestResult(status, output, kernel, accel, seconds)
