"""The temporary nftables table that keeps our kernel from resetting a user-space connection.

    with RstGuard("10.0.0.2", 80, sport=61234, netns="rl-a-…") as guard:
        guard.table       # "rawlab_<pid>_<sport>"
        guard.ruleset     # the exact text given to `nft -f -`
        ...               # the kernel's RSTs to 10.0.0.2:80 from port 61234 are dropped

A segment for a connection no socket owns makes the kernel answer with a RST
(RFC 9293 §3.10.7.1). The table (family inet, its own name, so nothing else is
touched) has one output rule dropping RSTs from our source port to HOST:PORT,
except ours: packets from rawlab's raw socket carry SO_MARK ``MARK``.

Removed on every exit: normal, exception, Ctrl-C (KeyboardInterrupt) and
SIGTERM/SIGHUP (turned into a RawlabError with exit code 130 while the guard
is open, in the main thread); signals are blocked while the table is deleted.
A SIGKILL leaves it behind: :func:`cleanup_stale` removes tables of dead pids.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from types import TracebackType

from rawlab.errors import Exit, RawlabError
from rawlab.lab import owner
from rawlab.sockets.stop import held, raise_on_signals

MARK = 0x7261776C  # "rawl": our own packets, which the rule lets through
TABLE_RE = re.compile(r"^rawlab_(\d+)_(\d+)$")
_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def table_name(sport: int, pid: int | None = None) -> str:
    return f"rawlab_{pid if pid is not None else os.getpid()}_{sport}"


def ruleset(table: str, host: str, port: int, sport: int) -> str:
    """The `nft -f` text: one table, one output chain, one rule."""
    fam = "ip6" if ":" in host else "ip"
    return (f"table inet {table} {{\n"
            f"  chain output {{\n"
            f"    type filter hook output priority 0; policy accept;\n"
            f"    {fam} daddr {host} tcp sport {sport} tcp dport {port} "
            f"tcp flags & rst == rst meta mark != 0x{MARK:08x} counter drop\n"
            f"  }}\n"
            f"}}\n")


def _nft(args: list[str], netns: str | None, stdin: str | None = None,
         check: bool = True) -> subprocess.CompletedProcess[str]:
    nft = shutil.which("nft")
    if nft is None:
        raise RawlabError("nft (nftables) is not installed; fix: apt install nftables",
                          Exit.UNSUPPORTED)
    argv = [nft, *args]
    if netns is not None:
        argv = ["ip", "netns", "exec", netns, *argv]
    p = subprocess.run(argv, input=stdin, text=True, capture_output=True, check=False)
    if check and p.returncode != 0:
        err = p.stderr.strip().splitlines()
        why = err[0] if err else f"exit {p.returncode}"
        code = Exit.PRIVILEGE if "Operation not permitted" in p.stderr else Exit.FAILED
        raise RawlabError(f"nft {' '.join(args)} failed: {why}"
                          + ("; fix: run as root (needs CAP_NET_ADMIN)"
                             if code == Exit.PRIVILEGE else ""), code)
    return p


def tables(netns: str | None = None) -> list[str]:
    """Names of the inet tables in the namespace (RawlabError PRIVILEGE if nft may not
    even look: an empty answer would claim there is nothing to clean)."""
    p = _nft(["list", "tables", "inet"], netns, check=False)
    if p.returncode != 0 and "Operation not permitted" in p.stderr:
        raise RawlabError("nft list tables failed: not permitted; fix: run as root (needs "
                          "CAP_NET_ADMIN)", Exit.PRIVILEGE)
    return [ln.split()[-1] for ln in p.stdout.splitlines() if ln.startswith("table inet ")]


def cleanup_stale(netns: str | None = None) -> list[str]:
    """Delete rawlab tables whose process is gone; return their names."""
    gone = []
    for t in tables(netns):
        m = TABLE_RE.match(t)
        if m and owner.abandoned(t, int(m.group(1))):
            _nft(["delete", "table", "inet", t], netns, check=False)
            owner.release(t, None)
            gone.append(t)
    return gone


class Terminated(RawlabError):
    def __init__(self, signum: int) -> None:
        super().__init__(f"terminated by {signal.Signals(signum).name}; the nftables table "
                         "was removed", Exit.INTERRUPTED)


class RstGuard:
    """Context manager: the table exists exactly while the block runs."""

    def __init__(self, host: str, port: int, sport: int, *, netns: str | None = None) -> None:
        self.host = host
        self.port = port
        self.sport = sport
        self.netns = netns
        self.table = table_name(sport)
        self.ruleset = ruleset(self.table, host, port, sport)
        self.dropped: int | None = None  # the rule's counter, read just before removal
        self._signals = contextlib.ExitStack()
        self._installed = False
        self._lock: int | None = None

    def __enter__(self) -> RstGuard:
        # tables a killed run left (SIGKILL cannot be caught): removed first, and said
        gone = cleanup_stale(self.netns)
        if gone:
            sys.stderr.write(f"rawlab: removed {len(gone)} nftables table(s) left by killed "
                             f"runs: {', '.join(gone)}\n")
        if threading.current_thread() is threading.main_thread():
            self._signals.enter_context(raise_on_signals(Terminated, _SIGNALS))
        self._lock = owner.hold(self.table)
        try:
            _nft(["-f", "-"], self.netns, stdin=self.ruleset)
            self._installed = True
        except BaseException:
            # a signal may land after nft made the table: make sure it is gone
            _nft(["delete", "table", "inet", self.table], self.netns, check=False)
            owner.release(self.table, self._lock)
            self._restore()
            raise
        return self

    def _restore(self) -> None:
        self._signals.close()

    def counter(self) -> int | None:
        """Packets the rule dropped so far."""
        p = _nft(["list", "table", "inet", self.table], self.netns, check=False)
        m = re.search(r"counter packets (\d+)", p.stdout)
        return int(m.group(1)) if m else None

    def remove(self) -> None:
        if not self._installed:
            return
        with held():
            self.dropped = self.counter()
            _nft(["delete", "table", "inet", self.table], self.netns)
            self._installed = False
            owner.release(self.table, self._lock)

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            self.remove()
        finally:
            self._restore()
