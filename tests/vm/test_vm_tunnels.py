"""vm tier: real tunnel traffic between two namespaces on Debian's kernel (issue 16): the
tunnels this build machine's kernel lacks (Geneve, GRE with and without Ethernet, IP in
IP, IPv6 in IPv4); VXLAN is tested on the host (tests/privileged/test_tunnels_live.py).
/work is read-only in the guest: files go under pytest's tmp_path (/tmp)."""

from __future__ import annotations

from pathlib import Path

import pytest

from _tunnels import check, kernel_has, tunnel_capture


@pytest.mark.parametrize("kind", ["geneve", "gretap", "gre", "ipip", "sit"])
def test_tunnel(kind: str, tmp_path: Path) -> None:
    assert kernel_has(kind), f"Debian's kernel makes no {kind} device here (module missing?)"
    path = tmp_path / f"{kind}.pcap"
    assert tunnel_capture(kind, path) == b"through the tunnel " * 200
    check(kind, path)
