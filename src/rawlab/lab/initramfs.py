"""The nested guest's initramfs: busybox-static, a few kernel modules and an ``/init``.

The archive holds only what a plain-qemu guest needs to reach the host's files
(virtio_pci, 9pnet_virtio, 9p, the virtio vsock transport and their
dependencies, taken from ``/lib/modules/<release>``), busybox, and an ``/init`` that

* mounts the host's ``/`` read-only over 9p (``mount_tag=host``),
* mounts proc, sys, dev and a tmpfs on ``/tmp`` and ``/run`` inside it,
* chroots into it and runs the script named by ``rawlab.script=PATH`` on the
  kernel command line (a host path),
* prints :data:`RC_MARKER` with the script's status and powers off.

It is built in Python (newc cpio, uncompressed: unpacking costs less than
decompressing under software emulation) and cached under ``/tmp`` keyed by
kernel release and content.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import lzma
import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rawlab.errors import Exit, RawlabError
from rawlab.lab.guest import KERNEL_FIX, Kernel, module_name, modules_builtin, modules_dep

__all__ = [
    "GUEST_MODULES",
    "RC_MARKER",
    "Entry",
    "build_initramfs",
    "init_script",
    "initramfs_entries",
    "module_closure",
    "newc_archive",
]

# What the guest loads (with their dependencies, in modules.dep order).
GUEST_MODULES = ("virtio_pci", "9pnet_virtio", "9p", "vmw_vsock_virtio_transport")
RC_MARKER = "__rawlab_nested_rc__"
BUSYBOX_FIX = "apt-get install busybox-static"
GUEST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


# ------------------------------------------------------------------ modules


def module_closure(modules_dir: Path, names: Sequence[str]) -> list[str]:
    """Paths (relative to `modules_dir`) of `names` and their deps, deps first.

    Built-in modules (``modules.builtin``) are left out.  Raises
    :class:`RawlabError` when one of `names` is neither a module nor built in.
    """
    try:
        deps = modules_dep(modules_dir)
    except OSError as exc:
        raise RawlabError(
            f"cannot read {modules_dir / 'modules.dep'}: {exc.strerror}; "
            f"fix: {KERNEL_FIX}, or run depmod",
            Exit.UNSUPPORTED,
        ) from None
    try:
        builtin = modules_builtin(modules_dir)
    except OSError:
        builtin = set()

    order: list[str] = []
    seen: set[str] = set()

    def visit(path: str) -> None:
        if path in seen:
            return
        seen.add(path)
        for dep in deps.get(module_name(path), (path, []))[1]:
            visit(dep)
        order.append(path)

    for name in names:
        key = name.replace("-", "_")
        if key in deps:
            visit(deps[key][0])
        elif key not in builtin:
            raise RawlabError(
                f"kernel modules in {modules_dir} have no {name}; fix: boot a kernel that "
                f"has it (--kernel PATH), e.g. Debian's: {KERNEL_FIX}",
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


def initramfs_entries(kernel: Kernel, *, busybox: Path | None = None) -> list[Entry]:
    """Everything the initramfs holds: dirs, busybox, /init, the modules."""
    if kernel.modules_dir is None:
        raise RawlabError(
            f"kernel {kernel.release} has no /lib/modules/{kernel.release}; fix: "
            f"{KERNEL_FIX}, or pass --kernel of an installed kernel",
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


def build_initramfs(kernel: Kernel, *, busybox: Path | None = None,
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
