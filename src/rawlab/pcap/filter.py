"""tcpdump filters on records read from files: libpcap compiles, libpcap runs.

The same semantics as `tcpdump -r FILE EXPR`: the expression is compiled for
each link type met (pcapng files may mix them) and run with libpcap's own BPF
interpreter (`bpf_filter`), so rawlab and tcpdump select the same packets.
"""

from __future__ import annotations

import ctypes

from rawlab.sockets import bpf
from rawlab.sockets.errors import Exit, RawlabError


class OfflineFilter:
    """`match(linktype, data, wirelen)` is True when the expression selects the packet."""

    def __init__(self, expression: str, snaplen: int = bpf.MAXIMUM_SNAPLEN):
        self.expression = expression
        self.snaplen = snaplen
        self._progs: dict[int, ctypes.Array[bpf._Insn] | None] = {}
        lib = bpf._pcap()
        fn = lib.bpf_filter
        fn.restype = ctypes.c_uint
        fn.argtypes = [ctypes.POINTER(bpf._Insn), ctypes.c_char_p, ctypes.c_uint, ctypes.c_uint]
        self._run = fn
        bpf.compile_filter(expression, 1, snaplen)  # fail early on a bad expression

    def _program(self, linktype: int) -> ctypes.Array[bpf._Insn] | None:
        if linktype not in self._progs:
            try:
                prog = bpf.compile_filter(self.expression, linktype, self.snaplen)
            except RawlabError as exc:
                # valid syntax, but meaningless for this link type (e.g. `tcp` on netlink)
                raise RawlabError(f"{exc.message} (for link type {linktype})", Exit.USAGE) from None
            arr = (bpf._Insn * len(prog.insns))(*(bpf._Insn(*i) for i in prog.insns))
            self._progs[linktype] = arr
        return self._progs[linktype]

    def match(self, linktype: int, data: bytes, wirelen: int) -> bool:
        prog = self._program(linktype)
        if prog is None:
            return False
        return self._run(prog, data, wirelen, len(data)) != 0
