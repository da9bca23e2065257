"""``pyvirt install``: virt-install's options, same spelling (``--ram``, ``--cdrom=/x``...)."""

from __future__ import annotations

import sys

import click

from pyvirt.cli.main import api
from pyvirt.errors import InvalidConfigError


def _many(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> list[str]:
    return list(value)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--connect", "uri", metavar="URI", help="hypervisor connection URI")
@click.option("-n", "--name", help="name of the new guest")
@click.option("--memory", "--ram", "-r", "memory", metavar="MiB", help="memory in MiB")
@click.option("--vcpus", metavar="N[,maxvcpus=,sockets=,cores=,threads=]", help="vCPUs")
@click.option("--cpu", metavar="MODE|MODEL[,+feat]", help="CPU model (host-passthrough...)")
@click.option("--virt-type", metavar="kvm|qemu", help="hypervisor: kvm or qemu (TCG)")
@click.option("--arch", help="guest architecture (x86_64)")
@click.option("--machine", help="machine type (pc, q35)")
@click.option("--cdrom", "-c", "cdrom", metavar="ISO", help="install from this ISO (CD-ROM boot)")
@click.option("--location", "-l", metavar="DIR|ISO", help="install tree or ISO (kernel boot)")
@click.option("--extra-args", "-x", metavar="ARGS", help="kernel command line (--location)")
@click.option("--import", "import_", is_flag=True, help="boot an existing disk image")
@click.option("--pxe", is_flag=True, help="boot from the network (PXE)")
@click.option("--boot", metavar="hd,cdrom|uefi|kernel=,initrd=,kernel_args=", help="boot setup")
@click.option("--disk", multiple=True, metavar="OPTS", help="path=,size=,format=,bus=,... or none")
@click.option("--network", "-w", multiple=True, metavar="OPTS", help="network=|bridge=|type=user")
@click.option("--graphics", metavar="vnc[,listen=,port=,keymap=,password=]|none")
@click.option("--console", multiple=True, metavar="pty[,target_type=]", help="extra console")
@click.option("--noautoconsole", is_flag=True, help="do not attach to the console")
@click.option("--autoconsole", type=click.Choice(["text", "none", "graphical"]))
@click.option("--os-type", hidden=True, help="deprecated: ignored (use --os-variant)")
@click.option("--os-variant", "--osinfo", "os_variant", metavar="NAME|detect=on")
@click.option("--uuid", "-u", help="UUID of the new guest")
@click.option("--mac", "-m", multiple=True, help="MAC address of the (n-th) NIC")
@click.option("--check", "check", metavar="path_in_use=off,...", help="turn checks off")
@click.option("--dry-run", is_flag=True, help="check everything, change nothing")
@click.option("--print-xml", is_flag=True, help="print the definition, change nothing")
@click.option("--wait", type=float, is_flag=False, flag_value=-1.0, default=None,
              metavar="MINUTES", help="wait for the install to finish (-1: forever)")  # fmt: skip
@click.option("--transient", is_flag=True, help="do not define the guest")
@click.option("--autostart", is_flag=True, help="start the guest when the host boots")
@click.option("--cloud-init", is_flag=False, flag_value="", default=None,
              metavar="root-password-generate=on,ssh-key=FILE,...")  # fmt: skip
@click.option("--sysinfo", metavar="system.manufacturer=,bios.vendor=,...")
@click.option("--memorybacking", metavar="hugepages=on,source.type=memfd,...")
@click.option("--numatune", metavar="NODESET[,mode=]")
@click.option("--cputune", metavar="vcpupin0.vcpu=0,vcpupin0.cpuset=1,...")
@click.option("--noreboot", is_flag=True, help="do not boot the final definition after --wait")
@click.option("--quiet", "-q", is_flag=True, help="print only errors")
@click.pass_context
def install(ctx: click.Context, /, **opts: object) -> None:
    """Create a new guest and start its installation (virt-install)."""
    from pyvirt.api.install import build_install_spec

    uri = opts.pop("uri")
    if uri:
        ctx.find_root().obj = {"uri": uri}
    spec = build_install_spec(opts)
    conn = api(ctx)
    job = conn.domains.prepare_install(spec)
    quiet = bool(opts["quiet"])
    for w in job.warnings:
        click.echo(f"warning: {w}", err=True)
    if opts["print_xml"]:
        click.echo(job.final_xml, nl=False)
        return
    if opts["dry_run"]:
        if not quiet:
            click.echo("Dry run completed successfully")
        return
    if not quiet:
        click.echo("\nStarting install...")
    result = job.run(transient=spec.transient, autostart=spec.autostart)
    if result.generated_password and not quiet:
        click.echo(f"Generated root password for the cloud-init seed: {result.generated_password}")
    autoconsole = opts["autoconsole"] or ("none" if opts["noautoconsole"] else None)
    if autoconsole is None:
        text = spec.graphics is None or spec.graphics.type == "none"
        autoconsole = "text" if text and sys.stdin.isatty() else "none"
    if autoconsole == "text":
        from pyvirt.cli.commands.domain import _console

        _console(conn.domains.get(job.name))
    wait = opts["wait"]
    if wait is not None and float(str(wait)) != 0:
        if not quiet:
            click.echo("Waiting for the installation to complete.")
        if not job.wait(float(str(wait)), boot_final=not opts["noreboot"]):
            raise InvalidConfigError(
                f"domain '{job.name}': installation still running after {wait} minutes",
                hint=f"check its console with 'console {job.name}'",
            )
        if not quiet:
            click.echo("Domain creation completed.\n")
        return
    if not quiet:
        click.echo(f"Domain '{job.name}' started.")
        if job.has_install_phase:
            click.echo("Domain installation still in progress. You can reconnect to the console")
            click.echo("to complete the installation process.")
