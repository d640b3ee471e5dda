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
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from rawlab.errors import Advice, Exit, RawlabError, explain

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


# --- addresses ----------------------------------------------------------------
#
# Everything below opens sockets only when a caller (a user command) asks for
# one. Parsing, sockaddr building and option building are pure.

VMADDR_FLAG_TO_HOST = 0x01  # svm_flags: route to the host even for CID > 2 (sibling VMs)

# socket options, at level AF_VSOCK (include/uapi/linux/vm_sockets.h)
SOL_VSOCK = AF_VSOCK
SO_VM_SOCKETS_BUFFER_SIZE = 0
SO_VM_SOCKETS_BUFFER_MIN_SIZE = 1
SO_VM_SOCKETS_BUFFER_MAX_SIZE = 2
SO_VM_SOCKETS_PEER_HOST_VM_ID = 3
SO_VM_SOCKETS_TRUSTED = 5
SO_VM_SOCKETS_CONNECT_TIMEOUT_OLD = 6  # struct __kernel_old_timeval (long, long)
SO_VM_SOCKETS_NONBLOCK_TXRX = 7
SO_VM_SOCKETS_CONNECT_TIMEOUT_NEW = 8  # struct __kernel_sock_timeval (s64, s64), 5.1+
DEFAULT_BUFFER_SIZE = 256 * 1024  # net/vmw_vsock/af_vsock.c VSOCK_DEFAULT_BUFFER_SIZE
DEFAULT_BUFFER_MIN_SIZE = 128
DEFAULT_BUFFER_MAX_SIZE = 256 * 1024
DEFAULT_CONNECT_TIMEOUT = 2.0  # VSOCK_DEFAULT_CONNECT_TIMEOUT (2 * HZ)

# VHOST_VSOCK_SET_GUEST_CID = _IOW(VHOST_VIRTIO 0xAF, 0x60, __u64)
VHOST_VSOCK_SET_GUEST_CID = 0x4008AF60
VHOST_VSOCK_DEV = "/dev/vhost-vsock"

MAX_U32 = 0xFFFFFFFF
CID_NAMES = {"any": VMADDR_CID_ANY, "hypervisor": VMADDR_CID_HYPERVISOR,
             "local": VMADDR_CID_LOCAL, "host": VMADDR_CID_HOST}
SOCKADDR_VM = struct.Struct("=HHIIB3x")  # family, reserved1, port, cid, flags, zero[3]
OptSpec = tuple[int, int, bytes]  # (level, optname, value) for setsockopt


@dataclass(frozen=True)
class VsockAddr:
    """A vsock address: context id, port, and sockaddr_vm's svm_flags."""

    cid: int
    port: int
    flags: int = 0

    def __str__(self) -> str:
        cid = "any" if self.cid == VMADDR_CID_ANY else str(self.cid)
        port = "any" if self.port == VMADDR_PORT_ANY else str(self.port)
        return f"{cid}:{port}"


def _u32(text: str, what: str, names: dict[str, int]) -> int:
    t = text.strip().lower()
    if t in names:
        return names[t]
    try:
        v = int(t, 0)
    except ValueError:
        raise ValueError(f"{what} {text!r} is not a number"
                         + (f" nor one of {', '.join(names)}" if names else "")) from None
    if not 0 <= v <= MAX_U32:
        raise ValueError(f"{what} {v} is out of range (0 to {MAX_U32})")
    return v


def parse_cid(text: str) -> int:
    """A CID: a number, or any / hypervisor / local / host (raises ValueError)."""
    return _u32(text, "CID", CID_NAMES)


def parse_port(text: str) -> int:
    """A port: a number, or `any` (VMADDR_PORT_ANY; raises ValueError)."""
    return _u32(text, "port", {"any": VMADDR_PORT_ANY})


def parse_addr(text: str, *, to_host: bool = False) -> VsockAddr:
    """"CID:PORT" (e.g. "3:5000", "host:1234", "local:any"); raises ValueError."""
    cid, sep, port = text.rpartition(":")
    if not sep or not cid or not port:
        raise ValueError(f"{text!r} is not CID:PORT (e.g. 3:5000, host:5000, local:5000)")
    return VsockAddr(parse_cid(cid), parse_port(port), VMADDR_FLAG_TO_HOST if to_host else 0)


def sockaddr_vm(addr: VsockAddr) -> bytes:
    """struct sockaddr_vm for `addr`, svm_flags included (16 bytes)."""
    return SOCKADDR_VM.pack(AF_VSOCK, 0, addr.port, addr.cid, addr.flags)


def unpack_sockaddr_vm(raw: bytes) -> VsockAddr:
    family, _r, port, cid, flags = SOCKADDR_VM.unpack(raw[:SOCKADDR_VM.size])
    if family != AF_VSOCK:
        raise ValueError(f"not a sockaddr_vm: family {family}")
    return VsockAddr(cid, port, flags)


# --- options --------------------------------------------------------------------


def connect_timeout_opts(seconds: float) -> list[OptSpec]:
    """SO_VM_SOCKETS_CONNECT_TIMEOUT as a timeval: the native option first, then the other.

    The kernel picks OLD (6) where time_t is a long, NEW (8, a 64-bit timeval) otherwise;
    on 64-bit both carry the same bytes. Try them in this order (ENOPROTOOPT → next).
    """
    if seconds <= 0:
        raise ValueError(f"connect timeout {seconds} must be > 0")
    sec = int(seconds)
    usec = min(round((seconds - sec) * 1_000_000), 999_999)
    old = (SOL_VSOCK, SO_VM_SOCKETS_CONNECT_TIMEOUT_OLD, struct.pack("@ll", sec, usec))
    new = (SOL_VSOCK, SO_VM_SOCKETS_CONNECT_TIMEOUT_NEW, struct.pack("=qq", sec, usec))
    native_old = struct.calcsize("@l") == 8
    return [old, new] if native_old else [new, old]


def buffer_size_opts(size: int) -> list[OptSpec]:
    """SO_VM_SOCKETS_BUFFER_{MAX,MIN,}SIZE (u64) in an order the kernel accepts.

    vsock_update_buffer_size() clamps BUFFER_SIZE into [MIN, MAX], so a size
    above the default maximum needs MAX raised first (below the minimum: MIN first).
    """
    if not 0 < size <= 0xFFFFFFFF:
        raise ValueError(f"buffer size {size} must be between 1 and {0xFFFFFFFF}")
    out: list[OptSpec] = []
    if size > DEFAULT_BUFFER_MAX_SIZE:
        out.append((SOL_VSOCK, SO_VM_SOCKETS_BUFFER_MAX_SIZE, struct.pack("=Q", size)))
    if size < DEFAULT_BUFFER_MIN_SIZE:
        out.append((SOL_VSOCK, SO_VM_SOCKETS_BUFFER_MIN_SIZE, struct.pack("=Q", size)))
    out.append((SOL_VSOCK, SO_VM_SOCKETS_BUFFER_SIZE, struct.pack("=Q", size)))
    return out


def _libc_setsockopt(fd: int, level: int, name: int, value: bytes) -> None:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(value, len(value))
    if libc.setsockopt(ctypes.c_int(fd), ctypes.c_int(level), ctypes.c_int(name), buf,
                       ctypes.c_uint(len(value))) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def set_option(sock: socket.socket, level: int, name: int, value: bytes) -> None:
    """setsockopt with raw bytes: CPython's setsockopt on AF_VSOCK takes only an int (u64),
    so a timeval cannot pass through it; libc's can."""
    _libc_setsockopt(sock.fileno(), level, name, value)


def get_buffer_size(sock: socket.socket) -> int:
    # CPython's getsockopt on AF_VSOCK returns the u64 as an int (and refuses a buflen)
    return int(sock.getsockopt(SOL_VSOCK, SO_VM_SOCKETS_BUFFER_SIZE))


def set_connect_timeout(sock: socket.socket, seconds: float) -> None:
    last: OSError | None = None
    for level, opt, val in connect_timeout_opts(seconds):
        try:
            set_option(sock, level, opt, val)
            return
        except OSError as exc:
            if exc.errno != errno.ENOPROTOOPT:
                raise
            last = exc
    assert last is not None
    raise last


def set_buffer_size(sock: socket.socket, size: int) -> None:
    for level, opt, val in buffer_size_opts(size):
        set_option(sock, level, opt, val)


# --- errors, in vsock's own words -------------------------------------------------


def _loopback_loaded() -> bool:
    return module_state(LOOPBACK_TRANSPORT).loaded


def _local_cid_or_none() -> int | None:
    try:
        return local_cid()
    except OSError:
        return None


def vsock_advice(err: int, op: str, addr: VsockAddr | None = None,
                 sock_type: str = "stream", timeout: float | None = None) -> Advice | None:
    """vsock-specific why/fix for `err` from `op` on `addr`; None: use the generic text."""
    cid = addr.cid if addr is not None else None
    port = addr.port if addr is not None else None
    binding = op.startswith(("bind", "listen"))
    if err == errno.EADDRNOTAVAIL:
        if cid == VMADDR_CID_LOCAL and not _loopback_loaded():
            fix = ("modprobe vsock_loopback" if module_state(LOOPBACK_TRANSPORT).on_disk else
                   "this kernel has no vsock_loopback module: boot one that has it (Linux "
                   "5.6+), e.g. `rawlab lab vm -m vsock_loopback -- rawlab vsock ...`")
            return Advice("CID 1 needs the vsock_loopback transport, which is not loaded", fix,
                          Exit.UNSUPPORTED)
        mine = _local_cid_or_none()
        return Advice(f"CID {cid} is not local to this machine"
                      + (f" (its CID is {mine})" if mine is not None else ""),
                      "bind to this machine's CID, `any`, or 1 with vsock_loopback "
                      "(`rawlab vsock cid` lists them)", Exit.UNSUPPORTED)
    if err == errno.ENODEV:
        if sock_type == "dgram":
            return Advice("no loaded vsock transport offers DGRAM (only VMware's VMCI does)",
                          "use --type stream or --type seqpacket", Exit.UNSUPPORTED)
        return Advice("no vsock transport is loaded",
                      "load one: vmw_vsock_virtio_transport (in a guest), vhost_vsock (on a "
                      "host) or vsock_loopback (CID 1); `rawlab vsock cid` shows which exist",
                      Exit.UNSUPPORTED)
    if err == errno.ECONNRESET and not binding:
        hint = ""
        if cid == VMADDR_CID_LOCAL and not _loopback_loaded():
            hint = "; for CID 1 also modprobe vsock_loopback"
        return Advice(f"nothing listens on vsock port {port} at CID {cid} (the peer reset it)",
                      f"start a listener there first, e.g. `rawlab vsock listen {port}`{hint}",
                      Exit.PEER)
    if err == errno.ETIMEDOUT:
        t = f"{timeout:g}" if timeout is not None else f"{DEFAULT_CONNECT_TIMEOUT:g}"
        return Advice(f"CID {cid} did not answer within {t} s (SO_VM_SOCKETS_CONNECT_TIMEOUT)",
                      f"check the VM with CID {cid} is running with its vsock driver loaded; "
                      "raise --timeout", Exit.PEER)
    if err in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        return Advice(f"no loaded vsock transport reaches CID {cid}",
                      "a guest reaches CID 2 (its host) through vmw_vsock_virtio_transport, a "
                      "host reaches its guests through vhost_vsock, CID 1 needs vsock_loopback; "
                      "sibling VMs need --to-host", Exit.PEER)
    if err == errno.EADDRINUSE:
        return Advice(f"vsock port {port} on CID {cid} is already bound",
                      "pick another port, or stop what holds it (`ss --vsock -lp`)", Exit.FAILED)
    if err == errno.EINVAL and addr is not None and addr.flags:
        return Advice("this kernel rejects svm_flags (VMADDR_FLAG_TO_HOST needs Linux 5.10+)",
                      "drop --to-host, or use a newer kernel", Exit.UNSUPPORTED)
    if err == errno.EAFNOSUPPORT:
        return Advice("this kernel has no AF_VSOCK (the vsock module is not loaded)",
                      "modprobe vsock plus a transport, or run inside `rawlab lab vm`",
                      Exit.UNSUPPORTED)
    if err == errno.ENOPROTOOPT:
        return Advice("this kernel does not know that SO_VM_SOCKETS option",
                      "drop the option (--timeout / --buffer-size), or use a newer kernel",
                      Exit.UNSUPPORTED)
    return None


def vsock_error(exc: OSError, op: str, addr: VsockAddr | None = None,
                sock_type: str = "stream", timeout: float | None = None) -> RawlabError:
    """A one-line RawlabError for `exc` from `op`, in vsock's words where they are sharper."""
    err = exc.errno or 0
    a = vsock_advice(err, op, addr, sock_type, timeout) if err else None
    return explain(exc, op, a)


def vhost_advice(err: int, cid: int) -> Advice | None:
    """Why claiming guest CID `cid` on /dev/vhost-vsock failed."""
    if err in (errno.EACCES, errno.EPERM):
        return Advice(f"{VHOST_VSOCK_DEV} is not open to you",
                      f"run as root, or add yourself to {VHOST_VSOCK_DEV}'s group "
                      "(`ls -l /dev/vhost-vsock`); libvirt also needs it in "
                      "cgroup_device_acl (qemu.conf)", Exit.PRIVILEGE)
    if err == errno.ENOENT:
        return Advice(f"no {VHOST_VSOCK_DEV}: this host cannot give guests a vsock device",
                      "modprobe vhost_vsock", Exit.UNSUPPORTED)
    if err == errno.EADDRINUSE:
        return Advice(f"guest CID {cid} is already taken on this host (another VM, or this "
                      "machine's own CID)", "pick another CID (3 or more, unique per host)",
                      Exit.FAILED)
    if err == errno.EINVAL:
        return Advice(f"{cid} cannot be a guest CID (0, 1, 2 and {MAX_U32} are reserved)",
                      "pick a CID from 3 to 4294967294", Exit.USAGE)
    return None


def claim_guest_cid(cid: int) -> int:
    """Open /dev/vhost-vsock and claim guest CID `cid` for it; return the fd (close to free).

    This is what qemu's vhost-vsock-pci does at start (VHOST_VSOCK_SET_GUEST_CID). It sends
    nothing: it only proves the CID is free and the device usable by these credentials.
    """
    try:
        fd = os.open(VHOST_VSOCK_DEV, os.O_RDWR | os.O_CLOEXEC)
    except OSError as exc:
        raise _vhost_error(exc, cid, f"open {VHOST_VSOCK_DEV}") from None
    try:
        fcntl.ioctl(fd, VHOST_VSOCK_SET_GUEST_CID, struct.pack("=Q", cid))
    except OSError as exc:
        os.close(fd)
        raise _vhost_error(exc, cid, f"claim guest CID {cid} on {VHOST_VSOCK_DEV}") from None
    return fd


def _vhost_error(exc: OSError, cid: int, op: str) -> RawlabError:
    err = exc.errno or 0
    a = vhost_advice(err, cid)
    return explain(exc, op, a)


# --- opening, binding, connecting ----------------------------------------------------


def sock_type_of(name: str) -> int:
    try:
        return SOCK_TYPES[name]
    except KeyError:
        raise RawlabError(f"unknown vsock socket type {name!r}; fix: use one of "
                          f"{', '.join(SOCK_TYPES)}", Exit.USAGE) from None


def open_socket(type_name: str = "stream") -> socket.socket:
    try:
        return socket.socket(AF_VSOCK, sock_type_of(type_name))
    except OSError as exc:
        raise vsock_error(exc, f"open AF_VSOCK {type_name.upper()} socket",
                          sock_type=type_name) from None


def listen(addr: VsockAddr, type_name: str = "stream", backlog: int = 128) -> socket.socket:
    """A bound (and, unless DGRAM, listening) vsock socket at `addr`."""
    s = open_socket(type_name)
    try:
        s.bind((addr.cid, addr.port))
        if type_name != "dgram":
            s.listen(backlog)
    except OSError as exc:
        s.close()
        raise vsock_error(exc, f"bind vsock {addr} ({type_name})", addr, type_name) from None
    return s


def _libc_connect(fd: int, raw: bytes) -> None:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(raw, len(raw))
    if libc.connect(ctypes.c_int(fd), buf, ctypes.c_uint(len(raw))) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def connect_socket(sock: socket.socket, addr: VsockAddr) -> None:
    """connect() `sock` to `addr`; through libc with a raw sockaddr_vm when flags are set.

    Python's (cid, port) tuple cannot carry svm_flags (VMADDR_FLAG_TO_HOST). The socket
    stays blocking: the kernel's SO_VM_SOCKETS_CONNECT_TIMEOUT bounds the wait.
    """
    if addr.flags:
        _libc_connect(sock.fileno(), sockaddr_vm(addr))
    else:
        sock.connect((addr.cid, addr.port))


def connect(addr: VsockAddr, type_name: str = "stream", *, timeout: float | None = None,
            buffer_size: int | None = None) -> socket.socket:
    """A connected vsock socket (blocking). Raises RawlabError with the fix."""
    s = open_socket(type_name)
    try:
        try:
            if timeout is not None:
                set_connect_timeout(s, timeout)
            if buffer_size is not None:
                set_buffer_size(s, buffer_size)
        except OSError as exc:
            raise vsock_error(exc, "set SO_VM_SOCKETS options", addr, type_name) from None
        try:
            if type_name == "dgram":
                s.connect((addr.cid, addr.port))
            else:
                connect_socket(s, addr)
        except OSError as exc:
            raise vsock_error(exc, f"connect vsock {addr} ({type_name})", addr, type_name,
                              timeout) from None
    except BaseException:
        s.close()
        raise
    return s


# --- sessions: what `listen` and `connect` move -------------------------------------
#
# Socket-agnostic: the same loops serve vsock sockets and hybrid vsock's Unix sockets.

Endpoint = VsockAddr | str  # a vsock address, or "unix:PATH" for hybrid vsock
READ_SIZE = 256 * 1024  # > one SEQPACKET message at the default buffer size


@dataclass(frozen=True)
class Listening:
    local: Endpoint
    sock_type: str


@dataclass(frozen=True)
class Accepted:
    peer: Endpoint
    sock_type: str


@dataclass(frozen=True)
class Received:
    peer: Endpoint
    data: bytes
    eor: bool = False  # SEQPACKET: the sender ended this record with MSG_EOR
    trunc: bool = False  # SEQPACKET: the message was longer than the read (MSG_TRUNC)
    echoed: bool = False


@dataclass(frozen=True)
class Closed:
    peer: Endpoint
    bytes_in: int
    bytes_out: int
    messages: int  # recv() calls for STREAM, messages for SEQPACKET / DGRAM
    seconds: float
    reason: str  # "eof" or "reset"


Event = Listening | Accepted | Received | Closed


def endpoint_of(raw: object, fallback: Endpoint) -> Endpoint:
    """The peer of an accepted socket: (cid, port) → VsockAddr, else `fallback`."""
    if isinstance(raw, tuple) and len(raw) == 2 and all(isinstance(x, int) for x in raw):
        return VsockAddr(raw[0], raw[1])
    return fallback


def session(conn: socket.socket, peer: Endpoint, type_name: str, *, echo: bool = False,
            read_size: int = READ_SIZE) -> Iterator[Event]:
    """One accepted connection: its data (and echo) until EOF or reset."""
    import time

    yield Accepted(peer, type_name)
    t0 = time.monotonic()
    bytes_in = bytes_out = messages = 0
    reason = "eof"
    seq = type_name == "seqpacket"
    try:
        while True:
            flags = 0
            if seq:
                data, _anc, flags, _a = conn.recvmsg(read_size)
            else:
                data = conn.recv(read_size)
            if not data:
                break
            messages += 1
            bytes_in += len(data)
            eor = bool(flags & socket.MSG_EOR)
            if echo:
                if seq:
                    conn.sendmsg([data], [], socket.MSG_EOR if eor else 0)
                else:
                    conn.sendall(data)
                bytes_out += len(data)
            yield Received(peer, data, eor, bool(flags & socket.MSG_TRUNC), echo)
    except (ConnectionResetError, BrokenPipeError):
        reason = "reset"
    yield Closed(peer, bytes_in, bytes_out, messages, time.monotonic() - t0, reason)


def serve(listener: socket.socket, type_name: str, local: Endpoint, *, echo: bool = False,
          once: bool = False, read_size: int = READ_SIZE,
          peer_fallback: Endpoint = "?") -> Iterator[Event]:
    """Accept connections one after the other (DGRAM: receive datagrams) and report them."""
    yield Listening(local, type_name)
    if type_name == "dgram":
        while True:
            data, raw = listener.recvfrom(read_size)
            peer = endpoint_of(raw, peer_fallback)
            if echo and isinstance(peer, VsockAddr):
                listener.sendto(data, (peer.cid, peer.port))
            yield Received(peer, data, echoed=echo)
            if once:
                return
    while True:
        conn, raw = listener.accept()
        with conn:
            yield from session(conn, endpoint_of(raw, peer_fallback), type_name, echo=echo,
                               read_size=read_size)
        if once:
            return


@dataclass
class PumpStats:
    sent: int = 0
    received: int = 0
    messages_sent: int = 0
    messages_received: int = 0
    seconds: float = 0.0


def pump(sock: socket.socket, type_name: str, chunks: Iterable[bytes],
         sink: Callable[[bytes], object], *, eor: bool = True,
         read_size: int = READ_SIZE) -> PumpStats:
    """socat-like: send `chunks` (then SHUT_WR) while writing what arrives to `sink`, until EOF.

    Sending runs in a thread so that a peer echoing a large input back cannot
    deadlock both ends on full buffers. SEQPACKET sends each chunk as one message
    (with MSG_EOR when `eor`); DGRAM only sends.
    """
    import threading
    import time

    stats = PumpStats()
    failure: list[BaseException] = []
    seq = type_name == "seqpacket"
    t0 = time.monotonic()

    def send_all() -> None:
        try:
            for chunk in chunks:
                if seq:
                    sock.sendmsg([chunk], [], socket.MSG_EOR if eor else 0)
                else:
                    sock.sendall(chunk)
                stats.sent += len(chunk)
                stats.messages_sent += 1
            if type_name != "dgram":
                sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the peer closed first: what it sent still arrives below
        except BaseException as exc:
            failure.append(exc)

    if type_name == "dgram":
        send_all()
    else:
        sender = threading.Thread(target=send_all, name="rawlab-vsock-send", daemon=True)
        sender.start()
        try:
            while True:
                data = sock.recv(read_size)
                if not data:
                    break
                stats.received += len(data)
                stats.messages_received += 1
                sink(data)
        except ConnectionResetError:
            pass
        sender.join(timeout=5)
    stats.seconds = time.monotonic() - t0
    if failure:
        raise failure[0]
    return stats
