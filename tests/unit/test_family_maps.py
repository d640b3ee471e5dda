"""family_maps.py (generic netlink families, nfnetlink subsystems) is what the generator
makes of the installed pyroute2, decodes as the live compile does, and as pyroute2 does."""

from __future__ import annotations

import socket
import struct
from typing import Any

import pytest
from test_rtnl_maps import Build, _same_schema, attr, canon

from rawlab.decode import family_maps, genl, nfnl, rtnl
from rawlab.decode import family_maps_gen as gen
from rawlab.sockets.netlink_wire import NETLINK_GENERIC, NETLINK_NETFILTER

pytestmark = pytest.mark.unit

NLM_F_REQUEST = 1


def msg(mtype: int, body: bytes, *, flags: int = 0) -> bytes:
    return struct.pack("=IHHII", 16 + len(body), mtype, flags, 7, 0) + body


def test_snapshot_is_what_the_generator_makes() -> None:
    if gen.TARGET.read_text() != gen.render():
        pytest.fail(f"src/rawlab/decode/family_maps.py is not what pyroute2 "
                    f"{gen.pyroute2_version()} gives; regenerate it: {gen.COMMAND}")
    assert gen.pyroute2_version() == family_maps.PYROUTE2


def test_every_family_pyroute2_maps_is_in_the_snapshot() -> None:
    assert set(family_maps.GENL) == {"nlctrl", "nl80211", "devlink", "TASKSTATS", "wireguard",
                                     "ethtool", "l2tp", "mptcp_pm", "IPVS", "acpi_event",
                                     "VFS_DQUOT", "thermal", "team"}
    assert {v[0] for v in family_maps.NFNL.values()} == {"ctnetlink", "ipset", "nftables"}


def every_attribute(schema: rtnl.Schema, family: int) -> bytes:
    """Every attribute, nested ones filled three levels down (fewer where a map nests
    itself, as devlink's does, until it fits a message)."""
    for depth in (3, 2, 1):
        try:
            raw = Build(family, max_depth=depth).attrs(schema)
        except struct.error:  # an attribute longer than 64 KiB
            continue
        if len(raw) < 60000:
            return raw
    return Build(family, max_depth=0).attrs(schema)


def genl_cases() -> list[tuple[str, int, bool]]:
    """One command of each distinct schema of each family, each way."""
    out = []
    for fam, (_names, sids, kernel) in family_maps.GENL.items():
        for way, table in ((True, sids), (False, kernel[1] if kernel else sids)):
            first: dict[int, int] = {}
            for cmd, sid in sorted(table.items()):
                first.setdefault(sid, cmd if cmd >= 0 else 1)
            out += [(fam, cmd, way) for cmd in first.values()]
    return out


def test_every_genl_command_is_named_as_the_live_compile_names_it() -> None:
    for fam, (names, _sids, kernel) in family_maps.GENL.items():
        for way in (True, False):
            for cmd in sorted(set(names) | set(kernel[0] if kernel else ()) | {200}):
                snap, live = genl.msg_type(fam, cmd, way), gen.live_genl_type(fam, cmd, way)
                assert snap is not None and (snap.name, snap.schema.name) == (
                    live.name, live.schema.name), (fam, cmd, way)


@pytest.mark.parametrize("fam,cmd,to_kernel", genl_cases())
def test_every_genl_schema_matches_the_live_compile(fam: str, cmd: int, to_kernel: bool
                                                   ) -> None:
    snap, live = genl.msg_type(fam, cmd, to_kernel), gen.live_genl_type(fam, cmd, to_kernel)
    assert snap is not None and snap.name == live.name
    assert snap.header_fields == live.header_fields == ("cmd", "version", "reserved")
    _same_schema(snap.schema, live.schema, f"{fam}.{snap.name}", set())
    # every attribute the schema knows, valid sizes, nested ones filled: decoded alike
    body = struct.pack("=BBH", cmd, 1, 0) + every_attribute(live.schema, 2)
    raw = msg(0x40, body, flags=NLM_F_REQUEST if to_kernel else 0)
    (m,) = rtnl.decode_buffer(raw, NETLINK_GENERIC, genl={0x40: fam})
    want, _ok = rtnl.decode_attrs(raw, 20, len(raw), live.schema, 0)
    assert canon(m.attrs) == canon(want)
    assert (m.name, m.cmd, m.header["cmd"]) == (fam, snap.name, cmd) and m.ok


@pytest.mark.parametrize("mtype", sorted(s << 8 | m for s, v in family_maps.NFNL.items()
                                         for m in v[1]))
def test_every_nfnetlink_message_matches_the_live_compile(mtype: int) -> None:
    snap, live = nfnl.msg_type(mtype), gen.live_nfnl_type(mtype)
    assert snap.name == live.name and snap.header_st.format == live.header_st.format
    _same_schema(snap.schema, live.schema, snap.name, set())
    for family in (2, 10):
        body = struct.pack(">BBH", family, 0, 0x1234) + every_attribute(live.schema, family)
        (m,) = rtnl.decode_buffer(msg(mtype, body), NETLINK_NETFILTER)
        want, _ok = rtnl.decode_attrs(msg(mtype, body), 20, 16 + len(body), live.schema,
                                      family)
        assert canon(m.attrs) == canon(want) and m.ok
        assert m.family == family and m.header["res_id"] == 0x1234 and m.name == snap.name


# ---- against pyroute2's own decode -----------------------------------------------------

def pyroute2_values(msg_obj: Any) -> Any:
    """pyroute2's decoded attributes as plain data (name -> value or nested dict)."""
    out: dict[str, Any] = {}
    for name, raw in msg_obj["attrs"]:
        value = raw
        if hasattr(raw, "get") and "attrs" in raw:
            value = pyroute2_values(raw)
        elif isinstance(raw, list):
            value = [pyroute2_values(v) if hasattr(v, "get") and "attrs" in v else v
                     for v in raw]
        out[name] = value
    return out


def test_conntrack_event_decodes_as_pyroute2_does() -> None:
    from pyroute2.netlink.nfnetlink.nfctsocket import nfct_msg

    m = nfct_msg()
    m["nfgen_family"] = socket.AF_INET
    m["attrs"] = [
        ("CTA_TUPLE_ORIG", {"attrs": [
            ("CTA_TUPLE_IP", {"attrs": [("CTA_IP_V4_SRC", "10.0.0.1"),
                                        ("CTA_IP_V4_DST", "10.0.0.2")]}),
            ("CTA_TUPLE_PROTO", {"attrs": [("CTA_PROTO_NUM", 6),
                                           ("CTA_PROTO_SRC_PORT", 40000),
                                           ("CTA_PROTO_DST_PORT", 22)]})]}),
        ("CTA_STATUS", 0x18E), ("CTA_TIMEOUT", 120), ("CTA_MARK", 0x2A), ("CTA_ZONE", 7),
        ("CTA_PROTOINFO", {"attrs": [("CTA_PROTOINFO_TCP", {"attrs": [
            ("CTA_PROTOINFO_TCP_STATE", 3)]})]}),
        ("CTA_COUNTERS_ORIG", {"attrs": [("CTA_COUNTERS_PACKETS", 5),
                                         ("CTA_COUNTERS_BYTES", 300)]}),
        ("CTA_ID", 0xDEADBEEF)]
    m["header"]["type"] = 1 << 8
    m.encode()
    (ours,) = rtnl.decode_buffer(bytes(m.data), NETLINK_NETFILTER)
    theirs = nfct_msg(bytes(m.data))
    theirs.decode()
    want = pyroute2_values(theirs)
    a = ours.attrs
    assert ours.name == "IPCTNL_MSG_CT_NEW" and ours.family == socket.AF_INET
    orig = a["CTA_TUPLE_ORIG"]
    assert rtnl.IpAddr(socket.inet_aton(want["CTA_TUPLE_ORIG"]["CTA_TUPLE_IP"]["CTA_IP_V4_SRC"])
                       ) == orig["CTA_TUPLE_IP"]["CTA_IP_V4_SRC"]
    assert orig["CTA_TUPLE_PROTO"] == want["CTA_TUPLE_ORIG"]["CTA_TUPLE_PROTO"] == {
        "CTA_PROTO_NUM": 6, "CTA_PROTO_SRC_PORT": 40000, "CTA_PROTO_DST_PORT": 22}
    for k in ("CTA_STATUS", "CTA_TIMEOUT", "CTA_MARK", "CTA_ZONE", "CTA_ID",
              "CTA_COUNTERS_ORIG"):
        assert a[k] == want[k], k
    assert a["CTA_PROTOINFO"]["CTA_PROTOINFO_TCP"]["CTA_PROTOINFO_TCP_STATE"] == 3


def test_nftables_rule_expressions_decode_as_pyroute2_does() -> None:
    from pyroute2.netlink.nfnetlink.nftsocket import nft_rule_msg

    m = nft_rule_msg()
    m["nfgen_family"] = 2
    m["attrs"] = [("NFTA_RULE_TABLE", "filter"), ("NFTA_RULE_CHAIN", "input"),
                  ("NFTA_RULE_HANDLE", 4),
                  ("NFTA_RULE_EXPRESSIONS", [
                      {"attrs": [("NFTA_EXPR_NAME", "meta"), ("NFTA_EXPR_DATA", {"attrs": [
                          ("NFTA_META_DREG", 1), ("NFTA_META_KEY", 16)]})]},
                      {"attrs": [("NFTA_EXPR_NAME", "counter"), ("NFTA_EXPR_DATA", {"attrs": [
                          ("NFTA_COUNTER_BYTES", 10), ("NFTA_COUNTER_PACKETS", 1)]})]}])]
    m["header"]["type"] = 10 << 8 | 6
    m.encode()
    (ours,) = rtnl.decode_buffer(bytes(m.data), NETLINK_NETFILTER)
    a = ours.attrs
    assert ours.name == "NFT_MSG_NEWRULE"
    assert (a["NFTA_RULE_TABLE"], a["NFTA_RULE_CHAIN"], a["NFTA_RULE_HANDLE"]) == (
        "filter", "input", 4)
    meta, counter = a["NFTA_RULE_EXPRESSIONS"]
    assert meta["NFTA_EXPR_NAME"] == "meta"
    assert meta["NFTA_EXPR_DATA"] == {"NFTA_META_DREG": 1, "NFTA_META_KEY": 16}
    assert counter["NFTA_EXPR_DATA"] == {"NFTA_COUNTER_BYTES": 10, "NFTA_COUNTER_PACKETS": 1}


def test_wireguard_and_nlctrl_decode_as_pyroute2_does() -> None:
    from pyroute2.netlink import ctrlmsg
    from pyroute2.netlink.generic.wireguard import wgmsg

    w = wgmsg()
    w["cmd"] = 0
    w["attrs"] = [("WGDEVICE_A_IFNAME", "wg0"), ("WGDEVICE_A_LISTEN_PORT", 51820),
                  ("WGDEVICE_A_FWMARK", 0x1337)]
    w["header"]["type"] = 0x22
    w.encode()
    c = ctrlmsg()
    c["cmd"] = 1
    c["attrs"] = [("CTRL_ATTR_FAMILY_ID", 0x22), ("CTRL_ATTR_FAMILY_NAME", "wireguard")]
    c["header"]["type"] = 0x10
    c.encode()
    ids = genl.GenlIds()
    (ctl,) = rtnl.decode_buffer(bytes(c.data), NETLINK_GENERIC, genl=ids)
    assert (ctl.name, ctl.cmd) == ("nlctrl", "CTRL_CMD_NEWFAMILY")
    assert ids[0x22] == "wireguard"  # learnt from the reply
    (wg,) = rtnl.decode_buffer(bytes(w.data), NETLINK_GENERIC, genl=ids)
    assert (wg.name, wg.cmd) == ("wireguard", "WG_CMD_GET_DEVICE")
    assert wg.attrs == {"WGDEVICE_A_IFNAME": "wg0", "WGDEVICE_A_LISTEN_PORT": 51820,
                        "WGDEVICE_A_FWMARK": 0x1337}


def test_ethtool_replies_are_numbered_apart_from_requests() -> None:
    req = genl.msg_type("ethtool", 16, True)
    rep = genl.msg_type("ethtool", 16, False)
    assert req is not None and rep is not None
    assert (req.name, rep.name) == ("ETHTOOL_MSG_RINGS_SET", "ETHTOOL_MSG_RINGS_GET_REPLY")
    assert rep.schema is genl.msg_type("ethtool", 15, True).schema  # type: ignore[union-attr]


def test_unknown_family_and_types_keep_numbers_and_bytes() -> None:
    body = struct.pack("=BBH", 9, 1, 0) + attr(5, b"\x01\x02")
    (m,) = rtnl.decode_buffer(msg(0x77, body), NETLINK_GENERIC, genl=genl.GenlIds())
    assert m.name is None and m.attrs["5"] == rtnl.Unknown(5, b"\x01\x02")
    (n,) = rtnl.decode_buffer(msg(0x0A63, struct.pack(">BBH", 2, 0, 0) + attr(3, b"x")),
                              NETLINK_NETFILTER)
    assert n.name == "nftables:99" and n.attrs["3"] == rtnl.Unknown(3, b"x")
    (o,) = rtnl.decode_buffer(msg(0x0A06, struct.pack(">BBH", 2, 0, 0) + attr(999, b"yz")),
                              NETLINK_NETFILTER)
    assert o.name == "NFT_MSG_NEWRULE" and o.attrs["999"] == rtnl.Unknown(999, b"yz")
