"""API token commands: ``token-create``, ``token-list``, ``token-delete``.

Tokens authenticate clients of pyvirtd's TLS listener. When the connection goes to a daemon
(``pyvirt:///system``, or no ``-c`` while the local daemon runs) the commands ask it, over
its unix socket: only local callers may manage tokens. Without a daemon they edit the token
file of the state directory directly (``CONFIG/daemon/tokens.json``; a daemon started later,
or running on another socket, picks the change up at its next request), so tokens can be
provisioned before pyvirtd first starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import click

from pyvirt.cli.render import as_json, table

if TYPE_CHECKING:
    from pyvirt.client.transport import Client


def _open(ctx: click.Context) -> tuple[Client | None, Path | None]:
    """A client of the connection's daemon, or (embedded) None and the state root."""
    from pyvirt.client.transport import Client
    from pyvirt.client.uri import resolve

    obj = ctx.find_root().obj or {}
    target = resolve(obj.get("uri"))
    if target.remote:
        return Client.for_target(target), None
    return None, target.path


@click.command(name="token-create")
@click.argument("name")
@click.pass_context
def token_create(ctx: click.Context, name: str) -> None:
    """Create an API token for pyvirtd's TLS clients; prints it once (only its hash is kept)."""
    client, root = _open(ctx)
    if client is None:
        from pyvirt.api.tokens import create_token

        _info, secret = create_token(name, root)
    else:
        try:
            secret = client.json("POST", "/api/v1/tokens", {"name": name})["token"]
        finally:
            client.close()
    click.echo(secret)
    click.echo(f"Token '{name}' created; it is shown only this once", err=True)


@click.command(name="token-list")
@click.option("--json", "json_", is_flag=True, help="machine-readable output")
@click.pass_context
def token_list(ctx: click.Context, json_: bool) -> None:
    """List the API tokens (names and creation times; never the tokens)."""
    client, root = _open(ctx)
    if client is None:
        from pyvirt.api.tokens import list_tokens

        rows = [t.to_json() for t in list_tokens(root)]
    else:
        try:
            rows = client.json("GET", "/api/v1/tokens")
        finally:
            client.close()
    if json_:
        as_json(rows)
        return
    table(("Name", "Created"), [(r["name"], r["created"]) for r in rows])


@click.command(name="token-delete")
@click.argument("name")
@click.pass_context
def token_delete(ctx: click.Context, name: str) -> None:
    """Delete (revoke) an API token."""
    client, root = _open(ctx)
    if client is None:
        from pyvirt.api.tokens import delete_token

        delete_token(name, root)
    else:
        try:
            client.request("DELETE", f"/api/v1/tokens/{quote(name, safe='')}")
        finally:
            client.close()
    click.echo(f"Token '{name}' deleted")
