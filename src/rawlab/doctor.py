"""What this kernel and these privileges allow, and how to get the rest.

Every probe only opens a socket, binds where harmless (a vsock bind to a CID
sends nothing; a netlink bind to port 0), asks the kernel a question over
netlink, or creates a link inside a throwaway network namespace that dies with
its probe process. Nothing here connects anywhere.

The result is a list of :class:`Check` rows; :func:`report` returns the
stable JSON document described in docs/json.md ("doctor").
"""

from __future__ import annotations

import ctypes.util
import errno
import os
import platform
import shutil
import socket
import subprocess
from collections.abc import Callable
from dataclasses import asdict, dataclass

from rawlab import __version__
from rawlab.sockets import netlink as nl
from rawlab.sockets import netlink_wire as wire
from rawlab.sockets import vsock

SCHEMA = "rawlab.doctor/1"

# status values (stable, documented in docs/json.md)
OK = "ok"
NO_PRIVILEGE = "no-privilege"  # the kernel has it; these credentials may not use it
UNSUPPORTED = "unsupported"  # this kernel (as loaded now) lacks it
MISSING = "missing"  # a userspace tool or file is not installed
INFO = "info"  # a fact, neither good nor bad

CAPS = {"CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13, "CAP_SYS_ADMIN": 21, "CAP_SYS_MODULE": 16}
CAP_WHY = {
    "CAP_NET_RAW": "SOCK_RAW and AF_PACKET sockets (net/ipv4/af_inet.c, net/packet/af_packet.c)",
    "CAP_NET_ADMIN": "links, promiscuous mode, nlmon/vsockmon, nftables (rtnetlink)",
    "CAP_SYS_ADMIN": "creating and entering named network namespaces (setns, mount)",
    "CAP_SYS_MODULE": "loading kernel modules (nlmon, vsock_loopback ...)",
}
UNPRIV = 65534  # nobody


@dataclass
class Check:
    id: str
    group: str
    title: str
    status: str
    detail: str
    fix: str | None = None
    errno: str | None = None

    @property
    def ok(self) -> bool:
        return self.status in (OK, INFO)

    def to_json(self) -> dict[str, object]:
        d = asdict(self)
        d["ok"] = self.ok
        return d


def errname(err: int) -> str:
    if err == errno.EOPNOTSUPP:
        return "EOPNOTSUPP"  # Python's errorcode says ENOTSUP (same number on Linux)
    return errno.errorcode.get(err, str(err))


def modprobe_fix(module: str, what: str) -> str:
    state = vsock.module_state(module)
    if state.loaded:
        return f"{module} is loaded; see the detail for what else is missing"
    if state.on_disk:
        return f"modprobe {module}"
    return (f"no {module} module in this kernel ({what}): boot one that has it, e.g. "
            "Debian's linux-image-amd64 via `rawlab lab vm -- rawlab doctor`")


# --- sockets ---------------------------------------------------------------

def open_probe(family: int, stype: int, proto: int = 0, bind: object = None) -> int:
    """socket(family, stype, proto), bind if asked, close; 0 or the errno the kernel gave."""
    try:
        s = socket.socket(family, stype, proto)
    except OSError as exc:
        return exc.errno or errno.EIO
    try:
        if bind is not None:
            s.bind(bind)
    except OSError as exc:
        return exc.errno or errno.EIO
    finally:
        s.close()
    return 0


def _socket_check(cid: str, title: str, family: int, stype: int, proto: int = 0,
                  bind: object = None, *, cap: str | None = None,
                  module: str | None = None, what: str = "") -> Check:
    err = open_probe(family, stype, proto, bind)
    if err == 0:
        return Check(cid, "sockets", title, OK, "opens")
    if err in (errno.EPERM, errno.EACCES):
        need = cap or "CAP_NET_RAW"
        return Check(cid, "sockets", title, NO_PRIVILEGE, f"refused: needs {need}",
                     f"run as root, or give {need.lower()} (privileges.md, "
                     "'Capabilities without root'), or run inside `unshare -rn`",
                     errname(err))
    if err in (errno.EAFNOSUPPORT, errno.EPROTONOSUPPORT, errno.ESOCKTNOSUPPORT,
               errno.EOPNOTSUPP, errno.ENODEV, errno.EINVAL):
        fix = modprobe_fix(module, what) if module else "use a kernel that has it"
        return Check(cid, "sockets", title, UNSUPPORTED,
                     f"this kernel refuses it: {os.strerror(err)}", fix, errname(err))
    return Check(cid, "sockets", title, UNSUPPORTED, os.strerror(err),
                 "see privileges.md", errname(err))


def socket_checks() -> list[Check]:
    af = socket
    out = [
        _socket_check("socket.inet.raw", "AF_INET SOCK_RAW", af.AF_INET, af.SOCK_RAW,
                      af.IPPROTO_TCP),
        _socket_check("socket.inet6.raw", "AF_INET6 SOCK_RAW", af.AF_INET6, af.SOCK_RAW,
                      af.IPPROTO_TCP, module="ipv6", what="IPv6"),
        _socket_check("socket.packet", "AF_PACKET SOCK_RAW", af.AF_PACKET, af.SOCK_RAW,
                      socket.htons(0x0003), module="af_packet", what="packet sockets"),
    ]
    nl_protos = [
        ("route", wire.NETLINK_ROUTE, None),
        ("sock_diag", wire.NETLINK_SOCK_DIAG, "sock_diag"),
        ("generic", wire.NETLINK_GENERIC, None),
        ("netfilter", wire.NETLINK_NETFILTER, "nfnetlink"),
        ("audit", wire.NETLINK_AUDIT, None),
        ("kobject_uevent", wire.NETLINK_KOBJECT_UEVENT, None),
    ]
    for name, proto, mod in nl_protos:
        out.append(_socket_check(f"socket.netlink.{name}", f"AF_NETLINK {name.upper()}",
                                 af.AF_NETLINK, af.SOCK_RAW, proto, (0, 0), module=mod,
                                 what=f"NETLINK_{name.upper()}"))
    for tname, stype in vsock.SOCK_TYPES.items():
        c = _socket_check(f"socket.vsock.{tname}", f"AF_VSOCK {tname.upper()}",
                          vsock.AF_VSOCK, stype, module="vsock", what="AF_VSOCK")
        if c.errno == "ENODEV":  # af_vsock.c: no transport offers this type
            c.detail = f"no loaded vsock transport offers {tname.upper()}"
            c.fix = ("DGRAM exists only on VMware's VMCI transport (vmw_vsock_vmci_transport); "
                     "use STREAM or SEQPACKET" if tname == "dgram" else
                     "load a transport: vmw_vsock_virtio_transport (guest), vhost_vsock "
                     "(host) or vsock_loopback")
        out.append(c)
    out.append(_socket_check("socket.unix", "AF_UNIX SOCK_STREAM", af.AF_UNIX, af.SOCK_STREAM))
    out.append(_socket_check("socket.bluetooth", "AF_BLUETOOTH HCI", 31, af.SOCK_RAW, 1,
                             module="bluetooth", what="Bluetooth"))
    return out


# --- capabilities ----------------------------------------------------------

def cap_sets(status_text: str | None = None) -> dict[str, int]:
    if status_text is None:
        with open("/proc/self/status") as fh:
            status_text = fh.read()
    sets = {}
    for line in status_text.splitlines():
        key, _, val = line.partition(":")
        if key in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
            sets[key] = int(val.strip(), 16)
    return sets


def _userns_probe() -> dict[str, object]:
    """Inside a fresh user+net namespace: what opens, which caps we hold."""
    res: dict[str, object] = {}
    for name, args in (("raw", (socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)),
                       ("packet", (socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3)))):
        res[name] = open_probe(*args) == 0
    res["eff"] = cap_sets()["CapEff"]
    return res


def capability_checks(probe: Callable[..., object] | None = None) -> list[Check]:
    from rawlab.lab.netns import CLONE_NEWNET, CLONE_NEWUSER, in_child

    sets = cap_sets()
    eff, bnd = sets.get("CapEff", 0), sets.get("CapBnd", 0)
    out = []
    for cap, bit in CAPS.items():
        have = bool(eff >> bit & 1)
        if have:
            out.append(Check(f"cap.{cap[4:].lower()}", "capabilities", cap, OK,
                             f"effective: {CAP_WHY[cap]}"))
            continue
        if bnd >> bit & 1:
            fix = (f"run as root, or `setpriv --inh-caps +{cap[4:].lower()} --ambient-caps "
                   f"+{cap[4:].lower()} ...` from root (privileges.md)")
        else:
            fix = f"{cap} is not in the bounding set: start from a process that has it"
        out.append(Check(f"cap.{cap[4:].lower()}", "capabilities", cap, NO_PRIVILEGE,
                         f"not effective: needed for {CAP_WHY[cap]}", fix))

    # would `unshare -rn` (user namespace + net namespace) give NET_RAW / NET_ADMIN?
    runner = probe or in_child
    for who, user in (("you", None), ("unprivileged users", UNPRIV)):
        if who != "you" and os.geteuid() != 0:
            continue  # as non-root, "you" is already the unprivileged answer
        cid = "userns.self" if user is None else "userns.unprivileged"
        try:
            res = runner(_userns_probe, flags=CLONE_NEWUSER | CLONE_NEWNET, user=user)
        except OSError as exc:
            out.append(Check(cid, "capabilities", f"`unshare -rn` for {who}", NO_PRIVILEGE,
                             f"user namespaces refused: {os.strerror(exc.errno or 0)}",
                             "allow them: sysctl user.max_user_namespaces=N (N > 0), "
                             "kernel.unprivileged_userns_clone=1 where it exists, "
                             "kernel.apparmor_restrict_unprivileged_userns=0 on Ubuntu",
                             errname(exc.errno or 0)))
            continue
        except RuntimeError as exc:
            out.append(Check(cid, "capabilities", f"`unshare -rn` for {who}", UNSUPPORTED,
                             str(exc)))
            continue
        assert isinstance(res, dict)
        caps = [c for c in ("CAP_NET_RAW", "CAP_NET_ADMIN") if res["eff"] >> CAPS[c] & 1]
        opens = [n for n in ("raw", "packet") if res[n]]
        out.append(Check(cid, "capabilities", f"`unshare -rn` for {who}", OK,
                         f"gives {', '.join(caps) or 'no capability'}; opens "
                         f"{', '.join(opens) or 'nothing'} -- but only inside the new "
                         "namespace, which holds nothing but its own loopback"))
    return out


# --- vsock -----------------------------------------------------------------

def vsock_checks() -> list[Check]:
    out = []
    cid: int | None = None
    try:
        cid = vsock.local_cid()
        role = {vsock.VMADDR_CID_HOST: "a host (no guest transport)",
                vsock.VMADDR_CID_ANY: "no transport bound"}.get(cid, "a guest")
        out.append(Check("vsock.cid", "vsock", "local CID", INFO, f"{cid} ({role})"))
    except FileNotFoundError:
        out.append(Check("vsock.cid", "vsock", "local CID", UNSUPPORTED,
                         "/dev/vsock does not exist: no vsock core loaded",
                         modprobe_fix("vsock", "AF_VSOCK")))
    except PermissionError as exc:
        out.append(Check("vsock.cid", "vsock", "local CID", NO_PRIVILEGE,
                         "cannot open /dev/vsock (IOCTL_VM_SOCKETS_GET_LOCAL_CID)",
                         "run as root, or make /dev/vsock readable (udev rule)",
                         errname(exc.errno or errno.EACCES)))
    except OSError as exc:
        out.append(Check("vsock.cid", "vsock", "local CID", UNSUPPORTED, str(exc),
                         None, errname(exc.errno or 0)))

    # guest transport: bind to our own CID succeeds only when it owns it
    g_loaded = [m for m in vsock.GUEST_TRANSPORTS if vsock.module_state(m).loaded]
    if cid is not None and cid > vsock.VMADDR_CID_HOST and cid != vsock.VMADDR_CID_ANY:
        err = vsock.try_bind(cid)
        status = OK if err == 0 else UNSUPPORTED
        detail = (f"bind to CID {cid} works" if err == 0 else f"bind to CID {cid}: "
                  f"{os.strerror(err)}") + (f" ({', '.join(g_loaded)})" if g_loaded else "")
        out.append(Check("vsock.transport.guest", "vsock", "guest transport (to host)", status,
                         detail, None if err == 0 else "modprobe vmw_vsock_virtio_transport",
                         None if err == 0 else errname(err)))
    else:
        detail = (f"loaded: {', '.join(g_loaded)}" if g_loaded else
                  "none: this machine is not a guest with a vsock device")
        out.append(Check("vsock.transport.guest", "vsock", "guest transport (to host)",
                         OK if g_loaded else INFO, detail))

    # host transport: /dev/vhost-vsock, and CID 2 bindable
    dev = "/dev/vhost-vsock"
    if os.path.exists(dev):
        err = vsock.try_bind(vsock.VMADDR_CID_HOST)
        access = os.access(dev, os.R_OK | os.W_OK)
        status = OK if access else NO_PRIVILEGE
        out.append(Check("vsock.transport.host", "vsock", "host transport (vhost_vsock)", status,
                         f"{dev} present{'' if access else ' but not accessible to you'}; "
                         f"bind to CID 2: {'ok' if err == 0 else os.strerror(err)}",
                         None if access else f"run as root or add yourself to {dev}'s group"))
    else:
        out.append(Check("vsock.transport.host", "vsock", "host transport (vhost_vsock)",
                         UNSUPPORTED, f"no {dev}: cannot start guests with vsock here",
                         modprobe_fix("vhost_vsock", "hosting vsock guests")))

    # loopback: bind to CID 1
    err = vsock.try_bind(vsock.VMADDR_CID_LOCAL)
    if err == 0:
        out.append(Check("vsock.transport.loopback", "vsock", "loopback transport (CID 1)", OK,
                         "bind to CID 1 works (vsock_loopback)"))
    else:
        out.append(Check("vsock.transport.loopback", "vsock", "loopback transport (CID 1)",
                         UNSUPPORTED, f"bind to CID 1: {os.strerror(err)}",
                         modprobe_fix("vsock_loopback", "vsock CID 1"), errname(err)))

    out.append(_vsock_diag_check())
    return out


def _vsock_diag_check() -> Check:
    from rawlab.sockets.diag import vsock_request

    req = vsock_request(0xFFFFFFFF)  # every state
    title = "vsock_diag (sock_diag for vsock)"
    try:
        with nl.NetlinkSocket(wire.NETLINK_SOCK_DIAG) as s:
            replies = s.request(nl.SOCK_DIAG_BY_FAMILY, wire.NLM_F_REQUEST | wire.NLM_F_DUMP, req)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return Check("vsock.diag", "vsock", title, UNSUPPORTED,
                         "the kernel has no sock_diag handler for AF_VSOCK",
                         modprobe_fix("vsock_diag", "listing vsock sockets"), "ENOENT")
        return Check("vsock.diag", "vsock", title, UNSUPPORTED, str(exc), None,
                     errname(exc.errno or 0))
    return Check("vsock.diag", "vsock", title, OK,
                 f"answers ({len(replies)} vsock sockets on this machine)")


# --- monitor devices ---------------------------------------------------------

def _link_probe(kind: str) -> bool:
    with nl.NetlinkSocket(wire.NETLINK_ROUTE) as s:
        nl.link_add(s, f"rlprobe{kind[:4]}", kind)
        nl.link_del(s, f"rlprobe{kind[:4]}")
    return True


def monitor_checks(probe: Callable[..., object] | None = None) -> list[Check]:
    from rawlab.lab.netns import CLONE_NEWNET, CLONE_NEWUSER, in_child

    runner = probe or in_child
    out = []
    # root: a plain new netns; otherwise try a user namespace (as `unshare -rn`)
    flags = CLONE_NEWNET if os.geteuid() == 0 else CLONE_NEWUSER | CLONE_NEWNET
    for kind, module, what in (("nlmon", "nlmon", "netlink capture"),
                               ("vsockmon", "vsockmon", "vsock capture")):
        title = f"{kind} link (for {what})"
        try:
            runner(lambda k=kind: _link_probe(k), flags=flags)
        except OSError as exc:
            err = exc.errno or 0
            if err in (errno.EPERM, errno.EACCES):
                out.append(Check(f"monitor.{kind}", "monitor", title, NO_PRIVILEGE,
                                 f"cannot create one: {exc.strerror}",
                                 "needs CAP_NET_ADMIN (and CAP_SYS_ADMIN for a namespace): "
                                 "run as root", errname(err)))
            else:
                out.append(Check(f"monitor.{kind}", "monitor", title, UNSUPPORTED,
                                 f"the kernel cannot create one: {exc.strerror}",
                                 modprobe_fix(module, what), errname(err)))
            continue
        except RuntimeError as exc:
            out.append(Check(f"monitor.{kind}", "monitor", title, UNSUPPORTED, str(exc)))
            continue
        out.append(Check(f"monitor.{kind}", "monitor", title, OK,
                         "created and removed one in a throwaway namespace"))
    return out


# --- system ------------------------------------------------------------------

def _tool_version(argv: list[str]) -> str | None:
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = (p.stdout or p.stderr).strip().splitlines()
    return lines[0] if lines else None


def system_checks() -> list[Check]:
    out = [Check("system.kernel", "system", "kernel", INFO,
                 f"{platform.system()} {platform.release()} {platform.machine()}")]
    netns_err = 0
    if os.geteuid() == 0:
        from rawlab.lab.netns import CLONE_NEWNET, in_child

        try:
            in_child(lambda: True, flags=CLONE_NEWNET)
        except OSError as exc:
            netns_err = exc.errno or errno.EIO
    else:
        netns_err = errno.EPERM
    out.append(Check("system.netns", "system", "network namespaces", OK if not netns_err else
                     NO_PRIVILEGE if netns_err == errno.EPERM else UNSUPPORTED,
                     "can create them" if not netns_err else os.strerror(netns_err),
                     None if not netns_err else "needs CAP_SYS_ADMIN: run as root",
                     None if not netns_err else errname(netns_err)))
    lib = ctypes.util.find_library("pcap")
    out.append(Check("system.libpcap", "system", "libpcap (filter compiler)",
                     OK if lib else MISSING, lib or "not found: -f FILTER will not work",
                     None if lib else "apt-get install libpcap0.8"))
    for tool, pkg, why in (("tshark", "tshark", "cross-checks"),
                           ("tcpdump", "tcpdump", "benchmarks"),
                           ("nft", "nftables", "the raw handshake and loss tests"),
                           ("ethtool", "ethtool", "turning offloads off"),
                           ("qemu-system-x86_64", "qemu-system-x86", "`rawlab lab vm`")):
        path = shutil.which(tool)
        ver = _tool_version([path, "--version"]) if path and tool == "tshark" else None
        out.append(Check(f"system.{tool.split('-')[0]}", "system", f"{tool} ({why})",
                         OK if path else MISSING, (ver or path) if path else "not found",
                         None if path else f"apt-get install {pkg}"))
    try:
        from rawlab.lab.guest import find_kernel

        k = find_kernel()
        out.append(Check("system.guest_kernel", "system", "kernel for `rawlab lab vm`", OK,
                         f"{k.path} ({k.release})"))
    except Exception as exc:  # RawlabError with a fix, or the launcher is absent
        out.append(Check("system.guest_kernel", "system", "kernel for `rawlab lab vm`", MISSING,
                         str(exc), "apt-get install linux-image-amd64 (or ./setup.sh --test)"))
    return out


GROUPS: dict[str, Callable[[], list[Check]]] = {
    "sockets": socket_checks,
    "capabilities": capability_checks,
    "vsock": vsock_checks,
    "monitor": monitor_checks,
    "system": system_checks,
}


def run_checks(groups: list[str] | None = None) -> list[Check]:
    out: list[Check] = []
    for name, fn in GROUPS.items():
        if groups is None or name in groups:
            out.extend(fn())
    return out


def report(checks: list[Check]) -> dict[str, object]:
    """The stable JSON document (docs/json.md, "doctor")."""
    bad = [c for c in checks if not c.ok]
    return {
        "schema": SCHEMA,
        "rawlab": __version__,
        "kernel": platform.release(),
        "euid": os.geteuid(),
        "checks": [c.to_json() for c in checks],
        "summary": {"checks": len(checks), "ok": len(checks) - len(bad), "not_ok": len(bad)},
    }
