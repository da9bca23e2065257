"""Node commands: nodeinfo, freecell, nodememstats, nodecpustats, node-memory-tune, allocpages,
and numa-advise (the NUMA placement advisor on one domain)."""

from __future__ import annotations

import click

from pyvirt.cli.main import api
from pyvirt.cli.render import as_json
from pyvirt.errors import InvalidConfigError

JSON = click.option("--json", "json_", is_flag=True, help="machine-readable output")


def _pairs(pairs: list[tuple[str, str]]) -> None:
    width = max(len(k) for k, _ in pairs) + 2
    for key, value in pairs:
        click.echo(f"{key + ':':<{width}}{value}")
    click.echo()


@click.command()
@JSON
@click.pass_context
def nodeinfo(ctx: click.Context, json_: bool) -> None:
    """Show the host's CPUs, sockets, NUMA cells and memory."""
    info = api(ctx).host.nodeinfo()
    if json_:
        as_json(info.to_json())
        return
    _pairs(
        [
            ("CPU model", info.cpu_model),
            ("CPU(s)", str(info.cpus)),
            ("CPU frequency", f"{info.mhz} MHz"),
            ("CPU socket(s)", str(info.sockets)),
            ("Core(s) per socket", str(info.cores_per_socket)),
            ("Thread(s) per core", str(info.threads_per_core)),
            ("NUMA cell(s)", str(info.numa_cells)),
            ("Memory size", f"{info.memory_kib} KiB"),
        ]
    )


@click.command()
@click.argument("cellno_arg", metavar="[CELLNO]", required=False, type=int)
@click.option("--cellno", type=int, help="NUMA cell number")
@click.option("--all", "all_", is_flag=True, help="show free memory of every cell and the total")
@JSON
@click.pass_context
def freecell(
    ctx: click.Context, cellno_arg: int | None, cellno: int | None, all_: bool, json_: bool
) -> None:
    """Show free memory of the host, of one NUMA cell, or of every cell."""
    cell = cellno if cellno is not None else cellno_arg
    if cell is not None and all_:
        raise InvalidConfigError("--cellno and --all are mutually exclusive")
    cells = api(ctx).host.freecell(cell)
    total = sum(c.free_kib for c in cells)
    if json_:
        as_json({"cells": [c.to_json() for c in cells], "total_kib": total})
    elif cell is not None:
        click.echo(f"{cells[0].cell}: {cells[0].free_kib} KiB\n")
    elif all_:
        for c in cells:
            click.echo(f"{c.cell:5d}: {c.free_kib:10d} KiB")
        click.echo("--------------------")
        click.echo(f"Total: {total:10d} KiB\n")
    else:
        click.echo(f"Total: {total} KiB\n")


@click.command()
@click.option("--cell", type=int, help="one NUMA cell instead of the whole host")
@JSON
@click.pass_context
def nodememstats(ctx: click.Context, cell: int | None, json_: bool) -> None:
    """Show the host's memory statistics in KiB (total, free, buffers, cached)."""
    stats = api(ctx).host.memstats(cell)
    if json_:
        as_json(stats.to_json())
        return
    for name, value in stats.items():
        click.echo(f"{name:<7}: {value:20d} KiB")
    click.echo()


@click.command()
@click.option("--cpu", type=int, help="one host CPU instead of all")
@click.option("--percent", is_flag=True, help="percentages over one second")
@JSON
@click.pass_context
def nodecpustats(ctx: click.Context, cpu: int | None, percent: bool, json_: bool) -> None:
    """Show CPU time of the host (ns), or its use in percent over one second."""
    stats = api(ctx).host.cpustats(cpu, percent=percent)
    if json_:
        as_json(stats)
        return
    for name, value in stats.items():
        if percent:
            click.echo(f"{name + ':':<8}{value:12.1f}%")
        else:
            click.echo(f"{name + ':':<8}{int(value):20d}")
    click.echo()


@click.command(name="node-memory-tune")
@click.option("--shm-pages-to-scan", type=int, help="pages KSM scans per wake-up")
@click.option("--shm-sleep-millisecs", type=int, help="milliseconds KSM sleeps between scans")
@click.option(
    "--shm-merge-across-nodes",
    type=click.IntRange(0, 1),
    help="1: merge pages of different NUMA nodes; 0: only within a node",
)
@click.option(
    "--run",
    "run_",
    type=click.IntRange(0, 2),
    help="(pyvirt) KSM run state: 0 stop, 1 run, 2 stop and unmerge all pages",
)
@JSON
@click.pass_context
def node_memory_tune(
    ctx: click.Context,
    shm_pages_to_scan: int | None,
    shm_sleep_millisecs: int | None,
    shm_merge_across_nodes: int | None,
    run_: int | None,
    json_: bool,
) -> None:
    """Show or set the host's shared-memory (KSM) parameters."""
    state = api(ctx).host.memory_tune(
        pages_to_scan=shm_pages_to_scan,
        sleep_millisecs=shm_sleep_millisecs,
        merge_across_nodes=shm_merge_across_nodes,
        run=run_,
    )
    if json_:
        as_json(state.to_json())
        return
    click.echo("Shared memory:")
    for name, value in state.virsh_items():
        click.echo(f"\t{name:<22} {'-' if value is None else value}")
    click.echo()


@click.command()
@click.argument("args", nargs=-1, metavar="[PAGESIZE] COUNT")
@click.option("--pagesize", help="page size, e.g. 2M or 1G (default: the kernel's default)")
@click.option("--pagecount", type=int, help="number of pages")
@click.option("--cellno", type=int, help="NUMA cell to reserve on")
@click.option("--all", "all_", is_flag=True, help="reserve COUNT pages on every NUMA cell")
@click.option("--add", is_flag=True, help="add COUNT pages to the pool instead of setting it")
@click.pass_context
def allocpages(
    ctx: click.Context,
    args: tuple[str, ...],
    pagesize: str | None,
    pagecount: int | None,
    cellno: int | None,
    all_: bool,
    add: bool,
) -> None:
    """Reserve hugepages of one size on a NUMA cell, every cell, or the whole host."""
    words = list(args)
    if len(words) == 2 and pagesize is None:
        pagesize = words.pop(0)
    if len(words) == 1 and pagecount is None:
        if not words[0].isdigit():
            raise InvalidConfigError(f"page count '{words[0]}' is not a number")
        pagecount = int(words.pop())
    if words or pagecount is None:
        raise InvalidConfigError(
            "allocpages needs a page count", hint="e.g. 'allocpages --pagesize 2M 64'"
        )
    if cellno is not None and all_:
        raise InvalidConfigError("--cellno and --all are mutually exclusive")
    from pyvirt.api.host import format_page_size

    pools = api(ctx).host.allocpages(pagecount, pagesize, cell=cellno, all_cells=all_, add=add)
    for pool in pools:
        where = f"on cell {pool.node}" if pool.node is not None else "on the host"
        click.echo(
            f"{pool.total} pages of size {format_page_size(pool.size_kib)} reserved {where} "
            f"({pool.free} free)"
        )
    click.echo()


@click.command(name="numa-advise")
@click.argument("domain", metavar="DOMAIN")
@JSON
@click.pass_context
def numa_advise(ctx: click.Context, domain: str, json_: bool) -> None:
    """Check a domain's vCPUs, memory and topology against the host's NUMA layout."""
    result = api(ctx).host.numa_advice(domain)
    name, found = result.domain, result.advice
    if json_:
        as_json(result.to_json())
        return
    if not found:
        click.echo(f"Domain '{name}': no NUMA placement issues\n")
        return
    for advice in found:
        label = "refused" if advice.level == "error" else "warning"
        click.echo(f"{label}: {advice.message}")
        click.echo(f"  instead: {advice.hint}")
    click.echo()
