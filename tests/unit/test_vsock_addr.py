"""vsock addresses, sockaddr_vm, SO_VM_SOCKETS options and error wording: pure logic only.

Safety: nothing here connects an AF_VSOCK socket (the build machine's CID 2 is its
real hypervisor); `no_vsock_connect` makes any attempt fail the test.
"""

from __future__ import annotations

import ctypes
import errno
import socket
import struct

import pytest

from rawlab.errors import Exit, RawlabError
from rawlab.sockets import vsock as vs


@pytest.fixture(autouse=True)
def no_vsock_connect(monkeypatch: pytest.MonkeyPatch) -> None:
    real = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> None:
        if self.family == vs.AF_VSOCK:
            raise AssertionError("a unit test tried to connect an AF_VSOCK socket")
        real(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    monkeypatch.setattr(vs, "_libc_connect", lambda *a: pytest.fail("libc vsock connect"))


@pytest.mark.parametrize(("text", "cid", "port"), [
    ("3:5000", 3, 5000),
    ("host:1234", 2, 1234),
    ("local:any", 1, vs.VMADDR_PORT_ANY),
    ("any:7", vs.VMADDR_CID_ANY, 7),
    ("hypervisor:0", 0, 0),
    ("0x10:0x20", 16, 32),
    ("4294967295:4294967295", 0xFFFFFFFF, 0xFFFFFFFF),
    (" HOST :80", 2, 80),
])
def test_parse_addr(text: str, cid: int, port: int) -> None:
    a = vs.parse_addr(text)
    assert (a.cid, a.port, a.flags) == (cid, port, 0)


@pytest.mark.parametrize("text", ["3", ":5000", "3:", "x:1", "3:y", "-1:5", "3:4294967296",
                                  "4294967296:1", ""])
def test_parse_addr_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        vs.parse_addr(text)


def test_addr_text_and_to_host_flag() -> None:
    assert str(vs.parse_addr("any:any")) == "any:any"
    a = vs.parse_addr("5:9", to_host=True)
    assert a.flags == vs.VMADDR_FLAG_TO_HOST == 1
    assert str(a) == "5:9"


class SockaddrVm(ctypes.Structure):  # include/uapi/linux/vm_sockets.h
    _fields_ = [("svm_family", ctypes.c_ushort), ("svm_reserved1", ctypes.c_ushort),
                ("svm_port", ctypes.c_uint), ("svm_cid", ctypes.c_uint),
                ("svm_flags", ctypes.c_uint8), ("svm_zero", ctypes.c_uint8 * 3)]


def test_sockaddr_vm_matches_the_c_layout() -> None:
    a = vs.VsockAddr(7, 5000, vs.VMADDR_FLAG_TO_HOST)
    raw = vs.sockaddr_vm(a)
    assert len(raw) == ctypes.sizeof(SockaddrVm) == 16
    c = SockaddrVm.from_buffer_copy(raw)
    assert (c.svm_family, c.svm_port, c.svm_cid, c.svm_flags) == (40, 5000, 7, 1)
    assert bytes(c.svm_zero) == b"\0\0\0" and c.svm_reserved1 == 0
    assert vs.unpack_sockaddr_vm(raw) == a
    with pytest.raises(ValueError):
        vs.unpack_sockaddr_vm(b"\x02\x00" + raw[2:])


def test_connect_timeout_is_a_timeval_at_level_af_vsock() -> None:
    opts = vs.connect_timeout_opts(1.25)
    assert {o[1] for o in opts} == {6, 8}
    assert all(level == 40 for level, _, _ in opts)
    assert opts[0][1] == 6  # 64-bit: time_t is a long -> the OLD number is native
    for _, name, val in opts:
        sec, usec = struct.unpack("@ll" if name == 6 else "=qq", val)
        assert (sec, usec) == (1, 250000)
    assert struct.unpack("=qq", vs.connect_timeout_opts(0.0000001)[1][2]) == (0, 0)
    with pytest.raises(ValueError):
        vs.connect_timeout_opts(0)


@pytest.mark.parametrize(("size", "names"), [
    (65536, [0]),
    (256 * 1024, [0]),
    (1 << 20, [2, 0]),  # MAX first, or the kernel clamps SIZE to 256 KiB
    (64, [1, 0]),  # MIN first
])
def test_buffer_size_options_in_an_order_the_kernel_accepts(size: int, names: list[int]) -> None:
    opts = vs.buffer_size_opts(size)
    assert [o[1] for o in opts] == names
    assert all(o[0] == 40 and struct.unpack("=Q", o[2]) == (size,) for o in opts)
    with pytest.raises(ValueError):
        vs.buffer_size_opts(0)


def test_set_connect_timeout_falls_back_to_the_other_number(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def fake(refuse: set[int], seen: list[int]) -> object:
        def set_option(_s: object, level: int, name: int, val: bytes) -> None:
            if name in refuse:
                raise OSError(errno.ENOPROTOOPT, "no")
            seen.append(name)
        return set_option

    seen: list[int] = []
    monkeypatch.setattr(vs, "set_option", fake({6}, seen))
    vs.set_connect_timeout(None, 3)  # type: ignore[arg-type]
    assert seen == [8]
    monkeypatch.setattr(vs, "set_option", fake({6, 8}, []))
    with pytest.raises(OSError):
        vs.set_connect_timeout(None, 3)  # type: ignore[arg-type]


def test_libc_setsockopt_passes_raw_bytes() -> None:
    # CPython's setsockopt takes only an int on AF_VSOCK; the libc path takes bytes.
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        vs.set_option(s, socket.SOL_SOCKET, socket.SO_RCVBUF, struct.pack("=i", 65536))
        assert s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) >= 65536
        with pytest.raises(OSError) as ei:
            vs.set_option(s, socket.SOL_SOCKET, 0x7FFF, b"\0\0\0\0")
        assert ei.value.errno == errno.ENOPROTOOPT


# --- errors -------------------------------------------------------------------------------


def _err(err: int, op: str, addr: str | None = "1:5000", **kw: object) -> RawlabError:
    a = vs.parse_addr(addr) if addr else None
    e = vs.vsock_error(OSError(err, "x"), op, a, **kw)  # type: ignore[arg-type]
    assert e.message.startswith(f"{op} failed: ")
    assert "fix: " in e.message and "\n" not in e.message
    assert f"({errno.errorcode[err]})" in e.message
    return e


def test_econnreset_means_nothing_listens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vs, "_loopback_loaded", lambda: True)
    e = _err(errno.ECONNRESET, "connect vsock 1:5000 (stream)")
    assert e.code == Exit.PEER == 6
    assert "nothing listens on vsock port 5000 at CID 1" in e.message
    assert "rawlab vsock listen 5000" in e.message


def test_eaddrnotavail_loopback_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vs, "_loopback_loaded", lambda: False)
    e = _err(errno.EADDRNOTAVAIL, "bind vsock 1:5000 (stream)")
    assert e.code == Exit.UNSUPPORTED
    assert "vsock_loopback" in e.message


def test_eaddrnotavail_non_local_cid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vs, "_local_cid_or_none", lambda: 3)
    e = _err(errno.EADDRNOTAVAIL, "bind vsock 99:5000 (stream)", "99:5000")
    assert "CID 99 is not local to this machine (its CID is 3)" in e.message
    assert e.code == Exit.UNSUPPORTED


@pytest.mark.parametrize(("err", "kw", "code", "words"), [
    (errno.ENODEV, {"sock_type": "dgram"}, Exit.UNSUPPORTED, ("DGRAM", "VMCI", "--type")),
    (errno.ENODEV, {}, Exit.UNSUPPORTED, ("no vsock transport", "vsock_loopback")),
    (errno.ETIMEDOUT, {"timeout": 0.5}, Exit.PEER, ("within 0.5 s", "--timeout")),
    (errno.ETIMEDOUT, {}, Exit.PEER, ("within 2 s",)),
    (errno.ENETUNREACH, {}, Exit.PEER, ("reaches CID 1",)),
    (errno.EADDRINUSE, {}, Exit.FAILED, ("already bound", "ss --vsock")),
    (errno.EAFNOSUPPORT, {}, Exit.UNSUPPORTED, ("no AF_VSOCK",)),
    (errno.ENOPROTOOPT, {}, Exit.UNSUPPORTED, ("SO_VM_SOCKETS",)),
])
def test_vsock_wording(err: int, kw: dict[str, object], code: Exit,
                       words: tuple[str, ...]) -> None:
    e = _err(err, "connect vsock 1:5000 (stream)", **kw)
    assert e.code == code
    for w in words:
        assert w in e.message


def test_einval_with_flags_names_the_kernel_version() -> None:
    a = vs.parse_addr("5:9", to_host=True)
    e = vs.vsock_error(OSError(errno.EINVAL, "x"), "connect", a)
    assert "VMADDR_FLAG_TO_HOST" in e.message and e.code == Exit.UNSUPPORTED


def test_other_errors_fall_back_to_explain() -> None:
    e = _err(errno.EPERM, "open AF_VSOCK STREAM socket", None)
    assert e.code == Exit.PRIVILEGE


@pytest.mark.parametrize(("err", "code", "words"), [
    (errno.EACCES, Exit.PRIVILEGE, ("/dev/vhost-vsock", "cgroup_device_acl")),
    (errno.ENOENT, Exit.UNSUPPORTED, ("modprobe vhost_vsock",)),
    (errno.EADDRINUSE, Exit.FAILED, ("guest CID 3 is already taken", "another CID")),
    (errno.EINVAL, Exit.USAGE, ("reserved",)),
])
def test_vhost_wording(err: int, code: Exit, words: tuple[str, ...]) -> None:
    a = vs.vhost_advice(err, 3)
    assert a is not None and a.code == code
    for w in words:
        assert w in f"{a.why} {a.fix}"
    assert vs.vhost_advice(errno.EIO, 3) is None


def test_claim_guest_cid_without_the_device(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setattr(vs, "VHOST_VSOCK_DEV", str(tmp_path / "vhost-vsock"))
    with pytest.raises(RawlabError) as ei:
        vs.claim_guest_cid(3)
    assert ei.value.code == Exit.UNSUPPORTED and "modprobe vhost_vsock" in ei.value.message


def test_unknown_type_is_a_usage_error() -> None:
    with pytest.raises(RawlabError) as ei:
        vs.sock_type_of("raw")
    assert ei.value.code == Exit.USAGE


def test_opening_an_unconnected_socket_is_all_a_unit_test_may_do() -> None:
    try:
        s = vs.open_socket("stream")
    except RawlabError as exc:  # no AF_VSOCK here at all: a one-line error, code 4
        assert exc.code == Exit.UNSUPPORTED
        return
    s.close()
