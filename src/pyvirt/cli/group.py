"""The click group of ``pyvirt``: commands imported lazily from the table in
:mod:`pyvirt.cli.main`, and the global options (``-c URI``, ``--version``)."""

from __future__ import annotations

import importlib

import click

from pyvirt.cli.main import _BY_MODULE, ALIASES, COMMANDS

__all__ = ["LazyGroup", "cli"]


class LazyGroup(click.Group):
    """A click group that imports a command's module only when that command runs."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        from importlib.util import find_spec

        present = {m for m in _BY_MODULE if find_spec(f"pyvirt.cli.commands.{m}") is not None}
        names = [n for n, target in COMMANDS.items() if target.split(":")[0] in present]
        return sorted([*names, "help"])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        cmd_name = ALIASES.get(cmd_name, cmd_name)
        if cmd_name == "help":
            from pyvirt.cli.help import help_
            from pyvirt.cli.virsh_options import attach

            attach("help", help_)
            return help_
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attr = target.split(":")
        mod = importlib.import_module(f"pyvirt.cli.commands.{module}")
        command = getattr(mod, attr)
        assert isinstance(command, click.Command)
        from pyvirt.cli.virsh_options import attach  # virsh's options it lacks: refused or added

        attach(cmd_name, command)
        return command


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """``--version``/``-v``: just the version number, as ``virsh --version`` prints it."""
    if not value or ctx.resilient_parsing:
        return
    from pyvirt import __version__

    click.echo(__version__)
    ctx.exit(0)


@click.group(
    cls=LazyGroup,
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.option("-c", "--connect", "uri", metavar="URI", help="hypervisor connection URI")
@click.option("-v", "--version", is_flag=True, is_eager=True, expose_value=False,
              callback=_print_version, help="print the version and exit")  # fmt: skip
@click.pass_context
def cli(ctx: click.Context, uri: str | None) -> None:
    """pyvirt: manage QEMU/KVM virtual machines (virsh-compatible commands).

    With no command, an interactive shell (commands read line by line when not on a terminal).
    """
    ctx.obj = {"uri": uri}
    if ctx.invoked_subcommand is None:
        import sys  # lazy

        from pyvirt.cli.commands.shell import run_shell  # lazy

        sys.exit(run_shell(uri))
