"""Web console user commands: ``user-add``, ``user-list``, ``user-delete``.

Users log in to pyvirtd's web console. As with the API tokens, the commands ask the daemon
over its unix socket when the connection goes to one, and otherwise edit the user file of the
state directory directly (``CONFIG/daemon/users.json``), so users can be created before
pyvirtd first starts. The password is read from standard input (its first line), never from
the command line.
"""

from __future__ import annotations

import sys
from urllib.parse import quote

import click

from pyvirt.cli.commands.token import _open
from pyvirt.cli.render import as_json, table


def _password() -> str:
    if sys.stdin.isatty():
        import getpass

        return getpass.getpass("Password: ")
    return sys.stdin.readline().rstrip("\r\n")


@click.command(name="user-add")
@click.argument("name")
@click.pass_context
def user_add(ctx: click.Context, name: str) -> None:
    """Add a web console user; the password is read from standard input (stored hashed)."""
    password = _password()
    client, root = _open(ctx)
    if client is None:
        from pyvirt.api.users import add_user

        add_user(name, password, root)
    else:
        try:
            client.json("POST", "/api/v1/users", {"name": name, "password": password})
        finally:
            client.close()
    click.echo(f"User '{name}' added")


@click.command(name="user-list")
@click.option("--json", "json_", is_flag=True, help="machine-readable output")
@click.pass_context
def user_list(ctx: click.Context, json_: bool) -> None:
    """List the web console users."""
    client, root = _open(ctx)
    if client is None:
        from pyvirt.api.users import list_users

        rows = [u.to_json() for u in list_users(root)]
    else:
        try:
            rows = client.json("GET", "/api/v1/users")
        finally:
            client.close()
    if json_:
        as_json(rows)
        return
    table(("Name", "Created"), [(r["name"], r["created"]) for r in rows])


@click.command(name="user-delete")
@click.argument("name")
@click.pass_context
def user_delete(ctx: click.Context, name: str) -> None:
    """Delete a web console user (its sessions end)."""
    client, root = _open(ctx)
    if client is None:
        from pyvirt.api.users import delete_user

        delete_user(name, root)
    else:
        try:
            client.request("DELETE", f"/api/v1/users/{quote(name, safe='')}")
        finally:
            client.close()
    click.echo(f"User '{name}' deleted")
