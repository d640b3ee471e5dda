"""The long tail: what rawlab has no module for, handed to scapy's dissectors.

    tail = scapy_tail(pkt, table, payloads=True)   # a ScapyTail view, or None (nothing for scapy:
                                      # rawlab decoded it all, or scapy found only bytes)
    tail.layers     # ((scapy layer name, {field: value}), ...) past rawlab's layers
    tail.error      # "could not decode: <exception type>" when scapy raised, else None
    show(data, linktype)              # scapy's own ``show()`` text of the whole frame

Which packets: a last layer ``data`` (a link type, EtherType or IP protocol without a
rawlab module: scapy dissects from the layer before it, or the whole record), and a
UDP or TCP payload on ports the dispatch table has no entry for. scapy is imported
on first use only (it costs about a second), never by the line view or ``--stats``,
and nothing it raises reaches rawlab: it becomes ``error``. Its values are turned into
ints, strings and bytes here (scapy's own objects stay inside this module).
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from rawlab.decode.descent import DispatchTable, port_view
from rawlab.decode.view import AppView, Buffer, as_view

#: rawlab layer name -> (scapy module, class) that dissects that header and what follows
SCAPY_CLASSES = {
    "eth": ("scapy.layers.l2", "Ether"), "sll": ("scapy.layers.l2", "CookedLinux"),
    "sll2": ("scapy.layers.l2", "CookedLinuxV2"), "ipv4": ("scapy.layers.inet", "IP"),
    "ipv6": ("scapy.layers.inet6", "IPv6"), "udp": ("scapy.layers.inet", "UDP"),
    "tcp": ("scapy.layers.inet", "TCP"),
}
MAX_LAYERS = 16
_LOADED: list[Any] = []


def _scapy() -> Any:
    """scapy's configuration with its layers loaded, quietly (imported once)."""
    if not _LOADED:
        logging.getLogger("scapy").setLevel(logging.ERROR)
        import scapy.layers.all  # noqa: F401  (registers the dissectors and their bindings)
        from scapy.config import conf

        _LOADED.append(conf)
    return _LOADED[0]


def _value(v: Any) -> Any:
    if v is None or isinstance(v, bool | int | float | str | bytes):
        return v
    if isinstance(v, list | tuple):
        return [_value(x) for x in v[:64]]
    return str(v)


class ScapyTail(AppView):
    """Layers scapy found past rawlab's own (see the module docstring)."""

    __slots__ = ("error", "layers", "start")
    name: ClassVar[str] = "scapy"

    def __init__(self, buf: Buffer, layers: tuple[tuple[str, dict[str, Any]], ...] = (),
                 error: str | None = None, start: str = "") -> None:
        self.buf = as_view(buf)
        self.layers = layers
        self.error = error
        self.start = start  # the rawlab layer scapy dissected from ("" : the whole record)
        self.truncated = False
        self.malformed = error is not None
        self.frames = ()


    def fields(self) -> dict[str, Any]:
        return {"layers": self.layers, "error": self.error}


def _target(pkt: Any, table: DispatchTable, payloads: bool) -> tuple[Any, str] | None:
    """(the view scapy should dissect from, its rawlab name), or None."""
    layers = pkt.layers
    if not layers or layers[-1].application:
        return None
    last = layers[-1]
    if last.name == "data":
        if len(layers) == 1:
            return last, ""
        prev = layers[-2]
        if prev.fragmented:  # a piece of a datagram: reassembly's, not scapy's
            return None
        return (prev, prev.name) if prev.name in SCAPY_CLASSES else None
    if payloads and last.name in ("udp", "tcp") and len(last.payload):
        ports = table.udp_port if last.name == "udp" else table.tcp_port
        if port_view(ports, last.sport, last.dport) is None:
            return last, last.name
    return None


def scapy_tail(pkt: Any, table: DispatchTable, payloads: bool = True) -> ScapyTail | None:
    """What scapy makes of the part of ``pkt`` rawlab left undecoded (module docstring);
    ``payloads=False``: only a ``data`` layer (not UDP/TCP payloads on ports without an
    entry: the columnar --json path prints those rows without decoding them)."""
    got = _target(pkt, table, payloads)
    if got is None:
        return None
    view, start = got
    data = bytes(view.buf if start else pkt.data)
    try:
        conf = _scapy()
        if start:
            import importlib

            mod, cls_name = SCAPY_CLASSES[start]
            cls = getattr(importlib.import_module(mod), cls_name)
        else:
            cls = conf.l2types.num2layer.get(pkt.linktype)
            if cls is None:
                return None
        from scapy.packet import NoPayload, Padding, Raw

        p = cls(data)
        layer = p.payload if start else p
        out = []
        while len(out) < MAX_LAYERS and not isinstance(layer, NoPayload | Raw | Padding):
            out.append((layer.name, {f.name: _value(layer.getfieldval(f.name))
                                     for f in layer.fields_desc}))
            layer = layer.payload
    except Exception as exc:  # scapy's dissectors on untrusted bytes: never let one escape
        return ScapyTail(data, (), f"could not decode: {type(exc).__name__}", start)
    if not out:
        return None
    return ScapyTail(data, tuple(out), None, start)


def show(data: bytes, linktype: int) -> str:
    """scapy's ``show()`` of the whole frame (``rawlab read --scapy``); a frame scapy
    cannot dissect gives one note line."""
    try:
        conf = _scapy()
        cls = conf.l2types.num2layer.get(linktype)
        if cls is None:
            return f"[scapy: no dissector for link type {linktype}]"
        return str(cls(data).show(dump=True)).rstrip("\n")
    except Exception as exc:
        return f"[scapy: could not decode: {type(exc).__name__}]"
