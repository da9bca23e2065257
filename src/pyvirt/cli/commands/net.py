"""Network commands (``net-*``): virsh's names, options and messages."""

from __future__ import annotations

import datetime
import os
from typing import TYPE_CHECKING

import click

from pyvirt.cli.main import api
from pyvirt.cli.render import as_json, fields, read_input, table, warn

if TYPE_CHECKING:
    from pyvirt.api.networks import Network, NetworkCollection

NETWORK = click.argument("network", metavar="NETWORK")


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _networks(ctx: click.Context) -> NetworkCollection:
    return api(ctx).networks


def _net(ctx: click.Context, network: str) -> Network:
    return api(ctx).networks.get(network)


@click.command("net-define")
@click.argument("file", metavar="FILE")
@click.pass_context
def net_define(ctx: click.Context, file: str) -> None:
    """Define (but don't start) a network from an XML file."""
    net, warnings = _networks(ctx).define(read_input(file))
    warn(warnings)
    click.echo(f"Network {net.name} defined from {file}\n")


@click.command("net-create")
@click.argument("file", metavar="FILE")
@click.pass_context
def net_create(ctx: click.Context, file: str) -> None:
    """Create and start a transient network from an XML file."""
    net = _networks(ctx).create(read_input(file))
    click.echo(f"Network {net.name} created from {file}\n")


@click.command("net-start")
@NETWORK
@click.pass_context
def net_start(ctx: click.Context, network: str) -> None:
    """Start a defined network."""
    net = _net(ctx, network)
    net.start()
    click.echo(f"Network {net.name} started\n")


@click.command("net-destroy")
@NETWORK
@click.pass_context
def net_destroy(ctx: click.Context, network: str) -> None:
    """Stop a network and remove its bridge, dnsmasq and firewall rules."""
    net = _net(ctx, network)
    net.destroy()
    click.echo(f"Network {net.name} destroyed\n")


@click.command("net-undefine")
@NETWORK
@click.pass_context
def net_undefine(ctx: click.Context, network: str) -> None:
    """Remove a network's persistent definition."""
    net = _net(ctx, network)
    net.undefine()
    click.echo(f"Network {net.name} has been undefined\n")


@click.command("net-list")
@click.option("--all", "all_", is_flag=True, help="active and inactive networks")
@click.option("--inactive", is_flag=True, help="inactive networks only")
@click.option("--name", "names", is_flag=True, help="names only")
@click.option("--uuid", "uuids", is_flag=True, help="UUIDs only")
@click.option("--json", "as_json_", is_flag=True, help="JSON output")
@click.pass_context
def net_list(
    ctx: click.Context, all_: bool, inactive: bool, names: bool, uuids: bool, as_json_: bool
) -> None:
    """List networks (active ones by default)."""
    active: bool | None = None if all_ else not inactive
    infos = _networks(ctx).list(active=active)
    if as_json_:
        as_json([i.to_json() for i in infos])
        return
    if names or uuids:
        for i in infos:
            click.echo(i.name if names else i.uuid)
        click.echo()
        return
    rows = [
        [
            i.name,
            "active" if i.active else "inactive",
            _yes(i.autostart),
            _yes(i.persistent),
        ]
        for i in infos
    ]
    table(["Name", "State", "Autostart", "Persistent"], rows)


@click.command("net-info")
@NETWORK
@click.pass_context
def net_info(ctx: click.Context, network: str) -> None:
    """Basic information about a network."""
    i = _net(ctx, network).info()
    fields(
        [
            ("Name", i.name),
            ("UUID", i.uuid),
            ("Active", _yes(i.active)),
            ("Persistent", _yes(i.persistent)),
            ("Autostart", _yes(i.autostart)),
            ("Bridge", i.bridge or ""),
            ("Forward", i.forward_mode),
        ]
    )


@click.command("net-dumpxml")
@NETWORK
@click.option("--inactive", is_flag=True, help="the persistent definition, not the live one")
@click.pass_context
def net_dumpxml(ctx: click.Context, network: str, inactive: bool) -> None:
    """Print a network's XML."""
    click.echo(_net(ctx, network).xml_desc(inactive=inactive), nl=False)


@click.command("net-edit")
@NETWORK
@click.pass_context
def net_edit(ctx: click.Context, network: str) -> None:
    """Edit a network's persistent XML in $EDITOR."""
    from pyvirt.cli.editing import edit_loop

    networks = _networks(ctx)
    net = networks.get(network)

    def apply(text: str) -> tuple[str, list[str]]:
        new, warnings = networks.define(text)
        return new.name, warnings

    edit_loop("Network", net.name, net.xml_desc(inactive=True), apply)


@click.command("net-autostart")
@NETWORK
@click.option("--disable", is_flag=True, help="turn autostart off")
@click.pass_context
def net_autostart(ctx: click.Context, network: str, disable: bool) -> None:
    """Start the network on first use by a domain."""
    net = _net(ctx, network)
    net.set_autostart(not disable)
    word = "unmarked" if disable else "marked"
    click.echo(f"Network {net.name} {word} as autostarted\n")


@click.command("net-uuid")
@NETWORK
@click.pass_context
def net_uuid(ctx: click.Context, network: str) -> None:
    """The UUID of a network."""
    click.echo(_net(ctx, network).uuid + "\n")


@click.command("net-name")
@click.argument("uuid", metavar="UUID")
@click.pass_context
def net_name(ctx: click.Context, uuid: str) -> None:
    """The name of a network given its UUID."""
    click.echo(_net(ctx, uuid).name + "\n")


@click.command("net-dhcp-leases")
@NETWORK
@click.option("--mac", default=None, help="only the lease of this MAC")
@click.option("--json", "as_json_", is_flag=True, help="JSON output")
@click.pass_context
def net_dhcp_leases(ctx: click.Context, network: str, mac: str | None, as_json_: bool) -> None:
    """DHCP leases of a network."""
    leases = _net(ctx, network).dhcp_leases(mac=mac)
    if as_json_:
        as_json([lease.to_json() for lease in leases])
        return
    rows = []
    for lease in leases:
        when = datetime.datetime.fromtimestamp(lease.expiry).strftime("%Y-%m-%d %H:%M:%S")
        rows.append(
            [
                when,
                lease.mac,
                "ipv4",
                f"{lease.ip}/{lease.prefix}",
                lease.hostname,
                lease.client_id,
            ]
        )
    table(["Expiry Time", "MAC address", "Protocol", "IP address", "Hostname", "Client ID"], rows)


@click.command("net-update")
@NETWORK
@click.argument("command", metavar="COMMAND")
@click.argument("section", metavar="SECTION")
@click.argument("xml", metavar="XML")
@click.option("--live", is_flag=True, help="change the running network")
@click.option("--config", is_flag=True, help="change the persistent definition")
@click.option("--current", is_flag=True, help="the live network if active, else the definition")
@click.option("--parent-index", type=int, default=None, hidden=True)
@click.pass_context
def net_update(
    ctx: click.Context,
    network: str,
    command: str,
    section: str,
    xml: str,
    live: bool,
    config: bool,
    current: bool,
    parent_index: int | None,
) -> None:
    """Update a part of a network (``add|delete|modify ip-dhcp-host XML``)."""
    if not xml.lstrip().startswith("<") and os.path.exists(xml):
        xml = read_input(xml).decode()
    net = _net(ctx, network)
    net.update(command, section, xml, live=live, config=config)
    word = "live state" if live else "configuration"
    click.echo(f"Updated network {net.name} {word}\n")
