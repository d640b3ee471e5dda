"""rawlab.sockets.bpf: libpcap's code, libpcap's errors, libpcap's cooked-mode fix-ups."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from rawlab.errors import Exit, RawlabError
from rawlab.sockets import bpf

EXPRS = ["udp port 53", "tcp[tcpflags] & tcp-syn != 0", "arp or icmp", "ether broadcast",
         "ip6 and not udp", "vlan 42 and udp"]


def _empty_pcap(tmp_path: Path, linktype: int) -> Path:
    p = tmp_path / f"lt{linktype}.pcap"
    p.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, linktype))
    return p


@pytest.mark.skipif(not shutil.which("tcpdump"), reason="tcpdump not installed")
@pytest.mark.parametrize(("linktype", "expr"), [
    (lt, e) for lt in (1, 276, 101) for e in EXPRS
    if not (lt == 101 and e.startswith(("ether", "vlan", "arp")))  # not raw-IP primitives
])
def test_same_code_as_tcpdump(tmp_path: Path, linktype: int, expr: str) -> None:
    res = subprocess.run(["tcpdump", "-ddd", "-r", str(_empty_pcap(tmp_path, linktype)), expr],
                         capture_output=True, text=True, check=False)
    if res.returncode != 0:  # e.g. "no VLAN support for Linux cooked v2": the same refusal
        with pytest.raises(RawlabError) as ei:
            bpf.compile_filter(expr, linktype)
        assert ei.value.code == Exit.USAGE
        assert res.stderr.strip().splitlines()[-1].removeprefix("tcpdump: ") in ei.value.message
        return
    assert bpf.compile_filter(expr, linktype).dump() == res.stdout.strip()


def test_bad_filter_is_a_usage_error_with_libpcaps_words() -> None:
    with pytest.raises(RawlabError) as ei:
        bpf.compile_filter("udp prot 53", 1)
    assert ei.value.code == Exit.USAGE
    assert "syntax error" in ei.value.message and "fix:" in ei.value.message
    with pytest.raises(RawlabError, match=r"supported only on ethernet"):
        bpf.compile_filter("ether host 01:02:03:04:05:06", 101)


def test_snaplen_is_applied_by_the_return_value() -> None:
    prog = bpf.for_kernel(bpf.compile_filter("udp", 1, 65535), snaplen=96)
    rets = [k for code, _, _, k in prog.insns if code & 7 == bpf.BPF_RET]
    assert sorted(set(rets)) == [0, 96]
    assert bpf.accept_all(128).insns == ((bpf.BPF_RET | bpf.BPF_K, 0, 0, 128),)
    assert bpf.reject_all().insns == ((bpf.BPF_RET | bpf.BPF_K, 0, 0, 0),)


def test_cooked_fixups_match_libpcap() -> None:
    ad = bpf.SKF_AD_OFF
    prog = bpf.compile_filter("inbound and ip and udp", 276)
    fixed = bpf.for_kernel(prog, cooked_hdrlen=20)
    loads = [(c, k) for c, _, _, k in fixed.insns if c & 7 in (bpf.BPF_LD, bpf.BPF_LDX)]
    orig = [(c, k) for c, _, _, k in prog.insns if c & 7 in (bpf.BPF_LD, bpf.BPF_LDX)]
    assert (0x30, 10) in orig and (0x30, ad + bpf.SKF_AD_PKTTYPE) in loads  # sll2_pkttype
    assert (0x28, 0) in orig and (0x28, ad + bpf.SKF_AD_PROTOCOL) in loads  # sll2_protocol
    assert (0x30, 29) in orig and (0x30, 9) in loads  # ip proto: 20 + 9 -> 9
    sll = bpf.for_kernel(bpf.compile_filter("ip", 113), cooked_hdrlen=16)
    assert sll.insns[0][3] == ad + bpf.SKF_AD_PROTOCOL
    with pytest.raises(RawlabError) as ei:  # sll2_addr has no ancillary equivalent
        bpf.for_kernel(bpf.BpfProgram(((0x30, 0, 0, 12), (6, 0, 0, 1))), cooked_hdrlen=20)
    assert ei.value.code == Exit.USAGE


def test_pack_is_struct_sock_filter() -> None:
    p = bpf.BpfProgram(((0x28, 1, 2, 12), (6, 0, 0, 0)))
    assert p.pack() == struct.pack("=HBBIHBBI", 0x28, 1, 2, 12, 6, 0, 0, 0)
    assert len(p) == 2
