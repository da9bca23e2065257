"""``pyvirt bench disk DOMAIN-or-IMAGE``: cache modes × image formats in one table."""

from __future__ import annotations

import click

from pyvirt.cli.main import api
from pyvirt.cli.render import as_json, table


@click.command()
@click.argument("target", metavar="DOMAIN-or-IMAGE")
@click.option("--cache", "caches", multiple=True, help="cache mode(s) to measure (default: all)")
@click.option("--format", "formats", multiple=True,
              help="raw, qcow2, qcow2-prealloc (default: all)")  # fmt: skip
@click.option("--io", "aio", default="threads", show_default=True,
              help="aio backend for the direct modes: threads, native, io_uring")  # fmt: skip
@click.option("--block", default=4096, show_default=True, help="request size in bytes")
@click.option("--depth", default=8, show_default=True, help="requests in flight")
@click.option("--seconds", default=1.0, show_default=True, help="target time per measurement")
@click.option("--json", "as_json_", is_flag=True, help="JSON output")
@click.pass_context
def disk(
    ctx: click.Context,
    target: str,
    caches: tuple[str, ...],
    formats: tuple[str, ...],
    aio: str,
    block: int,
    depth: int,
    seconds: float,
    as_json_: bool,
) -> None:
    """Measure each disk cache mode on raw, qcow2 and preallocated qcow2 images."""
    report = api(ctx).host.bench_disk(
        target, caches=caches, formats=formats, aio=aio, block=block, depth=depth, seconds=seconds
    )
    if as_json_:
        as_json(report.to_json())
        return
    cells, took = report.cells, report.seconds
    base = next((c for c in cells if c.cache == "none" and c.format == "raw"), cells[0])
    click.echo(f"Method: {report.method}")
    click.echo(
        f"Storage: {report.directory} ({report.filesystem}); {block}-byte requests, "
        f"{depth} in flight, 64 KiB apart; aio {aio} for none/directsync\n"
    )
    rows = [
        [
            c.cache,
            c.format,
            f"{c.write_iops:,.0f}",
            f"{c.write_mib_s:.1f}",
            f"{c.read_iops:,.0f}",
            f"{c.read_mib_s:.1f}",
            f"{c.write_iops / base.write_iops:.2f}",
        ]
        for c in cells
    ]
    headers = ["Cache", "Format", "Write IOPS", "Write MiB/s", "Read IOPS", "Read MiB/s"]
    table([*headers, f"Write vs {base.format}/{base.cache}"], rows)
    click.echo(f"{len(cells)} measurements in {took:.1f} s")
