"""Throwaway network namespaces and veth pairs: for tests, the demo and benchmarks.

Everything a :class:`Lab` creates is removed when it closes, also on an
exception, Ctrl-C or SIGTERM (the CLI turns SIGTERM into SystemExit). Names
carry the owner's pid (``rl-<tag>-<pid>-<rand>``) so that :func:`cleanup_stale`
can remove what a killed run left behind without touching anyone else's.

Traffic between a Lab's namespaces never leaves the machine: veth pairs join
namespaces the Lab created, and nothing else.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import subprocess

from rawlab.errors import RawlabError, explain
from rawlab.lab import owner
from rawlab.sockets.netns import (  # noqa: F401 - re-exported: the names were born here
    CLONE_NEWNET,
    CLONE_NEWUSER,
    NETNS_RUN_DIR,
    entered,
    setns,
    unshare,
)
from rawlab.sockets.stop import held

NAME_RE = re.compile(r"^rl-[a-z0-9]+-(\d+)-[0-9a-f]{4}$")


def in_child(fn: Callable[[], Any], *, flags: int = CLONE_NEWNET,
             user: int | None = None, timeout: float = 20.0) -> Any:
    """Run fn() in a forked child that first (optionally) drops to `user` and
    then unshares `flags`; return what fn returned (JSON-able).

    The namespaces die with the child, so nothing needs removing. An exception
    in the child comes back as OSError (errno kept) or RuntimeError.
    """
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(rfd)
        out: dict[str, Any]
        try:
            if user is not None:
                os.setgroups([])
                os.setgid(user)
                os.setuid(user)
            if flags:
                unshare(flags)
            out = {"ok": fn()}
        except OSError as exc:
            out = {"errno": exc.errno, "msg": exc.strerror or str(exc)}
        except BaseException as exc:
            import traceback

            out = {"error": f"{type(exc).__name__}: {exc}", "tb": traceback.format_exc()}
        try:
            os.write(wfd, json.dumps(out).encode())
        finally:
            os._exit(0)
    os.close(wfd)
    chunks = []
    try:
        with os.fdopen(rfd, "rb") as fh:
            chunks.append(fh.read())
    finally:
        os.waitpid(pid, 0)
    raw = b"".join(chunks)
    if not raw:
        raise RuntimeError("probe child died without an answer")
    res = json.loads(raw)
    if "ok" in res:
        return res["ok"]
    if "errno" in res:
        raise OSError(res["errno"], res["msg"])
    raise RuntimeError(res["error"])


def unique_name(tag: str) -> str:
    import secrets

    tag = re.sub(r"[^a-z0-9]", "", tag.lower())[:8] or "ns"
    return f"rl-{tag}-{os.getpid()}-{secrets.token_hex(2)}"


def list_namespaces() -> list[str]:
    try:
        return sorted(os.listdir(NETNS_RUN_DIR))
    except FileNotFoundError:
        return []


def remove_namespace(name: str) -> None:
    from pyroute2 import netns

    try:
        netns.remove(name)
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            raise explain(exc, f"remove network namespace {name}") from None


def cleanup_stale() -> list[str]:
    """Remove rawlab namespaces nobody holds any more (rawlab.lab.owner); their names."""
    gone = []
    for name in list_namespaces():
        m = NAME_RE.match(name)
        if m and owner.abandoned(name, int(m.group(1))):
            remove_namespace(name)
            owner.release(name, None)
            gone.append(name)
    return gone


@dataclass
class Netns:
    """A named network namespace the Lab created."""

    name: str
    tag: str
    lock: int | None = None  # the owner lock (rawlab.lab.owner) held while it lives

    def run(
        self, argv: list[str], *, check: bool = True, **kw: Any
    ) -> subprocess.CompletedProcess[str]:
        """Run a command inside this namespace (`ip netns exec`)."""
        import subprocess

        return subprocess.run(["ip", "netns", "exec", self.name, *argv], check=check,
                              text=True, capture_output=True, **kw)

    def popen(self, argv: list[str], **kw: Any) -> subprocess.Popen[Any]:
        import subprocess

        return subprocess.Popen(["ip", "netns", "exec", self.name, *argv], **kw)

    def entered(self) -> contextlib.AbstractContextManager[None]:
        return entered(self.name)


@dataclass
class Veth:
    """A veth pair: (left namespace, ifname, address) ↔ (right ...)."""

    left: Netns
    left_if: str
    left_addr: str | None
    right: Netns
    right_if: str
    right_addr: str | None

    @property
    def right_ip(self) -> str | None:
        return self.right_addr.split("/")[0] if self.right_addr else None


@dataclass
class Lab:
    """Namespaces and veth pairs that exist only while the Lab is open."""

    namespaces: list[Netns] = field(default_factory=list)
    veths: list[Veth] = field(default_factory=list)

    def __enter__(self) -> Lab:
        # namespaces of killed runs (SIGKILL cannot be caught) go first, and are named
        try:
            gone = cleanup_stale()
        except RawlabError:
            gone = []  # not ours to remove (no privilege): creating will say so
        if gone:
            sys.stderr.write(f"rawlab: removed {len(gone)} network namespace(s) left by "
                             f"killed runs: {' '.join(gone)}\n")
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def netns(self, tag: str) -> Netns:
        from pyroute2 import netns

        name = unique_name(tag)
        # the owner lock first: a cleanup in another PID namespace (where our pid cannot
        # be seen) would otherwise remove the namespace between its creation and the lock;
        # a stop signal waits until the namespace is on the list close() removes
        with held():
            lock = owner.hold(name)
            for attempt in range(3):
                try:
                    netns.create(name)
                except OSError as exc:
                    owner.release(name, lock)
                    raise explain(exc, f"create network namespace {name}") from None
                # When /run/netns is first made a mount point, a namespace created at the
                # same moment by another process can end up hidden under it: make sure
                # ours is visible, else make it again.
                if os.path.exists(os.path.join(NETNS_RUN_DIR, name)) or attempt == 2:
                    break
                time.sleep(0.05)
            ns = Netns(name, tag, lock)
            self.namespaces.append(ns)
        self._up(ns, "lo")
        return ns

    def _ipr(self, ns: Netns) -> Any:
        from pyroute2 import NetNS

        return NetNS(ns.name)

    def _up(self, ns: Netns, ifname: str) -> None:
        with self._ipr(ns) as ipr:
            idx = ipr.link_lookup(ifname=ifname)[0]
            ipr.link("set", index=idx, state="up")

    def veth(self, left: Netns, right: Netns, left_addr: str | None = None,
             right_addr: str | None = None, *, ifnames: tuple[str, str] = ("veth0", "veth1"),
             offloads: bool = True, extra_addrs: tuple[tuple[str, str], ...] = (),
             static_neighbours: bool = False) -> Veth:
        """Create a veth pair between two of this Lab's namespaces, addressed and up.

        ifnames: the (left, right) interface names.
        offloads=False turns TSO/GSO/GRO and checksum offload off on both ends
        (`ethtool -K`), so that segments on the wire are real MTU-sized ones.
        extra_addrs: more (left, right) address pairs, e.g. IPv6.
        static_neighbours=True enters each end's addresses in the other's neighbour
        table (no ARP / neighbour discovery delay before the first packet).
        """
        left_if, right_if = ifnames
        self._link_veth(left, left_if, right, right_if)
        pairs = [(left_addr, right_addr), *extra_addrs]
        ends = [(left, left_if, [p[0] for p in pairs]), (right, right_if, [p[1] for p in pairs])]
        for ns, ifname, addrs in ends:
            self._address_up(ns, ifname, addrs)
            if not offloads:
                ns.run(["ethtool", "-K", ifname, "tso", "off", "gso", "off", "gro", "off",
                        "tx", "off", "rx", "off"], check=False)
        if static_neighbours:
            self._pin_neighbours(ends)
        v = Veth(left, left_if, left_addr, right, right_if, right_addr)
        self.veths.append(v)
        return v

    def _link_veth(self, left: Netns, left_if: str, right: Netns, right_if: str) -> None:
        for attempt in range(2):
            with self._ipr(left) as ipr:
                try:
                    ipr.link("add", ifname=left_if, kind="veth",
                             peer={"ifname": right_if, "net_ns_fd": right.name})
                    return
                except OSError as exc:
                    if exc.errno == errno.ENOENT and attempt == 0:
                        time.sleep(0.1)  # see netns(): a namespace not yet visible
                        continue
                    raise explain(exc, f"create veth link {left_if}") from None

    def _address_up(self, ns: Netns, ifname: str, addrs: list[str | None]) -> None:
        with self._ipr(ns) as ipr:
            idx = ipr.link_lookup(ifname=ifname)[0]
            for a in addrs:
                if a:
                    ip, _, plen = a.partition("/")
                    # IPv6: IFA_F_NODAD (0x02), usable at once without the DAD wait
                    ipr.addr("add", index=idx, address=ip,
                             prefixlen=int(plen or (128 if ":" in ip else 32)),
                             flags=0x02 if ":" in ip else 0)
            ipr.link("set", index=idx, state="up")

    def _pin_neighbours(self, ends: list[tuple[Netns, str, list[str | None]]]) -> None:
        """Each end's addresses as permanent neighbours on the other end."""
        macs = []
        for ns, ifname, _ in ends:
            with self._ipr(ns) as ipr:
                link = ipr.get_links(ipr.link_lookup(ifname=ifname)[0])[0]
                macs.append(link.get("IFLA_ADDRESS"))
        (left, left_if, left_addrs), (right, right_if, right_addrs) = ends
        for ns, ifname, peer_addrs, peer_mac in ((left, left_if, right_addrs, macs[1]),
                                                 (right, right_if, left_addrs, macs[0])):
            for a in peer_addrs:
                if a:
                    ns.run(["ip", "neigh", "replace", a.split("/")[0], "lladdr", peer_mac,
                            "dev", ifname, "nud", "permanent"])

    def close(self) -> None:
        """Remove every namespace this Lab created (their veths go with them)."""
        errors = []
        with held():  # (a stop signal now would leave the rest: it waits)
            while self.namespaces:
                ns = self.namespaces.pop()
                try:
                    remove_namespace(ns.name)
                    owner.release(ns.name, ns.lock)
                except RawlabError as exc:  # keep going: remove the others
                    errors.append(f"{ns.name}: {exc}")
        self.veths.clear()
        if errors:
            raise RawlabError("could not remove namespaces: " + "; ".join(errors))
