"""Host commands: version, capabilities, host-validate."""

from __future__ import annotations

import click

from pyvirt.cli.main import api
from pyvirt.cli.render import as_json


@click.command()
@click.option("--daemon", is_flag=True, hidden=True)
@click.pass_context
def version(ctx: click.Context, daemon: bool) -> None:
    """Show the versions of pyvirt and the hypervisor."""
    v = api(ctx).host.versions()
    click.echo(f"Compiled against library: pyvirt {v.pyvirt}")
    click.echo(f"Using library: pyvirt {v.pyvirt}")
    click.echo(f"Using API: QEMU {v.pyvirt}")
    if v.qemu:
        click.echo(f"Running hypervisor: QEMU {v.qemu}")
    click.echo()


@click.command()
@click.pass_context
def capabilities(ctx: click.Context) -> None:
    """Print the host's capabilities as XML."""
    click.echo(api(ctx).host.capabilities().rstrip("\n"))


@click.command(name="host-validate")
@click.option("--json", "json_", is_flag=True, help="machine-readable output")
@click.argument("hvtype", required=False, default="qemu", metavar="[qemu]")
@click.pass_context
def host_validate(ctx: click.Context, json_: bool, hvtype: str) -> None:
    """Check that this host can run virtual machines (like virt-host-validate)."""
    host = api(ctx).host
    checks = host.validate()
    if json_:
        as_json([c.to_json() for c in checks])
    else:
        click.echo(host.format_checks(checks))
    if any(str(c.status) == "FAIL" for c in checks):
        raise SystemExit(1)
