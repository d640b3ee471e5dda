"""`rawlab doctor`: what this kernel and these privileges allow."""

from __future__ import annotations

import json
import sys

import click

GROUP_NAMES = ("sockets", "capabilities", "vsock", "monitor", "system")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON document (docs/json.md, doctor).")
@click.option("--only", "only", multiple=True, type=click.Choice(GROUP_NAMES),
              help="Run only these groups of checks (repeatable).")
def doctor(as_json: bool, only: tuple[str, ...]) -> None:
    """Show what this kernel and your privileges allow, with the fix for what is missing.

    Probes SOCK_RAW, AF_PACKET, AF_NETLINK (route, sock_diag, generic, netfilter,
    audit, uevent), AF_VSOCK (stream, seqpacket, dgram), AF_UNIX and AF_BLUETOOTH
    sockets; effective capabilities and what `unshare -rn` would give; the local
    vsock CID and transports (guest, host, loopback) and vsock_diag; whether
    nlmon and vsockmon links can be made (in a throwaway namespace); the kernel,
    libpcap, tshark and the lab's tools. It never connects anywhere.
    Exit status 0: the report itself is the result.
    """
    from rawlab import doctor as doc

    checks = doc.run_checks(list(only) or None)
    if as_json:
        json.dump(doc.report(checks), sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    from rawlab.present.doctor import render

    render(checks, sys.stdout)
