"""Connection commands: ``uri``; :func:`describe` says what a connection URI reaches (``connect``
outside the shell prints it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from pyvirt.client.uri import resolve

if TYPE_CHECKING:
    from pyvirt.client.uri import Target


@click.command()
@click.pass_context
def uri(ctx: click.Context) -> None:
    """Print the URI of the connection in use (pyvirt:///system: the local daemon)."""
    obj = ctx.find_root().obj
    click.echo(resolve(obj.get("uri") if obj else None).uri + "\n")


def describe(target: Target) -> str:
    """One line: the URI and what it reaches (``connect URI`` outside the shell)."""
    if target.kind == "embed":
        where = str(target.path) if target.path else "the default state directory"
        what = f"in-process, no daemon (state directory: {where})"
    elif target.kind == "unix":
        what = f"pyvirtd on the unix socket {target.path}"
    elif target.kind == "tls":
        what = f"pyvirtd at {target.host}:{target.port} over TLS"
    else:
        user = f"{target.user}@" if target.user else ""
        port = f":{target.port}" if target.port else ""
        sock = f", socket {target.path}" if target.path else ""
        what = f"pyvirtd at {user}{target.host}{port} over ssh{sock}"
    return f"Connected to {target.uri or 'pyvirt:///embed'}: {what}"
