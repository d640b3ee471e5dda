"""OS errors from socket calls, turned into one readable line and an exit code.

Every expected failure reaches the user as a :class:`RawlabError`: what failed,
why, and how to fix it, plus a documented exit code (see README, "Exit codes").
Library code raises these; only the CLI prints them.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from enum import IntEnum


class Exit(IntEnum):
    """Documented exit codes (README, "Exit codes")."""

    OK = 0
    FAILED = 1  # the command ran but what it checks or shows did not happen
    USAGE = 2  # bad option or argument (click's own code)
    PRIVILEGE = 3  # a capability is missing (CAP_NET_RAW, CAP_NET_ADMIN ...)
    UNSUPPORTED = 4  # the kernel lacks a family, protocol, module or device
    BAD_INPUT = 5  # a file or message that cannot be read as claimed
    PEER = 6  # the other end: refused, reset, unreachable, timed out
    OUTPUT = 7  # the output could not be written (disk full, read-only, no such directory)
    INTERRUPTED = 130  # Ctrl-C / SIGTERM; output written so far is valid


class RawlabError(Exception):
    """An expected failure: one line for the user, and an exit code."""

    def __init__(self, message: str, code: Exit = Exit.FAILED, *, errno_: int | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.errno = errno_

    def __str__(self) -> str:
        return self.message


# privileges.md anchors, so that a message can point at the right section.
PRIV_DOC = "privileges.md"


@dataclass(frozen=True)
class Advice:
    why: str
    fix: str
    code: Exit


def _cap_for(op: str) -> str:
    """The capability an operation needs, from the operation's own words."""
    low = op.lower()
    if any(k in low for k in ("netns", "namespace", "setns", "unshare")):
        return "CAP_SYS_ADMIN"
    if any(k in low for k in ("link", "promisc", "nlmon", "vsockmon", "nftables", "route add")):
        return "CAP_NET_ADMIN"
    return "CAP_NET_RAW"


# Why an errno happened and what fixes it, for operations of every family; EPERM and
# EACCES depend on the capability the operation needs (see advice()).
_ADVICE: dict[int, Advice] = {
    errno.EAFNOSUPPORT: Advice(
        "this kernel has no such address family",
        "load its module (modprobe) or use a kernel built with it; `rawlab lab vm` boots one",
        Exit.UNSUPPORTED,
    ),
    errno.EPROTONOSUPPORT: Advice(
        "this kernel does not support that protocol in this family",
        "load the protocol's module or use a kernel built with it",
        Exit.UNSUPPORTED,
    ),
    errno.ESOCKTNOSUPPORT: Advice(
        "this socket type is not supported here",
        "pick another type (see `rawlab doctor`)",
        Exit.UNSUPPORTED,
    ),
    errno.EOPNOTSUPP: Advice(
        "the kernel does not support this operation or device kind",
        "load the module that provides it, or run it in `rawlab lab vm`",
        Exit.UNSUPPORTED,
    ),
    errno.ENODEV: Advice(
        "no such device (or no transport for this family)",
        "check the name with `ip link`, or load the transport module",
        Exit.UNSUPPORTED,
    ),
    errno.ENOENT: Advice(
        "no such object",
        "check the name; for netlink families, load the module that provides it",
        Exit.UNSUPPORTED,
    ),
    errno.EADDRNOTAVAIL: Advice(
        "that address is not local to this machine (or its transport is missing)",
        "use an address this machine owns; for vsock CID 1 load vsock_loopback",
        Exit.UNSUPPORTED,
    ),
    errno.EADDRINUSE: Advice(
        "address already in use",
        "pick another port (or CID), or stop what holds it (`ss -lp`)",
        Exit.FAILED,
    ),
    errno.ECONNREFUSED: Advice(
        "connection refused: nothing listens there",
        "start a listener on that port first",
        Exit.PEER,
    ),
    errno.ECONNRESET: Advice(
        "connection reset by the peer (for vsock: nothing listening on that port)",
        "start a listener on that port first",
        Exit.PEER,
    ),
    errno.ETIMEDOUT: Advice(
        "timed out waiting for the peer",
        "check the peer is up and reachable; raise --timeout",
        Exit.PEER,
    ),
    errno.EHOSTUNREACH: Advice(
        "no route to that host", "check `ip route get ADDRESS`", Exit.PEER
    ),
    errno.ENETUNREACH: Advice(
        "network unreachable", "check `ip route get ADDRESS`", Exit.PEER
    ),
    errno.ENOBUFS: Advice(
        "the kernel dropped messages: the receive buffer overflowed",
        "raise the buffer (--rcvbuf / --ring-mb) or read faster",
        Exit.FAILED,
    ),
    errno.ENOMEM: Advice(
        "the kernel could not allocate that much memory",
        "ask for a smaller buffer or ring",
        Exit.FAILED,
    ),
    errno.EINVAL: Advice(
        "the kernel rejected an argument as invalid",
        "check the option values; see `rawlab doctor` for what this kernel supports",
        Exit.FAILED,
    ),
    errno.EBUSY: Advice(
        "device or resource busy", "stop what holds it, or pick another", Exit.FAILED
    ),
    errno.EEXIST: Advice(
        "it already exists", "pick another name, or remove the old one", Exit.FAILED
    ),
}


def advice(err: int, op: str) -> Advice:
    """Why `op` failed with `err`, and what to do about it."""
    cap = _cap_for(op)
    if err == errno.EACCES and cap == "CAP_SYS_ADMIN":
        err = errno.EPERM  # namespaces live under root-owned /run/netns: the same lack
    if err == errno.EPERM:
        return Advice(f"needs {cap}", f"run as root, or grant {cap.lower()} (see {PRIV_DOC})",
                      Exit.PRIVILEGE)
    if err == errno.EACCES:
        return Advice("permission denied",
                      f"run as root or fix the device's permissions (see {PRIV_DOC})",
                      Exit.PRIVILEGE)
    got = _ADVICE.get(err)
    if got is not None:
        return got
    return Advice(os.strerror(err).lower(), "see `rawlab doctor` for what this machine allows",
                  Exit.FAILED)


def explain(exc: OSError, op: str, sharper: Advice | None = None) -> RawlabError:
    """Turn an OSError from `op` (e.g. "open AF_PACKET socket") into a RawlabError:
    ``<op> failed: <why> (<ERRNO>); fix: <fix>``, the one failure format. `sharper` is
    a family's own advice for this errno (vsock, hybrid vsock ...), else the table's."""
    err = exc.errno if exc.errno is not None else 0
    if err == 0:
        return RawlabError(f"{op} failed: {exc}", Exit.FAILED)
    a = sharper if sharper is not None else advice(err, op)
    name = errno.errorcode.get(err, str(err))
    return RawlabError(f"{op} failed: {a.why} ({name}); fix: {a.fix}", a.code, errno_=err)


# Why writing an output failed, and the fix (files, stdout, plots).
_OUTPUT_ADVICE: dict[int, tuple[str, str]] = {
    errno.ENOSPC: ("no space left on device", "free some space, or write elsewhere"),
    errno.EDQUOT: ("disk quota exceeded", "free some space, or write elsewhere"),
    errno.EFBIG: ("file too large for this file system", "rotate (-G) or write elsewhere"),
    errno.EROFS: ("read-only file system", "write to a writable directory"),
    errno.EACCES: ("permission denied", "write where you may, or fix the permissions"),
    errno.EPERM: ("not permitted", "write where you may, or fix the permissions"),
    errno.ENOENT: ("no such directory", "create the directory first, or fix the path"),
    errno.ENOTDIR: ("a part of the path is not a directory", "fix the path"),
    errno.EISDIR: ("it is a directory", "name a file inside it"),
    errno.EIO: ("input/output error", "check the device (dmesg), or write elsewhere"),
    errno.EINVAL: ("that file does not take writes", "write to a regular file"),
}


def output_error(exc: OSError, what: str, kept: str = "") -> RawlabError:
    """A failed write of an output (``what``: "write out.pcapng", "write to standard
    output") as one line with exit code OUTPUT; ``kept`` says what stays valid."""
    err = exc.errno if exc.errno is not None else 0
    why, fix = _OUTPUT_ADVICE.get(err, (os.strerror(err).lower() if err else str(exc),
                                        "write elsewhere"))
    name = errno.errorcode.get(err, str(err))
    tail = f"; {kept}" if kept else ""
    return RawlabError(f"{what} failed: {why} ({name}){tail}; fix: {fix}", Exit.OUTPUT,
                       errno_=err or None)
