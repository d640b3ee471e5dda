"""Unit tier: no privilege, no network. scapy must never resolve a MAC address
(building Ether()/IP(dst=...) without a dst MAC makes it send ARP)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


def _refuse(*args: object, **kw: object) -> None:
    raise AssertionError("a unit test made scapy resolve a MAC address (that sends ARP): "
                         "give Ether() explicit src= and dst=")


@pytest.fixture(autouse=True)
def _no_scapy_resolution(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Ether's DestMACField asks conf.neighbor.resolve() for a missing dst
    # (conf.neighbor exists once scapy.layers.l2 is imported)
    import scapy.layers.l2  # noqa: F401
    from scapy.config import conf

    monkeypatch.setattr(conf.neighbor, "resolve", _refuse)
    yield
