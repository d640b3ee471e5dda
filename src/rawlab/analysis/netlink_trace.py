"""Which netlink messages of a namespace were one command's conversation (sans-I/O).

    conv = Conversation(ports={(0, 4242): (4242, "ip")}, pids={4242: "ip"}, genl=ids)
    for step in conv.steps(records):     # records: (ts_ns, protocol, pkttype, bytes) in order
        step.ts_ns, step.direction       # "to_kernel" / "to_user"
        step.msgs                        # the datagram's messages, decoded (NlMsg)
        step.port, step.process          # the command's port it went through, (pid, comm)
        step.copies                      # a notification delivered to several sockets: how many

An nlmon tap shows every netlink message of a namespace but not which socket sent
or received it. What is known: the ports of the command's sockets (``ports``, from
NETLINK_DIAG and the command's descriptors; and a port whose pid part — the port
itself, or libnl's ``pid + n << 22`` — is one of the command's ``pids``). A
message to a user socket carries the port it is about in ``nlmsg_pid``: a reply,
an ACK or an error the command asked for, or a notification its change caused.
A request carries what the command wrote there, often 0: a request is the
command's when its ``nlmsg_pid`` is one of its ports, or when a reply to one of
its ports answers its sequence number (each reply answers the earliest request
still waiting with that number; the kernel answers in the sender's own context).
A request nothing answers and whose ``nlmsg_pid`` is 0 is the command's when no
other process held a socket of its protocol meanwhile (``foreign``) and the
command held one; else it cannot be told apart from another process's: it is
counted (``unmatched``), not shown. A notification the
kernel delivered to several listening sockets is shown once, with the number of
copies.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rawlab.decode.rtnl import decode_buffer
from rawlab.sockets.netlink import nlmon_direction
from rawlab.sockets.netlink_wire import NLMSG_HDRLEN, NLMSGHDR, NlMsg

PID_MASK = (1 << 22) - 1


@dataclass
class Step:
    """One datagram of the conversation."""

    ts_ns: int
    protocol: int
    direction: str  # "to_kernel" | "to_user"
    data: bytes
    msgs: list[NlMsg]
    port: int | None  # the command's port this went to (replies) or came from
    process: tuple[int, str] | None  # (pid, comm) behind that port, when known
    copies: int = 1
    frame: int = 0  # its number among the tap's records (1 = the first)
    raw: Any = None  # the record as captured (cooked header included), for -w
    extra: dict[str, Any] = field(default_factory=dict)


class Conversation:
    """Picks a command's conversation out of a namespace's netlink records."""

    def __init__(self, ports: Mapping[tuple[int, int], tuple[int, str]],
                 pids: Mapping[int, str], genl: Any = None,
                 foreign: set[int] | None = None) -> None:
        self.ports = ports
        self.pids = pids
        self.genl = genl  # generic netlink ids -> names (rawlab.decode.genl.GenlIds)
        # protocols of which another process held a socket while the command ran (None:
        # not known): a request nothing answers is the command's only where none did
        self.foreign = foreign
        self.unmatched = 0  # requests nothing tied to the command
        self.others = 0  # messages of other processes

    def owner(self, protocol: int, port: int) -> tuple[int, str] | None:
        """(pid, comm) of the command's process behind a port, or None: not the command's."""
        if not port:
            return None
        got = self.ports.get((protocol, port))
        if got is not None:
            return got
        pid = port & PID_MASK
        return (pid, self.pids[pid]) if pid in self.pids else None

    def steps(self, records: Iterable[tuple[int, int, int, bytes, Any]]) -> list[Step]:
        """The command's datagrams, in order (see the module's docstring)."""
        seen: list[Step] = []
        for n, (ts_ns, protocol, pkttype, data, raw) in enumerate(records, 1):
            if len(data) < NLMSG_HDRLEN:
                continue
            direction = nlmon_direction(pkttype, data)
            port = NLMSGHDR.unpack_from(data)[4]
            seen.append(Step(ts_ns, protocol, direction, bytes(data), [], port,
                             self.owner(protocol, port), frame=n, raw=raw))
        answered = self._answered(seen)
        out: list[Step] = []
        for i, st in enumerate(seen):
            if st.direction == "to_user":
                if st.process is None:
                    self.others += 1
                    continue
                last = out[-1] if out else None
                if last is not None and last.direction == "to_user" and last.data == st.data \
                        and last.protocol == st.protocol:
                    last.copies += 1  # one notification, several listening sockets
                    continue
            elif st.process is None:
                got = answered.get(i) or self._alone(st, seen)
                if got is None:
                    self.unmatched += st.port == 0
                    self.others += st.port != 0
                    continue
                st.port, st.process = got
            st.msgs = decode_buffer(st.data, st.protocol, genl=self.genl)
            out.append(st)
        return out

    def _alone(self, st: Step, seen: list[Step]) -> tuple[int, tuple[int, str]] | None:
        """A request no reply answers is the command's when no other process had a socket
        of its protocol, and the command had exactly one (e.g. nft's batch: no ACK asked)."""
        if st.port or self.foreign is None or st.protocol in self.foreign:
            return None
        mine = {port: who for (proto, port), who in self.ports.items()
                if proto == st.protocol}
        mine.update((s.port, s.process) for s in seen if s.protocol == st.protocol
                    and s.process is not None and s.port)
        return next(iter(mine.items())) if len(mine) == 1 else None

    def _answered(self, seen: list[Step]) -> dict[int, tuple[int, tuple[int, str]]]:
        """Requests a later reply to one of the command's ports answers: index -> (port,
        owner). Each reply answers the earliest request still waiting with its protocol
        and sequence number (a reply to another port answers, and so removes, one too)."""
        waiting: dict[tuple[int, int], list[int]] = {}  # (protocol, seq) -> requests, in order
        out: dict[int, tuple[int, tuple[int, str]]] = {}
        for i, st in enumerate(seen):
            seqs = {m[3] for m in _headers(st.data)}
            if st.direction == "to_kernel":
                for seq in seqs:
                    waiting.setdefault((st.protocol, seq), []).append(i)
                continue
            for seq in seqs:
                queue = waiting.get((st.protocol, seq))
                if not queue:
                    continue
                req = queue.pop(0)
                if st.process is not None and req not in out:
                    out[req] = (st.port or 0, st.process)
                    for rest in waiting.values():  # a batch: its other numbers are answered
                        if req in rest:
                            rest.remove(req)
        return out


def _headers(data: bytes) -> list[tuple[int, int, int, int, int]]:
    """The nlmsghdr of each message of a datagram (len, type, flags, seq, pid)."""
    out = []
    off, n = 0, len(data)
    while off + NLMSG_HDRLEN <= n:
        h = NLMSGHDR.unpack_from(data, off)
        out.append(h)
        if h[0] < NLMSG_HDRLEN:
            break
        off += (h[0] + 3) & ~3
    return out
