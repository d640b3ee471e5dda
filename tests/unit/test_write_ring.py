"""``capture -w`` in place (rawlab.pipeline.write_ring): the pcapng file made from a ring's
frames without Records is byte for byte the file the per-record path (pipeline.run with a
CaptureWriter) makes from the same frames, with and without process attribution.

The frames sit in anonymous memory laid out as the kernel lays out a TPACKET_V3 ring
(<linux/if_packet.h>: tpacket_block_desc, tpacket3_hdr + sockaddr_ll, tp_mac 82 for
Ethernet, each frame's tp_next_offset aligned to 16); the walk over them is the capture's
own (PacketRing.frames). The privileged tier captures real traffic with the same path
(every `capture -w` test)."""

from __future__ import annotations

import contextlib
import itertools
import mmap
import os
import socket
import struct
import time
from pathlib import Path

import pytest
from tcp_synth import tcp_ipv4
from test_processes import CURL, NGINX, Ans, Table

from rawlab import pipeline
from rawlab.analysis.processes import Attribution, ProcessMatch
from rawlab.pcap.reader import read_records
from rawlab.pcap.writer import CaptureWriter, RotatingWriter, RotationDone
from rawlab.records import LinkType
from rawlab.sockets.packet.header import (
    TP_STATUS_CSUM_VALID,
    TP_STATUS_USER,
    TP_STATUS_VLAN_TPID_VALID,
    TP_STATUS_VLAN_VALID,
)
from rawlab.sockets.packet.options import RingConfig
from rawlab.sockets.packet.ring import CaptureStats, PacketRing

_FRAME = struct.Struct("<IIIIIIHHIIH2x8x2xHiHBB8s")
C, S = bytes((10, 0, 0, 1)), bytes((10, 0, 0, 2))
ETH = bytes(6) + bytes((2, 0, 0, 0, 0, 1)) + b"\x08\x00"
T0 = 1_700_000_000_123_456_789


class _Memory(PacketRing):
    """A ring whose blocks are all handed over already (and no more come)."""

    def _wait_block(self, deadline: float | None, idle: float | None) -> int | None:
        base = self._cur * self._block_size
        assert self._mm is not None
        return base if self._mm[base + 8] & TP_STATUS_USER else None


def _ring(frames: list[dict], *, per_block: int, linktype: int = LinkType.ETHERNET,
          ifindex: int = 2, cooked: int = 0, snaplen: int = 262144,
          direction: str = "inout", size: int = 1 << 16) -> PacketRing:
    """frames: dicts of data, and optionally ts, pkttype, ifindex, status, tci, tpid."""
    blocks = [frames[i:i + per_block] for i in range(0, len(frames), per_block)]
    mm = mmap.mmap(-1, size * (len(blocks) + 1))
    mac = 82 if not cooked else 96
    for b, fr in enumerate(blocks):
        base, off = b * size, 48
        struct.pack_into("<III", mm, base + 8, TP_STATUS_USER, len(fr), 48)
        for i, x in enumerate(fr):
            data = x["data"]
            step = (mac + len(data) + 15) & ~15
            assert off + step <= size
            ts = x.get("ts", T0 + (b * per_block + i) * 1_000)
            _FRAME.pack_into(mm, base + off, step if i < len(fr) - 1 else 0, ts // 10**9,
                             ts % 10**9, len(data), x.get("wire", len(data)),
                             x.get("status", 0), mac, mac + 14, 0, x.get("tci", 0),
                             x.get("tpid", 0), 0x0008, x.get("ifindex", ifindex), 1,
                             x.get("pkttype", 0), 6, bytes(range(8)))
            mm[base + off + mac:base + off + mac + len(data)] = data
            off += step
    a, b2 = socket.socketpair()
    ring = _Memory(a, iface="veth1" if ifindex else "any", ifindex=ifindex, linktype=linktype,
                   cooked_hdrlen=cooked, snaplen=snaplen,
                   config=RingConfig(ring_mb=1, block_size=size), lo_ifindex=1,
                   interfaces={2: "veth1", 3: "eth0"}, netns=None, program=None,
                   direction=direction)
    ring._block_nr = len(blocks) + 1
    ring._mm, ring._mv = mm, memoryview(mm)
    ring._peer = b2  # type: ignore[attr-defined]
    return ring


def _udp(sport: int, dport: int, n: int = 4, src: bytes = C, dst: bytes = S) -> bytes:
    body = struct.pack("!HHHH", sport, dport, 8 + n, 0) + b"x" * n
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(body), 1, 0, 64, 17, 0, src, dst)
    return ETH + ip + body


def _tcp(flags: int, client: bool = True) -> bytes:
    src, dst, a, b = (C, S, 40000, 80) if client else (S, C, 80, 40000)
    return ETH + tcp_ipv4(src, dst, a, b, 1, 1, flags, 100)


def _both(tmp_path: Path, frames: list[dict], *, per_block: int = 5,
          attribution: object = None, count: int | None = None, compiled: bool = True,
          pcap: bool = False, **ring: object
          ) -> tuple[bytes, bytes, pipeline.Counts, pipeline.Counts]:
    """(file by records, file in place, their counts); `compiled` False: in place by
    the interpreted loop even where the compiled one would run."""
    got = []
    for in_place in (False, True):
        out = str(tmp_path / f"{in_place}.pcapng")
        r = _ring(frames, per_block=per_block, **ring)  # type: ignore[arg-type]
        w = CaptureWriter(out, pcap=pcap)
        attr = attribution() if callable(attribution) else None
        if in_place:
            with _loop(compiled):
                c = pipeline.write_ring(r, w, count=count, attribute=attr)
        else:
            recs = r.records(count=None if attr else count, block_done=w.flush)
            c = pipeline.run(recs, [], writer=w, interfaces=r.interface, attribute=attr,
                             count=count)
            recs.close()
        got.append((Path(out).read_bytes(), c, attr))
    (old, c_old, a_old), (new, c_new, a_new) = got
    if a_old is not None:
        assert (a_new.counts.frames, a_new.counts.flows) == (  # type: ignore[attr-defined]
            a_old.counts.frames, a_old.counts.flows)  # type: ignore[attr-defined]
    return old, new, c_old, c_new


@contextlib.contextmanager
def _loop(compiled: bool):  # type: ignore[no-untyped-def]
    """write_ring's compiled loop where it runs (the default), or the interpreted one."""
    real = pipeline._EpbRun.__dict__["compiles"]
    if not compiled:
        pipeline._EpbRun.compiles = staticmethod(lambda ring, rotating: False)  # type: ignore
    try:
        yield
    finally:
        pipeline._EpbRun.compiles = real  # type: ignore[method-assign]


def _mixed() -> list[dict]:
    return ([{"data": _udp(40000, 9, n)} for n in range(1, 9)]  # every padding
            + [{"data": _tcp(0x02)}, {"data": _tcp(0x12, client=False), "pkttype": 4},
               {"data": _tcp(0x10)}, {"data": _udp(5353, 53), "pkttype": 4,
                                      "status": TP_STATUS_CSUM_VALID},
               {"data": _udp(1, 2)[:30], "wire": 46}])  # cut short by the snap length


def test_plain_frames_make_the_same_file(tmp_path: Path) -> None:
    old, new, c_old, c_new = _both(tmp_path, _mixed())
    assert new == old
    assert (c_new.seen, c_new.matched, c_new.written) == (13, 13, 13) == (
        c_old.seen, c_old.matched, c_old.written)
    recs = list(read_records(tmp_path / "True.pcapng"))
    assert [r.caplen for r in recs][:8] == [42 + n for n in range(1, 9)]
    assert recs[-1].caplen == 30 and recs[-1].wirelen == 46
    assert [int(r.direction) for r in recs][8:] == [1, 2, 1, 2, 1]
    assert recs[3].ts_ns == T0 + 3_000


def test_vlan_tag_put_back_as_by_records(tmp_path: Path) -> None:
    tagged = {"data": _udp(40000, 9), "status": TP_STATUS_VLAN_VALID | TP_STATUS_VLAN_TPID_VALID,
              "tci": 0x2064, "tpid": 0x88A8}
    plain_tag = {"data": _udp(40000, 9), "status": TP_STATUS_VLAN_VALID, "tci": 5}
    old, new, _, _ = _both(tmp_path, [tagged, plain_tag, {"data": _udp(1, 2)}])
    assert new == old
    recs = list(read_records(tmp_path / "True.pcapng"))
    assert recs[0].data[12:16] == bytes.fromhex("88a82064")
    assert recs[1].data[12:16] == bytes.fromhex("81000005")
    assert recs[0].wirelen == len(_udp(40000, 9)) + 4


def test_any_numbers_interfaces_as_they_come(tmp_path: Path) -> None:
    sll2 = [{"data": _udp(40000, 9)[14:], "ifindex": i} for i in (3, 2, 3, 2, 2)]
    old, new, _, _ = _both(tmp_path, sll2, linktype=LinkType.LINUX_SLL2, ifindex=0, cooked=20)
    assert new == old
    recs = list(read_records(tmp_path / "True.pcapng"))
    assert [r.interface for r in recs] == [0, 1, 0, 1, 1]
    assert recs[0].data[:2] == b"\x08\x00" and recs[0].linktype == LinkType.LINUX_SLL2


def test_count_stops_at_the_same_frame(tmp_path: Path) -> None:
    old, new, c_old, c_new = _both(tmp_path, _mixed(), count=7, per_block=3)
    assert new == old and c_new.written == c_old.written == 7


def _attribution(match: ProcessMatch | None = None) -> object:
    def make() -> Attribution:
        table = Table({40000: [Ans(CURL)], 80: [Ans(NGINX)]})
        return Attribution(table, match)
    return make


def test_attributed_frames_make_the_same_file(tmp_path: Path) -> None:
    frames = _mixed() * 3
    old, new, c_old, c_new = _both(tmp_path, frames, attribution=_attribution())
    assert new == old and c_new.written == c_old.written == 39
    recs = list(read_records(tmp_path / "True.pcapng"))
    assert recs[0].owners is not None and recs[0].owners[0].comm == "curl"
    assert recs[9].owners is not None and recs[9].owners[0].comm == "nginx"
    assert recs[11].owners is None  # port 5353 -> 53: nobody's here


def test_a_process_filter_drops_the_same_frames(tmp_path: Path) -> None:
    frames = _mixed() * 2
    old, new, c_old, c_new = _both(tmp_path, frames, per_block=4,
                                   attribution=_attribution(ProcessMatch(comms=frozenset({
                                       "nginx"}))), count=5)
    assert new == old
    assert (c_new.seen, c_new.matched) == (c_old.seen, c_old.matched)
    assert c_new.written == 5
    assert all(r.owners is not None and "nginx" in {o.comm for o in r.owners if o}
               for r in read_records(tmp_path / "True.pcapng"))


def test_every_ring_block_reaches_the_file_whole(tmp_path: Path) -> None:
    out = tmp_path / "w.pcapng"
    sizes: list[int] = []
    frames = [{"data": _udp(40000, 9)} for _ in range(1200)]
    r = _ring(frames, per_block=300)
    pipeline.write_ring(r, CaptureWriter(str(out)), on_block=lambda: sizes.append(
        os.path.getsize(out)))
    epb = 32 + 48 + 12  # a 46-byte frame padded to 48, the inbound epb_flags and end
    assert len(sizes) == 4
    assert [b - a for a, b in itertools.pairwise(sizes)] == [300 * epb] * 3
    assert sizes[-1] == out.stat().st_size
    assert sum(1 for _ in read_records(out)) == 1200


@pytest.mark.parametrize("bad", [b"", b"\x08"])
def test_tiny_frames_are_written(tmp_path: Path, bad: bytes) -> None:
    old, new, _, _ = _both(tmp_path, [{"data": bad}, {"data": _udp(1, 2)}],
                           attribution=_attribution())
    assert new == old


def _rotated(tmp_path: Path, frames: list[dict], *, attribution: object = None,
             compiled: bool = True, ring: dict | None = None, pcap: bool = False,
             **rot: object) -> tuple[list[bytes], list[bytes], list[str]]:
    """Both paths through RotatingWriter(**rot): the files' bytes in the order opened (the
    first one is named by the wall clock, the others by their frames), and the names."""
    got = []
    for in_place in (False, True):
        d = tmp_path / str(in_place)
        d.mkdir(parents=True)
        pattern = str(d / ("cap-%H%M%S.pcapng" if rot.get("seconds") else "cap.pcapng"))
        w = RotatingWriter(pattern, pcap=pcap, **rot)  # type: ignore[arg-type]
        r = _ring(frames, per_block=4, **(ring or {}))
        attr = attribution() if callable(attribution) else None
        with contextlib.suppress(RotationDone):
            if in_place:
                with _loop(compiled):
                    pipeline.write_ring(r, w, attribute=attr)
            else:
                pipeline.run(r.records(block_done=w.flush), [], writer=w,
                             interfaces=r.interface, attribute=attr)
        names = list(dict.fromkeys(w.files))  # a ring of -W names opens each again
        got.append(([Path(n).read_bytes() for n in names], [Path(n).name for n in names],
                    r._captured))
    (old, old_names, old_captured), (new, new_names, new_captured) = got
    assert new_names[1:] == old_names[1:]
    assert new_captured == old_captured  # (-W's last frame too: seen, not written)
    return old, new, new_names


def _later(n: int, step_ns: int) -> list[dict]:
    t = (time.time_ns() // 10**9 + 3) * 10**9  # whole seconds after now: slots of their own
    return [{"data": _udp(40000 + i % 3, 9, 1 + i % 5), "ts": t + i * step_ns}
            for i in range(n)]


def _counts(d: Path, names: list[str]) -> list[int]:
    return [sum(1 for _ in read_records(d / n)) for n in names]


@pytest.mark.parametrize("compiled", [True, False])
def test_time_rotation_cuts_at_the_same_frames(tmp_path: Path, compiled: bool) -> None:
    old, new, names = _rotated(tmp_path, _later(20, 300_000_000), seconds=1,
                               compiled=compiled)
    assert new == old
    # the first file (opened at start, named by the clock) gets none: a file a second
    assert _counts(tmp_path / "True", names) == [0, 4, 3, 3, 4, 3, 3]


@pytest.mark.parametrize("compiled", [True, False])
def test_size_rotation_and_its_ring_of_files(tmp_path: Path, compiled: bool) -> None:
    old, new, names = _rotated(tmp_path, _mixed() * 3, size=700,
                               attribution=_attribution(), compiled=compiled)
    assert new == old and names[:3] == ["cap.pcapng", "cap.pcapng1", "cap.pcapng2"]
    assert sum(_counts(tmp_path / "True", names)) == 39
    old, new, names = _rotated(tmp_path / "ring", _mixed() * 3, size=500, files=3,
                               compiled=compiled)
    assert new == old and names == ["cap.pcapng0", "cap.pcapng1", "cap.pcapng2"]
    # -G and -C together, attributed: a new process's block counts toward the size
    old, new, names = _rotated(tmp_path / "both", _later(30, 100_000_000), seconds=1,
                               size=400, attribution=_attribution(), compiled=compiled)
    assert new == old and len(names) > 4


@pytest.mark.parametrize("compiled", [True, False])
def test_files_limit_stops_both_at_the_same_frame(tmp_path: Path, compiled: bool) -> None:
    old, new, names = _rotated(tmp_path, _later(20, 300_000_000), seconds=1, files=3,
                               compiled=compiled)
    assert new == old and _counts(tmp_path / "True", names) == [0, 4, 3]


def test_an_interface_is_numbered_by_its_first_kept_frame(tmp_path: Path) -> None:
    frames = [{"data": _udp(40000, 9)[14:], "ifindex": 3},  # curl's: not asked for
              {"data": _udp(80, 5)[14:], "ifindex": 2}, {"data": _udp(80, 5)[14:], "ifindex": 3}]
    old, new, c_old, c_new = _both(
        tmp_path, frames, linktype=LinkType.LINUX_SLL2, ifindex=0, cooked=20,
        attribution=_attribution(ProcessMatch(comms=frozenset({"nginx"}))))
    assert new == old and c_new.written == c_old.written == 2
    assert [r.interface for r in read_records(tmp_path / "True.pcapng")] == [0, 1]
    assert [i.name for i in _interfaces(tmp_path / "True.pcapng")] == ["veth1", "eth0"]


def _interfaces(path: Path) -> list:
    from rawlab.pcap.reader import open_file

    with open_file(path) as cap:
        list(cap)
        return list(cap.interfaces)


def test_the_fast_path_takes_frames_where_they_lie(tmp_path: Path) -> None:
    """One flow: only its first frame is looked up the slow way (the ring's offsets are
    read in place, not from the start of the memory)."""
    slow: list[int] = []

    class Counted(Attribution):
        def _slow(self, data: bytes, linktype: int, ts: int) -> object:  # type: ignore[override]
            slow.append(ts)
            return super()._slow(data, linktype, ts)

    attr = Counted(Table({40000: [Ans(CURL)]}))
    r = _ring([{"data": _udp(40000, 9, 20)} for _ in range(300)], per_block=100)
    c = pipeline.write_ring(r, CaptureWriter(str(tmp_path / "f.pcapng")), attribute=attr)
    assert c.written == 300 and len(slow) == 1 and attr.counts.attributed == 300


def test_a_status_line_counts_rotated_files_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    from rawlab.cli import capture as cli

    asked: list[str] = []
    real = os.path.getsize
    monkeypatch.setattr(cli.os.path, "getsize", lambda p: asked.append(p) or real(p))
    _status = cli._status

    w = RotatingWriter(str(tmp_path / "cap-%H%M%S.pcapng"), seconds=3600, size=2000)
    r = _ring([{"data": _udp(40000, 9)} for _ in range(60)], per_block=20)
    r.stats = lambda: CaptureStats(0, 0, 0)  # type: ignore[method-assign]  # (a socketpair's)
    counts = pipeline.Counts()
    redraw = _status(r, counts, w)
    time.sleep(0.55)
    pipeline.write_ring(r, w, counts=counts, on_block=redraw)
    assert len(w.files) > 2
    # after the first block: its 20 packets, the current file's size (SHB, IDB, 20 EPBs)
    assert "\r\x1b[K20 packets, " in (err := capsys.readouterr().err)
    assert err.endswith(" 0 dropped, 0.0 MB") and len(err.split("\r")) == 2
    assert asked == [w.files[0]] and "%" not in w.files[0]  # the file being written then


def test_a_full_disk_keeps_what_the_per_record_path_keeps(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """ENOSPC inside a run of 512 EPBs handed over at once: the file is cut back to its
    last whole EPB, not to the run's start: the same bytes as the per-record path's."""
    from test_output_faults import _FullAfter

    import rawlab.pcap.writer as wmod
    from rawlab.errors import Exit, RawlabError

    real_open = open
    room = 5003

    def fake_open(p: object, mode: str = "r", buffering: int = -1, **kw: object) -> object:
        if str(p).endswith(".pcapng") and "w" in mode:
            return _FullAfter(Path(str(p)), room)
        return real_open(p, mode, buffering, **kw)  # type: ignore[call-overload]

    monkeypatch.setattr(wmod, "open", fake_open, raising=False)
    frames = [{"data": _udp(40000, 9, 1 + i % 7)} for i in range(1200)]
    kept = []
    for in_place in (False, True):
        out = tmp_path / f"{in_place}.pcapng"
        r, w = _ring(frames, per_block=400), CaptureWriter(str(out))
        with pytest.raises(RawlabError) as ei:
            if in_place:
                pipeline.write_ring(r, w)
            else:
                pipeline.run(r.records(block_done=w.flush), [], writer=w,
                             interfaces=r.interface)
        assert ei.value.code == Exit.OUTPUT and "keeps its first" in str(ei.value)
        kept.append(out.read_bytes())
    assert kept[1] == kept[0] and 4500 < len(kept[1]) <= room
    assert sum(1 for _ in read_records(tmp_path / "True.pcapng")) > 40


def _edges() -> list[dict]:
    big = _udp(40000, 9, 3000)
    vlan = TP_STATUS_VLAN_VALID | TP_STATUS_VLAN_TPID_VALID
    return [{"data": big, "status": vlan, "tci": 0x1064, "tpid": 0x88A8},  # over 2 KiB
            {"data": _udp(40000, 9), "pkttype": 4, "ifindex": 1},  # loopback's own echo
            {"data": _udp(40000, 9), "pkttype": 4},
            {"data": _udp(1, 2, 200), "status": TP_STATUS_VLAN_VALID, "tci": 7},
            {"data": _tcp(0x02)}, {"data": _tcp(0x12, client=False)},
            {"data": ETH[:11], "status": TP_STATUS_VLAN_VALID}]  # too short for a tag


@pytest.mark.parametrize("compiled", [True, False])
@pytest.mark.parametrize("direction", ["inout", "in", "out"])
@pytest.mark.parametrize("snaplen", [262144, 100])
def test_both_loops_make_the_per_record_file(tmp_path: Path, compiled: bool, direction: str,
                                             snaplen: int) -> None:
    """The compiled loop and the interpreted one: the same bytes as the per-record path
    (directions, loopback's echo dropped, the snap length, VLAN tags put back on frames
    over 2 KiB and on one too short to take it), with and without attribution."""
    frames = _edges() * 2 + _mixed()
    for attribution in (None, _attribution()):
        old, new, c_old, c_new = _both(tmp_path, frames, per_block=4, compiled=compiled,
                                       direction=direction, snaplen=snaplen,
                                       attribution=attribution)
        assert new == old and (c_new.seen, c_new.matched, c_new.written) == (
            c_old.seen, c_old.matched, c_old.written)
        want = {"inout": 25, "in": 21, "out": 4}[direction]
        assert c_new.written == want, (direction, c_new.written)
    recs = list(read_records(tmp_path / "True.pcapng"))
    if direction != "out":
        assert recs[0].data[12:16] == bytes.fromhex("88a81064")
        assert recs[0].caplen == min(len(_udp(40000, 9, 3000)), snaplen) + 4


@pytest.mark.parametrize("compiled", [True, False])
def test_a_read_stopped_by_count_resumes_at_the_next_frame(tmp_path: Path,
                                                           compiled: bool) -> None:
    """-c stops inside a block; the next read of the ring starts at the frame after."""
    frames = [{"data": _udp(40000 + i, 9)} for i in range(12)]
    r = _ring(frames, per_block=5)
    with _loop(compiled):
        first = pipeline.write_ring(r, CaptureWriter(str(tmp_path / "a.pcapng")), count=7)
        rest = pipeline.write_ring(r, CaptureWriter(str(tmp_path / "b.pcapng")))
    assert (first.written, rest.written) == (7, 5)
    assert [x.data[34:36] for x in read_records(tmp_path / "b.pcapng")] == [
        struct.pack("!H", 40007 + i) for i in range(5)]


def test_the_compiled_loop_is_the_one_that_runs(tmp_path: Path) -> None:
    """A ring on one interface or on `any` (a cooked header), files cut by time or size
    or not: the compiled loop (on a little-endian host)."""
    from rawlab._kernels import ring_epbs  # noqa: F401 - built

    eth = _ring([{"data": _udp(1, 2)}], per_block=1)
    sll2 = _ring([{"data": _udp(1, 2)[14:]}], per_block=1, linktype=LinkType.LINUX_SLL2,
                 ifindex=0, cooked=20)
    rot = RotatingWriter(str(tmp_path / "c.pcapng"), size=700)
    assert pipeline._EpbRun.compiles(eth, None)
    assert pipeline._EpbRun.compiles(sll2, None)
    assert pipeline._EpbRun.compiles(eth, rot)
    assert pipeline._EpbRun.compiles(eth, RotatingWriter(str(tmp_path / "d-%S.pcapng"),
                                                         seconds=1))


@pytest.mark.parametrize("compiled", [True, False])
def test_a_loop_that_fails_counts_what_it_wrote(tmp_path: Path, compiled: bool) -> None:
    """An error inside a run of EPBs (here the options of a new flow's frames): what was
    made before it is in the file, and the counts say so (written == matched)."""
    frames = [{"data": _udp(40000 + i // 3, 9)} for i in range(30)]
    r = _ring(frames, per_block=10)
    attr = _attribution()()
    real, calls = pipeline._EpbRun.tail, []

    def tail(self: object, e: object, pkttype: int) -> bytes:
        calls.append(e)
        if len(calls) == 5:
            raise RuntimeError("no more options")
        return real(self, e, pkttype)  # type: ignore[arg-type]

    counts = pipeline.Counts()
    pipeline._EpbRun.tail = tail  # type: ignore[method-assign]
    try:
        with _loop(compiled), pytest.raises(RuntimeError, match="no more options"):
            pipeline.write_ring(r, CaptureWriter(str(tmp_path / "f.pcapng")), counts=counts,
                                attribute=attr)
    finally:
        pipeline._EpbRun.tail = real  # type: ignore[method-assign]
    assert counts.written == counts.matched == 12  # four flows of three frames
    assert counts.seen == 13
    assert sum(1 for _ in read_records(tmp_path / "f.pcapng")) == 12


@pytest.mark.parametrize("compiled", [True, False])
@pytest.mark.parametrize(("linktype", "cooked"), [(LinkType.LINUX_SLL2, 20),
                                                   (LinkType.LINUX_SLL, 16)])
def test_any_in_both_loops(tmp_path: Path, compiled: bool, linktype: int, cooked: int) -> None:
    """`any`: the cooked header written in front of each frame (SLL2, SLL), interfaces
    numbered as their first kept frame comes, loopback's echo dropped, attribution and
    -c: the per-record path's file."""
    frames = [dict(x, data=x["data"][14:], ifindex=(3, 2, 1)[i % 3])
              for i, x in enumerate(_mixed() * 2)]
    for attribution, count in ((None, None), (_attribution(), None), (_attribution(), 9)):
        old, new, c_old, c_new = _both(tmp_path, frames, per_block=4, compiled=compiled,
                                       linktype=linktype, ifindex=0, cooked=cooked,
                                       attribution=attribution, count=count)
        assert new == old and (c_new.seen, c_new.matched, c_new.written) == (
            c_old.seen, c_old.matched, c_old.written)
    recs = list(read_records(tmp_path / "True.pcapng"))
    assert len(recs) == 9 and recs[0].linktype == linktype
    assert [r.interface for r in recs[:3]] == [0, 1, 2]
    assert [i.name for i in _interfaces(tmp_path / "True.pcapng")][:2] == ["eth0", "veth1"]


@pytest.mark.parametrize("compiled", [True, False])
def test_a_cooked_frame_without_room_is_a_clear_error(tmp_path: Path, compiled: bool) -> None:
    """A frame whose tp_mac leaves no room for the cooked header (never from the kernel
    with SOCK_DGRAM): one readable error, exit FAILED, the frames before it written."""
    from rawlab.errors import Exit, RawlabError

    r = _ring([{"data": _udp(1, 2)[14:]}] * 3, per_block=3, ifindex=0)  # (tp_mac 82)
    r.cooked_hdrlen, r.linktype = 20, LinkType.LINUX_SLL2
    counts = pipeline.Counts()
    with _loop(compiled), pytest.raises(RawlabError, match="no room for its header") as e:
        pipeline.write_ring(r, CaptureWriter(str(tmp_path / "f.pcapng")), counts=counts)
    assert e.value.code == Exit.FAILED and counts.written == 0


def test_two_interleaved_flows_ask_for_their_options_once_each(tmp_path: Path) -> None:
    """The compiled loop keeps the options run of the flow before the last one too (a
    busy flow and a connection's frames among it): each flow's run is made once."""
    frames = [{"data": _udp(40000, 9) if i % 2 else _tcp(0x10)} for i in range(40)]
    calls: list[object] = []
    real = pipeline._EpbRun.tail

    def tail(self: object, e: object, pkttype: int) -> bytes:
        calls.append(e)
        return real(self, e, pkttype)  # type: ignore[arg-type]

    pipeline._EpbRun.tail = tail  # type: ignore[method-assign]
    try:
        old, new, _, c = _both(tmp_path, frames, per_block=7, attribution=_attribution())
    finally:
        pipeline._EpbRun.tail = real  # type: ignore[method-assign]
    assert new == old and c.written == 40
    assert len(calls) == 2


@pytest.mark.parametrize("compiled", [True, False])
def test_any_cut_by_size_at_every_boundary(tmp_path: Path, compiled: bool) -> None:
    """`any` with -C, sizes such that each file ends at another frame: an interface's
    first frame (its IDB written then) goes to the file the per-record path puts it in,
    also when that file has just reached its size."""
    frames = [{"data": _udp(40000, 9, 1 + i % 4)[14:], "ifindex": 2 + (i // 5) % 3}
              for i in range(30)]
    for size in range(150, 420, 9):
        old, new, _ = _rotated(tmp_path / str(size), frames, size=size, compiled=compiled,
                               attribution=_attribution(),
                               ring={"linktype": LinkType.LINUX_SLL2, "ifindex": 0,
                                     "cooked": 20})
        assert new == old, size


@pytest.mark.parametrize(("linktype", "cooked", "ifindex"), [
    (LinkType.ETHERNET, 0, 2), (LinkType.LINUX_SLL2, 20, 0)])
def test_pcap_files_are_the_per_record_paths(tmp_path: Path, linktype: int, cooked: int,
                                             ifindex: int) -> None:
    """--pcap through the compiled loop: the per-record path's file (one header with the
    first frame's link type, nanosecond records, VLAN tags put back, the snap length;
    attribution only chooses the frames), also cut by -C and -G."""
    frames = _edges() + _mixed() * 2
    if cooked:
        frames = [dict(x, data=x["data"][14:], ifindex=(3, 2)[i % 2])
                  for i, x in enumerate(frames) if x.get("pkttype") != 4 or i % 2]
    ring = {"linktype": linktype, "cooked": cooked, "ifindex": ifindex}
    for attribution, count in ((None, None), (_attribution(), None),
                               (_attribution(ProcessMatch(comms=frozenset({"nginx"}))), 2)):
        old, new, c_old, c_new = _both(tmp_path, frames, per_block=4, pcap=True, count=count,
                                       attribution=attribution, **ring)  # type: ignore[arg-type]
        assert new == old and (c_new.seen, c_new.matched, c_new.written) == (
            c_old.seen, c_old.matched, c_old.written)
    assert new[:4] == bytes.fromhex("4d3cb2a1") and c_new.written == 2
    recs = list(read_records(tmp_path / "True.pcapng"))  # (pcap inside: read by its magic)
    assert recs and all(r.linktype == linktype for r in recs)
    for size in (200, 333, 700):
        old_f, new_f, _ = _rotated(tmp_path / f"c{size}", frames, size=size, pcap=True,
                                   attribution=_attribution(), ring=ring)
        assert new_f == old_f, size
    old_f, new_f, _ = _rotated(tmp_path / "g", _later(20, 300_000_000), seconds=1, pcap=True)
    assert new_f == old_f
    nobody = _attribution(ProcessMatch(comms=frozenset({"nobody"})))
    (tmp_path / "e").mkdir()
    old, new, _, c_new = _both(tmp_path / "e", frames, pcap=True, attribution=nobody, **ring)
    assert new == old == b"" and c_new.written == 0  # (no frame kept: no header either)


def test_a_full_disk_keeps_every_whole_pcap_record(tmp_path: Path) -> None:
    """A run of pcap records handed over at once, the disk full inside it: the file is
    cut back to its last whole record, not to the run's start."""
    from rawlab.pcap.writer import PcapWriter

    class Short:  # takes 24 + 100 bytes, then fails
        def __init__(self) -> None:
            self.data = bytearray()

        def write(self, b: bytes) -> int:
            room = 124 - len(self.data)
            if room <= 0:
                raise OSError(28, "No space left on device")
            self.data += bytes(b[:room])
            return min(room, len(b))

        def flush(self) -> None:
            pass

    out = Short()
    w = PcapWriter(out, 1)  # type: ignore[arg-type]
    rec = struct.pack("<IIII", 1, 2, 30, 30) + bytes(30)  # 46 bytes each
    from rawlab.errors import RawlabError

    with pytest.raises(RawlabError):
        w.put_records(rec * 5, 5)
    assert w._sink._whole(bytearray(rec * 5), [230], 100) == 92  # two whole records
