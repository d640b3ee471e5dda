"""The processes at a packet's ends, for people and programs (``--processes``).

    label(owner)                      # 'curl[1234]', '[closed before lookup]', ...
    mark_endpoints(body, rec.owners)  # 'IP a.1 curl[1234] > b.2 nginx[7]: ...'
    owners_json(rec.owners)           # {"src": {...}, "dst": null} (docs/json.md)
    summary(counts)                   # the closing line of a capture

An end that is not a socket of this machine (None) shows nothing.
"""

from __future__ import annotations

from typing import Any

from rawlab.records import CLOSED, NO_SOCKET, PROCESS, UNKNOWN, Owners, SocketOwner

_STATE_LABEL = {CLOSED: "[closed before lookup]", NO_SOCKET: "[no socket]",
                UNKNOWN: "[unknown]"}


def label(o: SocketOwner | None) -> str:
    """``comm[pid]``, or what is known instead; '' for a remote end."""
    if o is None:
        return ""
    if o.state == PROCESS:
        return f"{o.comm}[{o.pid}]"
    return _STATE_LABEL.get(o.state, f"[{o.state}]")


def mark_endpoints(body: str, owners: Owners) -> str:
    """A one-line summary with each end's label after its endpoint: the text before
    " > " is the source, up to the next ": " the destination (tcpdump's IP lines)."""
    i = body.find(" > ")
    if i < 0:
        return body
    j = body.find(": ", i + 3)
    if j < 0:
        return body
    src, dst = label(owners[0]), label(owners[1])
    return (body[:i] + (" " + src if src else "") + body[i:j] + (" " + dst if dst else "")
            + body[j:])


def owner_json(o: SocketOwner | None) -> dict[str, Any] | None:
    """The ``process`` object of one end (docs/json.md)."""
    if o is None:
        return None
    return {"state": o.state, "pid": o.pid, "tid": o.tid, "comm": o.comm,
            "cmdline": list(o.cmdline) if o.cmdline is not None else None, "uid": o.uid,
            "cgroup": o.cgroup, "container": o.container, "netns": o.netns,
            "netns_name": o.netns_name}


def owners_json(owners: Owners) -> dict[str, Any]:
    return {"src": owner_json(owners[0]), "dst": owner_json(owners[1])}


def owner_lines(owners: Owners) -> list[str]:
    """The ``-v`` tree's lines: one per end with an owner."""
    out = []
    for end, o in zip(("src", "dst"), owners, strict=True):
        if o is None:
            continue
        facts = [f"{k} {v}" for k, v in (("uid", o.uid), ("cgroup", o.cgroup),
                                           ("container", o.container), ("netns", o.netns),
                                           ("netns_name", o.netns_name)) if v is not None]
        if o.tid is not None:
            facts.insert(0, f"tid {o.tid}")
        cmd = f" `{' '.join(o.cmdline)}`" if o.cmdline else ""
        out.append(f"  process {end}: {label(o)}{cmd}"
                   + (f" ({', '.join(facts)})" if facts else ""))
    return out


def summary(counts: Any, dropped: bool = False, watch: Any = None) -> str:
    """``processes: N frames attributed, M with an end closed before lookup, K not
    attributable``
    (an AttributionCounts); with a filter, also the frames it dropped; with the SYN watch
    (rawlab.analysis.syn_watch.SynWatch, closed), what it read and named (connecting ends
    at their SYN, accepting ones as they were accepted)."""
    from rawlab.present.packet import plural

    text = (f"processes: {plural(counts.attributed, 'frame')} attributed, "
            f"{counts.closed} with an end closed before lookup (its process unknown), "
            f"{counts.unattributed} not attributable (no TCP/UDP/ping socket of this machine)")
    if dropped:
        text += f"; {counts.dropped} dropped by the process filter"
    if watch is not None and watch.off is not None and not watch.syns:
        text += f"; SYN watch off ({watch.off})"
    elif watch is not None:
        text += (f"; SYN watch: {plural(watch.syns, 'SYN')}, {watch.found} named at their "
                 "SYN")
        if watch.accepted:
            text += f", {plural(watch.accepted, 'accepting end')} named as accepted"
        if watch.dropped:
            text += f", {watch.dropped} left to the capture's own questions (its queue was full)"
        if watch.off is not None:
            text += f", then off ({watch.off})"
    return text


def summary_json(counts: Any, lookups: int, destroy_groups: bool,
                 watch: Any = None) -> dict[str, Any]:
    out = {"attributed": counts.attributed, "closed_before_lookup": counts.closed,
           "not_attributable": counts.unattributed, "dropped": counts.dropped,
           "flows": counts.flows, "lookups": lookups, "destroy_groups": destroy_groups}
    if watch is not None:
        out["syn_watch"] = {"syns": watch.syns, "named": watch.found,
                            "accepted": watch.accepted, "dropped": watch.dropped,
                            "off": watch.off}
    return out


class StreamOwners:
    """The owners of each TCP stream's client and server, from its segments' records
    (the best known: a process wins over a state)."""

    def __init__(self) -> None:
        self.by_stream: dict[int, tuple[SocketOwner | None, SocketOwner | None]] = {}

    def note(self, stream: int, direction: int, owners: Owners) -> None:
        pair = (owners[0], owners[1]) if direction == 0 else (owners[1], owners[0])
        old = self.by_stream.get(stream)
        if old is None:
            self.by_stream[stream] = pair
        elif old != pair:
            self.by_stream[stream] = (_better(old[0], pair[0]), _better(old[1], pair[1]))

    def get(self, stream: int) -> tuple[SocketOwner | None, SocketOwner | None]:
        return self.by_stream.get(stream, (None, None))

    def json(self, stream: int) -> dict[str, Any]:
        c, s = self.get(stream)
        return {"client": owner_json(c), "server": owner_json(s)}


def _better(old: SocketOwner | None, new: SocketOwner | None) -> SocketOwner | None:
    if old is None or (new is not None and old.state != PROCESS and new.state == PROCESS):
        return new
    return old
