"""`rawlab lab`: the lab's throwaway namespaces and virtme-ng guests."""

from __future__ import annotations

import sys

import click


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

    from rawlab.lab import vm

    k = vm.find_kernel(kernel)
    ok, why = vm.kvm_usable()
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
