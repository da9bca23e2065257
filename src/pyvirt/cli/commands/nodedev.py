"""Node device commands: ``nodedev-list`` and ``nodedev-dumpxml`` (host PCI and net devices)."""

from __future__ import annotations

import click

from pyvirt.cli.main import api
from pyvirt.cli.render import as_json


@click.command(name="nodedev-list")
@click.option(
    "--cap",
    "caps",
    multiple=True,
    metavar="CAP",
    help="only devices with this capability: system, pci, net, sriov (PFs and VFs), "
    "virt_functions, phys_function; comma-separated or repeated",
)
@click.option("--tree", is_flag=True, help="show the device tree")
@click.option("--json", "json_", is_flag=True, help="machine-readable output")
@click.pass_context
def nodedev_list(ctx: click.Context, caps: tuple[str, ...], tree: bool, json_: bool) -> None:
    """List host devices found in sysfs."""
    nodedevs = api(ctx).nodedevs
    if tree:
        click.echo(nodedevs.tree())
        return
    devices = nodedevs.list(caps)
    if json_:
        as_json([d.to_json() for d in devices])
        return
    for d in devices:
        click.echo(d.name)
    click.echo()


@click.command(name="nodedev-dumpxml")
@click.argument("device", metavar="DEVICE")
@click.pass_context
def nodedev_dumpxml(ctx: click.Context, device: str) -> None:
    """Print a host device's XML (libvirt's node device format)."""
    click.echo(api(ctx).nodedevs.get(device).xml_desc().rstrip("\n"))
