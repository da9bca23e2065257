"""Snapshot commands (virsh's ``snapshot-*``): names, options and output as virsh has them."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import click

from pyvirt.cli.main import api
from pyvirt.cli.render import as_json, read_input, table
from pyvirt.errors import InvalidConfigError, NotFoundError

if TYPE_CHECKING:
    from pyvirt.api.domain import Domain
    from pyvirt.api.domain_snapshots import SnapshotInfo

DOMAIN = click.argument("domain", metavar="DOMAIN")
SNAP = click.argument("snapshotname", metavar="SNAPSHOT", required=False)
CURRENT = click.option("--current", is_flag=True, help="use the current snapshot")


def _dom(ctx: click.Context, domain: str) -> Domain:
    return api(ctx).domains.get(domain)


def _pick(dom: Domain, name: str | None, current: bool) -> str | None:
    """The snapshot named, or the current one (``--current`` or no name)."""
    if name and current:
        raise InvalidConfigError("give a snapshot name or --current, not both")
    return name


@click.command("snapshot-create")
@DOMAIN
@click.argument("xmlfile", metavar="XMLFILE", required=False)
@click.option("--redefine", is_flag=True, help="record the XML of an existing snapshot")
@click.option("--current", is_flag=True, help="with --redefine, make it the current one")
@click.option("--no-metadata", is_flag=True, help="take the snapshot without keeping metadata")
@click.option("--halt", is_flag=True, help="halt the domain after the snapshot is created")
@click.option("--disk-only", is_flag=True, help="disks only (external overlays), no memory")
@click.option("--reuse-external", is_flag=True, hidden=True)
@click.option("--quiesce", is_flag=True, help="freeze guest file systems (guest agent)")
@click.option("--atomic", is_flag=True, help="all disks or none (always so)")
@click.option("--live", is_flag=True, help="take it while the guest runs (always so)")
@click.option("--validate", is_flag=True, hidden=True)
@click.pass_context
def snapshot_create(
    ctx: click.Context,
    domain: str,
    xmlfile: str | None,
    redefine: bool,
    current: bool,
    no_metadata: bool,
    halt: bool,
    disk_only: bool,
    reuse_external: bool,
    quiesce: bool,
    atomic: bool,
    live: bool,
    validate: bool,
) -> None:
    """Create a snapshot from XML."""
    if reuse_external:
        raise InvalidConfigError(
            "--reuse-external is not supported", hint="let pyvirt create the overlay files"
        )
    xml = read_input(xmlfile) if xmlfile else None
    dom = _dom(ctx, domain)
    info = dom.snapshot_create(
        xml, disk_only=disk_only, atomic=atomic, quiesce=quiesce, live=live,
        no_metadata=no_metadata, redefine=redefine, current=current,
    )  # fmt: skip
    _halt(dom, halt)
    if redefine or xmlfile:
        click.echo(f"Domain snapshot {info.name} created from '{xmlfile}'")
    else:
        click.echo(f"Domain snapshot {info.name} created")


@click.command("snapshot-create-as")
@DOMAIN
@click.argument("name", metavar="NAME", required=False)
@click.argument("description", metavar="DESCRIPTION", required=False)
@click.option("--name", "name_opt", metavar="NAME", help="name of the snapshot")
@click.option("--description", "desc_opt", metavar="TEXT", help="description of the snapshot")
@click.option("--print-xml", is_flag=True, help="print the XML instead of creating")
@click.option("--no-metadata", is_flag=True, help="take the snapshot without keeping metadata")
@click.option("--halt", is_flag=True, help="halt the domain after the snapshot is created")
@click.option("--disk-only", is_flag=True, help="disks only (external overlays), no memory")
@click.option("--reuse-external", is_flag=True, hidden=True)
@click.option("--quiesce", is_flag=True, help="freeze guest file systems (guest agent)")
@click.option("--atomic", is_flag=True, help="all disks or none (always so)")
@click.option("--live", is_flag=True, help="take it while the guest runs (always so)")
@click.option("--memspec", metavar="[file=]PATH[,snapshot=TYPE]", help="memory attributes")
@click.option("--diskspec", "diskspecs", multiple=True, metavar="DISK[,snapshot=TYPE][,file=PATH]",
              help="disk attributes (repeatable)")  # fmt: skip
@click.pass_context
def snapshot_create_as(
    ctx: click.Context,
    domain: str,
    name: str | None,
    description: str | None,
    name_opt: str | None,
    desc_opt: str | None,
    print_xml: bool,
    no_metadata: bool,
    halt: bool,
    disk_only: bool,
    reuse_external: bool,
    quiesce: bool,
    atomic: bool,
    live: bool,
    memspec: str | None,
    diskspecs: tuple[str, ...],
) -> None:
    """Create a snapshot from a set of arguments."""
    if reuse_external:
        raise InvalidConfigError(
            "--reuse-external is not supported", hint="let pyvirt create the overlay files"
        )
    dom = _dom(ctx, domain)
    name = name_opt or name
    description = desc_opt or description
    if print_xml:
        click.echo(
            dom.snapshot_xml_for(
                name, description, memspec=memspec, diskspecs=diskspecs, disk_only=disk_only
            ).rstrip("\n")
        )
        return
    info = dom.snapshot_create_as(
        name, description, memspec=memspec, diskspecs=diskspecs, disk_only=disk_only,
        atomic=atomic, quiesce=quiesce, live=live, no_metadata=no_metadata,
    )  # fmt: skip
    _halt(dom, halt)
    click.echo(f"Domain snapshot {info.name} created")


def _halt(dom: Domain, halt: bool) -> None:
    """``--halt``: stop the domain once its snapshot exists (virsh's order)."""
    if halt and dom.is_active():
        dom.destroy()


def _when(seconds: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime(seconds))


def _tree(dom: Domain, infos: list[SnapshotInfo]) -> None:
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


@click.command("snapshot-list")
@DOMAIN
@click.option("--parent", is_flag=True, help="add a column showing the parent snapshot")
@click.option("--roots", is_flag=True, help="list only snapshots without parents")
@click.option("--leaves", is_flag=True, help="list only snapshots without children")
@click.option("--no-leaves", is_flag=True, help="list only snapshots that are not leaves")
@click.option("--metadata", is_flag=True, help="list only snapshots with metadata (all)")
@click.option("--no-metadata", is_flag=True, help="list only snapshots without metadata")
@click.option("--inactive", is_flag=True, help="filter by snapshots taken while shut off")
@click.option("--active", is_flag=True, help="filter by snapshots taken while running")
@click.option("--disk-only", is_flag=True, help="filter by disk-only snapshots")
@click.option("--internal", is_flag=True, help="filter by internal snapshots")
@click.option("--external", is_flag=True, help="filter by external snapshots")
@click.option("--tree", is_flag=True, help="list snapshots in a tree")
@click.option("--from", "from_", metavar="SNAPSHOT", help="limit to descendants of SNAPSHOT")
@click.option(
    "--current", is_flag=True, help="limit to the current snapshot (or its descendants with --from)"
)
@click.option("--descendants", is_flag=True, help="with --from, all descendants")
@click.option("--name", "names_only", is_flag=True, help="list the snapshot names only")
@click.option("--topological", is_flag=True, help="parents before children (always so)")
@click.option("--json", "as_json_", is_flag=True, help="print JSON")
@click.pass_context
def snapshot_list(
    ctx: click.Context,
    domain: str,
    parent: bool,
    roots: bool,
    leaves: bool,
    no_leaves: bool,
    metadata: bool,
    no_metadata: bool,
    inactive: bool,
    active: bool,
    disk_only: bool,
    internal: bool,
    external: bool,
    tree: bool,
    from_: str | None,
    current: bool,
    descendants: bool,
    names_only: bool,
    topological: bool,
    as_json_: bool,
) -> None:
    """List snapshots for a domain."""
    if tree and (parent or roots or names_only):
        raise InvalidConfigError("--tree excludes --parent, --roots and --name")
    if roots and (from_ or leaves):
        raise InvalidConfigError("--roots excludes --from and --leaves")
    if internal and external:
        raise InvalidConfigError("--internal and --external exclude each other")
    dom = _dom(ctx, domain)
    infos = dom.snapshots()
    if from_ or (current and (descendants or tree)):
        start = from_ or dom.current_snapshot()
        if start is None:
            raise NotFoundError(f"domain '{dom.name}' has no current snapshot")
        keep = set(dom.snapshot_children(start, descendants=descendants or tree))
        if tree:
            keep.add(start)
        infos = [i for i in infos if i.name in keep]
    elif current:
        infos = [i for i in infos if i.current]
    if roots:
        infos = [i for i in infos if i.parent is None]
    if leaves:
        infos = [i for i in infos if i.children == 0]
    if no_leaves:
        infos = [i for i in infos if i.children > 0]
    if no_metadata:
        infos = []
    states = set()
    if inactive:
        states.add("shutoff")
    if active:
        states |= {"running", "paused"}
    if disk_only:
        states.add("disk-snapshot")
    if states:
        infos = [i for i in infos if i.state in states]
    if internal:
        infos = [i for i in infos if i.location == "internal"]
    if external:
        infos = [i for i in infos if i.location == "external"]
    if as_json_:
        as_json([i.to_json() for i in infos])
        return
    if tree:
        if from_ or current:
            names = {i.name for i in infos}
            infos = [i if i.parent in names else _reroot(i) for i in infos]
        _tree(dom, infos)
        return
    if names_only:
        for info in infos:
            click.echo(info.name)
        click.echo()
        return
    headers = ["Name", "Creation Time", "State"] + (["Parent"] if parent else [])
    rows = [
        [i.name, _when(i.creation_time), i.state] + ([i.parent or ""] if parent else [])
        for i in infos
    ]
    table(headers, rows)


def _reroot(info: SnapshotInfo) -> SnapshotInfo:
    from dataclasses import replace

    return replace(info, parent=None)


@click.command("snapshot-info")
@DOMAIN
@SNAP
@CURRENT
@click.option("--snapshotname", "snap_opt", metavar="SNAPSHOT", help="snapshot name")
@click.option("--json", "as_json_", is_flag=True, help="print JSON")
@click.pass_context
def snapshot_info(
    ctx: click.Context,
    domain: str,
    snapshotname: str | None,
    current: bool,
    snap_opt: str | None,
    as_json_: bool,
) -> None:
    """Snapshot information."""
    dom = _dom(ctx, domain)
    info = dom.snapshot_info(_pick(dom, snap_opt or snapshotname, current))
    if as_json_:
        as_json(info.to_json())
        return
    rows = [
        ("Name", info.name),
        ("Domain", info.domain),
        ("Current", "yes" if info.current else "no"),
        ("State", info.state),
        ("Location", info.location),
        ("Parent", info.parent or "-"),
        ("Children", str(info.children)),
        ("Descendants", str(info.descendants)),
        ("Metadata", "yes"),
    ]
    for key, value in rows:  # virsh prints "%-15s %s"
        click.echo(f"{key + ':':<15} {value}")


@click.command("snapshot-dumpxml")
@DOMAIN
@click.argument("snapshotname", metavar="SNAPSHOT")
@click.option("--security-info", is_flag=True, help="include security sensitive information")
@click.pass_context
def snapshot_dumpxml(
    ctx: click.Context, domain: str, snapshotname: str, security_info: bool
) -> None:
    """Dump XML for a domain snapshot."""
    click.echo(_dom(ctx, domain).snapshot_xml(snapshotname).rstrip("\n"))


@click.command("snapshot-current")
@DOMAIN
@SNAP
@click.option("--name", "name_only", is_flag=True, help="list the name, rather than the full xml")
@click.option("--security-info", is_flag=True, help="include security sensitive information")
@click.pass_context
def snapshot_current(
    ctx: click.Context,
    domain: str,
    snapshotname: str | None,
    name_only: bool,
    security_info: bool,
) -> None:
    """Get or set the current snapshot."""
    dom = _dom(ctx, domain)
    if snapshotname:
        if name_only:
            raise InvalidConfigError("--name cannot be used when setting the current snapshot")
        dom.set_current_snapshot(snapshotname)
        click.echo(f"Snapshot {snapshotname} set as current")
        return
    current = dom.current_snapshot()
    if current is None:
        raise NotFoundError(
            f"domain '{dom.name}' has no current snapshot",
            hint="set one with 'snapshot-current DOMAIN SNAPSHOT'",
        )
    if name_only:
        click.echo(current)
        return
    click.echo(dom.snapshot_xml(current).rstrip("\n"))


@click.command("snapshot-parent")
@DOMAIN
@SNAP
@CURRENT
@click.option("--snapshotname", "snap_opt", metavar="SNAPSHOT", help="find parent of snapshot")
@click.pass_context
def snapshot_parent(
    ctx: click.Context, domain: str, snapshotname: str | None, current: bool, snap_opt: str | None
) -> None:
    """Get the name of the parent of a snapshot."""
    dom = _dom(ctx, domain)
    info = dom.snapshot_info(_pick(dom, snap_opt or snapshotname, current))
    if info.parent is None:
        raise NotFoundError(f"snapshot '{info.name}' has no parent")
    click.echo(info.parent)


@click.command("snapshot-edit")
@DOMAIN
@SNAP
@CURRENT
@click.option("--rename", is_flag=True, help="allow renaming an existing snapshot")
@click.option("--clone", is_flag=True, help="allow cloning to a new name (refused: see docs)")
@click.pass_context
def snapshot_edit(
    ctx: click.Context,
    domain: str,
    snapshotname: str | None,
    current: bool,
    rename: bool,
    clone: bool,
) -> None:
    """Edit XML for a snapshot."""
    from pyvirt.cli.editing import edit_loop

    if rename and clone:
        raise InvalidConfigError("options --rename and --clone are mutually exclusive")
    if clone:
        from pyvirt.errors import UnsupportedError

        raise UnsupportedError(
            "snapshot-edit --clone is not supported: two records would share one snapshot's "
            "images, and deleting either would break the other",
            hint="take a new snapshot instead",
        )
    dom = _dom(ctx, domain)
    name = dom.snapshot_info(_pick(dom, snapshotname, current)).name

    def apply(text: str) -> tuple[str, list[str]]:
        return dom.snapshot_edit(name, text, rename=rename), []

    edit_loop("Snapshot", name, dom.snapshot_xml(name), apply)


@click.command("snapshot-revert")
@DOMAIN
@SNAP
@CURRENT
@click.option("--running", is_flag=True, help="after reverting, change state to running")
@click.option("--paused", is_flag=True, help="after reverting, change state to paused")
@click.option("--force", is_flag=True, help="try harder on risky reverts")
@click.option("--reset-nvram", is_flag=True, hidden=True)
@click.pass_context
def snapshot_revert(
    ctx: click.Context,
    domain: str,
    snapshotname: str | None,
    current: bool,
    running: bool,
    paused: bool,
    force: bool,
    reset_nvram: bool,
) -> None:
    """Revert a domain to a snapshot."""
    dom = _dom(ctx, domain)
    name = _pick(dom, snapshotname, current)
    dom.snapshot_revert(name, running=running, paused=paused, force=force)


@click.command("snapshot-delete")
@DOMAIN
@SNAP
@CURRENT
@click.option("--children", is_flag=True, help="delete snapshot and all children")
@click.option("--children-only", is_flag=True, help="delete children but not snapshot")
@click.option("--metadata", is_flag=True, help="delete only pyvirt's metadata, keep the images")
@click.pass_context
def snapshot_delete(
    ctx: click.Context,
    domain: str,
    snapshotname: str | None,
    current: bool,
    children: bool,
    children_only: bool,
    metadata: bool,
) -> None:
    """Delete a domain snapshot."""
    dom = _dom(ctx, domain)
    name = _pick(dom, snapshotname, current) or dom.snapshot_info(None).name
    dom.snapshot_delete(name, children=children, children_only=children_only, metadata=metadata)
    if children_only:
        click.echo(f"Domain snapshot {name} children deleted")
    else:
        click.echo(f"Domain snapshot {name} deleted")
