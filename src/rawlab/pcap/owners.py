"""How a packet's owning processes travel in pcapng: one ``opt_comment`` per end (what
Wireshark shows as ``frame.comment``) and Apple's Darwin process information blocks.

    owner_comment("src", owner)   # 'src curl[1234]' (per packet)
    facts_comment(owner)          # 'curl[1234] tid=1234 uid=1000 ... netns=... cmdline: ...'
    parse_comment(text)           # ("src", SocketOwner) or None (someone else's comment)

The per-packet comment is short: who (``src curl[1234]``; the uid and the socket's
namespace too when no process is known). What belongs to the process (thread, uid,
cgroup, container, command line) is said once, in the comment of its Darwin process
block, with the namespace of the first socket it was seen holding; a packet whose
socket lives in another namespace than that says its own (``netns=0``: none known).

A comment is words a person can read in Wireshark and a program can read back:
``END WHO key=value... [cmdline: ARGS]``, a word quoted as a shell would only when it
holds blanks or quotes (``shlex``). ``END`` is ``src`` or ``dst``; ``WHO`` is
``comm[pid]`` for a process, else the state (``closed-before-lookup``,
``no-socket``, ``unknown``). Keys: ``tid``, ``uid``, ``netns``, ``netns_name``,
``cgroup``, ``container``; the command line comes last, as ``shlex.join`` writes it.

Apple's blocks (tcpdump -k on macOS): a Darwin Process Information Block (type
0x80000001: pid, option 2 the name) per process, and in the EPB option 0x8001 the
index of the block of the packet's process. rawlab names the sending process there
when the sender is a local socket, else the receiving one.
"""

from __future__ import annotations

import re
import shlex
import struct

from rawlab.records import CLOSED, NO_SOCKET, PROCESS, UNKNOWN, SocketOwner

DARWIN_PIB = 0x80000001
DPIB_NAME = 2
EPB_DARWIN_PIB_ID = 0x8001

_WORDS = {CLOSED: "closed-before-lookup", NO_SOCKET: "no-socket", UNKNOWN: "unknown"}
_STATES = {v: k for k, v in _WORDS.items()}
_WHO = re.compile(r"(.*)\[(\d+)\]")
_INTS = ("tid", "uid", "netns")


_PLAIN = re.compile(r"[^\s'\"\\]+")


def _word(text: str) -> str:
    return text if _PLAIN.fullmatch(text) else shlex.quote(text)


_WHERE = ("netns", "netns_name")
_PER_PROCESS = ("tid", "uid", "cgroup", "container", *_WHERE)


def owner_comment(end: str, o: SocketOwner, keys: tuple[str, ...] | None = None,
                  where: tuple[int | None, str | None] | None = None) -> str:
    """The comment that says who held the socket at `end` ("src" or "dst"): with the
    `keys` given, else the per-packet ones (:func:`facts_comment` has the rest; `where`:
    the namespace its process block says, not said again when it is the socket's)."""
    who = f"{o.comm}[{o.pid}]" if o.state == PROCESS else _WORDS.get(o.state, o.state)
    if keys is None:
        keys = () if o.state == PROCESS and where == (o.netns, o.netns_name) else _WHERE
        if o.state != PROCESS:
            keys = ("uid", *keys)
    parts = [end, _word(who)] if end else [_word(who)]
    if "netns" in keys and o.netns is None and where is not None and where[0] is not None:
        parts.append("netns=0")  # (none known, where the process block names one)
    for key in keys:
        v = getattr(o, key) if key != "cmdline" else None
        if v is not None:
            parts.append(f"{key}={_word(str(v))}")
    if "cmdline" in keys and o.cmdline is not None:
        parts.append("cmdline: " + shlex.join(o.cmdline))
    return " ".join(parts)


def facts_comment(o: SocketOwner) -> str:
    """A process's own facts, for the comment of its Darwin process block."""
    return owner_comment("", o, (*_PER_PROCESS, "cmdline"))


def with_facts(o: SocketOwner, facts: SocketOwner | None) -> SocketOwner:
    """A per-packet owner completed by its process block's facts (same pid and name):
    the namespace is the packet's own where it says one (``netns=0``: none), else the
    block's."""
    if o.netns == 0:  # (said: no namespace known)
        o = SocketOwner(o.state, o.pid, o.tid, o.comm, o.cmdline, o.uid, o.cgroup,
                        o.container, None, o.netns_name)
    elif o.netns is None and o.netns_name is None and facts is not None \
            and (facts.pid, facts.comm) == (o.pid, o.comm):
        o = SocketOwner(o.state, o.pid, o.tid, o.comm, o.cmdline, o.uid, o.cgroup,
                        o.container, facts.netns, facts.netns_name)
    if facts is None or o.state != PROCESS or (facts.pid, facts.comm) != (o.pid, o.comm):
        return o
    return SocketOwner(PROCESS, o.pid, facts.tid, o.comm, facts.cmdline, facts.uid,
                       facts.cgroup, facts.container, o.netns, o.netns_name)


def parse_comment(text: str) -> tuple[str, SocketOwner] | None:
    """(end, owner) of a comment :func:`owner_comment` wrote; None for any other."""
    if not text.startswith(("src ", "dst ")):
        return None
    text, has_cmd, cmd = text.partition(" cmdline: ")
    try:
        words = shlex.split(text)
        cmdline = tuple(shlex.split(cmd)) if has_cmd else None
    except ValueError:
        return None
    if len(words) < 2:
        return None
    end, who, rest = words[0], words[1], words[2:]
    kw: dict[str, object] = {}
    m = _WHO.fullmatch(who)
    if m:
        kw.update(state=PROCESS, comm=m.group(1), pid=int(m.group(2)))
    elif who in _STATES:
        kw["state"] = _STATES[who]
    else:
        return None
    for w in rest:
        key, eq, val = w.partition("=")
        if not eq:
            return None
        if key in _INTS:
            if not val.isdigit():
                return None
            kw[key] = int(val)
        elif key in ("netns_name", "cgroup", "container"):
            kw[key] = val
    return end, SocketOwner(**kw, cmdline=cmdline)  # type: ignore[arg-type]


def _opt(code: int, raw: bytes) -> bytes:
    return struct.pack("<HH", code, len(raw)) + raw + b"\0" * (-len(raw) % 4)


def dpib_body(pid: int, name: str, comment: str | None = None) -> bytes:
    """The body of a Darwin Process Information Block (options end-marked)."""
    body = struct.pack("<I", pid) + _opt(DPIB_NAME, name.encode())
    if comment:
        body += _opt(1, comment.encode())  # opt_comment
    return body + struct.pack("<HH", 0, 0)
