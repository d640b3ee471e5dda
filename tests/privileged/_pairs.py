"""Two namespaces for the raw-socket tests: a ↔ b over a veth, IPv4 and IPv6."""

from __future__ import annotations

from typing import Any


def pair(lab: Any) -> tuple[Any, Any]:
    """a (10.0.0.1, fd00::1) ↔ b (10.0.0.2, fd00::2), offloads off, neighbours known
    (no 1 s neighbour-discovery wait before the first IPv6 packet)."""
    a, b = lab.netns("a"), lab.netns("b")
    lab.veth(a, b, "10.0.0.1/24", "10.0.0.2/24", offloads=False,
             extra_addrs=(("fd00::1/64", "fd00::2/64"),), static_neighbours=True)
    return a, b
