"""Storage volume commands (``vol-*``): virsh's names, arguments and messages."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from pyvirt.api.values import format_bytes, parse_size
from pyvirt.cli.main import api
from pyvirt.cli.render import as_json, fields, read_input, table
from pyvirt.errors import InvalidConfigError

if TYPE_CHECKING:
    from pyvirt.api.pools import Pool, Volume

VOL = click.argument("vol", metavar="VOL")
POOL_OPT = click.option("--pool", help="pool name or UUID (VOL is then a volume name)")


def _pool(ctx: click.Context, pool: str) -> Pool:
    return api(ctx).pools.get(pool)


def _vol(ctx: click.Context, vol: str, pool: str | None) -> Volume:
    """VOL as a name in ``pool``, or a path or key (in ``pool`` when given, else anywhere)."""
    pools = api(ctx).pools
    return pools.get(pool).volume(vol) if pool is not None else pools.volume(vol)


def _size(raw: str | None, what: str) -> int | None:
    return None if raw is None else parse_size(raw, what=what)


@click.command("vol-create-as")
@click.argument("pool", metavar="POOL")
@click.argument("name", metavar="NAME")
@click.argument("capacity", metavar="CAPACITY")
@click.option("--allocation", help="initial allocation (0: thin; = capacity: preallocated)")
@click.option("--format", "fmt", help="raw or qcow2")
@click.option("--backing-vol", help="backing volume (name in POOL or path)")
@click.option("--backing-vol-format", help="format of the backing volume")
@click.option("--prealloc-metadata", is_flag=True, help="preallocate qcow2 metadata")
@click.option("--print-xml", is_flag=True, help="print the XML instead of creating")
@click.pass_context
def vol_create_as(
    ctx: click.Context,
    /,
    pool: str,
    name: str,
    capacity: str,
    allocation: str | None,
    fmt: str | None,
    backing_vol: str | None,
    backing_vol_format: str | None,
    prealloc_metadata: bool,
    print_xml: bool,
) -> None:
    """Create a volume from a set of arguments (sizes: 10G, 512M, ...)."""
    cap = parse_size(capacity, what="capacity")
    alloc = _size(allocation, "allocation")
    if print_xml:
        xml = api(ctx).pools.volume_xml(name, cap, format=fmt or "raw", allocation=alloc)
        click.echo(xml, nl=False)
        return
    _pool(ctx, pool).create_volume(
        name,
        cap,
        format=fmt,
        allocation=alloc,
        prealloc_metadata=prealloc_metadata,
        backing_vol=backing_vol,
        backing_vol_format=backing_vol_format,
    )
    click.echo(f"Vol {name} created\n")


@click.command("vol-create")
@click.argument("pool", metavar="POOL")
@click.argument("file", metavar="FILE")
@click.option("--prealloc-metadata", is_flag=True)
@click.pass_context
def vol_create(ctx: click.Context, pool: str, file: str, prealloc_metadata: bool) -> None:
    """Create a volume from an XML file."""
    data = read_input(file)
    info = _pool(ctx, pool).create_volume_xml(data, prealloc_metadata=prealloc_metadata)
    click.echo(f"Vol {info.name} created from {file}\n")


@click.command("vol-create-from")
@click.argument("pool", metavar="POOL")
@click.argument("file", metavar="FILE")
@click.argument("vol", metavar="VOL")
@click.option("--inputpool", help="pool of the input volume")
@click.option("--prealloc-metadata", is_flag=True)
@click.pass_context
def vol_create_from(
    ctx: click.Context,
    pool: str,
    file: str,
    vol: str,
    inputpool: str | None,
    prealloc_metadata: bool,
) -> None:
    """Create a volume (format from FILE's XML) holding the data of input volume VOL."""
    data = read_input(file)
    info = _pool(ctx, pool).create_volume_from(
        data, vol, source_pool=inputpool, prealloc_metadata=prealloc_metadata
    )
    click.echo(f"Vol {info.name} created from input vol {vol}\n")


@click.command("vol-clone")
@VOL
@click.argument("newname", metavar="NEWNAME")
@POOL_OPT
@click.option("--prealloc-metadata", is_flag=True)
@click.pass_context
def vol_clone(
    ctx: click.Context, vol: str, newname: str, pool: str | None, prealloc_metadata: bool
) -> None:
    """Clone a volume (full copy, same pool and format)."""
    from pyvirt.cli.commands.job import daemon_bar

    bar = daemon_bar(ctx, "clone")
    v = _vol(ctx, vol, pool)
    if bar is None:
        v.clone(newname, prealloc_metadata=prealloc_metadata)
    else:  # through pyvirtd: a job with a progress bar; Ctrl-C cancels it
        v.clone(newname, prealloc_metadata=prealloc_metadata, progress=bar)
    click.echo(f"Vol {newname} cloned from {vol}\n")


@click.command("vol-delete")
@VOL
@POOL_OPT
@click.pass_context
def vol_delete(ctx: click.Context, vol: str, pool: str | None) -> None:
    """Delete a volume."""
    _vol(ctx, vol, pool).delete()
    click.echo(f"Vol {vol} deleted\n")


def _bar(label: str) -> Callable[[int, int], None] | None:
    """A progress bar on stderr, only when stderr is a terminal."""
    if not sys.stderr.isatty():
        return None
    last = [0.0]

    def show(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] < 0.1 and done < total:
            return
        last[0] = now
        pct = 100 * done // total if total else 100
        filled = pct * 30 // 100
        sys.stderr.write(f"\r{label} [{'#' * filled}{' ' * (30 - filled)}] {pct:3d}%")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return show


def _stream_options(f: Callable[..., Any]) -> Callable[..., Any]:
    for opt in (
        click.option("--sparse", is_flag=True, help="keep holes as holes"),
        click.option("--length", help="bytes to transfer"),
        click.option("--offset", help="volume offset to start at"),
        POOL_OPT,
        click.argument("file", metavar="FILE"),
        VOL,
    ):
        f = opt(f)
    return f


@click.command("vol-upload")
@_stream_options
@click.pass_context
def vol_upload(
    ctx: click.Context,
    /,
    vol: str,
    file: str,
    pool: str | None,
    offset: str | None,
    length: str | None,
    sparse: bool,
) -> None:
    """Upload FILE's contents into a volume."""
    try:
        src = sys.stdin.buffer if file == "-" else open(file, "rb")  # noqa: SIM115
    except OSError as err:
        raise InvalidConfigError(f"cannot read '{file}': {err.strerror}") from None
    with src:
        _vol(ctx, vol, pool).upload(
            src,
            offset=_size(offset, "offset") or 0,
            length=_size(length, "length"),
            sparse=sparse,
            progress=_bar("upload"),
        )


@click.command("vol-download")
@_stream_options
@click.pass_context
def vol_download(
    ctx: click.Context,
    /,
    vol: str,
    file: str,
    pool: str | None,
    offset: str | None,
    length: str | None,
    sparse: bool,
) -> None:
    """Download a volume's contents into FILE."""
    try:
        dst = sys.stdout.buffer if file == "-" else open(file, "wb")  # noqa: SIM115
    except OSError as err:
        raise InvalidConfigError(f"cannot write '{file}': {err.strerror}") from None
    with dst:
        _vol(ctx, vol, pool).download(
            dst,
            offset=_size(offset, "offset") or 0,
            length=_size(length, "length"),
            sparse=sparse,
            progress=_bar("download"),
        )


@click.command("vol-dumpxml")
@VOL
@POOL_OPT
@click.pass_context
def vol_dumpxml(ctx: click.Context, vol: str, pool: str | None) -> None:
    """Volume information in XML."""
    click.echo(_vol(ctx, vol, pool).xml_desc(), nl=False)


@click.command("vol-info")
@VOL
@POOL_OPT
@click.option("--bytes", "raw", is_flag=True, help="sizes in bytes")
@click.pass_context
def vol_info(ctx: click.Context, vol: str, pool: str | None, raw: bool) -> None:
    """Storage volume information."""
    info = _vol(ctx, vol, pool).info()
    size = str if raw else format_bytes
    fields(
        [
            ("Name", info.name),
            ("Type", info.type),
            ("Capacity", size(info.capacity)),
            ("Allocation", size(info.allocation)),
        ]
    )


def _one(command: str, attr: Callable[[Volume], str], doc: str) -> click.Command:
    @click.command(command, help=doc)
    @VOL
    @POOL_OPT
    @click.pass_context
    def run(ctx: click.Context, vol: str, pool: str | None) -> None:
        click.echo(attr(_vol(ctx, vol, pool)))

    return run


vol_key = _one(
    "vol-key", lambda v: v.key, "Returns the volume key for a given volume name or path."
)
vol_path = _one(
    "vol-path", lambda v: v.path, "Returns the volume path for a given volume name or key."
)
vol_name = _one(
    "vol-name", lambda v: v.name, "Returns the volume name for a given volume key or path."
)


@click.command("vol-pool")
@VOL
@click.option("--uuid", "show_uuid", is_flag=True, help="print the pool's UUID")
@click.pass_context
def vol_pool(ctx: click.Context, vol: str, show_uuid: bool) -> None:
    """Returns the pool of a volume given its key or path."""
    found = api(ctx).pools.volume(vol)
    click.echo(found.pool.uuid if show_uuid else found.pool_name)


@click.command("vol-list")
@click.argument("pool", metavar="POOL")
@click.option("--details", is_flag=True, help="type, capacity and allocation")
@click.option("--json", "json_", is_flag=True, help="JSON output")
@click.pass_context
def vol_list(ctx: click.Context, pool: str, details: bool, json_: bool) -> None:
    """List the volumes of a pool."""
    vols = _pool(ctx, pool).volumes()
    if json_:
        as_json([v.to_json() for v in vols])
        return
    if details:
        rows = [
            [v.name, v.path, v.type, format_bytes(v.capacity), format_bytes(v.allocation)]
            for v in vols
        ]
        table(["Name", "Path", "Type", "Capacity", "Allocation"], rows)
        return
    table(["Name", "Path"], [[v.name, v.path] for v in vols])


@click.command("vol-resize")
@VOL
@click.argument("capacity", metavar="CAPACITY")
@POOL_OPT
@click.option("--allocate", is_flag=True, help="preallocate the new space")
@click.option("--delta", is_flag=True, help="CAPACITY is a change of size")
@click.option("--shrink", is_flag=True, help="allow shrinking (never below the data)")
@click.pass_context
def vol_resize(
    ctx: click.Context,
    vol: str,
    capacity: str,
    pool: str | None,
    allocate: bool,
    delta: bool,
    shrink: bool,
) -> None:
    """Resize a volume."""
    negative = capacity.startswith("-")
    size = parse_size(capacity.lstrip("-"), what="capacity")
    if negative and not (delta and shrink):
        raise InvalidConfigError("a negative size needs --delta and --shrink")
    info = _vol(ctx, vol, pool).resize(
        -size if negative else size, delta=delta, allocate=allocate, shrink=shrink
    )
    click.echo(f"Size of volume '{info.name}' successfully changed to {capacity}\n")


@click.command("vol-wipe")
@VOL
@POOL_OPT
@click.option("--algorithm", default="zero", show_default=True, help="wipe algorithm")
@click.pass_context
def vol_wipe(ctx: click.Context, vol: str, pool: str | None, algorithm: str) -> None:
    """Wipe a volume (and verify it)."""
    from pyvirt.cli.commands.job import daemon_bar

    bar = daemon_bar(ctx, "wipe")
    if bar is None:
        _vol(ctx, vol, pool).wipe(algorithm=algorithm)
    else:  # through pyvirtd: a job with a progress bar; Ctrl-C cancels it
        _vol(ctx, vol, pool).wipe(algorithm=algorithm, progress=bar)
    click.echo(f"Vol {vol} wiped\n")
