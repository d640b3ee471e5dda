"""vm tier: `rawlab netlink monitor --genl nlctrl` sees a generic netlink family appear when
its module loads (Debian's kernel has wireguard as a module), decoded by name; the new
family's multicast groups and ops are in the message."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from _background import Background

RAWLAB = str(Path(sys.executable).with_name("rawlab"))


def test_a_family_registering_is_seen_and_named() -> None:
    if subprocess.run(["modprobe", "-n", "wireguard"], capture_output=True,
                      check=False).returncode:
        import pytest

        pytest.skip("this guest kernel has no wireguard module to load")
    mon = Background([RAWLAB, "netlink", "monitor", "--genl", "nlctrl", "--json"],
                     ready="monitoring")
    subprocess.run(["modprobe", "wireguard"], check=True)
    recs = [json.loads(x) for x in mon.stop(settle=2)]
    new = [r for r in recs if r.get("cmd_name") == "CTRL_CMD_NEWFAMILY"
           and r["attrs"].get("CTRL_ATTR_FAMILY_NAME") == "wireguard"]
    assert new, [r.get("cmd_name") for r in recs]
    assert new[0]["nlmsg_type"] == "nlctrl" and new[0]["attrs"]["CTRL_ATTR_FAMILY_ID"] > 16
    ops = new[0]["attrs"]["CTRL_ATTR_OPS"]
    assert {o["CTRL_ATTR_OP_ID"] for o in ops} >= {0, 1}  # WG_CMD_GET_DEVICE, SET_DEVICE
    assert recs[-1]["summary"]["groups"] == ["nlctrl"]
