"""The viewer's display filter: the language (parse, evaluate, one-line errors) and its
fields over real packets, frame for frame as tshark's -Y selects them."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from rawlab.errors import Exit
from rawlab.view.dfilter import DisplayFilter, DisplayFilterError
from rawlab.view.fields import kind, values
from rawlab.view.frames import FileFrames
from rawlab.view.select import Selection, packet_judge

pytestmark = pytest.mark.unit

CAPTURES = Path(__file__).resolve().parents[2] / "captures"


def run(expr: str, d: dict[str, Any]) -> bool:
    return DisplayFilter.parse(expr, kind).match(lambda n: values(d, n))


PKT = {"frame": 7, "len": 74, "caplen": 74, "interface": "veth1", "layers": ["eth", "ipv4", "tcp"],
       "eth": {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02", "tags": []},
       "ipv4": {"src": "10.0.0.1", "dst": "10.0.0.2", "ttl": 64, "checksum_status": "good"},
       "tcp": {"sport": 40000, "dport": 80, "flags": "SA", "flags_int": 0x12, "len": 0,
               "options": [{"kind": 2, "name": "mss", "value": 1460}, {"kind": 4,
                                                                      "name": "sackOK"}],
               "analysis": ["retransmission"], "stream": 3}}


@pytest.mark.parametrize("expr, want", [
    ("tcp", True), ("udp", False), ("ip", True), ("not udp", True),
    ("ip.src == 10.0.0.1", True), ("ip.src == 10.0.0.2", False), ("ip.dst != 10.0.0.1", True),
    ("ip.addr == 10.0.0.2", True), ("ip.addr != 10.0.0.2", False),  # != : none equal
    ("ip.src == 10.0.0.0/24", True), ("ip.src == 10.0.1.0/24", False),
    ("ip.src > 10.0.0.0", True), ("ipv6.src == ::1", False),
    ("tcp.port == 80", True), ("tcp.port == 0x50", True), ("tcp.dport >= 81", False),
    ("tcp.sport < 40001 and tcp.sport > 39999", True), ("tcp.len <= 0", True),
    ("tcp.flags.syn", True), ("tcp.flags.fin", False), ("tcp.flags.ack == 1", True),
    ("tcp.flags.rst", False), ("tcp.flags.reset == 0", True), ("tcp.flags.push", False),
    ("tcp.flags.syn == false", False), ('tcp.flags == "SA"', True), ("tcp.flags contains A", True),
    ("tcp.analysis.retransmission", True), ("tcp.analysis.duplicate_ack", False),
    ("tcp.analysis", True), ("tcp.stream == 3", True),
    ("tcp.options.name == sackOK", True), ("tcp.options.value == 1460", True),
    ("tcp.options.name contains sack", True), ("tcp.options.name == sack", False),
    ("eth.src == 02-00-00-00-00-01", True), ("eth.addr == 02:00:00:00:00:02", True),
    ("interface == veth1", True), ("interface contains eth", True),
    ("layers contains ipv4", True), ("frame == 7 or frame == 8", True),
    ("not (tcp.port == 80 or udp)", False), ("!tcp || (ip.ttl == 64 && tcp.len == 0)", True),
    ("ipv4.checksum_status == good", True), ("truncated", False), ("len > 60", True),
    ("TCP.PORT == 80", False),  # field names are lower case; keywords any case
    ("tcp.port == 80 AND NOT udp", True),
])
def test_evaluation(expr: str, want: bool) -> None:
    if expr.startswith("TCP"):
        with pytest.raises(DisplayFilterError):
            run(expr, PKT)
        return
    assert run(expr, PKT) is want


@pytest.mark.parametrize("expr, says", [
    ("", "display filter: empty expression at its end: "),
    ("tcp.prot == 80", "display filter: unknown field 'tcp.prot' (docs/view.md lists them) "
                       "at column 1: tcp.prot == 80"),
    ("tcp.port == http", "display filter: tcp.port holds numbers: 'http' is not one at "
                         "column 13: tcp.port == http"),
    ("ip.src == 10.0.0.300", "display filter: ip.src holds an IP address: '10.0.0.300' is not "
                             "one at column 11"),
    ("(tcp", "display filter: missing ')' at its end: (tcp"),
    ("tcp and", "display filter: expected a field name, not the end at its end: tcp and"),
    ("tcp ==", "display filter: expected a value after '==', not the end at its end"),
    ("tcp == 1", "display filter: tcp is a layer: test it alone, or compare one of its fields"),
    ("tcp.port contains 8", "display filter: tcp.port holds numbers: 'contains' needs text"),
    ('interface == "veth', "display filter: unterminated quoted text at column 14"),
    ("tcp udp", "display filter: unexpected 'udp' (expected and, or or the end) at column 5"),
    ("tcp.flags.syn > 0", "display filter: tcp.flags.syn is true or false: '>' does not order"),
    ("tcp.flags.syn == maybe", "tcp.flags.syn is true or false, not 'maybe'"),
    ("ip.src < 10.0.0.0/8", "'<' compares addresses, not networks (10.0.0.0/8)"),
    ("tcp.analysis.retransmision", "unknown field 'tcp.analysis.retransmision'"),
    ("tcp.port == 80 $", "unexpected character '$' at column 16"),
    ("== 3", "expected a field name, not '=='"),
])
def test_errors_are_one_readable_line(expr: str, says: str) -> None:
    with pytest.raises(DisplayFilterError) as ei:
        DisplayFilter.parse(expr, kind)
    msg = ei.value.message
    assert says in msg and "\n" not in msg and ei.value.code is Exit.USAGE


def test_fields_and_any_kind_without_a_catalogue() -> None:
    f = DisplayFilter.parse("a.b == 3 or c contains x or not d", None)
    assert f.fields == ("a.b", "c", "d")
    assert f.match(lambda n: {"a.b": [3]}.get(n, []))
    assert f.match(lambda n: {"c": ["xyz"], "d": [1]}.get(n, []))
    assert not f.match(lambda n: {"a.b": [4], "d": [True]}.get(n, []))
    assert not f.match(lambda n: {"a.b": ["3x"], "d": [True]}.get(n, []))


def select(path: Path, expr: str, bpf: str | None = None) -> list[int]:
    """Frame numbers the viewer's background selection keeps (batches of 100 frames, the
    index still being built while it runs)."""
    frames = FileFrames(path)
    frames.start()
    sel = Selection(packet_judge(frames, bpf, DisplayFilter.parse(expr, kind) if expr else None),
                    size=lambda: len(frames), final=lambda: frames.complete, batch=100)
    sel.start().wait()
    assert sel.done and sel.error is None
    return [i + 1 for i in sel.rows]


LOSS_EXPRS = {
    "tcp.analysis.retransmission and ip.src == 10.77.0.1": [51, 92, 121, 416, 418],
    "tcp.flags.syn == 1": [1, 2],
}


@pytest.mark.parametrize("expr", sorted(LOSS_EXPRS))
def test_on_a_capture(expr: str) -> None:
    assert select(CAPTURES / "tcp-loss.pcap", expr) == LOSS_EXPRS[expr]


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed "
                    "(./setup.sh --test installs it)")
@pytest.mark.parametrize("name, expr", [
    ("tcp-loss.pcap", "tcp.analysis.duplicate_ack"),
    ("tcp-loss.pcap", "ip.addr == 10.77.0.2 and tcp.len > 0 and not tcp.analysis.retransmission"),
    ("tcp-loss.pcap", "tcp.analysis.out_of_order or tcp.analysis.fast_retransmission"),
    ("tcp-zerowindow.pcap", "tcp.analysis.zero_window or tcp.analysis.window_full"),
    ("tcp-ipv6-loss.pcap", "ipv6.src == fd00:77::2 and tcp.analysis.duplicate_ack"),
    ("tcp-clean.pcap", "tcp.flags.fin == 1 or tcp.flags.syn == 1"),
    ("tcp-reset.pcap", "tcp.flags.reset == 1 and ip.dst == 10.77.0.2"),
])
def test_same_frames_as_tshark(name: str, expr: str) -> None:
    out = subprocess.run(["tshark", "-n", "-r", str(CAPTURES / name), "-Y", expr, "-T", "fields",
                          "-e", "frame.number"], capture_output=True, text=True, check=True,
                         timeout=120).stdout
    want = [int(x) for x in out.split()]
    assert want, "the expression should select something"
    assert select(CAPTURES / name, expr) == want


def test_bpf_and_display_filter_together() -> None:
    """The BPF expression (libpcap's, as read -f) and the display filter both apply."""
    both = select(CAPTURES / "tcp-loss.pcap", "tcp.analysis.duplicate_ack", "src host 10.77.0.2")
    assert both == [18, 20, 22, 24, 26, 28, 30, 32, 34, 36, 38, 40, 42, 44, 46, 48, 50, 70, 72,
                    91, 113, 115, 120]
    assert select(CAPTURES / "tcp-loss.pcap", "tcp.analysis.duplicate_ack", "dst port 5001") == []
    syn = select(CAPTURES / "tcp-loss.pcap", "", "tcp[tcpflags] & tcp-syn != 0")
    assert syn == [1, 2]
