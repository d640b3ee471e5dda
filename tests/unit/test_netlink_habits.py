"""Habits of `ip` and `ss` users on `rawlab netlink`, and the defects a new user hit (issue 14
items 9, 15; issue 13 item 13): no privilege needed."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from rawlab.cli import main
from rawlab.present import netlink as fmt

pytestmark = pytest.mark.unit

RAWLAB = str(Path(sys.executable).with_name("rawlab"))


def attr(atype: int, payload: bytes) -> bytes:
    raw = struct.pack("=HH", 4 + len(payload), atype) + payload
    return raw + b"\0" * (-len(raw) % 4)


def msg(mtype: int, body: bytes, *, flags: int = 0, pid: int = 0) -> bytes:
    return struct.pack("=IHHII", 16 + len(body), mtype, flags, 0, pid) + body


def new_addr() -> bytes:
    """RTM_NEWADDR 10.51.0.1/24 with IFA_CACHEINFO (a C struct)."""
    body = struct.pack("=BBBBI", 2, 24, 0x80, 0, 3)
    body += attr(2, bytes([10, 51, 0, 1])) + attr(1, bytes([10, 51, 0, 1]))
    body += attr(6, struct.pack("=IIII", 4294967295, 4294967295, 1234, 5678))
    return msg(20, body)


def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([RAWLAB, *args], input=stdin, capture_output=True, timeout=60,
                          check=False)


# ---- netlink decode: standard input, and bad input exits 5 (issue 14 item 9) -------------

def test_decode_reads_hex_from_stdin() -> None:
    p = run("netlink", "decode", "-", "--json", stdin=new_addr().hex().encode() + b"\n")
    assert p.returncode == 0, p.stderr
    (rec,) = [json.loads(x) for x in p.stdout.splitlines()]
    assert rec["nlmsg_type"] == "RTM_NEWADDR" and rec["attrs"]["IFA_LOCAL"] == "10.51.0.1"


def test_decode_reads_a_capture_from_stdin(tmp_path: Path) -> None:
    from rawlab.pcap.writer import PcapngWriter

    path = tmp_path / "nl.pcapng"
    w = PcapngWriter(str(path))
    i = w.add_interface(253, "nlmon0")
    w.write(i, 1_000, struct.pack(">HHH8sH", 6, 824, 0, b"", 0) + new_addr())
    w.close()
    p = run("netlink", "decode", "-", "--json", stdin=path.read_bytes())
    assert p.returncode == 0, p.stderr
    (rec,) = [json.loads(x) for x in p.stdout.splitlines()]
    assert rec["frame"] == 1 and rec["direction"] == "to_user"
    assert rec["attrs"]["IFA_CACHEINFO"]["tstamp"] == 5678


@pytest.mark.parametrize("hexs", ["3400", new_addr()[:-6].hex(), new_addr().hex() + "0000",
                                  struct.pack("=IHHII", 8, 20, 0, 0, 0).hex()])
def test_decode_of_bad_input_prints_what_it_can_and_exits_5(hexs: str) -> None:
    p = run("netlink", "decode", hexs)
    assert p.returncode == 5, (p.stdout, p.stderr)
    assert p.stdout  # what could be read is still printed
    err = p.stderr.decode()
    assert err.count("\n") == 1 and "not whole netlink messages" in err and "Traceback" not in err


def test_decode_of_whole_messages_exits_0() -> None:
    p = run("netlink", "decode", new_addr().hex() + new_addr().hex())
    assert p.returncode == 0 and len(p.stdout.splitlines()) == 2


# ---- no Python reprs (issue 14 item 15, issue 13 item 13) ----------------------------------

def test_verbose_layout_formats_structs_not_python_reprs() -> None:
    r = CliRunner().invoke(main, ["netlink", "decode", new_addr().hex(), "-v"])
    assert r.exit_code == 0, r.output
    (line,) = [ln for ln in r.output.splitlines() if "IFA_CACHEINFO" in ln]
    assert "IFA_CACHEINFO (cacheinfo) = ifa_preferred=4294967295 " in line
    assert "{" not in r.output and "'" not in r.output


def test_monitor_summary_is_text_not_a_dict() -> None:
    text = fmt.summary_text({"messages": 1000000, "overflows": 1, "truncated": 0,
                             "resync": {"added": 45602, "removed": 0, "changed": 3}})
    assert text == ("1,000,000 messages, 1 overflow (ENOBUFS), re-dump found 45,602 added, "
                    "0 removed, 3 changed")
    assert fmt.summary_text({"messages": 1, "overflows": 0, "resync": {}}) == \
        "1 message, 0 overflows (ENOBUFS)"


# ---- monitor timestamps as `ip -t monitor` / `ip -ts monitor` -----------------------------

def test_monitor_timestamps_as_ip_prints_them(monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import time

    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    try:
        out = io.StringIO()
        ts = 1704794400 * 10**9 + 123456789  # Tue Jan  9 10:00:00 2024 UTC
        fmt.MonitorPrinter(out, stamp="short")._stamp(ts)
        assert fmt.MonitorPrinter(out, stamp="short")._stamp(ts) == \
            "[2024-01-09T10:00:00.123456] "
        assert fmt.MonitorPrinter(out, stamp="long")._stamp(ts) == \
            "Timestamp: Tue Jan  9 10:00:00 2024 123456 usec\n"
        assert fmt.MonitorPrinter(out, stamp="long")._stamp(ts - 123000000) == \
            "Timestamp: Tue Jan  9 10:00:00 2024 456 usec\n"  # ip: %ld, not zero-padded
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


# ---- numeric options refused at parse time -------------------------------------------------

@pytest.mark.parametrize("cmd", [["netlink", "monitor"], ["netlink", "capture", "-w", "x"]])
@pytest.mark.parametrize("value", ["nan", "inf", "0", "-1"])
def test_durations_are_checked_when_parsed(cmd: list[str], value: str) -> None:
    r = CliRunner().invoke(main, [*cmd, "--duration", value])
    assert r.exit_code == 2 and "--duration" in r.output and "seconds" in r.output


# ---- ss and ip fingers ---------------------------------------------------------------------

def test_dump_takes_ip_singular_words() -> None:
    r = CliRunner().invoke(main, ["netlink", "dump", "--help"])
    assert "link|addr|route|neigh|rule" in r.output
    from rawlab.cli.netlink_dump import KIND_WORDS

    assert {KIND_WORDS[w] for w in ("link", "addr", "route", "neigh", "rule")} == {
        "links", "addrs", "routes", "neigh", "rules"}


def test_sockets_accepts_n_and_combined_ss_flags() -> None:
    r = CliRunner().invoke(main, ["netlink", "sockets", "--help"])
    assert "-n, --numeric" in r.output
    for flags in ("-tanp", "-tlnp", "-uanp", "-n"):
        p = run("netlink", "sockets", flags, "-H")
        assert p.returncode == 0, (flags, p.stderr)
