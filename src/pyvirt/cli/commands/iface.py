"""Domain NIC commands: attach-interface, detach-interface, domiflist, domifaddr, domifstat,
domif-setlink (virsh's names and options)."""

from __future__ import annotations

import click

from pyvirt.cli.main import api
from pyvirt.cli.render import table

DOMAIN = click.argument("domain", metavar="DOMAIN")


@click.command("attach-interface")
@DOMAIN
@click.argument("type_", metavar="TYPE")
@click.argument("source", metavar="SOURCE")
@click.option("--model", default=None, help="NIC model: virtio, e1000, e1000e, rtl8139")
@click.option("--mac", default=None, help="MAC address (generated in 52:54:00 when left out)")
@click.option("--target", default=None, help="host tap device name")
@click.option("--live", is_flag=True, help="hotplug into the running domain")
@click.option("--config", is_flag=True, help="add to the persistent definition")
@click.option("--persistent", is_flag=True, help="both --live and --config")
@click.option("--current", is_flag=True, help="live if running, else the definition")
@click.pass_context
def attach_interface(
    ctx: click.Context,
    domain: str,
    type_: str,
    source: str,
    model: str | None,
    mac: str | None,
    target: str | None,
    live: bool,
    config: bool,
    persistent: bool,
    current: bool,
) -> None:
    """Attach a network interface to a domain."""
    api(ctx).domains.get(domain).attach_interface(
        type_, source, model=model, mac=mac, target=target, live=live, config=config,
        current=current, persistent=persistent,
    )  # fmt: skip
    click.echo("Interface attached successfully\n")


@click.command("detach-interface")
@DOMAIN
@click.argument("type_", metavar="TYPE")
@click.option("--mac", default=None, help="MAC of the interface (needed when several match)")
@click.option("--live", is_flag=True, help="unplug from the running domain")
@click.option("--config", is_flag=True, help="remove from the persistent definition")
@click.option("--persistent", is_flag=True, help="both --live and --config")
@click.option("--current", is_flag=True, help="live if running, else the definition")
@click.pass_context
def detach_interface(
    ctx: click.Context,
    domain: str,
    type_: str,
    mac: str | None,
    live: bool,
    config: bool,
    persistent: bool,
    current: bool,
) -> None:
    """Detach a network interface from a domain."""
    api(ctx).domains.get(domain).detach_interface(
        type_, mac=mac, live=live, config=config, current=current, persistent=persistent
    )
    click.echo("Interface detached successfully\n")


@click.command()
@DOMAIN
@click.option("--inactive", is_flag=True, help="the persistent definition")
@click.pass_context
def domiflist(ctx: click.Context, domain: str, inactive: bool) -> None:
    """List a domain's network interfaces."""
    nics = api(ctx).domains.get(domain).iflist(inactive=inactive)
    table(
        ["Interface", "Type", "Source", "Model", "MAC"],
        [[n.target, n.type, n.source, n.model, n.mac] for n in nics],
    )


@click.command()
@DOMAIN
@click.argument("interface", metavar="INTERFACE", required=False)
@click.option("--interface", "iface_opt", default=None, help="only this interface")
@click.option("--source", default="lease", type=click.Choice(["lease", "arp", "agent"]))
@click.option("--full", is_flag=True, help="repeat the name and MAC on every line")
@click.pass_context
def domifaddr(
    ctx: click.Context,
    domain: str,
    interface: str | None,
    iface_opt: str | None,
    source: str,
    full: bool,
) -> None:
    """Addresses of a domain's interfaces (from DHCP leases or the ARP table)."""
    dom = api(ctx).domains.get(domain)
    rows = dom.ifaddr(source=source, interface=iface_opt or interface)
    table(
        ["Name", "MAC address", "Protocol", "Address"],
        [[r.target, r.mac, r.protocol, r.address] for r in rows],
    )


@click.command()
@DOMAIN
@click.argument("interface", metavar="INTERFACE")
@click.pass_context
def domifstat(ctx: click.Context, domain: str, interface: str) -> None:
    """Traffic counters of a domain's interface."""
    s = api(ctx).domains.get(domain).ifstat(interface)
    for key in ("rx_bytes", "rx_packets", "rx_errs", "rx_drop"):
        click.echo(f"{s.target} {key} {getattr(s, key)}")
    for key in ("tx_bytes", "tx_packets", "tx_errs", "tx_drop"):
        click.echo(f"{s.target} {key} {getattr(s, key)}")
    click.echo()


@click.command("domif-setlink")
@DOMAIN
@click.argument("interface", metavar="INTERFACE")
@click.argument("state", metavar="STATE", type=click.Choice(["up", "down"]))
@click.option("--config", is_flag=True, help="change the persistent definition (only)")
@click.pass_context
def domif_setlink(
    ctx: click.Context, domain: str, interface: str, state: str, config: bool
) -> None:
    """Set the link state of a domain's interface."""
    api(ctx).domains.get(domain).set_link(interface, state, config=config)
    click.echo("Device updated successfully\n")
