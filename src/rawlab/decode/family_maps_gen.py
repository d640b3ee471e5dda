"""Write :mod:`rawlab.decode.family_maps` from pyroute2's generic netlink and nfnetlink maps.

    .venv/bin/python -m rawlab.decode.family_maps_gen --write   # rewrite family_maps.py
    .venv/bin/python -m rawlab.decode.family_maps_gen           # print it
    .venv/bin/python -m rawlab.decode.family_maps_gen --check   # exit 1 if it differs

The rtnetlink snapshot's generator (:mod:`rawlab.decode.rtnl_maps_gen`) compiles
pyroute2 classes; this one points it at every generic netlink family and every
nfnetlink subsystem pyroute2 has maps for (:data:`GENL`, :data:`NFNL`), plus
rawlab's own map of the team driver's family (pyroute2 has none), and writes
their command names, message classes and schemas as plain data.

:func:`live_genl_type` / :func:`live_nfnl_type` are the live compile (what the
snapshot is checked against: ``tests/unit/test_family_maps.py`` decodes the same
bytes both ways).
"""

from __future__ import annotations

import importlib
import struct
from enum import Enum
from pathlib import Path
from typing import Any

from rawlab.decode.rtnl import (
    EMPTY,
    FAMILY_BASE,
    K_FLAG,
    K_INT,
    K_NEST,
    K_STR,
    MsgType,
    Schema,
)
from rawlab.decode.rtnl_maps_gen import (
    KIND_NAMES,
    LiveAttrSpec,
    LiveSchema,
    flat,
    generated_header,
    literal_lines,
    live_schema,
    pyroute2_version,
    reachable,
    run_generator,
    schema_lines,
    schema_table,
    wrap,
)

TARGET = Path(__file__).with_name("family_maps.py")
COMMAND = ".venv/bin/python -m rawlab.decode.family_maps_gen --write"

GENLMSGHDR = (("cmd", "version", "reserved"), "=BBH")
NFGENMSG = (("nfgen_family", "version", "res_id"), ">BBH")  # res_id is big-endian

# family name -> (module, message class or {cmd: class}, command names: a constant prefix
# in the module or an Enum there, kernel -> user command names where they differ)
GENL: dict[str, tuple[str, Any, str, str | None]] = {
    "nlctrl": ("pyroute2.netlink", "ctrlmsg", "CTRL_CMD_", None),
    "nl80211": ("pyroute2.netlink.nl80211", "nl80211cmd", "NL80211_CMD_", None),
    "devlink": ("pyroute2.netlink.devlink", "devlinkcmd", "DEVLINK_CMD_", None),
    "TASKSTATS": ("pyroute2.netlink.taskstats", {1: "tcmd", 2: "taskstatsmsg"},
                  "TASKSTATS_CMD_", None),
    "wireguard": ("pyroute2.netlink.generic.wireguard", "wgmsg", "WG_CMD_", None),
    "ethtool": ("pyroute2.netlink.generic.ethtool", {
        1: "ethtool_strset_msg", 2: "ethtool_linkinfo_msg", 3: "ethtool_linkinfo_msg",
        4: "ethtool_linkmode_msg", 5: "ethtool_linkmode_msg", 6: "ethtool_linkstate_msg",
        9: "ethtool_wol_msg", 10: "ethtool_wol_msg", 15: "ethtool_rings_msg",
        16: "ethtool_rings_msg", 31: "ethtool_module_eeprom_msg"}, "ETHTOOL_MSG_",
        "ethtool_kernel"),
    "l2tp": ("pyroute2.netlink.generic.l2tp", "l2tpmsg", "L2TP_CMD_", None),
    "mptcp_pm": ("pyroute2.netlink.generic.mptcp", "mptcp_msg", "MPTCP_PM_CMD_", None),
    "IPVS": ("pyroute2.netlink.generic.ipvs", "ipvsmsg", "IPVS_CMD_", None),
    "acpi_event": ("pyroute2.netlink.event.acpi_event", "acpimsg", "ACPI_GENL_CMD_", None),
    "VFS_DQUOT": ("pyroute2.netlink.event.dquot", "dquotmsg", "QUOTA_NL_C_", None),
    "thermal": ("pyroute2.netlink.event.thermal", "thermal_msg", "ThermalGenlCmd",
                "ThermalGenlEvent"),
}

# ethtool's kernel -> user messages are numbered apart (linux/ethtool_netlink.h,
# ETHTOOL_MSG_*_REPLY / _NTF); the class of each is its request's
ETHTOOL_KERNEL = {
    1: ("ETHTOOL_MSG_STRSET_GET_REPLY", 1), 2: ("ETHTOOL_MSG_LINKINFO_GET_REPLY", 2),
    3: ("ETHTOOL_MSG_LINKINFO_NTF", 2), 4: ("ETHTOOL_MSG_LINKMODES_GET_REPLY", 4),
    5: ("ETHTOOL_MSG_LINKMODES_NTF", 4), 6: ("ETHTOOL_MSG_LINKSTATE_GET_REPLY", 6),
    7: ("ETHTOOL_MSG_DEBUG_GET_REPLY", None), 8: ("ETHTOOL_MSG_DEBUG_NTF", None),
    9: ("ETHTOOL_MSG_WOL_GET_REPLY", 9), 10: ("ETHTOOL_MSG_WOL_NTF", 9),
    11: ("ETHTOOL_MSG_FEATURES_GET_REPLY", None), 12: ("ETHTOOL_MSG_FEATURES_SET_REPLY", None),
    13: ("ETHTOOL_MSG_FEATURES_NTF", None), 14: ("ETHTOOL_MSG_PRIVFLAGS_GET_REPLY", None),
    15: ("ETHTOOL_MSG_PRIVFLAGS_NTF", None), 16: ("ETHTOOL_MSG_RINGS_GET_REPLY", 15),
    17: ("ETHTOOL_MSG_RINGS_NTF", 15), 18: ("ETHTOOL_MSG_CHANNELS_GET_REPLY", None),
    19: ("ETHTOOL_MSG_CHANNELS_NTF", None), 20: ("ETHTOOL_MSG_COALESCE_GET_REPLY", None),
    21: ("ETHTOOL_MSG_COALESCE_NTF", None), 22: ("ETHTOOL_MSG_PAUSE_GET_REPLY", None),
    23: ("ETHTOOL_MSG_PAUSE_NTF", None), 24: ("ETHTOOL_MSG_EEE_GET_REPLY", None),
    25: ("ETHTOOL_MSG_EEE_NTF", None), 26: ("ETHTOOL_MSG_TSINFO_GET_REPLY", None),
    27: ("ETHTOOL_MSG_CABLE_TEST_NTF", None), 28: ("ETHTOOL_MSG_CABLE_TEST_TDR_NTF", None),
    29: ("ETHTOOL_MSG_TUNNEL_INFO_GET_REPLY", None),
    30: ("ETHTOOL_MSG_FEC_GET_REPLY", None), 31: ("ETHTOOL_MSG_FEC_NTF", None),
    32: ("ETHTOOL_MSG_MODULE_EEPROM_GET_REPLY", 31),
}

# subsystem -> (name, module, {message: class}, message names: a constant prefix)
NFNL: dict[int, tuple[str, str, dict[int, str], str]] = {
    1: ("ctnetlink", "pyroute2.netlink.nfnetlink.nfctsocket", {
        0: "nfct_msg", 1: "nfct_msg", 2: "nfct_msg", 3: "nfct_msg", 4: "nfct_stats_cpu",
        5: "nfct_stats", 6: "nfct_msg", 7: "nfct_msg"}, "IPCTNL_MSG_CT_"),
    6: ("ipset", "pyroute2.netlink.nfnetlink.ipset", dict.fromkeys(range(16), "ipset_msg"),
        "IPSET_CMD_"),
    10: ("nftables", "pyroute2.netlink.nfnetlink.nftsocket", {
        0: "nft_table_msg", 1: "nft_table_msg", 2: "nft_table_msg", 3: "nft_chain_msg",
        4: "nft_chain_msg", 5: "nft_chain_msg", 6: "nft_rule_msg", 7: "nft_rule_msg",
        8: "nft_rule_msg", 9: "nft_set_msg", 10: "nft_set_msg", 11: "nft_set_msg",
        12: "nft_set_elem_list_msg", 13: "nft_set_elem_list_msg",
        14: "nft_set_elem_list_msg", 15: "nft_gen_msg", 16: "nft_gen_msg",
        22: "nft_flowtable_msg", 23: "nft_flowtable_msg", 24: "nft_flowtable_msg"},
        "NFT_MSG_"),
}


# ---- rawlab's own: the team driver's generic netlink family (linux/if_team.h) -----------

def _team_schema() -> LiveSchema:
    u8, u32 = struct.Struct("=B"), struct.Struct("=I")

    def schema(name: str, prefix: str, attrs: dict[int, LiveAttrSpec]) -> LiveSchema:
        return LiveSchema(name, attrs, prefix, key=f"rawlab.team.{name}")

    option = schema("team_option", "TEAM_ATTR_OPTION_", {
        1: LiveAttrSpec("TEAM_ATTR_OPTION_NAME", K_STR),
        2: LiveAttrSpec("TEAM_ATTR_OPTION_CHANGED", K_FLAG),
        3: LiveAttrSpec("TEAM_ATTR_OPTION_TYPE", K_INT, u8),
        4: LiveAttrSpec("TEAM_ATTR_OPTION_DATA", 4),  # K_HEX: its type says how to read it
        5: LiveAttrSpec("TEAM_ATTR_OPTION_REMOVED", K_FLAG),
        6: LiveAttrSpec("TEAM_ATTR_OPTION_PORT_IFINDEX", K_INT, u32),
        7: LiveAttrSpec("TEAM_ATTR_OPTION_ARRAY_INDEX", K_INT, u32)})
    port = schema("team_port", "TEAM_ATTR_PORT_", {
        1: LiveAttrSpec("TEAM_ATTR_PORT_IFINDEX", K_INT, u32),
        2: LiveAttrSpec("TEAM_ATTR_PORT_CHANGED", K_FLAG),
        3: LiveAttrSpec("TEAM_ATTR_PORT_LINKUP", K_FLAG),
        4: LiveAttrSpec("TEAM_ATTR_PORT_SPEED", K_INT, u32),
        5: LiveAttrSpec("TEAM_ATTR_PORT_DUPLEX", K_INT, u8),
        6: LiveAttrSpec("TEAM_ATTR_PORT_REMOVED", K_FLAG)})
    options = schema("team_option_list", "TEAM_ATTR_ITEM_", {
        1: LiveAttrSpec("TEAM_ATTR_ITEM_OPTION", K_NEST, sub=option)})
    ports = schema("team_port_list", "TEAM_ATTR_ITEM_", {
        1: LiveAttrSpec("TEAM_ATTR_ITEM_PORT", K_NEST, sub=port)})
    return schema("teammsg", "TEAM_ATTR_", {
        1: LiveAttrSpec("TEAM_ATTR_TEAM_IFINDEX", K_INT, u32),
        2: LiveAttrSpec("TEAM_ATTR_LIST_OPTION", K_NEST, sub=options),
        3: LiveAttrSpec("TEAM_ATTR_LIST_PORT", K_NEST, sub=ports)})


TEAM_COMMANDS = {0: "TEAM_CMD_NOOP", 1: "TEAM_CMD_OPTIONS_SET", 2: "TEAM_CMD_OPTIONS_GET",
                 3: "TEAM_CMD_PORT_LIST_GET"}
_TEAM: list[LiveSchema] = []


def team_schema() -> LiveSchema:
    if not _TEAM:
        _TEAM.append(_team_schema())
    return _TEAM[0]


# ---- the live compile ----------------------------------------------------------------

def _names(module: Any, source: str) -> dict[int, str]:
    """Command names from constants with a prefix, or from an Enum, in a module."""
    found = getattr(module, source, None)
    if isinstance(found, type) and issubclass(found, Enum):
        return {int(m.value): m.name for m in found}
    out: dict[int, str] = {}
    for name in sorted(vars(module)):
        value = vars(module)[name]
        if name.startswith(source) and isinstance(value, int) and not name.endswith("_MAX"):
            out.setdefault(value, name)
    return dict(sorted(out.items()))


def genl_family(name: str) -> tuple[dict[int, str], dict[int, Schema], dict[int, str],
                                    dict[int, Schema]]:
    """(request names, request schemas, kernel -> user names, their schemas) of a family;
    schema key -1: every command."""
    if name == "team":
        return TEAM_COMMANDS, {-1: team_schema()}, TEAM_COMMANDS, {-1: team_schema()}
    modname, classes, source, kernel = GENL[name]
    module = importlib.import_module(modname)
    names = _names(module, source)
    if isinstance(classes, str):
        schemas: dict[int, Schema] = {-1: live_schema(getattr(module, classes))}
    else:
        schemas = {cmd: live_schema(getattr(module, cls)) for cmd, cls in classes.items()}
    if kernel == "ethtool_kernel":
        knames = {cmd: n for cmd, (n, _req) in ETHTOOL_KERNEL.items()}
        kschemas = {cmd: schemas[req] for cmd, (_n, req) in ETHTOOL_KERNEL.items()
                    if req is not None}
        return names, schemas, knames, kschemas
    if kernel is not None:
        return names, schemas, _names(module, kernel), schemas
    return names, schemas, names, schemas


def genl_families() -> list[str]:
    return sorted([*GENL, "team"])


def _header(spec: tuple[tuple[str, ...], str]) -> tuple[tuple[str, ...], struct.Struct,
                                                         list[tuple[str, struct.Struct, int]]]:
    fields, fmt = spec
    st = struct.Struct(fmt)
    order = fmt[0]
    parts, off = [], 0
    for name, code in zip(fields, fmt[1:], strict=True):
        one = struct.Struct(order + code)
        parts.append((name, one, off))
        off += one.size
    return fields, st, parts


def live_genl_type(family: str, cmd: int, to_kernel: bool) -> MsgType:
    """The MsgType of one generic netlink command, compiled from pyroute2 (or rawlab's)."""
    names, schemas, knames, kschemas = genl_family(family)
    if not to_kernel:
        names, schemas = knames, kschemas
    schema = schemas.get(cmd, schemas.get(-1, EMPTY))
    fields, st, spec = _header(GENLMSGHDR)
    return MsgType(names.get(cmd) or str(cmd), fields, st, st.size, schema, spec)


def live_nfnl_type(mtype: int) -> MsgType:
    """The MsgType of an nfnetlink message type (subsystem << 8 | message)."""
    subsys, msg = mtype >> 8, mtype & 0xFF
    fields, st, spec = _header(NFGENMSG)
    known = NFNL.get(subsys)
    if known is None:
        return MsgType(str(mtype), fields, st, st.size, EMPTY, spec)
    _sub, modname, classes, prefix = known
    module = importlib.import_module(modname)
    names = _names(module, prefix)
    cls = classes.get(msg)
    schema = live_schema(getattr(module, cls)) if cls is not None else EMPTY
    return MsgType(names.get(msg) or str(mtype), fields, st, st.size, schema, spec)


# ---- the snapshot ------------------------------------------------------------------

def _roots() -> list[Schema]:
    roots: list[Schema] = []
    for fam in genl_families():
        _n, schemas, _kn, kschemas = genl_family(fam)
        roots += [*schemas.values(), *kschemas.values()]
    for subsys in sorted(NFNL):
        for msg in sorted(NFNL[subsys][2]):
            roots.append(live_nfnl_type(subsys << 8 | msg).schema)
    return roots


def snapshot() -> dict[str, Any]:
    """The data of family_maps.py: GENL, NFNL, SCHEMAS (plain literals, sorted)."""
    schemas = reachable(_roots())
    ids = {s.key: FAMILY_BASE + i for i, s in enumerate(schemas)}

    def sids(by_cmd: dict[int, Schema]) -> dict[int, int]:
        return {cmd: ids[s.key] for cmd, s in sorted(by_cmd.items())  # type: ignore[attr-defined]
                if s is not EMPTY}

    genl = {}
    for fam in genl_families():
        names, by_cmd, knames, kby_cmd = genl_family(fam)
        kernel = None if (knames, kby_cmd) == (names, by_cmd) else (knames, sids(kby_cmd))
        genl[fam] = (names, sids(by_cmd), kernel)
    nfnl = {}
    for subsys, (name, modname, classes, prefix) in sorted(NFNL.items()):
        module = importlib.import_module(modname)
        by_msg = {m: live_nfnl_type(subsys << 8 | m).schema for m in classes}
        nfnl[subsys] = (name, _names(module, prefix), sids(by_msg))
    return {"GENL": genl, "NFNL": nfnl, "SCHEMAS": schema_table(schemas, ids)}


def render() -> str:
    """The text of family_maps.py for the installed pyroute2."""
    data = snapshot()
    version = pyroute2_version()
    kinds = ", ".join(f"{k} {n}" for k, n in KIND_NAMES.items())
    out = [
        *generated_header("family_maps_gen", version, COMMAND, "test_family_maps.py"),
        '"""Generic netlink and nfnetlink names and attribute types: pyroute2\'s maps, as data.',
        "",
        "GENL     family name -> (request command names {cmd: name}, schema ids {cmd:",
        "         id} (cmd -1: every command), kernel -> user (names, schema ids) where",
        "         they are numbered apart from the requests, else None)",
        "NFNL     subsystem -> (its name, message names {msg: name}, schema ids {msg: id});",
        "         a message type is subsystem << 8 | msg",
        "SCHEMAS  schema id (from rawlab.decode.rtnl.FAMILY_BASE) -> (class, name prefix,",
        "         attributes) as in rawlab.decode.rtnl_maps; the class as module.name under",
        "         pyroute2.netlink (rawlab.*: rawlab's own). Kinds as rawlab.decode.rtnl.K_*:",
        *(f"         {line}" for line in wrap(kinds, 70)),
        "",
        "Generic netlink messages start with genlmsghdr (cmd, version, reserved),",
        "nfnetlink messages with nfgenmsg (nfgen_family, version, res_id big-endian).",
        "Only rawlab.decode.rtnl reads this, lazily: one schema when it is first used.",
        '"""',
        "",
        f'PYROUTE2 = "{version}"',
        "",
        "GENL = {",
    ]
    for fam, (names, sids, kernel) in data["GENL"].items():
        out.append(f"    {flat(fam)}: (")
        out += literal_lines(names, 8) + literal_lines(sids, 8) + literal_lines(kernel, 8)
        out.append("    ),")
    out += ["}", "", "NFNL = {"]
    for subsys, (name, names, sids) in data["NFNL"].items():
        out.append(f"    {subsys}: (")
        out += literal_lines(name, 8) + literal_lines(names, 8) + literal_lines(sids, 8)
        out.append("    ),")
    out += ["}", ""]
    out += schema_lines(data["SCHEMAS"])
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    return run_generator(argv, TARGET, render, COMMAND, (__doc__ or "").split("\n\n")[0])


if __name__ == "__main__":
    raise SystemExit(main())
