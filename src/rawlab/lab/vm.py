"""Boot a throwaway virtme-ng guest from Debian's kernel and run one command in it.

The `vm` test tier and ``rawlab lab vm`` use this to reach what the build
machine's own kernel lacks (nlmon, vsockmon, vsock_loopback, netem ...).
The guest sees the host's filesystem copy-on-write (``/`` read-only plus
overlays); only directories passed as ``rwdirs`` are written through to the host.

On the build machine (kernel 6.18 with kvm-pvm) KVM makes qemu abort at once
("failed to set MSR 0x10a", exit 134), so :func:`rawlab.lab.qemu.kvm_usable` probes
it and :func:`run` falls back to ``--disable-kvm`` (timings: bench/README.md, "Lab
guests").

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
import functools
import os
import re
import shlex
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rawlab.errors import Exit, RawlabError
from rawlab.lab import qemu
from rawlab.lab.guest import (
    KERNEL_FIX,
    Guest,
    Kernel,
    Machine,
    describe_status,
    find_kernel,
    host_dirs,
    missing_modules,
    plain_path,
)

__all__ = [
    "GuestResult",
    "guest_script",
    "run",
    "vng_argv",
    "vng_path",
]

VNG_FIX = "pip install virtme-ng (or ./setup.sh --test)"

# Lines the guest script prints so the host can tell the command's own exit
# status from a guest that died, and a missing module from a failing command.
RC_MARKER = "__rawlab_vm_rc__"
NOMOD_MARKER = "__rawlab_vm_nomod__"
NOMOD_STATUS = 97
MAX_SCRIPT_B64 = 1400  # see guest_script(): x86 COMMAND_LINE_SIZE 2048 minus virtme's part

# vng builds a shell command line from its options without quoting them.
_plain = functools.partial(
    plain_path, cannot="vng cannot pass through its shell (spaces, quotes, $, = ...)")


@dataclass
class GuestResult:
    """What one guest run produced."""

    returncode: int  # the command's own exit status inside the guest
    output: str  # its stdout and stderr, merged
    kernel: Kernel
    accel: str  # "kvm" or "tcg"
    seconds: float  # wall clock: vng start to guest power-off


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


def vng_argv(script: str, machine: Machine, *, vng: str, cwd: Path | None = None) -> list[str]:
    """The ``vng`` command line for one guest run (no shell involved on our side)."""
    argv = [vng, "--run", _plain("kernel", str(machine.kernel.path))]
    if machine.accel == "tcg":
        argv.append("--disable-kvm")
    argv += ["--memory", machine.memory, "--cpus", str(machine.cpus)]
    if cwd is not None:
        argv += ["--cwd", _plain("working directory", str(cwd))]
    for d in machine.rwdirs:
        argv += ["--rwdir", _plain("rwdir", str(d))]
    argv += ["--exec", script]
    return argv


def _child_env(vng: str) -> dict[str, str]:
    env = dict(os.environ)
    bindir = str(Path(vng).parent)
    rest = [p for p in env.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin").split(":") if p != bindir]
    env["PATH"] = ":".join([bindir, *rest])
    env.pop(qemu.ACCEL_ENV, None)
    return env


def _require_modules(kernel: Kernel, modules: Sequence[str]) -> None:
    missing = missing_modules(kernel, modules)
    if missing:
        raise RawlabError(
            f"kernel {kernel.release} has no module {', '.join(missing)} in "
            f"{kernel.modules_dir}; fix: boot a kernel that has it (--kernel PATH), "
            f"e.g. Debian's: {KERNEL_FIX}",
            Exit.UNSUPPORTED,
        )


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
    _require_modules(kernel, modules)
    rw = host_dirs(rwdirs)
    accel = "kvm" if qemu.kvm_usable(kernel)[0] else "tcg"
    vng = vng_path()
    script = guest_script(command, modules)
    machine = Machine(kernel, accel, memory, cpus, rw)
    argv = vng_argv(script, machine, vng=vng, cwd=Path.cwd())
    guest = Guest(argv, machine, marker=RC_MARKER, echo=echo, env=_child_env(vng))
    rc = guest.exit_code(timeout)
    if rc is None:
        raise RawlabError(
            f"the guest did not finish in {timeout:g} s ({accel}); it was killed; "
            "fix: raise the timeout, or check the command does not wait for input"
            + guest.tail(),
            Exit.FAILED,
        )
    return _result(guest, rc)


def _result(guest: Guest, rc: int) -> GuestResult:
    """The command's status and output, or why the guest gave none (vng exited `rc`)."""
    nomod = guest.word_after(NOMOD_MARKER)
    if nomod is not None and rc == NOMOD_STATUS:
        raise RawlabError(
            f"modprobe {nomod} failed inside the guest (kernel {guest.kernel.release}); "
            f"fix: boot a kernel that has it (--kernel PATH), e.g. {KERNEL_FIX}",
            Exit.UNSUPPORTED,
        )
    status = guest.status()
    if status is None:
        hint = (
            f"; fix: unset {qemu.ACCEL_ENV} or set it to tcg"
            if guest.accel == "kvm" and os.environ.get(qemu.ACCEL_ENV)
            else ""
        )
        raise RawlabError(
            f"the guest ({guest.accel}, kernel {guest.kernel.release}) stopped before the "
            f"command finished (vng exited {describe_status(rc)})" + guest.tail(5) + hint,
            Exit.FAILED,
        )
    return GuestResult(status, guest.output, guest.kernel, guest.accel, guest.seconds or 0.0)
