"""rawlab.raw: SYN classification, ping statistics, the user-space TCP state machine,
the IPv6 header rebuilt from ancillary data, the nftables text, the CLI's help."""

from __future__ import annotations

import socket
import struct

import pytest
from click.testing import CliRunner

from rawlab.errors import RawlabError
from rawlab.raw import nft
from rawlab.raw.listen import parse_proto
from rawlab.raw.packets import ACK, FIN, PSH, RST, SYN
from rawlab.raw.ping import summarize
from rawlab.raw.sock import IPV6_FLOWINFO, IPV6_HOPLIMIT, IPV6_PKTINFO, SOL_IPV6, RawSocket
from rawlab.raw.syn import CLOSED, FILTERED, OPEN, classify
from rawlab.raw.usertcp import Seg, UserTcp


@pytest.mark.parametrize(("flags", "icmp", "state"), [
    (SYN | ACK, None, OPEN),
    (RST | ACK, None, CLOSED),
    (RST, None, CLOSED),
    (SYN | ACK | 0x40, None, OPEN),  # ECE does not change the answer
    (ACK, None, FILTERED),
    (None, (3, 13), FILTERED),
    (None, (1, 4), FILTERED),
    (None, None, FILTERED),
])
def test_classify(flags: int | None, icmp: tuple[int, int] | None, state: str) -> None:
    got, reason = classify(flags, icmp)
    assert got == state and reason


def test_summarize_like_ping() -> None:
    s = summarize("x", 4, [1_000_000, 2_000_000, 3_000_000])
    assert (s.transmitted, s.received, s.loss_pct) == (4, 3, 25.0)
    assert (s.rtt_min_ns, s.rtt_avg_ns, s.rtt_max_ns) == (1_000_000, 2_000_000, 3_000_000)
    assert s.rtt_mdev_ns == 816_497  # sqrt(mean(x²) - mean(x)²), as iputils
    empty = summarize("x", 2, [])
    assert empty.received == 0 and empty.loss_pct == 100.0 and empty.rtt_avg_ns is None


def test_ping_summary_text() -> None:
    from rawlab.present.raw import ping_summary

    text = ping_summary(summarize("10.0.0.2", 2, [184_547, 505_369], time_ns=200_767_103))
    assert "2 packets transmitted, 2 received, 0% packet loss, time 200ms" in text
    assert "rtt min/avg/max/mdev = 0.185/0.345/0.505/0.160 ms" in text


@pytest.mark.parametrize(("text", "ipv6", "want"), [
    ("tcp", False, (socket.AF_INET, 6)), ("udp", True, (socket.AF_INET6, 17)),
    ("icmpv6", False, (socket.AF_INET6, 58)), ("132", False, (socket.AF_INET, 132)),
    ("raw", False, (socket.AF_INET, 255)),
])
def test_parse_proto(text: str, ipv6: bool, want: tuple[int, int]) -> None:
    assert parse_proto(text, ipv6) == want


@pytest.mark.parametrize("text", ["bogus", "0", "256"])
def test_parse_proto_refuses(text: str) -> None:
    with pytest.raises(RawlabError):
        parse_proto(text, False)


def test_nft_ruleset() -> None:
    v4 = nft.ruleset("rawlab_1_61000", "10.0.0.2", 80, 61000)
    assert "table inet rawlab_1_61000" in v4 and "hook output" in v4
    assert ("ip daddr 10.0.0.2 tcp sport 61000 tcp dport 80 tcp flags & rst == rst "
            "meta mark != 0x7261776c counter drop") in v4
    assert "ip6 daddr fd00::2 " in nft.ruleset("t", "fd00::2", 80, 61000)
    assert nft.TABLE_RE.match(nft.table_name(61000, pid=42))


# ---- the user-space TCP state machine ---------------------------------------------------

ISN, PEER = 1000, 5000


def established(data: bytes = b"hello") -> UserTcp:
    t = UserTcp(ISN, data)
    assert t.start() == [Seg(SYN, ISN, 0, mss=1460)]
    out = t.receive(Seg(SYN | ACK, PEER, ISN + 1, window=64240, mss=1460))
    assert out[0] == Seg(ACK, ISN + 1, PEER + 1)
    return t


def test_full_connection() -> None:
    t = established()
    assert t.state == "ESTABLISHED"
    # the handshake's ACK and the data leave together
    t2 = UserTcp(ISN, b"hello")
    t2.start()
    out = t2.receive(Seg(SYN | ACK, PEER, ISN + 1, window=64240, mss=1460))
    assert out == [Seg(ACK, ISN + 1, PEER + 1), Seg(PSH | ACK, ISN + 1, PEER + 1, b"hello")]
    # data acked → our FIN
    assert t2.receive(Seg(ACK, PEER + 1, ISN + 6)) == [Seg(FIN | ACK, ISN + 6, PEER + 1)]
    assert t2.state == "FIN-WAIT-1"
    # the peer answers, acks our FIN, then closes
    assert t2.receive(Seg(PSH | ACK, PEER + 1, ISN + 7, b"bye")) == [Seg(ACK, ISN + 7, PEER + 4)]
    assert t2.state == "FIN-WAIT-2" and t2.received == b"bye"
    assert t2.receive(Seg(FIN | ACK, PEER + 4, ISN + 7)) == [Seg(ACK, ISN + 7, PEER + 5)]
    assert t2.state == "TIME-WAIT" and t2.done
    assert t2.log == ["CLOSED → SYN-SENT", "SYN-SENT → ESTABLISHED",
                      "ESTABLISHED → FIN-WAIT-1", "FIN-WAIT-1 → FIN-WAIT-2",
                      "FIN-WAIT-2 → TIME-WAIT"]


def test_simultaneous_close_goes_through_closing() -> None:
    t = established(b"")
    assert t.state == "FIN-WAIT-1"  # no data: the FIN went with the ACK
    t.receive(Seg(FIN | ACK, PEER + 1, ISN + 1))  # their FIN, ours not yet acked
    assert t.state == "CLOSING"
    t.receive(Seg(ACK, PEER + 2, ISN + 2))
    assert t.state == "TIME-WAIT" and t.done


def test_peer_closes_first() -> None:
    t = established(b"")
    t2 = UserTcp(ISN, b"abc")
    t2.start()
    t2.receive(Seg(SYN | ACK, PEER, ISN + 1, window=64240))
    out = t2.receive(Seg(FIN | ACK, PEER + 1, ISN + 1))  # nothing acked yet: CLOSE-WAIT
    assert t2.state == "CLOSE-WAIT" and out == [Seg(ACK, ISN + 4, PEER + 2)]
    out = t2.receive(Seg(ACK, PEER + 2, ISN + 4))
    assert out == [Seg(FIN | ACK, ISN + 4, PEER + 2)] and t2.state == "LAST-ACK"
    t2.receive(Seg(ACK, PEER + 2, ISN + 5))
    assert t2.state == "CLOSED" and t2.done
    assert t.state == "FIN-WAIT-1"


def test_refused_and_reset() -> None:
    t = UserTcp(ISN, b"x")
    t.start()
    assert t.receive(Seg(RST | ACK, 0, ISN + 1)) == []
    assert t.refused and t.state == "CLOSED" and t.done
    t = established()
    t.receive(Seg(RST, PEER + 99, 0))  # not at rcv_nxt: ignored (RFC 5961)
    assert not t.reset
    t.receive(Seg(RST, PEER + 1, 0))
    assert t.reset and t.state == "CLOSED"


def test_segments_follow_peer_mss_and_window() -> None:
    t = UserTcp(ISN, b"a" * 1000)
    t.start()
    out = t.receive(Seg(SYN | ACK, PEER, ISN + 1, window=700, mss=300))
    data = [s for s in out if s.payload]
    assert [len(s.payload) for s in data] == [300, 300, 100]  # 700 bytes of window
    out = t.receive(Seg(ACK, PEER + 1, ISN + 701, window=700))
    assert [len(s.payload) for s in out] == [300]


def test_out_of_order_gets_duplicate_ack_and_retransmit() -> None:
    t = established()
    assert t.receive(Seg(PSH | ACK, PEER + 10, ISN + 1, b"later")) == \
        [Seg(ACK, ISN + 6, PEER + 1)]
    assert t.received == b""
    assert t.retransmit() == [Seg(PSH | ACK, ISN + 1, PEER + 1, b"hello")]
    t0 = UserTcp(ISN)
    t0.start()
    assert t0.retransmit() == [Seg(SYN, ISN, 0, mss=1460)]


def test_abort() -> None:
    t = established()
    assert t.abort() == Seg(RST | ACK, ISN + 6, PEER + 1)
    assert UserTcp(ISN).abort() is None


def test_ipv6_header_rebuilt_from_ancillary_data() -> None:
    from rawlab.decode.dispatch import Decoder
    from rawlab.raw import packets
    from rawlab.records import LinkType

    src, dst = socket.inet_pton(socket.AF_INET6, "fd00::1"), socket.inet_pton(
        socket.AF_INET6, "fd00::2")
    msg = packets.icmpv6_echo(7, 1, b"abc", src, dst)
    anc = [(SOL_IPV6, IPV6_PKTINFO, dst + struct.pack("=i", 3)),
           (SOL_IPV6, IPV6_HOPLIMIT, struct.pack("=i", 63)),
           (SOL_IPV6, IPV6_FLOWINFO, struct.pack("!I", 0x2A12345)),
           (socket.SOL_SOCKET, 35, struct.pack("=qq", 12, 34))]
    rs = RawSocket(None, socket.AF_INET6, 58, {3: "veth1"})  # type: ignore[arg-type]
    got = rs._received(msg, anc, ("fd00::1", 0, 0, 0))
    assert got.rebuilt and got.ifname == "veth1" and got.ts_ns == 12_000_000_034
    pkt = Decoder().decode(got.data, LinkType.RAW)
    ip = pkt["ipv6"]
    assert (ip.hop_limit, ip.traffic_class, ip.flow_label) == (63, 0x2A, 0x12345)
    assert (bytes(ip.src), bytes(ip.dst), ip.payload_length) == (src, dst, len(msg))
    assert pkt.checksum("icmpv6").verdict.value == "good"


def test_cli_help_documents_what_raw_sockets_miss() -> None:
    from rawlab import cli

    res = CliRunner().invoke(cli.main, ["raw", "--help"])
    assert res.exit_code == 0
    for cmd in ("listen", "ping", "syn", "handshake"):
        assert cmd in res.output
    res = CliRunner().invoke(cli.main, ["raw", "listen", "--help"])
    assert "does NOT get" in res.output and "outgoing packets" in res.output
    assert "input firewall" in res.output
