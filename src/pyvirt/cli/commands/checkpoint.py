"""Checkpoint and backup commands (virsh's ``checkpoint-*``, ``backup-begin``,
``backup-dumpxml``; ``backup-end`` and ``backup-begin --wait`` are pyvirt's): names, options
and output as virsh has them."""

from __future__ import annotations

import contextlib
import sys
import time
from typing import TYPE_CHECKING

import click

from pyvirt.cli.main import api
from pyvirt.cli.render import as_json, read_input, table, warn
from pyvirt.errors import InvalidConfigError, InvalidStateError, NotFoundError, PyvirtError

if TYPE_CHECKING:
    from pyvirt.api.domain import Domain
    from pyvirt.api.domain_checkpoints import CheckpointInfo

DOMAIN = click.argument("domain", metavar="DOMAIN")
CHECKPOINT = click.argument("checkpointname", metavar="CHECKPOINT")


def _dom(ctx: click.Context, domain: str) -> Domain:
    return api(ctx).domains.get(domain)


@click.command("checkpoint-create")
@DOMAIN
@click.argument("xmlfile", metavar="XMLFILE", required=False)
@click.option("--redefine", is_flag=True, help="record the XML of an existing checkpoint")
@click.option("--redefine-validate", is_flag=True, hidden=True)
@click.option("--quiesce", is_flag=True, hidden=True)
@click.pass_context
def checkpoint_create(
    ctx: click.Context,
    domain: str,
    xmlfile: str | None,
    redefine: bool,
    redefine_validate: bool,
    quiesce: bool,
) -> None:
    """Create a checkpoint from XML."""
    if quiesce:
        raise InvalidConfigError("--quiesce is not supported for checkpoints")
    xml = read_input(xmlfile) if xmlfile else None
    name = _dom(ctx, domain).checkpoint_create(xml, redefine=redefine)
    if xmlfile:
        click.echo(f"Domain checkpoint {name} created from '{xmlfile}'")
    else:
        click.echo(f"Domain checkpoint {name} created")


@click.command("checkpoint-create-as")
@DOMAIN
@click.argument("name", metavar="NAME", required=False)
@click.argument("description", metavar="DESCRIPTION", required=False)
@click.option("--name", "name_opt", metavar="NAME", help="name of the checkpoint")
@click.option("--description", "desc_opt", metavar="TEXT", help="description of the checkpoint")
@click.option("--print-xml", is_flag=True, help="print the XML instead of creating")
@click.option("--diskspec", "diskspecs", multiple=True,
              metavar="DISK[,checkpoint=bitmap|no][,bitmap=NAME]",
              help="disk attributes (repeatable)")  # fmt: skip
@click.pass_context
def checkpoint_create_as(
    ctx: click.Context,
    domain: str,
    name: str | None,
    description: str | None,
    name_opt: str | None,
    desc_opt: str | None,
    print_xml: bool,
    diskspecs: tuple[str, ...],
) -> None:
    """Create a checkpoint from a set of arguments."""
    dom = _dom(ctx, domain)
    name = name_opt or name
    description = desc_opt or description
    if print_xml:
        click.echo(dom.checkpoint_xml_for(name, description, diskspecs).rstrip("\n"))
        return
    made = dom.checkpoint_create_as(name, description, diskspecs=diskspecs)
    click.echo(f"Domain checkpoint {made} created")


def _when(seconds: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime(seconds))


def _tree(infos: list[CheckpointInfo]) -> None:
    kids: dict[str | None, list[str]] = {}
    for info in infos:
        kids.setdefault(info.parent, []).append(info.name)

    def walk(name: str, prefix: str) -> None:
        children = kids.get(name, [])
        for i, child in enumerate(children):
            last = i == len(children) - 1
            click.echo(f"{prefix}|")
            click.echo(f"{prefix}+- {child}")
            walk(child, prefix + ("    " if last else "|   "))

    for root in kids.get(None, []):
        click.echo(root)
        walk(root, "  ")
        click.echo()


@click.command("checkpoint-list")
@DOMAIN
@click.option("--parent", is_flag=True, help="add a column showing the parent checkpoint")
@click.option("--roots", is_flag=True, help="list only checkpoints without parents")
@click.option("--leaves", is_flag=True, help="list only checkpoints without children")
@click.option("--no-leaves", is_flag=True, help="list only checkpoints that are not leaves")
@click.option("--tree", is_flag=True, help="list checkpoints in a tree")
@click.option("--from", "from_", metavar="CHECKPOINT", help="limit to children of CHECKPOINT")
@click.option("--descendants", is_flag=True, help="with --from, all descendants")
@click.option("--name", "names_only", is_flag=True, help="list the checkpoint names only")
@click.option("--topological", is_flag=True, help="parents before children (always so)")
@click.option("--json", "as_json_", is_flag=True, help="print JSON")
@click.pass_context
def checkpoint_list(
    ctx: click.Context,
    domain: str,
    parent: bool,
    roots: bool,
    leaves: bool,
    no_leaves: bool,
    tree: bool,
    from_: str | None,
    descendants: bool,
    names_only: bool,
    topological: bool,
    as_json_: bool,
) -> None:
    """List checkpoints for a domain."""
    if tree and (parent or roots or names_only):
        raise InvalidConfigError("--tree excludes --parent, --roots and --name")
    if roots and (from_ or leaves):
        raise InvalidConfigError("--roots excludes --from and --leaves")
    dom = _dom(ctx, domain)
    infos = dom.checkpoints()
    if from_:
        keep = set(dom.checkpoint_children(from_, descendants=descendants or tree))
        if tree:
            keep.add(from_)
        infos = [i for i in infos if i.name in keep]
        if tree:
            infos = [i if i.parent in keep else _reroot(i) for i in infos]
    if roots:
        infos = [i for i in infos if i.parent is None]
    if leaves:
        infos = [i for i in infos if i.children == 0]
    if no_leaves:
        infos = [i for i in infos if i.children > 0]
    if as_json_:
        as_json([i.to_json() for i in infos])
        return
    if tree:
        _tree(infos)
        return
    if names_only:
        for info in infos:
            click.echo(info.name)
        click.echo()
        return
    headers = ["Name", "Creation Time"] + (["Parent"] if parent else [])
    rows = [[i.name, _when(i.creation_time)] + ([i.parent or ""] if parent else []) for i in infos]
    table(headers, rows)


def _reroot(info: CheckpointInfo) -> CheckpointInfo:
    from dataclasses import replace

    return replace(info, parent=None)


@click.command("checkpoint-info")
@DOMAIN
@CHECKPOINT
@click.option("--json", "as_json_", is_flag=True, help="print JSON")
@click.pass_context
def checkpoint_info(ctx: click.Context, domain: str, checkpointname: str, as_json_: bool) -> None:
    """Checkpoint information."""
    info = _dom(ctx, domain).checkpoint_info(checkpointname)
    if as_json_:
        as_json(info.to_json())
        return
    rows = [
        ("Name", info.name),
        ("Domain", info.domain),
        ("Parent", info.parent or "-"),
        ("Children", str(info.children)),
        ("Descendants", str(info.descendants)),
    ]
    for key, value in rows:  # virsh prints "%-15s %s"
        click.echo(f"{key + ':':<15} {value}")


@click.command("checkpoint-dumpxml")
@DOMAIN
@CHECKPOINT
@click.option("--security-info", is_flag=True, help="include security sensitive information")
@click.option("--no-domain", is_flag=True, help="exclude <domain> from XML")
@click.option("--size", is_flag=True, help="include backup size estimate in XML dump")
@click.pass_context
def checkpoint_dumpxml(
    ctx: click.Context,
    domain: str,
    checkpointname: str,
    security_info: bool,
    no_domain: bool,
    size: bool,
) -> None:
    """Dump XML for a domain checkpoint."""
    xml = _dom(ctx, domain).checkpoint_xml(checkpointname, size=size, no_domain=no_domain)
    click.echo(xml.rstrip("\n"))


@click.command("checkpoint-edit")
@DOMAIN
@CHECKPOINT
@click.pass_context
def checkpoint_edit(ctx: click.Context, domain: str, checkpointname: str) -> None:
    """Edit XML for a checkpoint (its description)."""
    from pyvirt.cli.editing import edit_loop

    dom = _dom(ctx, domain)
    name = dom.checkpoint_info(checkpointname).name

    def apply(text: str) -> tuple[str, list[str]]:
        return dom.checkpoint_edit(name, text), []

    edit_loop("Checkpoint", name, dom.checkpoint_xml(name), apply)


@click.command("checkpoint-parent")
@DOMAIN
@CHECKPOINT
@click.pass_context
def checkpoint_parent(ctx: click.Context, domain: str, checkpointname: str) -> None:
    """Get the name of the parent of a checkpoint."""
    info = _dom(ctx, domain).checkpoint_info(checkpointname)
    if info.parent is None:
        raise NotFoundError(f"checkpoint '{info.name}' has no parent")
    click.echo(info.parent)


@click.command("checkpoint-delete")
@DOMAIN
@CHECKPOINT
@click.option("--children", is_flag=True, help="delete checkpoint and all children")
@click.option("--children-only", is_flag=True, help="delete children but not checkpoint")
@click.option("--metadata", is_flag=True, help="delete only pyvirt's metadata, keep the bitmaps")
@click.pass_context
def checkpoint_delete(
    ctx: click.Context,
    domain: str,
    checkpointname: str,
    children: bool,
    children_only: bool,
    metadata: bool,
) -> None:
    """Delete a domain checkpoint."""
    dom = _dom(ctx, domain)
    dom.checkpoint_delete(
        checkpointname, children=children, children_only=children_only, metadata=metadata
    )
    if children_only:
        click.echo(f"Domain checkpoint {checkpointname} children deleted")
    else:
        click.echo(f"Domain checkpoint {checkpointname} deleted")


@click.command("backup-begin")
@DOMAIN
@click.option("--backupxml", metavar="FILE", help="domain backup XML")
@click.option("--checkpointxml", metavar="FILE", help="domain checkpoint XML")
@click.option("--reuse-external", is_flag=True, help="reuse files provided by caller")
@click.option("--wait", is_flag=True, help="wait for a push backup to finish (pyvirt)")
@click.option("--verbose", is_flag=True, help="with --wait, display the progress")
@click.option("--bandwidth", type=int, help="push backup bandwidth limit in MiB/s (pyvirt)")
@click.option("--bytes", "in_bytes", is_flag=True, help="the bandwidth is in bytes/s")
@click.pass_context
def backup_begin(
    ctx: click.Context,
    domain: str,
    backupxml: str | None,
    checkpointxml: str | None,
    reuse_external: bool,
    wait: bool,
    verbose: bool,
    bandwidth: int | None,
    in_bytes: bool,
) -> None:
    """Start a disk backup of a live domain."""
    from pyvirt.cli.commands.blockjob import bandwidth_bytes

    if verbose and not wait:
        raise InvalidConfigError("--verbose requires --wait")
    dom = _dom(ctx, domain)
    started = dom.backup_begin(
        read_input(backupxml) if backupxml else None,
        read_input(checkpointxml) if checkpointxml else None,
        reuse_external=reuse_external,
        bandwidth=bandwidth_bytes(bandwidth, in_bytes=in_bytes),
    )
    warn(started.warnings)
    click.echo("Backup started")
    if not wait:
        return
    show = None
    if verbose:
        from pyvirt.cli.commands.blockjob import job_progress

        def show(done: int, total: int) -> None:
            click.echo("\r" + job_progress("Backup", done, total), err=True, nl=False)

    try:
        info = dom.backup_wait(progress=show)
    except KeyboardInterrupt:
        with contextlib.suppress(InvalidStateError):  # through pyvirtd: its job ended it
            dom.backup_end()
        click.echo("\nBackup aborted")
        sys.exit(1)
    except PyvirtError as err:
        if err.code != "cancelled":
            raise
        click.echo("\nBackup aborted")
        sys.exit(1)
    if info.mode == "push":
        click.echo(("\n" if verbose else "") + "Backup completed")


@click.command("backup-dumpxml")
@DOMAIN
@click.pass_context
def backup_dumpxml(ctx: click.Context, domain: str) -> None:
    """Dump XML for an ongoing domain block backup job."""
    click.echo(_dom(ctx, domain).backup_xml().rstrip("\n"))


@click.command("backup-end")
@DOMAIN
@click.pass_context
def backup_end(ctx: click.Context, domain: str) -> None:
    """End a domain's backup job (a pull backup's export; like domjobabort)."""
    info = _dom(ctx, domain).backup_end()
    click.echo("Backup ended" if info.mode == "pull" else "Backup aborted")


def backup_job_lines(dom: Domain, *, completed: bool = False) -> list[str]:
    """``domjobinfo``'s lines for the domain's backup job ([] when there is none)."""
    from pyvirt.api.values import format_bytes

    info = dom.backup_job_info(completed=completed)
    if info is None:
        return []
    kind = {"running": "Unbounded", "completed": "Completed", "failed": "Failed"}
    lines = [
        ("Job type:", kind.get(info.state, "Cancelled")),
        ("Operation:", "Backup"),
        ("Time elapsed:", f"{int(info.elapsed * 1000):<12} ms"),
    ]
    if info.mode == "push":
        lines += [
            ("Data processed:", format_bytes(info.done)),
            ("Data remaining:", format_bytes(max(0, info.total - info.done))),
            ("Data total:", format_bytes(info.total)),
        ]
    if info.error:
        lines.append(("Error message:", info.error))
    return [f"{k:<17} {v:<12}".rstrip() for k, v in lines]
