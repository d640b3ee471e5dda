"""`netlink trace`'s choice of a command's messages among a namespace's (sans-I/O), tables of
records in, steps out; and its text and JSON."""

from __future__ import annotations

import struct
from typing import Any

import pytest

from rawlab.analysis.netlink_trace import Conversation
from rawlab.present import netlink_trace as fmt

pytestmark = pytest.mark.unit

REQ, ACK_F = 0x01, 0x04
TO_KERNEL, TO_USER = 7, 6  # PACKET_KERNEL / PACKET_USER as nlmon marks them


def msg(mtype: int, body: bytes, *, flags: int = 0, seq: int = 0, pid: int = 0) -> bytes:
    raw = struct.pack("=IHHII", 16 + len(body), mtype, flags, seq, pid) + body
    return raw + b"\0" * (-len(raw) % 4)


def attr(atype: int, payload: bytes) -> bytes:
    raw = struct.pack("=HH", 4 + len(payload), atype) + payload
    return raw + b"\0" * (-len(raw) % 4)


def newaddr(seq: int, pid: int = 0, a: int = 1, flags: int = REQ | ACK_F) -> bytes:
    body = struct.pack("=BBBBI", 2, 24, 0, 0, 3) + attr(2, bytes([10, 0, 0, a]))
    return msg(20, body, flags=flags, seq=seq, pid=pid)


def ack(seq: int, pid: int, error: int = 0) -> bytes:
    return msg(2, struct.pack("=i", error) + newaddr(seq)[:16], seq=seq, pid=pid)


def recs(*items: tuple[int, int, bytes]) -> list[tuple[int, int, int, bytes, Any]]:
    """(ts_ns, pkttype, bytes) -> the records Conversation.steps takes (route protocol)."""
    return [(ts, 0, pkttype, data, None) for ts, pkttype, data in items]


def test_requests_are_tied_to_the_command_by_the_reply_to_its_port() -> None:
    conv = Conversation({(0, 700): (700, "ip")}, {700: "ip"})
    steps = conv.steps(recs(
        (10, TO_KERNEL, newaddr(5, a=9)),        # someone else's request...
        (11, TO_KERNEL, newaddr(5)),             # ours, the same sequence number
        (12, TO_USER, ack(5, 900)),              # answers the first: port 900, not ours
        (13, TO_USER, ack(5, 700)),              # answers the second: ours
        (14, TO_KERNEL, newaddr(6, pid=700)),    # ours by its nlmsg_pid
        (15, TO_KERNEL, newaddr(7)),             # nothing answers it: cannot be told apart
        (16, TO_USER, newaddr(6, pid=700, flags=0)),  # a notification ours caused, 3 sockets
        (17, TO_USER, newaddr(6, pid=700, flags=0)),
        (18, TO_USER, newaddr(6, pid=700, flags=0)),
        (19, TO_USER, ack(6, 700)),
    ))
    got = [(s.ts_ns, s.direction, s.msgs[0].type, s.process, s.copies) for s in steps]
    assert got == [(11, "to_kernel", 20, (700, "ip"), 1), (13, "to_user", 2, (700, "ip"), 1),
                   (14, "to_kernel", 20, (700, "ip"), 1), (16, "to_user", 20, (700, "ip"), 3),
                   (19, "to_user", 2, (700, "ip"), 1)]
    assert conv.unmatched == 2 and conv.others == 1  # requests 10 and 15; the ACK at 12


def test_ports_of_children_and_libnl_are_the_commands() -> None:
    conv = Conversation({}, {700: "sh", 701: "ip"})
    assert conv.owner(0, 701) == (701, "ip")
    assert conv.owner(16, 701 + (3 << 22)) == (701, "ip")  # libnl: pid + n << 22
    assert conv.owner(0, 0) is None and conv.owner(0, 702) is None


def test_text_and_json_of_an_error_with_the_kernels_text() -> None:
    err = msg(2, struct.pack("=i", -101) + newaddr(5)[:16], flags=0x300, seq=5, pid=700)
    err += b""  # NLM_F_CAPPED | NLM_F_ACK_TLVS, the message follows
    text = b"Nexthop has invalid gateway\0"
    err = struct.pack("=I", 16 + 4 + 16 + 4 + len(text) + (-len(text) % 4)) + err[4:] + attr(
        1, text)
    conv = Conversation({(0, 700): (700, "ip")}, {700: "ip"})
    steps = conv.steps(recs((1_000_000, TO_KERNEL, newaddr(5)), (1_250_000, TO_USER, err)))
    lines = list(fmt.trace_lines(steps, 1_000_000))
    assert lines[0].startswith("     0.000 ms  ip[700] → route [RTM_NEWADDR]")
    assert lines[0].endswith("(seq 5 REQUEST,ACK)")
    assert lines[1].startswith("     0.250 ms  ip[700] ← route [NLMSG_ERROR] error ENETUNREACH: "
                               "Nexthop has invalid gateway")
    objs = list(fmt.trace_json(steps, 1_000_000))
    assert objs[1]["extack"] == "Nexthop has invalid gateway" and objs[1]["t_ns"] == 250_000
    assert objs[1]["process"] == {"pid": 700, "comm": "ip"} and objs[1]["direction"] == "to_user"
    s = fmt.trace_summary(["ip", "route"], 2, steps, 5_000_000, conv.unmatched, conv.others)
    assert (s["messages"], s["requests"], s["replies"], s["errors"]) == (2, 1, 1, 1)
    assert fmt.summary_text(s).startswith("ip exited 2 after 5.0 ms: 2 messages")


def test_a_request_nothing_answers_is_the_commands_where_no_one_else_had_a_socket() -> None:
    nft = 12
    batch = msg(0x10, b"\0\0\0\x0a", flags=REQ) + msg(0x0A00, b"\2\0\0\0" + attr(1, b"t\0"),
                                                      flags=REQ, seq=1)

    def steps(foreign: set[int] | None) -> list[Any]:
        conv = Conversation({(nft, 800): (800, "nft")}, {800: "nft"}, foreign=foreign)
        return conv.steps([(1, nft, TO_KERNEL, batch, None)])

    (st,) = steps(set())
    assert st.process == (800, "nft") and [m.name for m in st.msgs] == [
        "NFNL_MSG_BATCH_BEGIN", "NFT_MSG_NEWTABLE"]
    assert steps({nft}) == [] and steps(None) == []  # another socket, or nothing known
