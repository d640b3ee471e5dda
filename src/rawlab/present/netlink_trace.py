"""`rawlab netlink trace`'s output: a command's netlink conversation, one line (or one JSON
object) per message, with its time since the command started.

    0.412 ms  ip[4242] → route [RTM_NEWROUTE] 10.91.0.0/24 via 10.90.0.9  (seq 7 REQUEST,...)
    0.498 ms  ip[4242] ← route [NLMSG_ERROR] error ENETUNREACH: Nexthop has invalid ...

The steps are rawlab.analysis.netlink_trace's.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from rawlab.present.netlink import PROTOCOLS, family_json, flag_names, layout, line, msg_json

ARROWS = {"to_kernel": "→", "to_user": "←"}


def _who(step: Any) -> str:
    return f"{step.process[1]}[{step.process[0]}]" if step.process else "?"


def trace_lines(steps: list[Any], started_ns: int, *, verbose: bool = False,
                genl: Any = None) -> Iterator[str]:
    """Text: each message of each step, in order."""
    for st in steps:
        t = (st.ts_ns - started_ns) / 1e6
        family = PROTOCOLS.get(st.protocol, str(st.protocol))
        for m in st.msgs:
            flags = ",".join(flag_names(m.type, m.flags))
            tail = f"  (seq {m.seq}{' ' + flags if flags else ''})"
            if st.copies > 1:
                tail += f" ×{st.copies} sockets"
            body = line(m).split("  (pid ")[0]
            yield f"{t:10.3f} ms  {_who(st)} {ARROWS[st.direction]} {family} {body}{tail}"
            if verbose:
                yield from layout(m.buf, m.offset, st.protocol, genl)


def trace_json(steps: list[Any], started_ns: int) -> Iterator[dict[str, Any]]:
    """JSON: one object per message (docs/json.md, "netlink trace")."""
    for st in steps:
        for i, m in enumerate(st.msgs):
            d = msg_json(m, event="message", t_ns=st.ts_ns - started_ns, ts_ns=st.ts_ns,
                         frame=st.frame, msg_index=i, direction=st.direction,
                         protocol=st.protocol, protocol_name=PROTOCOLS.get(st.protocol),
                         port=st.port,
                         process={"pid": st.process[0], "comm": st.process[1]}
                         if st.process else None, copies=st.copies)
            d.update(family_json(m))
            yield d


def trace_summary(argv: list[str], code: int, steps: list[Any], elapsed_ns: int,
                  unmatched: int, others: int) -> dict[str, Any]:
    """The closing counts (JSON's last object; the text line is made from it)."""
    msgs = [(st.direction, m) for st in steps for m in st.msgs]
    errors = [m for _d, m in msgs if m.error is not None and m.error < 0]
    return {"command": argv, "exit": code, "elapsed_ns": elapsed_ns, "messages": len(msgs),
            "requests": sum(d == "to_kernel" for d, _m in msgs),
            "replies": sum(d == "to_user" for d, _m in msgs), "errors": len(errors),
            "unmatched_requests": unmatched, "other_messages": others}


def summary_text(s: dict[str, Any]) -> str:
    return (f"{s['command'][0]} exited {s['exit']} after {s['elapsed_ns'] / 1e6:.1f} ms: "
            f"{s['messages']} messages ({s['requests']} to the kernel, {s['replies']} from it, "
            f"{s['errors']} errors); {s['other_messages']} messages of other processes, "
            f"{s['unmatched_requests']} requests no reply tied to it")
