"""Node device commands: ``nodedev-list``, ``nodedev-dumpxml`` (host PCI and net devices) and
``nodedev-detach``, ``nodedev-reattach``, ``nodedev-reset`` (PCI devices and vfio-pci)."""

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


def _driver_option(driver: str | None) -> None:
    if driver not in (None, "vfio"):
        from pyvirt.errors import InvalidConfigError

        raise InvalidConfigError(
            f"unknown device driver '{driver}'", hint="pyvirt assigns PCI devices with vfio"
        )


@click.command(name="nodedev-detach")
@click.argument("device", metavar="DEVICE")
@click.option("--driver", metavar="vfio", help="the assignment driver (only vfio)")
@click.pass_context
def nodedev_detach(ctx: click.Context, device: str, driver: str | None) -> None:
    """Detach a PCI device from its host driver (bind it to vfio-pci)."""
    _driver_option(driver)
    api(ctx).nodedevs.get(device).detach()
    click.echo(f"Device {device} detached\n")


@click.command(name="nodedev-reattach")
@click.argument("device", metavar="DEVICE")
@click.pass_context
def nodedev_reattach(ctx: click.Context, device: str) -> None:
    """Give a detached PCI device back to its host driver."""
    api(ctx).nodedevs.get(device).reattach()
    click.echo(f"Device {device} re-attached\n")


@click.command(name="nodedev-reset")
@click.argument("device", metavar="DEVICE")
@click.pass_context
def nodedev_reset(ctx: click.Context, device: str) -> None:
    """Reset a detached PCI device."""
    api(ctx).nodedevs.get(device).reset()
    click.echo(f"Device {device} reset\n")
