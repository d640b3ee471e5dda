"""`rawlab lab`: the lab's throwaway namespaces and virtme-ng guests."""

from __future__ import annotations

import sys

import click

from rawlab.cli.options import Seconds


@click.group()
def lab() -> None:
    """Throwaway network namespaces and VMs for experiments and tests."""


@lab.command("vm", context_settings={"ignore_unknown_options": True})
@click.option("--kernel", "kernel", type=click.Path(dir_okay=False),
              help="Kernel image to boot (default: the running one if it has modules, "
                   "else the newest installed Debian kernel).")
@click.option("--memory", default="1G", show_default=True, help="Guest memory.")
@click.option("--cpus", default=2, show_default=True, help="Guest CPUs.")
@click.option("-m", "--module", "modules", multiple=True,
              help="modprobe this module in the guest first (repeatable), "
                   "e.g. -m vsock_loopback -m nlmon.")
@click.option("--rwdir", "rwdirs", multiple=True, type=click.Path(file_okay=False),
              help="Host directory the guest may write to (repeatable); other writes "
                   "stay in the guest.")
@click.option("--timeout", default=900.0, show_default=True, help="Seconds before the guest "
              "is killed.")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def vm_cmd(kernel: str | None, memory: str, cpus: int, modules: tuple[str, ...],
           rwdirs: tuple[str, ...], timeout: float, command: tuple[str, ...]) -> None:
    """Boot a virtme-ng guest that sees this filesystem, run COMMAND in it, power off.

    Example: rawlab lab vm -m vsock_loopback -- rawlab doctor

    Uses KVM when it really runs a guest here, software emulation otherwise, and
    says which. Exits with COMMAND's exit status.
    """
    import shlex
    from pathlib import Path

    from rawlab.lab import qemu, vm
    from rawlab.lab.guest import find_kernel

    k = find_kernel(kernel)
    ok, why = qemu.kvm_usable()
    click.echo(f"rawlab: booting {k.path} ({k.release}) with "
               f"{'KVM' if ok else 'software emulation'}: {why}", err=True)
    res = vm.run(shlex.join(command), kernel=k, memory=memory, cpus=cpus,
                 rwdirs=[Path(d) for d in rwdirs], modules=modules, timeout=timeout,
                 echo=click.echo)
    click.echo(f"rawlab: guest exited {res.returncode} after {res.seconds:.1f} s "
               f"({res.accel})", err=True)
    sys.exit(res.returncode)


@lab.command("cleanup")
def cleanup() -> None:
    """Remove what killed rawlab runs left behind: network namespaces, and the
    nftables tables of `rawlab raw handshake` (here and in every namespace)."""
    import shutil

    from rawlab.lab.netns import cleanup_stale, list_namespaces

    gone = cleanup_stale()
    click.echo(f"removed {len(gone)} stale namespace(s)" + (": " + " ".join(gone) if gone else ""))
    if shutil.which("nft"):
        from rawlab.raw import nft

        tables = nft.cleanup_stale()
        for ns in list_namespaces():
            tables += [f"{t} (netns {ns})" for t in nft.cleanup_stale(ns)]
        click.echo(f"removed {len(tables)} stale nftables table(s)"
                   + (": " + ", ".join(tables) if tables else ""))


@lab.command("vsock-pair", context_settings={"ignore_unknown_options": True})
@click.option("--cid", default=3, show_default=True, type=click.IntRange(3, 0xFFFF_FFFE),
              help="The guest's CID (unique on this host).")
@click.option("--kernel", "kernel", type=click.Path(dir_okay=False),
              help="Kernel image to boot (default: the running one if it has modules, "
                   "else the newest installed Debian kernel).")
@click.option("--memory", default="512M", show_default=True, help="Guest memory.")
@click.option("--cpus", default=1, show_default=True, help="Guest CPUs.")
@click.option("--timeout", default=None, type=Seconds(),
              help="Seconds before the guest is killed (default: no limit).")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def vsock_pair(cid: int, kernel: str | None, memory: str, cpus: int, timeout: float | None,
               command: tuple[str, ...]) -> None:
    """Boot a guest with a vhost-vsock device (CID --cid) and run COMMAND in it.

    Needs /dev/vhost-vsock (modprobe vhost_vsock). The guest is a small qemu
    guest (busybox initramfs) that sees this machine's / read-only and runs
    COMMAND (default: `rawlab vsock listen 5000 --echo`) with this rawlab; from
    inside it this machine is CID 2. Reach it from here with
    `rawlab vsock connect CID:PORT`. Uses KVM when it really runs a guest here,
    software emulation otherwise (RAWLAB_VM_ACCEL=kvm|tcg decides instead).
    The guest's / is read-only, /tmp a tmpfs. Exits with COMMAND's exit status.

    Example: rawlab lab vsock-pair --cid 7 -- rawlab vsock connect 2:5000 --send hi
    """
    import shlex
    import signal

    from rawlab.errors import Exit, RawlabError
    from rawlab.lab import nested
    from rawlab.lab.guest import find_kernel

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # so that the guest is stopped below (exit 130)

    signal.signal(signal.SIGTERM, on_term)

    problem = nested.vhost_vsock_problem()
    if problem is not None:
        raise RawlabError(problem, Exit.UNSUPPORTED)
    k = find_kernel(kernel)
    accel, why = nested.choose_accel(k)
    cmd = shlex.join(command) if command else "rawlab vsock listen 5000 --echo"
    guest = nested.start_guest(cid, cmd, kernel=k, memory=memory, cpus=cpus, accel=accel,
                               echo=click.echo)
    click.echo(f"rawlab: guest CID {cid} booting {k.path} with "
               f"{'KVM' if accel == 'kvm' else 'software emulation'} ({why}); it runs: {cmd}",
               err=True)
    if not command:
        click.echo(f"rawlab: when it listens, from here: rawlab vsock connect {cid}:5000 "
                   "--send hello", err=True)
    else:
        click.echo(f"rawlab: from here reach its listeners with rawlab vsock connect "
                   f"{cid}:PORT; inside it this machine is CID 2 (rawlab vsock connect 2:PORT)",
                   err=True)
    try:
        rc = guest.wait(timeout)
    finally:
        guest.stop()
    click.echo(f"rawlab: guest CID {cid} exited {rc} after {guest.seconds or 0:.1f} s "
               f"({guest.accel})", err=True)
    sys.exit(rc)
