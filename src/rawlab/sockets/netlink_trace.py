"""`netlink trace`'s I/O: a command started under an nlmon tap, and the ports of its sockets.

    with TraceSession(["ip", "link", "add", ...], netns="blue") as t:
        code = t.run()            # starts the command, captures until it has exited
        t.records                 # every netlink record the namespace saw (rawlab.records.Record)
        t.ports                   # {(protocol, port id): (pid, comm)} of the command's sockets
        t.pids                    # {pid: comm}: the command and its children
        t.foreign                 # protocols of which another process had a socket meanwhile

An nlmon link in the command's namespace passes every netlink message of that
namespace (nlmon is per namespace) to an AF_PACKET ring; the link is removed when
the session ends, whatever ends it. The command's standard output goes to this
process's standard error (standard output carries the conversation). While the
command runs, a thread polls NETLINK_DIAG (which socket holds which port, with
its inode) and the command's process tree (``/proc/PID/task/*/children``, its
open descriptors), so the ports of the command and of its children are known,
also of sockets they close quickly; children that exit between two looks are
found by their exit record (TASKSTATS, :class:`rawlab.sockets.proc.TaskExits`).
I/O only: which messages belong to the command is
:mod:`rawlab.analysis.netlink_trace`'s.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from typing import Any

from rawlab.records import Record
from rawlab.sockets.netns import entered
from rawlab.sockets.proc import TaskExits, comm_of, socket_fds

POLL = 0.002  # seconds between two looks at the command's sockets
SETTLE = 0.2  # after the command exits: what the kernel still hands over


def children(pid: int, proc: str = "/proc") -> list[int]:
    """The direct children of every thread of ``pid``."""
    out: list[int] = []
    try:
        tids = os.listdir(f"{proc}/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"{proc}/{pid}/task/{tid}/children") as fh:
                out += [int(x) for x in fh.read().split()]
        except (OSError, ValueError):
            continue
    return out


class PortWatch:
    """Polls which netlink ports the processes of a tree hold (a thread; I/O only).

    ``ports``: {(protocol, port id): (pid, comm)}; ``pids``: {pid: comm} of the tree.
    """

    def __init__(self, root: int, exits: TaskExits | None = None, proc: str = "/proc",
                 interval: float = POLL) -> None:
        self.root = root
        self.exits = exits
        self.proc = proc
        self.interval = interval
        self.ports: dict[tuple[int, int], tuple[int, str]] = {}
        self.pids: dict[int, str] = {}
        self.foreign: set[int] = set()  # protocols with a user socket neither ours nor its
        self.error: Exception | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rawlab-trace-ports",
                                        daemon=True)

    def start(self) -> PortWatch:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop polling, after one last look (from the thread: it is in the namespace).
        A process that has exited is named as it was when it exited (a child seen
        between its fork and its exec still had its parent's name then)."""
        self._stop.set()
        self._thread.join(timeout=5)
        if self.exits is not None:
            for pid in self.pids:
                name = self.exits.name(pid)
                if name:
                    self.pids[pid] = name
        self.ports = {k: (pid, self.pids.get(pid, comm)) for k, (pid, comm) in
                      self.ports.items()}

    def _run(self) -> None:
        while True:
            last = self._stop.is_set()
            try:
                self.look()
            except Exception as exc:  # e.g. no netlink_diag here: the caller says so
                self.error = exc
                return
            if last:
                return
            self._stop.wait(self.interval)

    def tree(self) -> list[int]:
        """The root and its descendants now (and those that exited, by their records)."""
        todo, seen = [self.root], set()
        while todo:
            pid = todo.pop()
            if pid in seen:
                continue
            seen.add(pid)
            todo += children(pid, self.proc)
            if self.exits is not None:
                todo += self.exits.children({pid})
        return sorted(seen)

    def look(self) -> None:
        from rawlab.sockets.diag import netlink_ports

        pids = self.tree()
        for pid in pids:  # named again at each look: a child may have exec'd meanwhile
            comm = comm_of(pid, self.proc) or (self.exits.name(pid) if self.exits else None)
            if comm is not None:
                self.pids[pid] = comm
        inodes = {ino: pid for pid, _fd, ino in socket_fds(self.proc, pids)}
        own = {ino for _pid, _fd, ino in socket_fds(self.proc, [os.getpid()])}
        for proto, port, ino in netlink_ports():
            pid = inodes.get(ino)
            if pid is not None:
                self.ports[(proto, port)] = (pid, self.pids.get(pid, "?"))
            elif port and ino not in own and port & (1 << 22) - 1 not in self.pids:
                self.foreign.add(proto)


class TraceSession:
    """A command run in a namespace under an nlmon tap (see the module's docstring)."""

    def __init__(self, argv: list[str], *, netns: str | None = None) -> None:
        self.argv = argv
        self.netns = netns
        self.records: list[Record] = []
        self.ports: dict[tuple[int, int], tuple[int, str]] = {}
        self.pids: dict[int, str] = {}
        self.foreign: set[int] = set()
        self.started_ns = 0
        self.ended_ns = 0
        self.linktype = 0
        self.ifname = ""
        self.watch_error: Exception | None = None
        self._exits: TaskExits | None = None

    def __enter__(self) -> TraceSession:
        self._exits = TaskExits.open()  # in the first namespace, as TASKSTATS is
        return self

    def __exit__(self, *exc: object) -> None:
        if self._exits is not None:
            self._exits.close()

    def run(self) -> int:
        """Run the command under the tap; its exit status (128 + N when signal N ended it)."""
        from rawlab.sockets.monlink import monitor_link
        from rawlab.sockets.packet import open_ring

        with monitor_link("nlmon", netns=self.netns) as name:
            ring = open_ring(name, netns=self.netns)
            self.ifname, self.linktype = name, ring.linktype
            reader = threading.Thread(target=self._read, args=(ring,), name="rawlab-trace-ring",
                                      daemon=True)
            reader.start()
            try:
                code = self._spawn()
            finally:
                time.sleep(SETTLE)
                ring.stop()
                reader.join(timeout=10)
                ring.close()
        return code

    def _read(self, ring: Any) -> None:
        for rec in ring.records():
            self.records.append(rec)

    def _spawn(self) -> int:
        with entered(self.netns):  # the child, and the thread that watches it, live here
            self.started_ns = time.time_ns()
            # its standard output goes to our standard error: ours is the conversation
            child = subprocess.Popen(self.argv, stdout=sys.stderr.fileno())
            watch = PortWatch(child.pid, self._exits).start()
        try:
            code = child.wait()
        except BaseException:
            child.kill()
            child.wait()
            raise
        finally:
            self.ended_ns = time.time_ns()
            watch.stop()
            self.ports, self.pids, self.watch_error = watch.ports, watch.pids, watch.error
            self.foreign = watch.foreign
        return code if code >= 0 else 128 - code
