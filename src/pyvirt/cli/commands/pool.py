"""Storage pool commands (``pool-*``): virsh's names, arguments and messages."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from pyvirt.api.values import format_bytes
from pyvirt.cli.main import api
from pyvirt.cli.render import as_json, fields, read_input, table, warn
from pyvirt.errors import InvalidConfigError

if TYPE_CHECKING:
    from pyvirt.api.pools import Pool, PoolCollection

POOL = click.argument("pool", metavar="POOL")
SOURCE_KEYS = ("source_host", "source_path", "source_dev", "source_name", "target")


def _overwrite(overwrite: bool, no_overwrite: bool) -> bool | None:
    if overwrite and no_overwrite:
        raise InvalidConfigError("--overwrite and --no-overwrite are mutually exclusive")
    return True if overwrite else (False if no_overwrite else None)


def _pools(ctx: click.Context) -> PoolCollection:
    return api(ctx).pools


def _as_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """The ``pool-define-as``/``pool-create-as`` arguments (positional or as options)."""
    opts = [
        click.option("--source-host", help="source host name[:port] (netfs, iscsi)"),
        click.option("--source-path", help="source path (netfs export, dir)"),
        click.option("--source-dev", help="source device (fs, disk, logical, iscsi IQN)"),
        click.option("--source-name", help="source name (volume group, rbd pool)"),
        click.option("--target", help="target path"),
        click.option("--source-format", help="source format (ext4, xfs, nfs, gpt, lvm2...)"),
        click.option("--auth-type", help="auth type (chap)"),
        click.option("--auth-username", help="auth user name"),
        click.option("--secret-usage", help="auth secret usage"),
        click.option("--source-initiator", help="initiator IQN"),
        click.option("--print-xml", is_flag=True, help="print the XML instead of acting"),
        click.argument("extra", nargs=-1, metavar="NAME TYPE [SOURCE-HOST ... TARGET]"),
        click.option("--type", "type_", help="pool type (or the second argument)"),
        click.option("--name", "name_", help="pool name (or the first argument)"),
    ]
    for opt in opts:
        f = opt(f)
    return f


def _name_type(kw: dict[str, Any]) -> tuple[str, str]:
    """Take NAME and TYPE from --name/--type or from the front of the positional arguments."""
    extra = list(kw["extra"])
    name = kw.pop("name_") or (extra.pop(0) if extra else None)
    ptype = kw.pop("type_") or (extra.pop(0) if extra else None)
    if not name or not ptype:
        raise InvalidConfigError("a pool name and type are needed", hint="NAME TYPE [...]")
    kw["extra"] = tuple(extra)
    return name, ptype


def _source_args(kw: dict[str, Any]) -> dict[str, str | None]:
    extra = kw.pop("extra")
    if len(extra) > len(SOURCE_KEYS):
        raise InvalidConfigError(
            f"too many arguments: {' '.join(extra[len(SOURCE_KEYS) :])}",
            hint="positional order: source-host source-path source-dev source-name target",
        )
    for key, value in zip(SOURCE_KEYS, extra, strict=False):
        if kw.get(key) not in (None, "") and value not in ("", "-"):
            raise InvalidConfigError(f"--{key.replace('_', '-')} given twice")
        if value not in ("", "-"):
            kw[key] = value
    return {k: kw.get(k) for k in (*SOURCE_KEYS, "source_format", "auth_type", "auth_username",
                                  "secret_usage", "source_initiator")}  # fmt: skip


@click.command("pool-define-as")
@_as_options
@click.pass_context
def pool_define_as(ctx: click.Context, /, **kw: Any) -> None:
    """Define a pool from a set of arguments."""
    name, type = _name_type(kw)
    print_xml: bool = kw.pop("print_xml")
    source = _source_args(kw)
    pools = _pools(ctx)
    if print_xml:
        click.echo(pools.definition_xml(name, type, **source), nl=False)
        return
    pools.define_as(name, type, **source)
    click.echo(f"Pool {name} defined\n")


@click.command("pool-create-as")
@_as_options
@click.option("--build", is_flag=True, help="build the pool before starting it")
@click.option("--overwrite", is_flag=True, help="with --build: format even if data exists")
@click.option("--no-overwrite", is_flag=True, help="with --build: refuse to overwrite data")
@click.pass_context
def pool_create_as(ctx: click.Context, /, **kw: Any) -> None:
    """Create (define transiently and start) a pool from a set of arguments."""
    name, type = _name_type(kw)
    print_xml: bool = kw.pop("print_xml")
    build: bool = kw.pop("build")
    ow = _overwrite(kw.pop("overwrite"), kw.pop("no_overwrite"))
    source = _source_args(kw)
    pools = _pools(ctx)
    xml = pools.definition_xml(name, type, **source)
    if print_xml:
        click.echo(xml, nl=False)
        return
    pools.create(xml, build=build or ow is not None, overwrite=ow)
    click.echo(f"Pool {name} created\n")


@click.command("pool-define")
@click.argument("file", metavar="FILE")
@click.pass_context
def pool_define(ctx: click.Context, file: str) -> None:
    """Define (but don't start) a pool from an XML file."""
    pool, warnings = _pools(ctx).define(read_input(file))
    warn(warnings)
    click.echo(f"Pool {pool.name} defined from {file}\n")


@click.command("pool-create")
@click.argument("file", metavar="FILE")
@click.option("--build", is_flag=True, help="build the pool before starting it")
@click.option("--overwrite", is_flag=True)
@click.option("--no-overwrite", is_flag=True)
@click.pass_context
def pool_create(
    ctx: click.Context, file: str, build: bool, overwrite: bool, no_overwrite: bool
) -> None:
    """Create (start) a transient pool from an XML file."""
    ow = _overwrite(overwrite, no_overwrite)
    pool = _pools(ctx).create(read_input(file), build=build or ow is not None, overwrite=ow)
    click.echo(f"Pool {pool.name} created from {file}\n")


@click.command("pool-build")
@POOL
@click.option("--overwrite", is_flag=True, help="format even if a filesystem exists")
@click.option("--no-overwrite", is_flag=True, help="format only if no filesystem exists")
@click.pass_context
def pool_build(ctx: click.Context, pool: str, overwrite: bool, no_overwrite: bool) -> None:
    """Build a pool (make its directory, format its device)."""
    handle = _pools(ctx).get(pool)
    handle.build(overwrite=_overwrite(overwrite, no_overwrite))
    click.echo(f"Pool {handle.name} built\n")


@click.command("pool-start")
@POOL
@click.option("--build", is_flag=True, help="build the pool first")
@click.option("--overwrite", is_flag=True)
@click.option("--no-overwrite", is_flag=True)
@click.pass_context
def pool_start(
    ctx: click.Context, pool: str, build: bool, overwrite: bool, no_overwrite: bool
) -> None:
    """Start a (previously defined) inactive pool."""
    handle = _pools(ctx).get(pool)
    ow = _overwrite(overwrite, no_overwrite)
    handle.start(build=build or ow is not None, overwrite=ow)
    click.echo(f"Pool {handle.name} started\n")


def _simple(command: str, verb: Callable[[Pool], None], message: str, doc: str) -> click.Command:
    @click.command(command, help=doc)
    @POOL
    @click.pass_context
    def run(ctx: click.Context, pool: str) -> None:
        handle = _pools(ctx).get(pool)
        verb(handle)
        click.echo(message.format(name=handle.name) + "\n")

    return run


pool_destroy = _simple(
    "pool-destroy",
    lambda p: p.destroy(),
    "Pool {name} destroyed",
    "Destroy (stop) a pool; data is kept.",
)
pool_delete = _simple(
    "pool-delete", lambda p: p.delete(), "Pool {name} deleted", "Delete what pool-build made."
)
pool_undefine = _simple(
    "pool-undefine",
    lambda p: p.undefine(),
    "Pool {name} has been undefined",
    "Undefine an inactive pool.",
)
pool_refresh = _simple(
    "pool-refresh", lambda p: p.refresh(), "Pool {name} refreshed", "Refresh the list of volumes."
)


@click.command("pool-autostart")
@POOL
@click.option("--disable", is_flag=True, help="disable autostarting")
@click.pass_context
def pool_autostart(ctx: click.Context, pool: str, disable: bool) -> None:
    """Autostart a pool."""
    handle = _pools(ctx).get(pool)
    handle.set_autostart(not disable)
    click.echo(f"Pool {handle.name} {'unmarked' if disable else 'marked'} as autostarted\n")


@click.command("pool-info")
@POOL
@click.option("--bytes", "raw", is_flag=True, help="sizes in bytes")
@click.pass_context
def pool_info(ctx: click.Context, pool: str, raw: bool) -> None:
    """Storage pool information."""
    st = _pools(ctx).get(pool).info()
    size = str if raw else format_bytes
    pairs = [
        ("Name", st.name),
        ("UUID", st.uuid),
        ("State", st.state),
        ("Persistent", "yes" if st.persistent else "no"),
        ("Autostart", "yes" if st.autostart else "no"),
    ]
    if st.state == "running":
        pairs += [
            ("Capacity", size(st.capacity)),
            ("Allocation", size(st.allocation)),
            ("Available", size(st.available)),
        ]
    fields(pairs)


@click.command("pool-list")
@click.option("--all", "all_", is_flag=True, help="active and inactive pools")
@click.option("--inactive", is_flag=True, help="inactive pools only")
@click.option("--persistent", is_flag=True)
@click.option("--transient", is_flag=True)
@click.option("--autostart", is_flag=True)
@click.option("--no-autostart", is_flag=True)
@click.option("--type", "types", help="pool types, comma separated")
@click.option("--details", is_flag=True, help="capacity, allocation, free space")
@click.option("--name", "names_only", is_flag=True, help="names only")
@click.option("--uuid", "uuids_only", is_flag=True, help="UUIDs only")
@click.option("--json", "json_", is_flag=True, help="JSON output")
@click.pass_context
def pool_list(ctx: click.Context, /, all_: bool, inactive: bool, **kw: Any) -> None:
    """List pools (active ones unless --all or --inactive)."""
    pools = _pools(ctx).list(all=all_, inactive=inactive)
    if kw["persistent"]:
        pools = [p for p in pools if p.persistent]
    if kw["transient"]:
        pools = [p for p in pools if not p.persistent]
    if kw["autostart"]:
        pools = [p for p in pools if p.autostart]
    if kw["no_autostart"]:
        pools = [p for p in pools if not p.autostart]
    if kw["types"]:
        wanted = set(kw["types"].split(","))
        pools = [p for p in pools if p.type in wanted]
    if kw["json_"]:
        as_json([{**p.to_json(), "active": p.state == "running"} for p in pools])
        return
    if kw["names_only"] or kw["uuids_only"]:
        for p in pools:
            click.echo(p.name if kw["names_only"] else p.uuid)
        click.echo()
        return
    yn = {True: "yes", False: "no"}
    if kw["details"]:
        rows = [
            [
                p.name,
                p.state,
                yn[p.autostart],
                yn[p.persistent],
                format_bytes(p.capacity) if p.state == "running" else "-",
                format_bytes(p.allocation) if p.state == "running" else "-",
                format_bytes(p.available) if p.state == "running" else "-",
            ]
            for p in pools
        ]
        headers = ["Name", "State", "Autostart", "Persistent", "Capacity", "Allocation"]
        table([*headers, "Available"], rows)
        return
    state = {"running": "active", "inactive": "inactive"}
    table(
        ["Name", "State", "Autostart"], [[p.name, state[p.state], yn[p.autostart]] for p in pools]
    )


@click.command("pool-dumpxml")
@POOL
@click.option("--inactive", is_flag=True, help="the persistent definition")
@click.pass_context
def pool_dumpxml(ctx: click.Context, pool: str, inactive: bool) -> None:
    """Pool information in XML."""
    click.echo(_pools(ctx).get(pool).xml_desc(inactive=inactive), nl=False)


@click.command("pool-edit")
@POOL
@click.pass_context
def pool_edit(ctx: click.Context, pool: str) -> None:
    """Edit the pool's XML in $EDITOR."""
    from pyvirt.cli.editing import edit_loop

    pools = _pools(ctx)
    handle = pools.get(pool)

    def apply(text: str) -> tuple[str, list[str]]:
        new, warnings = pools.define(text)
        return new.name, warnings

    edit_loop("Pool", handle.name, handle.xml_desc(inactive=True), apply)


@click.command("pool-name")
@click.argument("uuid", metavar="POOL-UUID")
@click.pass_context
def pool_name(ctx: click.Context, uuid: str) -> None:
    """Convert a pool UUID to its name."""
    click.echo(_pools(ctx).get(uuid).name + "\n")


@click.command("pool-uuid")
@POOL
@click.pass_context
def pool_uuid(ctx: click.Context, pool: str) -> None:
    """Convert a pool name to its UUID."""
    click.echo(_pools(ctx).get(pool).uuid + "\n")


@click.command("pool-capabilities")
@click.pass_context
def pool_capabilities(ctx: click.Context) -> None:
    """Storage pool capabilities (XML)."""
    click.echo(_pools(ctx).capabilities(), nl=False)


@click.command("find-storage-pool-sources")
@click.argument("type", metavar="TYPE")
@click.argument("srcspec", required=False, metavar="[SRCSPEC-FILE]")
@click.option("--host", help="host to query (netfs, iscsi)")
@click.pass_context
def find_storage_pool_sources(
    ctx: click.Context, type: str, srcspec: str | None, host: str | None
) -> None:
    """Discover potential sources of pools of TYPE."""
    spec = read_input(srcspec).decode() if srcspec else None
    click.echo(_pools(ctx).find_sources(type, host=host, spec=spec), nl=False)
