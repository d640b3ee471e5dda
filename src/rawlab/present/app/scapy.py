"""The long tail (rawlab.decode.scapy_tail) in the -v tree and JSON, and ``read --scapy``.

Tree: ``scapy (decoded by scapy, not rawlab)`` then each scapy layer and its fields;
``[scapy: could not decode]`` when scapy raised. JSON: ``{"decoder": "scapy",
"from": "udp", "layers": [{"name": "RIP header", "fields": {...}}]}``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TextIO

from rawlab.present.fmt import jsonable


def line(t: Any) -> str:
    if t.error:
        return "[scapy: could not decode]"
    return "scapy: " + "/".join(name for name, _f in t.layers)


def json(t: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"decoder": "scapy", "from": t.start or "record"}
    if t.error:
        out["note"] = "[scapy: could not decode]"
        out["error"] = t.error
    out["layers"] = [{"name": name, "fields": jsonable(fields)} for name, fields in t.layers]
    return out


def tree(t: Any) -> Iterable[str]:
    yield "(decoded by scapy, not rawlab)"
    if t.error:
        yield f"[scapy: could not decode] ({t.error})"
    for name, fields in t.layers:
        yield f"{name}"
        for k, v in fields.items():
            yield f"  {k:<13} {jsonable(v)}"


class ScapySink:
    """``rawlab read --scapy``: scapy's own ``show()`` of each frame."""

    decodes = False
    uses_interface = False

    def __init__(self, out: TextIO) -> None:
        self._out = out

    def packet(self, frame: int, rec: Any, pkt: Any, iface: Any) -> None:
        from rawlab.decode.scapy_tail import show

        self._out.write(f"frame {frame}: {rec.wirelen} bytes on wire, {rec.caplen} captured\n"
                        + show(rec.data, rec.linktype) + "\n\n")

    def close(self) -> None:
        self._out.flush()
