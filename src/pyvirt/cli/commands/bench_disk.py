"""``pyvirt bench disk DOMAIN-or-IMAGE``: cache modes × image formats in one table."""

from __future__ import annotations

from dataclasses import asdict

import click

from pyvirt.cli.main import connection
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
    from pyvirt.service.disk import bench as disk_bench

    directory = disk_bench.bench_dir(connection(ctx).domains, target)
    cells, took = disk_bench.elapsed(
        lambda: disk_bench.run(
            directory,
            caches=caches or disk_bench.CACHE_MODES,
            formats=formats or tuple(disk_bench.FORMATS),
            aio=aio,
            block=block,
            depth=depth,
            target=seconds,
        )
    )
    if as_json_:
        as_json({"method": disk_bench.METHOD, "directory": str(directory),
                 "filesystem": disk_bench.filesystem(directory), "seconds": round(took, 1),
                 "cells": [asdict(c) for c in cells]})  # fmt: skip
        return
    base = next((c for c in cells if c.cache == "none" and c.format == "raw"), cells[0])
    click.echo(f"Method: {disk_bench.METHOD}")
    click.echo(
        f"Storage: {directory} ({disk_bench.filesystem(directory)}); {block}-byte requests, "
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
