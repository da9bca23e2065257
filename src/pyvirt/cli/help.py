"""``pyvirt help [COMMAND|GROUP]``: the command list grouped as virsh groups it.

``pyvirt help`` prints every command under virsh's group titles (Domain Management, Domain
Monitoring, Host and Hypervisor, ...) with its one-line description; ``pyvirt help NAME``
prints one command's help, or one group when NAME is a group keyword (``pyvirt help pool``;
``storage`` names both storage groups, ``virsh`` the shell's own commands).
Only this command imports every command module; the others stay lazy.
"""

from __future__ import annotations

import click

from pyvirt.errors import NotFoundError

#: (title, help keyword) in virsh's order
GROUPS: tuple[tuple[str, str], ...] = (
    ("Domain Management", "domain"),
    ("Domain Monitoring", "monitor"),
    ("Domain Snapshot", "snapshot"),
    ("Checkpoint", "checkpoint"),
    ("Backup", "backup"),
    ("Host and Hypervisor", "host"),
    ("Networking", "network"),
    ("Node Device", "nodedev"),
    ("Storage Pool", "pool"),
    ("Storage Volume", "volume"),
    ("Guest Installation", "install"),
    ("Pyvirt Tools", "tools"),
    ("Pyvirt itself", "pyvirt"),
)

#: command module -> help keyword of its group (a command may override it below)
_MODULE_GROUP = {
    "domain": "domain",
    "blk": "domain",
    "blockjob": "domain",
    "iface": "domain",
    "display": "domain",
    "devxml": "domain",
    "guest": "domain",
    "tune": "domain",
    "save": "domain",
    "migrate": "domain",
    "host": "host",
    "node": "host",
    "net": "network",
    "snapshot": "snapshot",
    "nodedev": "nodedev",
    "pool": "pool",
    "vol": "volume",
    "install": "install",
    "clone": "install",
    "image": "tools",
    "bench": "tools",
    "plan": "tools",
    "shim": "tools",
    "cpu": "host",
    "shell": "pyvirt",
    "token": "pyvirt",
    "event": "domain",
    "job": "domain",
    "stats": "monitor",
}

#: group keywords that name several groups (``help storage``) or another spelling
_KEYWORD_ALIASES: dict[str, tuple[str, ...]] = {
    "storage": ("pool", "volume"),
    "virsh": ("pyvirt",),
    "hypervisor": ("host",),
}
#: command name prefixes of the snapshot, checkpoint and backup groups
_PREFIX_GROUP = (("snapshot-", "snapshot"), ("checkpoint-", "checkpoint"), ("backup-", "backup"))
#: commands virsh lists elsewhere than their module's group
_COMMAND_GROUP = {"cpu-stats": "domain"}

#: virsh's Domain Monitoring commands (their modules are domain, blk, iface, tune, guest)
_MONITOR = frozenset(
    {
        "list", "dominfo", "domstate", "domblklist", "domblkinfo", "domblkstat", "domiflist",
        "domifaddr", "domifstat", "dommemstat", "domtime", "domstats", "domblkerror",
        "domcontrol",
    }
)  # fmt: skip

# virsh prints "    %-30s %s"
_LINE = "    {name:<30} {text}"


def group_of(name: str, module: str) -> str:
    """The help keyword of command ``name`` defined in command module ``module``."""
    if name in _MONITOR:
        return "monitor"
    if name in ("help", "connect", "quit", "exit", "echo"):
        return "pyvirt"
    if name in _COMMAND_GROUP:
        return _COMMAND_GROUP[name]
    for prefix, key in _PREFIX_GROUP:
        if name.startswith(prefix):
            return key
    # most commands issue 12 adds (save, blockcommit, attach-device...) are domain commands
    return _MODULE_GROUP.get(module, "domain")


def _short(command: click.Command) -> str:
    return command.get_short_help_str(limit=200).rstrip(".")


def _grouped(root: click.Group, ctx: click.Context) -> dict[str, list[tuple[str, str]]]:
    from pyvirt.cli.main import COMMANDS

    out: dict[str, list[tuple[str, str]]] = {key: [] for _, key in GROUPS}
    for name in root.list_commands(ctx):
        command = root.get_command(ctx, name)
        if command is None:  # pragma: no cover - list_commands only lists resolvable ones
            continue
        module = COMMANDS.get(name, "pyvirt:help").split(":")[0]
        out[group_of(name, module)].append((name, _short(command)))
    return out


def _print_group(title: str, key: str, rows: list[tuple[str, str]]) -> None:
    click.echo(f" {title} (help keyword '{key}'):")
    for name, text in sorted(rows):
        click.echo(_LINE.format(name=name, text=text))
    click.echo()


@click.command("help")
@click.argument("name", required=False, metavar="[COMMAND|GROUP]")
@click.pass_context
def help_(ctx: click.Context, name: str | None) -> None:
    """Print help: every command, one group, or one command."""
    root = ctx.find_root()
    group = root.command
    assert isinstance(group, click.Group)
    if name is None:
        click.echo("Grouping of commands:\n")
        grouped = _grouped(group, root)
        for title, key in GROUPS:
            if grouped[key]:
                _print_group(title, key, grouped[key])
        return
    keys = _KEYWORD_ALIASES.get(name, (name,))
    if any(key == k for _, key in GROUPS for k in keys):
        grouped = _grouped(group, root)
        for title, key in GROUPS:
            if key in keys:
                _print_group(title, key, grouped[key])
        return
    command = group.get_command(root, name)
    if command is None:
        raise NotFoundError(f"command or command group '{name}' doesn't exist")
    with click.Context(command, info_name=name, parent=root) as sub:
        click.echo(command.get_help(sub))
