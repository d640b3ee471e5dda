"""Hybrid vsock: a VMM's Unix socket standing in for the host side of vsock.

Firecracker, Cloud Hypervisor and vhost-device-vsock give the host no AF_VSOCK
at all. The VMM listens on a Unix socket (its ``uds_path``):

* host → guest: connect to ``uds_path``, send ``CONNECT <port>\\n``, read
  ``OK <n>\\n`` (``<n>`` is the host-side port the VMM picked; opaque here),
  then the stream is the guest's port. If nothing listens in the guest, the
  VMM closes the Unix socket instead of answering.
* guest → host port P: the VMM connects to ``<uds_path>_<P>``; the host
  listens there as a plain Unix stream socket.

Only AF_UNIX sockets are opened here, never AF_VSOCK.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import socket
import stat
from dataclasses import dataclass

from rawlab.errors import Advice, Exit, RawlabError, explain

PREFIX = "unix:"
MAX_LINE = 64  # "OK 4294967295\n" is 14 bytes; anything longer is not the handshake
_OK = re.compile(rb"^OK (\S+)\n$")


@dataclass(frozen=True)
class HybridAddr:
    """host → guest: the VMM's Unix socket and the guest's vsock port."""

    path: str
    port: int

    def __str__(self) -> str:
        return f"{PREFIX}{self.path}:{self.port}"


@dataclass(frozen=True)
class HybridListenAddr:
    """guest → host: the Unix socket `<uds_path>_<port>` the VMM connects to."""

    path: str

    @property
    def port(self) -> int | None:
        """The guest-visible port, from the `_<port>` suffix (None when absent)."""
        m = re.search(r"_(\d+)$", self.path)
        return int(m.group(1)) if m else None

    def __str__(self) -> str:
        return f"{PREFIX}{self.path}"


def is_hybrid(text: str) -> bool:
    return text.startswith(PREFIX)


def parse_connect(text: str) -> HybridAddr:
    """`unix:PATH:PORT` (raises ValueError)."""
    if not is_hybrid(text):
        raise ValueError(f"{text!r} does not start with {PREFIX}")
    path, sep, port = text[len(PREFIX):].rpartition(":")
    if not sep or not path or not port.isdigit():
        raise ValueError(f"{text!r} is not unix:PATH:PORT (e.g. unix:/run/fc/v.sock:5000)")
    p = int(port)
    if p > 0xFFFFFFFF:
        raise ValueError(f"port {p} is out of range (0 to 4294967295)")
    return HybridAddr(path, p)


def parse_listen(text: str) -> HybridListenAddr:
    """`unix:PATH_PORT` (raises ValueError); PATH_PORT is the exact Unix socket path."""
    if not is_hybrid(text):
        raise ValueError(f"{text!r} does not start with {PREFIX}")
    path = text[len(PREFIX):]
    if not path:
        raise ValueError(f"{text!r} names no path (e.g. unix:/run/fc/v.sock_5000)")
    return HybridListenAddr(path)


def connect_request(port: int) -> bytes:
    return f"CONNECT {port}\n".encode()


def parse_ok(line: bytes) -> str:
    """The `<n>` of `OK <n>\\n` (opaque); raises ValueError for anything else."""
    m = _OK.match(line)
    if not m:
        raise ValueError(f"not an OK line: {line[:MAX_LINE]!r}")
    return m.group(1).decode("ascii", "replace")


def _advice(err: int, op: str, path: str) -> Advice | None:
    if err == errno.ENOENT:
        return Advice(f"no Unix socket at {path}",
                      "check the VMM runs with this vsock uds_path (Firecracker: "
                      "/vsock uds_path; Cloud Hypervisor: --vsock socket=PATH)", Exit.PEER)
    if err == errno.ECONNREFUSED:
        return Advice(f"nothing accepts on {path} (the VMM is gone?)",
                      "start the VMM, or remove the stale socket file", Exit.PEER)
    if err in (errno.EACCES, errno.EPERM):
        return Advice(f"{path} is not open to you",
                      "run as the VMM's user or root, or fix the socket's permissions",
                      Exit.PRIVILEGE)
    if err == errno.EADDRINUSE:
        return Advice(f"something already listens on {path}",
                      "stop it, or listen on another port's path", Exit.FAILED)
    return None


def error(exc: OSError, op: str, path: str) -> RawlabError:
    err = exc.errno or 0
    a = _advice(err, op, path) if err else None
    return explain(exc, op, a)


def read_line(sock: socket.socket, limit: int = MAX_LINE) -> bytes:
    """Read up to and including `\\n`, one byte at a time (what follows is payload)."""
    out = bytearray()
    while len(out) < limit:
        b = sock.recv(1)
        if not b:
            break
        out += b
        if b == b"\n":
            break
    return bytes(out)


def connect(addr: HybridAddr, *, timeout: float | None = None) -> tuple[socket.socket, str]:
    """A Unix stream socket connected through the VMM to the guest's port, and the OK's <n>."""
    op = f"connect hybrid vsock {addr}"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(timeout)
        try:
            s.connect(addr.path)
            s.sendall(connect_request(addr.port))
            line = read_line(s)
        except TimeoutError:
            raise RawlabError(
                f"{op} failed: the VMM did not answer CONNECT {addr.port} within {timeout:g} s "
                "(ETIMEDOUT); fix: check the guest is up; raise --timeout", Exit.PEER,
                errno_=errno.ETIMEDOUT) from None
        except OSError as exc:
            raise error(exc, op, addr.path) from None
        if not line:
            raise RawlabError(
                f"{op} failed: the VMM closed the connection: nothing listens on vsock port "
                f"{addr.port} in the guest (ECONNRESET); fix: start a listener in the guest "
                f"first, e.g. `rawlab vsock listen {addr.port}`", Exit.PEER,
                errno_=errno.ECONNRESET)
        try:
            n = parse_ok(line)
        except ValueError:
            raise RawlabError(
                f"{op} failed: {addr.path} answered {line!r}, not `OK <n>`; fix: is this a "
                "hybrid vsock socket (Firecracker, Cloud Hypervisor, vhost-device-vsock)?",
                Exit.PEER) from None
        s.settimeout(None)
    except BaseException:
        s.close()
        raise
    return s, n


def _remove_stale(path: str) -> None:
    """Remove a socket file nobody accepts on (left by a killed listener)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        return  # not ours to remove: bind() will say EADDRINUSE
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except ConnectionRefusedError:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    except OSError:
        pass
    finally:
        probe.close()


def listen(addr: HybridListenAddr, backlog: int = 128) -> socket.socket:
    """A Unix listener at `<uds_path>_<port>` for guest-initiated connections.

    The path appears only once the socket listens: it is bound under a temporary
    name and hard-linked into place (which also refuses to replace a live one), so
    a VMM that sees the path never meets a socket that refuses it.
    """
    _remove_stale(addr.path)
    tmp = f"{addr.path}.{os.getpid()}.tmp"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        s.bind(tmp)
        try:
            s.listen(backlog)
            os.link(tmp, addr.path)
        except FileExistsError:
            raise OSError(errno.EADDRINUSE, os.strerror(errno.EADDRINUSE)) from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
    except OSError as exc:
        s.close()
        raise error(exc, f"listen hybrid vsock {addr}", addr.path) from None
    return s


def unlink(addr: HybridListenAddr) -> None:
    with contextlib.suppress(OSError):
        os.unlink(addr.path)
