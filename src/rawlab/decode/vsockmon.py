"""vsockmon records (link type VSOCK, 271): ``af_vsockmon_hdr`` + transport header + payload.

    v = Vsockmon(record)
    v.src_cid, v.dst_cid, v.src_port, v.dst_port   # ints (little-endian on the wire)
    v.op          # 1 connect, 2 disconnect, 3 control, 4 payload
    v.transport   # 2 = virtio
    v.len         # bytes of transport header that follow the 32-byte header
    v.virtio      # VirtioVsockHdr when transport == virtio and len >= 44, else None
    v.payload     # the bytes after the transport header

All fields are little-endian (virtio is little-endian whatever the host).
"""

from __future__ import annotations

import struct
from typing import Any, ClassVar

from construct import Bytes, Int16ul, Int32ul, Int64ul, Struct

from rawlab.decode.view import Buffer, View, as_view, pad

VSOCKMON_HLEN = 32
VIRTIO_VSOCK_HLEN = 44

AF_VSOCK_OP_UNKNOWN = 0
AF_VSOCK_OP_CONNECT = 1
AF_VSOCK_OP_DISCONNECT = 2
AF_VSOCK_OP_CONTROL = 3
AF_VSOCK_OP_PAYLOAD = 4

AF_VSOCK_TRANSPORT_UNKNOWN = 0
AF_VSOCK_TRANSPORT_NO_INFO = 1
AF_VSOCK_TRANSPORT_VIRTIO = 2

VIRTIO_VSOCK_TYPE_STREAM = 1
VIRTIO_VSOCK_TYPE_SEQPACKET = 2
VIRTIO_VSOCK_OP_INVALID = 0
VIRTIO_VSOCK_OP_REQUEST = 1
VIRTIO_VSOCK_OP_RESPONSE = 2
VIRTIO_VSOCK_OP_RST = 3
VIRTIO_VSOCK_OP_SHUTDOWN = 4
VIRTIO_VSOCK_OP_RW = 5
VIRTIO_VSOCK_OP_CREDIT_UPDATE = 6
VIRTIO_VSOCK_OP_CREDIT_REQUEST = 7

AF_VSOCKMON_HDR = Struct(
    "src_cid" / Int64ul, "dst_cid" / Int64ul, "src_port" / Int32ul, "dst_port" / Int32ul,
    "op" / Int16ul, "transport" / Int16ul, "len" / Int16ul, "reserved" / Bytes(2),
)
VIRTIO_VSOCK_HDR = Struct(
    "src_cid" / Int64ul, "dst_cid" / Int64ul, "src_port" / Int32ul, "dst_port" / Int32ul,
    "len" / Int32ul, "type" / Int16ul, "op" / Int16ul, "flags" / Int32ul,
    "buf_alloc" / Int32ul, "fwd_cnt" / Int32ul,
)

# af_vsockmon_hdr as the hot paths read it (the capture's --cid/--port filter, the view)
AF_VSOCKMON_HDR_ST = struct.Struct("<QQIIHHH2s")
_VIRTIO = struct.Struct("<QQIIIHHIII")


class VirtioVsockHdr:
    """The 44-byte ``virtio_vsock_hdr`` (what travels on the virtqueue)."""

    __slots__ = ("buf_alloc", "dst_cid", "dst_port", "flags", "fwd_cnt", "len", "op",
                 "src_cid", "src_port", "type")
    FIELDS: ClassVar[tuple[tuple[str, int, int], ...]] = (
        ("src_cid", 0, 8), ("dst_cid", 8, 8), ("src_port", 16, 4), ("dst_port", 20, 4),
        ("len", 24, 4), ("type", 28, 2), ("op", 30, 2), ("flags", 32, 4), ("buf_alloc", 36, 4),
        ("fwd_cnt", 40, 4),
    )

    def __init__(self, buf: memoryview | bytes, offset: int = 0) -> None:
        (self.src_cid, self.dst_cid, self.src_port, self.dst_port, self.len, self.type, self.op,
         self.flags, self.buf_alloc, self.fwd_cnt) = _VIRTIO.unpack_from(buf, offset)

    def fields(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name, _o, _s in self.FIELDS}

    def __repr__(self) -> str:
        return f"<VirtioVsockHdr {self.fields()}>"


class Vsockmon(View):
    __slots__ = ("dst_cid", "dst_port", "len", "op", "reserved", "src_cid", "src_port",
                 "transport", "virtio")
    name: ClassVar[str] = "vsock"
    FIELDS: ClassVar[tuple[tuple[str, int, int], ...]] = (
        ("src_cid", 0, 8), ("dst_cid", 8, 8), ("src_port", 16, 4), ("dst_port", 20, 4),
        ("op", 24, 2), ("transport", 26, 2), ("len", 28, 2), ("reserved", 30, 2),
    )

    def __init__(self, buf: Buffer) -> None:
        self.buf = mv = as_view(buf)
        hdr, trunc = pad(mv, VSOCKMON_HLEN)
        (self.src_cid, self.dst_cid, self.src_port, self.dst_port, self.op, self.transport,
         self.len, self.reserved) = AF_VSOCKMON_HDR_ST.unpack_from(hdr)
        self.virtio: VirtioVsockHdr | None = None
        self.malformed = False
        if self.transport == AF_VSOCK_TRANSPORT_VIRTIO:
            self.malformed = self.len < VIRTIO_VSOCK_HLEN
            if not self.malformed and len(mv) >= VSOCKMON_HLEN + VIRTIO_VSOCK_HLEN:
                self.virtio = VirtioVsockHdr(mv, VSOCKMON_HLEN)
        self.truncated = trunc or len(mv) < VSOCKMON_HLEN + self.len

    @property
    def header_len(self) -> int:
        return VSOCKMON_HLEN + self.len

    def fields(self) -> dict[str, Any]:
        d = super().fields()
        d["virtio"] = self.virtio.fields() if self.virtio else None
        return d
