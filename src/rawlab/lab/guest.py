"""What every lab guest shares: the kernel it boots, the machine it is given, the guest running.

:mod:`rawlab.lab.vm` (virtme-ng guests) and :mod:`rawlab.lab.nested` (plain-qemu
guests with a vhost-vsock device) both build on this; :mod:`rawlab.lab.qemu` holds
the qemu command line and the KVM probe.

* :class:`Kernel`, :func:`find_kernel`: the image to boot and its modules
  (:func:`modules_dep` / :func:`modules_builtin`: the one reader of their index).
* :class:`Machine`: kernel, accelerator, memory, CPUs and the host directories the
  guest may write, checked once.
* :class:`Guest`: the launcher (vng or qemu) in a process group of its own, its
  console read line by line on a thread, the status marker the guest prints after
  its command (so the command's own exit status is told apart from a guest that
  died), and :func:`kill_group` for a guest that must go.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rawlab.errors import Exit, RawlabError

__all__ = [
    "KERNEL_FIX",
    "Guest",
    "Kernel",
    "Machine",
    "describe_status",
    "find_kernel",
    "host_dirs",
    "kernel_release_from_image",
    "kill_group",
    "missing_modules",
    "module_name",
    "modules_builtin",
    "modules_dep",
    "plain_path",
]

KERNEL_FIX = "apt-get install linux-image-amd64 (or ./setup.sh --test)"
ACCELS = ("kvm", "tcg")

_MEMORY = re.compile(r"\d+[KMGT]?", re.IGNORECASE)
_PLAIN = re.compile(r"[\w./+@%,:-]+")


# ----------------------------------------------------------------- kernels


@dataclass(frozen=True)
class Kernel:
    """A bootable kernel image and the modules built for it."""

    path: Path  # e.g. /boot/vmlinuz-6.1.0-56-amd64
    release: str  # e.g. "6.1.0-56-amd64"
    modules_dir: Path | None  # /lib/modules/<release>, None when absent


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


# ----------------------------------------------------------------- modules


def module_name(path: str) -> str:
    """A module's name from its path: ``kernel/net/9p/9pnet-virtio.ko.xz`` -> ``9pnet_virtio``."""
    return path.rsplit("/", 1)[-1].split(".ko", 1)[0].replace("-", "_")


def modules_dep(modules_dir: Path) -> dict[str, tuple[str, list[str]]]:
    """``modules.dep``: name -> (path, the paths it depends on). Raises OSError."""
    deps: dict[str, tuple[str, list[str]]] = {}
    for line in (modules_dir / "modules.dep").read_text(errors="replace").splitlines():
        if ":" not in line:
            continue
        path, rest = line.split(":", 1)
        deps[module_name(path.strip())] = (path.strip(), rest.split())
    return deps


def modules_builtin(modules_dir: Path) -> set[str]:
    """The names in ``modules.builtin`` (built into the image). Raises OSError."""
    text = (modules_dir / "modules.builtin").read_text(errors="replace")
    return {module_name(ln.strip()) for ln in text.splitlines() if ln.strip()}


def missing_modules(kernel: Kernel, modules: Sequence[str]) -> list[str]:
    """Those of `modules` that `kernel` has neither as a module nor built in.

    Empty when the kernel has no modules directory to check against (the guest
    then finds out).
    """
    if kernel.modules_dir is None:
        return []
    try:
        have = set(modules_dep(kernel.modules_dir)) | modules_builtin(kernel.modules_dir)
    except OSError:
        return []
    return [m for m in modules if m.replace("-", "_") not in have]


# ----------------------------------------------------------------- machine


@dataclass(frozen=True)
class Machine:
    """What a guest is given: its kernel, accelerator, memory, CPUs, the host
    directories it may write. Checked when made."""

    kernel: Kernel
    accel: str  # "kvm" or "tcg"
    memory: str  # qemu's size: 512M, 2G ...
    cpus: int
    rwdirs: tuple[Path, ...] = ()

    def __post_init__(self) -> None:
        if self.accel not in ACCELS:
            raise ValueError(f"accel must be 'kvm' or 'tcg', not {self.accel!r}")
        if not _MEMORY.fullmatch(self.memory):
            raise RawlabError(f"memory {self.memory!r}: fix: use a size like 512M or 2G",
                              Exit.USAGE)
        if self.cpus < 1:
            raise RawlabError(f"cpus {self.cpus}: fix: use 1 or more", Exit.USAGE)


def host_dirs(rwdirs: Iterable[str | Path]) -> tuple[Path, ...]:
    """`rwdirs` made absolute; each must be an existing directory."""
    out = []
    for d in rwdirs:
        p = Path(d).absolute()
        if not p.is_dir():
            raise RawlabError(f"rwdir {p} is not a directory; fix: create it first", Exit.USAGE)
        out.append(p)
    return tuple(out)


def plain_path(what: str, value: str, *, cannot: str, commas: bool = True) -> str:
    """`value` when it has only characters a launcher passes through unquoted
    (letters, digits, ``./+@%:-``, and commas when `commas`); else a usage error
    that says who `cannot` take it."""
    if not _PLAIN.fullmatch(value) or (not commas and "," in value):
        raise RawlabError(f"{what} {value!r} has characters {cannot}; fix: use a plain path",
                          Exit.USAGE)
    return value


# ------------------------------------------------------------------- guest


def describe_status(rc: int) -> str:
    """A child's exit status as a person reads it: ``134`` or ``on SIGABRT``."""
    if rc < 0:
        try:
            return f"on {signal.Signals(-rc).name}"
        except ValueError:
            return f"on signal {-rc}"
    return str(rc)


def kill_group(proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """SIGTERM, then SIGKILL, the process group `proc` leads (vng, sh, virtme-run,
    qemu ...) until none of it is left. Nothing is sent once `proc` has been waited
    for: its process group id may belong to someone else by then."""
    if proc.returncode is not None:
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, grace)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
        # the leader is gone; qemu may linger a moment in the same group.
        deadline = time.monotonic() + wait
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


class Guest:
    """A guest running: its launcher (vng or qemu) leads a process group of its own
    with stdin on /dev/null (no terminal needed); a thread reads its console (stdout
    and stderr, one pipe) line by line and hands each to `echo`, except the status
    marker: the line ``<marker> <status>`` the guest prints after its command.
    """

    def __init__(
        self,
        argv: Sequence[str],
        machine: Machine,
        *,
        marker: str,
        label: str = "the guest",
        echo: Callable[[str], None] | None = None,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.machine = machine
        self.marker = marker
        self.label = label  # names the guest in messages: "guest CID 7"
        self.lines: list[str] = []
        self.seconds: float | None = None  # launcher start to guest power-off
        self._echo = echo
        self._cond = threading.Condition()
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            env=env, cwd=cwd, start_new_session=True,
        )  # fmt: skip
        self._reader = threading.Thread(target=self._pump, name=f"rawlab-guest-{self.proc.pid}",
                                        daemon=True)
        self._reader.start()

    @property
    def kernel(self) -> Kernel:
        return self.machine.kernel

    @property
    def accel(self) -> str:
        return self.machine.accel

    # ------------------------------------------------------------- console

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for raw in iter(self.proc.stdout.readline, b""):
            line = raw.decode(errors="replace").rstrip("\r\n").replace("\r", "")
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()
            if self._echo is not None and not self._is_marker(line):
                self._echo(line)
        with self._cond:
            self._cond.notify_all()

    def _is_marker(self, line: str) -> bool:
        return line.lstrip().startswith(self.marker)

    @property
    def output(self) -> str:
        """The console so far, without the status marker."""
        with self._cond:
            return "".join(ln + "\n" for ln in self.lines if not self._is_marker(ln))

    def word_after(self, prefix: str) -> str | None:
        """The word after `prefix` on the last console line that starts with it."""
        with self._cond:
            for line in reversed(self.lines):
                text = line.strip()
                if text.startswith(prefix):
                    words = text[len(prefix):].split()
                    return words[0] if words else ""
        return None

    def status(self) -> int | None:
        """The command's exit status once the guest has printed it, else None."""
        word = self.word_after(self.marker)
        return int(word) if word is not None and word.isdigit() else None

    def tail(self, n: int = 8) -> str:
        """``": line | line ..."``: the last `n` console lines that are not blank."""
        with self._cond:
            tail = [ln.strip() for ln in self.lines[-n:] if ln.strip()]
        return (": " + " | ".join(tail)) if tail else ""

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
                if left <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    break
                self._cond.wait(min(left, 0.5))
        raise RawlabError(
            f"{self.label}: no console line matched {pattern!r} in {timeout:g} s"
            + ("" if self.running else " (the guest has stopped)") + self.tail(),
            Exit.FAILED,
        )

    # ------------------------------------------------------------- process

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def exit_code(self, timeout: float | None) -> int | None:
        """The launcher's exit code, once it has ended and its console is read;
        None when `timeout` passed first (the guest is stopped then)."""
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            return None
        except BaseException:
            self.stop()
            raise
        # qemu forked by virtme-run may hold the pipe a moment after vng exits.
        self._reader.join(timeout=10)
        if self.seconds is None:
            self.seconds = time.monotonic() - self.started
        return rc

    def stop(self) -> None:
        """Kill the guest (:func:`kill_group`) if it still runs."""
        kill_group(self.proc)
        if self.seconds is None:
            self.seconds = time.monotonic() - self.started
        self._reader.join(timeout=5)

    def __enter__(self) -> Guest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
