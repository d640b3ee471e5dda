"""The application decoders against tshark on the tcpdump project's real captures
(shared/corpus/tcpdump-tests: every file tshark finds DNS, mDNS, DHCP, NTP, SNMP, SSH,
TLS, HTTP or QUIC in), field for field, frame for frame (tests/unit/app_tshark.py).

What may differ is listed below with its reason; anything else fails. The totals are
printed (run with -s) and held to a floor, so a decoder that stops matching shows.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from app_tshark import Agreement, compare, corpus_dir, have_tshark, rawlab_json

from rawlab.pcap.reader import open_file

pytestmark = pytest.mark.unit

PROTOCOLS = ("dns", "mdns", "llmnr", "dhcp", "ntp", "snmp", "ssh", "tls", "http", "quic")
FILES = (
    "LINKTYPE_IPV4.pcap", "LINKTYPE_IPV4_invalid.pcap", "LINKTYPE_IPV6.pcap",
    "LINKTYPE_RAW_ipv4.pcap", "LINKTYPE_RAW_ipv6.pcap", "accecn_handshake.pcap",
    "bootp_asan-2.pcap", "bootp_asan.pcap", "dcb_ets.pcap", "dcb_pfc.pcap", "dcb_qcn.pcap",
    "dhcp-mud.pcap", "dhcp-option-33.pcap", "dhcp-rfc3004.pcap", "dhcp-rfc4388.pcap",
    "dhcp-rfc5859.pcap", "dhcpv4v6-rfc5970-rfc8572.pcap", "dns-badcookie.pcap",
    "dns-badlabel.pcap", "dns-badvers.pcap", "dns-uri.pcap", "dns_fwdptr.pcap", "dns_tcp.pcap",
    "dns_udp.pcap", "dns_udp_2.pcap", "dnssec.pcap", "eapon1.pcap", "edns-opts.pcap",
    "ipv4_invalid_total_length.pcap", "ipv4_tcp_http_xml.pcap", "ipv4_tcp_http_xml_tso.pcap",
    "ipv6_invalid_length_2.pcap", "kday3.pcap", "mptcp-aa-v1.pcap", "mptcp-v0.pcap",
    "ntp-control.pcap", "ntp-mode7.pcap", "ntp-time-ef.pcap", "ntp-time.pcap", "ntp.pcap",
    "print-flags.pcap", "rx_serviceid_oobr.pcap", "snmp-heapoverflow-1.pcap",
    "snmp-heapoverflow-2.pcap", "ssh.pcap", "time_2038.pcap", "time_2038_max.pcap",
    "time_2038_overflow.pcap", "time_2039.pcap", "time_2106.pcap", "time_2106_max.pcap",
    "dhcp-option-108.pcapng", "rtp-seg-fault-1.pcapng", "time_2106_overflow.pcapng",
    "time_2107.pcapng",
)
#: link type NULL (BSD loopback) captures, read as raw IP (rawlab's NULL support is
#: the link-type work's, not this one's)
NULL_FILES = ("quic_handshake.pcap", "quic_handshake_truncated.pcap", "quic_retry.pcap",
              "quic_vn.pcap")

# ---- what may differ, and why ----------------------------------------------------------------
#: frames tshark finds a protocol in that rawlab's port table does not reach
TSHARK_ONLY = {
    "dns_udp_8053.pcap": "DNS on UDP 8053: tshark's heuristic, rawlab dispatches by port",
    "someip1.pcap": "DNS guessed by tshark's heuristic on SOME/IP's ports",
    "nfs-write-verf-cookie.pcapng": "tshark's SSLv2 heuristic on NFS bytes",
}
#: SSH over a second MPTCP subflow: tshark carries the first subflow's SSH state (key
#: exchange done: "Encrypted packet") over to it; rawlab reads each TCP connection alone
SSH_MPTCP = "mptcp-v0.pcap"
#: QUIC: tshark follows each connection (a server's Initial decrypted with the client's
#: first DCID, a short header's DCID length, packet numbers across packets) and shows a
#: ClientHello's fields once per connection; rawlab reads each datagram alone
QUIC_STATEFUL = {"quic.packet_number", "quic.dcid", "tls.handshake.extensions_server_name",
                 "tls.handshake.extensions_alpn_str", "tls.handshake.extensions_supported_group"}


def null_to_raw(src: Path, dst: Path) -> None:
    with open_file(src) as cap, dst.open("wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, 101))
        for rec in cap:
            d = rec.data[4:]
            s, ns = divmod(rec.ts_ns, 10**9)
            f.write(struct.pack("<IIII", s, ns, len(d), rec.wirelen - 4) + d)


def lenient(rec: dict, name: str) -> bool:
    """rawlab's layer says the bytes are cut short or broken: its lenient view still reads
    fields tshark gave up on (tshark stops at the first exception)."""
    return any(v.get("truncated") or v.get("malformed") for k, v in rec.items()
               if k.startswith(name) and isinstance(v, dict))


@pytest.fixture(scope="module")
def corpus() -> Path:
    d = corpus_dir()
    if d is None:
        pytest.skip("the tcpdump test corpus (shared/corpus/tcpdump-tests) is not here")
    if not have_tshark():
        pytest.skip("tshark is not installed (./setup.sh --test)")
    return d


def test_application_fields_agree_with_tshark(corpus: Path, tmp_path: Path) -> None:
    total = Agreement()
    lenient_fields = 0
    paths = [corpus / f for f in FILES if (corpus / f).exists()]
    for f in NULL_FILES:
        if (corpus / f).exists():
            null_to_raw(corpus / f, tmp_path / f)
            paths.append(tmp_path / f)
    assert len(paths) == len(FILES) + len(NULL_FILES), "corpus files missing"
    for path in paths:
        ag = compare(path, PROTOCOLS)
        recs = rawlab_json(path)
        for name, frame in ag.only_tshark:
            rec = recs.get(frame, {})
            reason = TSHARK_ONLY.get(path.name)
            assert reason or not ("udp" in rec or "tcp" in rec), (path.name, frame, name)
        for name, frame in ag.only_rawlab:
            assert path.name == SSH_MPTCP and name == "ssh", (path.name, frame, name)
        for name, frame, field, got, want in ag.mismatches:
            if lenient(recs.get(frame, {}), name):
                lenient_fields += 1
                continue
            if path.name == SSH_MPTCP and name == "ssh":
                continue
            if name == "quic" and field in QUIC_STATEFUL:
                continue
            pytest.fail(f"{path.name} frame {frame} {field}: rawlab {got!r}, tshark {want!r}")
        total.add(ag)
    print(f"\ntshark agreement on {len(paths)} corpus files: frames {total.frames}, field values "
          f"compared {total.fields}, mismatches {len(total.mismatches)} (broken packets rawlab "
          f"reads leniently: {lenient_fields}), tshark-only frames {len(total.only_tshark)}")
    floors = {"dns": 75, "dhcp": 90, "ntp": 40, "ssh": 100, "http": 5, "quic": 80}
    for name, n in floors.items():
        assert total.frames.get(name, 0) >= n, (name, total.frames)
    assert sum(total.fields.values()) > 20000
