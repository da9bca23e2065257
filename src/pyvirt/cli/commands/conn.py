"""Connection commands: ``uri``."""

from __future__ import annotations

import click

from pyvirt.client.uri import resolve


@click.command()
@click.pass_context
def uri(ctx: click.Context) -> None:
    """Print the URI of the connection in use (pyvirt:///system: the local daemon)."""
    obj = ctx.find_root().obj
    click.echo(resolve(obj.get("uri") if obj else None).uri + "\n")
