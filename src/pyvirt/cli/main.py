"""The ``pyvirt`` command: virsh's command names on top of the public pyvirt API.

Commands are loaded lazily (one module per noun) so that ``pyvirt list`` does not import the
QEMU driver and ``pyvirt start`` does not import the host probes: start-up time is a feature.
Every :class:`~pyvirt.errors.PyvirtError` becomes one ``error: ...`` line (plus an optional
``hint: ...`` line) on stderr and exit status 1; usage errors do the same.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

# command name -> "module:function" under pyvirt.cli.commands
COMMANDS: dict[str, str] = {
    "define": "domain:define",
    "undefine": "domain:undefine",
    "create": "domain:create",
    "start": "domain:start",
    "shutdown": "domain:shutdown",
    "destroy": "domain:destroy",
    "reboot": "domain:reboot",
    "reset": "domain:reset",
    "suspend": "domain:suspend",
    "resume": "domain:resume",
    "list": "domain:list_",
    "dominfo": "domain:dominfo",
    "domstate": "domain:domstate",
    "domid": "domain:domid",
    "domuuid": "domain:domuuid",
    "domname": "domain:domname",
    "dumpxml": "domain:dumpxml",
    "edit": "domain:edit",
    "domrename": "domain:domrename",
    "autostart": "domain:autostart",
    "console": "domain:console",
    "vncdisplay": "domain:vncdisplay",
    "domdisplay": "domain:domdisplay",
    "domxml-to-native": "domain:domxml_to_native",
    "version": "host:version",
    "capabilities": "host:capabilities",
    "host-validate": "host:host_validate",
    "image": "image:image",
}
# the seed's notes write "virsh undefined vm-1"; accept it quietly
ALIASES = {"undefined": "undefine"}


class LazyGroup(click.Group):
    """A click group that imports a command's module only when that command runs."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        cmd_name = ALIASES.get(cmd_name, cmd_name)
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attr = target.split(":")
        mod = importlib.import_module(f"pyvirt.cli.commands.{module}")
        command = getattr(mod, attr)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-c", "--connect", "uri", metavar="URI", help="hypervisor connection URI")
@click.pass_context
def cli(ctx: click.Context, uri: str | None) -> None:
    """pyvirt: manage QEMU/KVM virtual machines (virsh-compatible commands)."""
    ctx.obj = {"uri": uri}


def _normalize(argv: list[str]) -> list[str]:
    """Accept an en dash for '--' (copied from documents, like the seed's 'list –all')."""
    return ["--" + a[1:] if a.startswith("\u2013") else a for a in argv]


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    from pyvirt.errors import PyvirtError

    args = _normalize(sys.argv[1:] if argv is None else argv)
    try:
        cli.main(args=args, prog_name="pyvirt", standalone_mode=False)
    except PyvirtError as err:
        click.echo(f"error: {err.message}", err=True)
        if err.hint:
            click.echo(f"hint: {err.hint}", err=True)
        sys.exit(1)
    except click.exceptions.Abort:
        click.echo("error: aborted", err=True)
        sys.exit(1)
    except click.ClickException as err:
        click.echo(f"error: {err.format_message()}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)


def connection(ctx: click.Context) -> Any:
    """The connection named by ``-c`` (imported lazily)."""
    from pyvirt.service.connection import open_connection

    return open_connection(ctx.find_root().obj.get("uri") if ctx.find_root().obj else None)
