"""Real tunnel traffic between two namespaces (issue 16): the tunnels this kernel makes
(VXLAN here; GRE, Geneve, IP in IP and 6in4 in the vm tier, whose kernel has them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from _tunnels import check, kernel_has, tunnel_capture

pytestmark = pytest.mark.privileged


def test_vxlan(tmp_path: Path) -> None:
    assert kernel_has("vxlan"), "this kernel has no VXLAN devices"
    path = tmp_path / "vxlan.pcap"
    assert tunnel_capture("vxlan", path) == b"through the tunnel " * 200
    check("vxlan", path)
