"""AF_VSOCK: constants, the local CID, and which transports this kernel has.

Nothing here connects anywhere. On a guest, CID 2 is the real hypervisor:
rawlab never opens a vsock connection unless a user command asks for one.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import struct
from dataclasses import dataclass
from pathlib import Path

AF_VSOCK = 40
VMADDR_CID_ANY = 0xFFFFFFFF
VMADDR_PORT_ANY = 0xFFFFFFFF
VMADDR_CID_HYPERVISOR = 0
VMADDR_CID_LOCAL = 1
VMADDR_CID_HOST = 2
IOCTL_VM_SOCKETS_GET_LOCAL_CID = 0x7B9

SOCK_TYPES = {"stream": socket.SOCK_STREAM, "seqpacket": socket.SOCK_SEQPACKET,
              "dgram": socket.SOCK_DGRAM}

# transport modules, by role (net/vmw_vsock/)
GUEST_TRANSPORTS = ("vmw_vsock_virtio_transport", "vmw_vsock_vmci_transport", "hv_sock")
HOST_TRANSPORTS = ("vhost_vsock",)
LOOPBACK_TRANSPORT = "vsock_loopback"


def local_cid(dev: str = "/dev/vsock") -> int:
    """IOCTL_VM_SOCKETS_GET_LOCAL_CID on /dev/vsock (raises OSError)."""
    fd = os.open(dev, os.O_RDONLY)
    try:
        buf = fcntl.ioctl(fd, IOCTL_VM_SOCKETS_GET_LOCAL_CID, b"\0\0\0\0")
    finally:
        os.close(fd)
    return int(struct.unpack("=I", buf)[0])


def try_bind(cid: int, sock_type: int = socket.SOCK_STREAM) -> int:
    """Bind a fresh vsock socket to (cid, any port) and close it; return 0 or errno.

    The kernel accepts a bind to a CID only when a transport owns it
    (net/vmw_vsock/af_vsock.c, vsock_find_cid): the guest transport its own
    CID, the host transport CID 2, vsock_loopback CID 1. Binding sends nothing.
    """
    try:
        s = socket.socket(AF_VSOCK, sock_type)
    except OSError as exc:
        return exc.errno or errno.EIO
    try:
        s.bind((cid, VMADDR_PORT_ANY))
    except OSError as exc:
        return exc.errno or errno.EIO
    finally:
        s.close()
    return 0


@dataclass(frozen=True)
class ModuleState:
    name: str
    loaded: bool  # /sys/module/NAME exists (loaded, or built in with parameters)
    on_disk: bool  # listed in /lib/modules/$(uname -r)/modules.dep (loadable)


def module_state(name: str, root: Path = Path("/")) -> ModuleState:
    loaded = (root / "sys/module" / name).exists()
    release = os.uname().release
    on_disk = False
    dep = root / "lib/modules" / release / "modules.dep"
    builtin = root / "lib/modules" / release / "modules.builtin"
    want = (f"/{name}.ko", f"/{name.replace('_', '-')}.ko")
    for f in (dep, builtin):
        try:
            with f.open() as fh:
                for line in fh:
                    head = line.split(":", 1)[0]
                    if any(w in head for w in want):
                        on_disk = True
                        break
        except OSError:
            continue
        if on_disk:
            break
    return ModuleState(name, loaded, on_disk)
