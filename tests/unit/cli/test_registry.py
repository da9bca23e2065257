"""Every command name the CLI advertises resolves to a real click command."""

from __future__ import annotations

import click
import pytest

from pyvirt.cli.main import COMMANDS, cli


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_command_resolves(name: str) -> None:
    ctx = click.Context(cli)
    command = cli.get_command(ctx, name)
    assert isinstance(command, click.Command), name
    assert command.name == name or name == "list"


def test_help_lists_every_command() -> None:
    ctx = click.Context(cli)
    assert set(cli.list_commands(ctx)) == set(COMMANDS) | {"help"}
