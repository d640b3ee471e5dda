"""The application layers on fresh captures of real traffic between two namespaces
(dnsmasq DNS over UDP and TCP + DHCP, NTP, SNMP, SSH, HTTP/1.1 with bodies over many
segments, TLS 1.2 and 1.3 with a key log and HTTP inside, a QUIC Initial): every field
rawlab shows agrees with tshark's, frame for frame (tshark with the same key log);
``--stats`` counts the protocols as ``tshark -z io,phs``; ``--keylog`` decrypts."""

from __future__ import annotations

import json
import subprocess
import sys
from itertools import pairwise
from pathlib import Path

import pytest
from _apptraffic import (
    BODY,
    CLIENT_IP,
    SERVER_IP,
    dhcp_exchange,
    dns_queries,
    dnsmasq,
    http_exchange,
    ntp_exchange,
    quic_initial,
    snmp_exchange,
    ssh_exchange,
    tls_exchange,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from app_tshark import RAWLAB, TSHARK_REASSEMBLY, compare
from test_app_decode import protect_rfc9001_client_initial

from rawlab.lab import traffic
from rawlab.lab.netns import Lab
from rawlab.pcap.reader import read_records
from rawlab.pcap.writer import PcapWriter

PROTOCOLS = ("dns", "dhcp", "ntp", "snmp", "ssh", "tls", "http", "quic")


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("app")
    path, keylog = tmp / "app.pcapng", tmp / "keys.log"
    with Lab() as lab:
        a, b = lab.netns("a"), lab.netns("b")
        lab.veth(a, b, f"{CLIENT_IP}/24", f"{SERVER_IP}/24", offloads=False,
                 static_neighbours=True)
        with traffic.tcpdump(a, "veth0", path), dnsmasq(b, tmp):
            answers = dns_queries(a)
            assert len(answers) == 9 and all(len(x) > 12 for x in answers)
            ack = dhcp_exchange(a)
            assert ack[0] == 2 and b"\x35\x01\x05" in ack  # a BOOTREPLY carrying DHCPACK
            assert ntp_exchange(a, b)[0] & 7 == 4
            assert b"rawlab test agent" in snmp_exchange(a, b)
            assert ssh_exchange(a, b).startswith(b"SSH-2.0-rawlab_server")
            got = http_exchange(a, b)
            assert got[0].endswith(BODY) and got[1].endswith(b"0\r\n\r\n")
            got = tls_exchange(a, b, tmp, keylog)
            assert len(got) == 4 and got[2].endswith(BODY)
            quic_initial(a, b, protect_rfc9001_client_initial())
    return path, keylog


def test_every_application_field_agrees_with_tshark(capture: tuple[Path, Path]) -> None:
    path, keylog = capture
    ag = compare(path, PROTOCOLS, rawlab_args=("--keylog", str(keylog)),
                 tshark_args=("-o", f"tls.keylog_file:{keylog}"))
    print(f"\ntshark agreement: frames {ag.frames}, field values {ag.fields}, "
          f"mismatches {len(ag.mismatches)}")
    assert not ag.mismatches, ag.mismatches[:5]
    assert not ag.only_tshark and not ag.only_rawlab, (ag.only_tshark, ag.only_rawlab)
    # what each protocol must have shown, at least
    want = {"dns": 18, "dhcp": 4, "ntp": 2, "snmp": 2, "ssh": 4, "tls": 16, "http": 8,
            "quic": 1}
    for name, n in want.items():
        assert ag.frames.get(name, 0) >= n, (name, ag.frames)


def _server_segment(data: bytes) -> tuple[int, int, int] | None:
    """(client port, sequence number, payload length) of an Ethernet/IPv4 TCP segment from
    the server's port 443."""
    if data[12:14] != b"\x08\x00" or data[23] != 6:
        return None
    ip = 14 + (data[14] & 15) * 4
    if int.from_bytes(data[ip:ip + 2], "big") != 443:
        return None
    return (int.from_bytes(data[ip + 2:ip + 4], "big"),
            int.from_bytes(data[ip + 4:ip + 8], "big"),
            len(data) - ip - (data[ip + 12] >> 4) * 4)


def test_segments_out_of_order_lose_no_message(capture: tuple[Path, Path],
                                               tmp_path: Path) -> None:
    """A veth pair sometimes hands a capture one segment after the next (one CI run):
    the same capture with two of the TLS 1.3 reply's full segments swapped decrypts to
    the same HTTP, and still agrees with tshark (set to reassemble out of order)."""
    path, keylog = capture
    recs = list(read_records(path))
    segs = {i: s for i, r in enumerate(recs) if (s := _server_segment(bytes(r.data)))}
    last = [s[0] for s in segs.values() if s[2]][-1]  # the TLS 1.3 connection (the last)
    full = [(i, s[1]) for i, s in segs.items() if s[0] == last and s[2] == 1448]
    # the last two full segments that follow each other in the capture and by number
    i, j = next((a, b) for (a, sa), (b, sb) in reversed(list(pairwise(full)))
                if sb == (sa + 1448) & 0xFFFFFFFF)
    recs[i], recs[j] = recs[j], recs[i]
    swapped = tmp_path / "swapped.pcap"
    with PcapWriter(swapped, recs[0].linktype) as w:
        for r in recs:
            w.write_record(r)
    keys = {"rawlab_args": ("--keylog", str(keylog)),
            "tshark_args": ("-o", f"tls.keylog_file:{keylog}")}
    ag = compare(swapped, ("tls", "http"), **keys)  # type: ignore[arg-type]
    assert not ag.mismatches and not ag.only_rawlab and not ag.only_tshark, ag
    before = compare(path, ("tls", "http"), **keys)  # type: ignore[arg-type]
    assert ag.frames == before.frames and ag.frames["http"] >= 8, (ag.frames, before.frames)
    out = subprocess.run([RAWLAB, "read", str(swapped), "--keylog", str(keylog)],
                         capture_output=True, text=True, check=True).stdout
    assert out.count("HTTP GET /tls-plain Host www.example.test") == 2
    assert out.count("HTTP/1.1 200 OK") == 6


def test_without_the_key_log_tls_is_shown_and_nothing_decrypted(
        capture: tuple[Path, Path]) -> None:
    path, _keylog = capture
    ag = compare(path, ("tls", "http"))
    assert not ag.mismatches and ag.frames["tls"] >= 16 and ag.frames.get("http", 0) == 4


def test_reassembled_messages_name_their_segments(capture: tuple[Path, Path]) -> None:
    path, keylog = capture
    recs = [json.loads(x) for x in subprocess.run(
        [RAWLAB, "read", str(path), "--json", "--keylog", str(keylog)], capture_output=True,
        text=True, check=True).stdout.splitlines()]
    resp = [r for r in recs if "http" in r and not r["http"]["request"]]
    assert len(resp) == 6  # plain, TLS 1.2, TLS 1.3: a Content-Length and a chunked reply each
    for r in resp:
        h = r["http"]
        assert h["status"] == 200 and h["body_length"] == len(BODY)
        frames = [f["frame"] for f in h["reassembled"]]
        assert len(frames) > 1 and frames[-1] == r["frame"], frames  # shown where it completes
    chunked = [r["http"] for r in resp if r["http"]["chunked"]]
    assert len(chunked) == 3 and all(sum(h["chunks"]) == len(BODY) for h in chunked)
    certs = [c for r in recs if "tls" in r for h in r["tls"]["handshakes"]
             + r["tls"].get("decrypted_handshakes", []) for c in h.get("certificates", [])]
    assert {c["subject"] for c in certs} == {"O=rawlab,CN=www.example.test"}
    hellos = [h for r in recs if "tls" in r for h in r["tls"]["handshakes"] if h["type"] == 1]
    assert len(hellos) == 2 and all(h["sni"] == "www.example.test" for h in hellos)
    # the TLS 1.2 client offers up to 1.2, the other up to 1.3; SNI present ("d")
    assert sorted(h["ja4"][:4] for h in hellos) == ["t12d", "t13d"]
    assert all(h["alpn"] == ["http/1.1"] and h["ja4"][8:10] == "h1" for h in hellos)


def _phs(text: str) -> dict[str, tuple[int, int]]:
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1].startswith("frames:"):
            out[parts[0]] = (int(parts[1][7:]), int(parts[2][6:]))
    return out


def test_stats_count_the_protocols_as_tshark(capture: tuple[Path, Path]) -> None:
    path, _keylog = capture
    ours = _phs(subprocess.run([RAWLAB, "read", str(path), "--stats"], capture_output=True,
                               text=True, check=True).stdout)
    theirs = _phs(subprocess.run(["tshark", "-r", str(path), *TSHARK_REASSEMBLY, "-q", "-z",
                                  "io,phs"], capture_output=True, text=True, check=True).stdout)
    for name in PROTOCOLS:
        assert ours.get(name) == theirs.get(name), (name, ours.get(name), theirs.get(name))


def test_keylog_line_view_shows_the_http_inside(capture: tuple[Path, Path]) -> None:
    path, keylog = capture
    out = subprocess.run([RAWLAB, "read", str(path), "--keylog", str(keylog)],
                         capture_output=True, text=True, check=True).stdout
    assert out.count("HTTP GET /tls-plain Host www.example.test") == 2
    assert out.count("TLSv1.3 Server Hello TLS_AES_256_GCM_SHA384 TLSv1.3") == 1
    # rawlab tcp --keylog: the analyser's own segments feed the same reassembly
    tcp = subprocess.run([RAWLAB, "tcp", str(path), "--keylog", str(keylog)],
                         capture_output=True, text=True, check=True).stdout
    msgs = [x for x in tcp.splitlines() if x.startswith("#")]
    assert sum("server: HTTP/1.1 200 OK text/html" in x for x in msgs) == 6
    assert sum("client: HTTP GET /tls-" in x for x in msgs) == 4
    bad = subprocess.run([RAWLAB, "read", str(path), "--keylog", "/nonexistent"],
                         capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and "cannot read /nonexistent" in bad.stderr
    assert "Traceback" not in bad.stderr
