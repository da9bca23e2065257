"""``pyvirt plan``: the capacity planner (NUMA-aligned VM sizes, placement, disk choices)."""

from __future__ import annotations

import click

from pyvirt.cli.main import api
from pyvirt.cli.render import as_json, table
from pyvirt.errors import InvalidConfigError

_GIB = 1024 * 1024


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read(1024 * 1024)
    except OSError as err:
        raise InvalidConfigError(f"cannot read '{path}': {err.strerror}") from None


def _gib(kib: int) -> str:
    value = kib / _GIB
    return f"{value:.0f} GiB" if value == int(value) else f"{value:.1f} GiB"


@click.command()
@click.option("--host", "host_file", metavar="FILE", help="host description (JSON or key=value)")
@click.option(
    "--workload",
    "workloads",
    multiple=True,
    metavar="SPEC",
    help="name=mail,count=4[,vcpus=4,memory=32G],disk=mail (repeatable)",
)
@click.option("--workloads", "workloads_file", metavar="FILE", help="workloads, one per line")
@click.option("--reserve", metavar="SIZE", help="memory kept for the host on each node")
@click.option("--json", "json_", is_flag=True, help="machine-readable output")
@click.pass_context
def plan(
    ctx: click.Context,
    host_file: str | None,
    workloads: tuple[str, ...],
    workloads_file: str | None,
    reserve: str | None,
    json_: bool,
) -> None:
    """Propose VM sizes, NUMA placement and disk provisioning for a set of workloads."""
    result = api(ctx).host.plan(
        workloads,
        host_description=_read(host_file) if host_file else None,
        workloads_text=_read(workloads_file) if workloads_file else None,
        reserve=reserve,
    )
    host = result.host
    if json_:
        as_json(result.to_json())
        return
    click.echo(
        f"Host: {host.sockets} socket(s) x {host.cores_per_socket} core(s) x "
        f"{host.threads_per_core} thread(s), {host.cpus} CPUs, {_gib(host.memory_kib)}, "
        f"{len(host.nodes)} NUMA node(s) of {host.node_cpus} CPUs / {_gib(host.node_memory_kib)}"
    )
    click.echo()
    rows = [
        [
            vm.name,
            str(vm.vcpus),
            _gib(vm.memory_kib),
            f"{vm.sockets}x{vm.cores}",
            ",".join(str(n) for n in vm.nodes),
            vm.cpuset,
            vm.provisioning,
            vm.cache,
        ]
        for vm in result.vms
    ]
    table(["VM", "vCPUs", "Memory", "Topology", "Node", "Host CPUs", "Disk", "Cache"], rows)
    for vm in result.vms:
        for note in vm.notes:
            click.echo(f"note: {vm.name}: {note}")
    click.echo("Disks:")
    seen: set[str] = set()
    for w in result.workloads:
        if w.name in seen:
            continue
        seen.add(w.name)
        d = w.disk
        size = f", {w.disk_size}" if w.disk_size else ""
        click.echo(
            f"  {w.name}: profile '{d.name}' ({d.description}): {d.provisioning}, {d.format} "
            f"preallocation={d.preallocation}, cache={d.cache}, io={d.io}{size}"
        )
        for reason in d.reasons:
            click.echo(f"    - {reason}")
    click.echo("Notes:")
    for note in result.notes:
        click.echo(f"  - {note}")
    click.echo()
