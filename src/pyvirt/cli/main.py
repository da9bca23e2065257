"""The ``pyvirt`` command: virsh's command names on top of the public pyvirt API.

Commands are loaded lazily (one module per noun) so that ``pyvirt list`` does not import the
QEMU driver and ``pyvirt start`` does not import the host probes: start-up time is a feature.
Through a daemon, the simple forms of the busiest commands do not even load click
(:mod:`pyvirt.cli.fast`); the click group is :mod:`pyvirt.cli.group`.
Every :class:`~pyvirt.errors.PyvirtError` becomes one ``error: ...`` line (plus an optional
``hint: ...`` line) on stderr and exit status 1; usage errors do the same.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # no typing at run time: the fast path imports this module
if TYPE_CHECKING:
    import click

    import pyvirt.api

# command name -> module under pyvirt.cli.commands ("module" or "module:attr"; the attribute
# defaults to the command name with '-' as '_'). One module per noun; nothing is imported
# until the command runs.
# fmt: off
_BY_MODULE: dict[str, tuple[str, ...]] = {
    "domain": (
        "define", "undefine", "create", "start", "shutdown", "destroy", "reboot", "reset",
        "suspend", "resume", "list:list_", "dominfo", "domstate", "domid", "domuuid",
        "domname", "dumpxml", "edit", "domrename", "autostart", "console", "vncdisplay",
        "domdisplay", "domxml-to-native",
    ),
    "host": ("version", "capabilities", "host-validate"),
    "conn": ("uri",),
    # libvirt-python programs through pyvirt.libvirt (issue 14)
    "shim": ("libvirt-shim-path",),
    "image": ("image",),
    # install, clone, consoles (issue 6)
    "install": ("install",),
    "clone": ("clone",),
    "display": ("screenshot", "update-device"),
    "bench": ("bench",),
    # storage (issue 3)
    "pool": (
        "pool-autostart", "pool-build", "pool-create-as", "pool-create", "pool-define-as",
        "pool-define", "pool-delete", "pool-destroy", "pool-dumpxml", "pool-edit",
        "pool-info", "pool-list", "pool-name", "pool-refresh", "pool-start", "pool-undefine",
        "pool-uuid", "pool-capabilities", "find-storage-pool-sources",
    ),
    "vol": (
        "vol-clone", "vol-create-as", "vol-create", "vol-create-from", "vol-delete",
        "vol-download", "vol-upload", "vol-dumpxml", "vol-info", "vol-key", "vol-list",
        "vol-name", "vol-path", "vol-pool", "vol-resize", "vol-wipe",
    ),
    "blk": (
        "attach-disk", "detach-disk", "domblklist", "domblkinfo", "domblkstat", "blockresize",
    ),
    # block jobs (issue 12)
    "blockjob": ("blockcommit", "blockpull", "blockcopy", "blockjob"),
    # networking (issue 4)
    "net": (
        "net-define", "net-create", "net-start", "net-destroy", "net-undefine", "net-list",
        "net-info", "net-dumpxml", "net-edit", "net-autostart", "net-uuid", "net-name",
        "net-dhcp-leases", "net-update",
    ),
    "iface": (
        "attach-interface", "detach-interface", "domiflist", "domifaddr", "domifstat",
        "domif-setlink",
    ),
    "nodedev": (
        "nodedev-list", "nodedev-dumpxml", "nodedev-detach", "nodedev-reattach", "nodedev-reset",
    ),
    # CPU models and host facts, the shell (issue 12)
    "cpu": (
        "cpu-models", "domcapabilities", "cpu-baseline", "cpu-compare",
        "hypervisor-cpu-baseline", "cpu-stats",
    ),
    "shell": ("connect", "quit:quit_", "exit:exit_", "echo"),
    # CPU, NUMA, memory (issue 5)
    "node": (
        "nodeinfo", "freecell", "nodememstats", "nodecpustats", "node-memory-tune",
        "allocpages", "numa-advise",
    ),
    "tune": (
        "setvcpus", "vcpucount", "vcpuinfo", "vcpupin", "emulatorpin", "iothreadinfo",
        "schedinfo", "numatune", "setmem", "setmaxmem", "dommemstat", "memtune",
    ),
    "plan": ("plan",),
    # statistics (issue 11)
    "stats": ("domstats", "domdirtyrate-calc"),
    # the daemon (issue 11)
    "event": ("event",),
    # pyvirtd's API tokens (issue 11)
    "token": ("token-create", "token-list", "token-delete"),
    # the web console's users (issue 13)
    "user": ("user-add", "user-list", "user-delete"),
    # guest agent (issue 6)
    "guest": (
        "guestinfo", "domfsinfo", "set-user-password", "domfsfreeze", "domfsthaw", "domtime",
        "qemu-agent-command",
    ),
    # snapshots (issue 12)
    "snapshot": (
        "snapshot-create", "snapshot-create-as", "snapshot-list", "snapshot-info",
        "snapshot-dumpxml", "snapshot-current", "snapshot-parent", "snapshot-edit",
        "snapshot-revert", "snapshot-delete",
    ),
    # checkpoints and backup (issue 12)
    "checkpoint": (
        "checkpoint-create", "checkpoint-create-as", "checkpoint-list", "checkpoint-info",
        "checkpoint-dumpxml", "checkpoint-edit", "checkpoint-parent", "checkpoint-delete",
        "backup-begin",
        "backup-dumpxml", "backup-end",
    ),
    # save and restore (issue 12)
    "save": (
        "save", "restore", "managedsave", "managedsave-remove", "managedsave-dumpxml",
        "save-image-dumpxml", "save-image-define", "save-image-edit", "managedsave-define",
        "managedsave-edit",
    ),
    # live migration (issue 15)
    "migrate": (
        "migrate", "migrate-setmaxdowntime", "migrate-getmaxdowntime", "migrate-setspeed",
        "migrate-getspeed", "migrate-compcache", "migrate-postcopy",
    ),
    # the cluster on etcd (issue 16)
    "cluster": ("cluster",),
    # daemon jobs (issue 11)
    "job": ("job-list", "job-info", "job-cancel", "domjobinfo", "domjobabort"),
    # device XML, media, keys, descriptions (issue 12)
    "devxml": (
        "attach-device", "detach-device", "change-media", "send-key", "desc", "metadata",
        "domblkerror", "domcontrol",
    ),
}
# fmt: on
COMMANDS: dict[str, str] = {}
for _module, _names in _BY_MODULE.items():
    for _entry in _names:
        _name, _, _attr = _entry.partition(":")
        COMMANDS[_name] = f"{_module}:{_attr or _name.replace('-', '_')}"
# the seed's notes write "virsh undefined vm-1"; accept it quietly
ALIASES = {"undefined": "undefine"}


def __getattr__(name: str) -> object:
    """``cli`` and ``LazyGroup`` live in :mod:`pyvirt.cli.group` (click loads only when the
    fast path does not answer)."""
    if name in ("cli", "LazyGroup"):
        from pyvirt.cli import group  # lazy

        return getattr(group, name)
    raise AttributeError(f"module 'pyvirt.cli.main' has no attribute {name!r}")


def _normalize(argv: list[str]) -> list[str]:
    """Accept an en dash for '--' (copied from documents, like the seed's 'list –all')."""
    return ["--" + a[1:] if a.startswith("\u2013") else a for a in argv]


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: the fast path (:mod:`pyvirt.cli.fast`) when it answers,
    else click."""
    args = _normalize(sys.argv[1:] if argv is None else argv)
    from pyvirt.cli.fast import run as run_fast  # lazy: click-free

    code = run_fast(args)
    if code is not None:
        sys.exit(code)
    import click  # lazy

    from pyvirt.cli.group import cli
    from pyvirt.errors import PyvirtError

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
    except OSError as err:  # last resort: the layers below should have said it better
        click.echo(f"error: {_os_error(err)}", err=True)
        sys.exit(1)


def _os_error(err: OSError) -> str:
    """One line for an ``OSError`` that escaped every layer (a full disk, a lost file)."""
    import errno

    where = f" ({err.filename})" if err.filename else ""
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"the disk is full{where}: {err.strerror or err}; nothing more was written"
    text = (err.strerror or str(err) or type(err).__name__).lower()
    return f"{text}{where}"


def api(ctx: click.Context) -> pyvirt.api.Connection:
    """The public-API connection named by ``-c``."""
    import pyvirt.api

    return pyvirt.api.open(ctx.find_root().obj.get("uri") if ctx.find_root().obj else None)
