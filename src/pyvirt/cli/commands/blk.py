"""Disk commands of domains: attach-disk, detach-disk, domblklist, domblkinfo, domblkstat,
blockresize (virsh's names, options and messages)."""

from __future__ import annotations

import click

from pyvirt.api.values import parse_size
from pyvirt.cli.main import api
from pyvirt.cli.render import as_json, table
from pyvirt.errors import InvalidConfigError

DOMAIN = click.argument("domain", metavar="DOMAIN")


def _flags(fn: click.decorators.FC) -> click.decorators.FC:
    for opt in (
        click.option("--current", is_flag=True, help="affect the current domain state"),
        click.option("--persistent", is_flag=True, help="affect the definition (and live)"),
        click.option("--config", is_flag=True, help="affect the next boot (the definition)"),
        click.option("--live", is_flag=True, help="affect the running domain"),
    ):
        fn = opt(fn)
    return fn


@click.command("attach-disk")
@DOMAIN
@click.argument("source", metavar="SOURCE")
@click.argument("target", metavar="TARGET")
@click.option("--driver", help="driver of the disk (qemu)")
@click.option("--subdriver", help="format of the image: raw, qcow2...")
@click.option("--cache", help="cache mode: none, writethrough, writeback, directsync, unsafe")
@click.option("--io", "io_mode", help="io mode: threads, native, io_uring")
@click.option("--type", "device", default="disk", show_default=True, help="disk, cdrom or floppy")
@click.option("--targetbus", help="bus: virtio, scsi, sata, ide, usb")
@click.option("--mode", help="readonly or shareable")
@click.option("--sourcetype", help="file, block, volume (SOURCE is POOL/VOLUME) or network")
@click.option("--source-protocol", help="network protocol: iscsi, nfs, nbd...")
@click.option("--source-host-name", help="network server as HOST[:PORT]")
@click.option("--serial", help="disk serial number")
@click.option("--print-xml", is_flag=True, help="print the <disk> XML instead of attaching")
@click.option(
    "--force", is_flag=True, help="attach even a host system file or a block device in use"
)
@_flags
@click.pass_context
def attach_disk(
    ctx: click.Context,
    domain: str,
    source: str,
    target: str,
    driver: str | None,
    subdriver: str | None,
    cache: str | None,
    io_mode: str | None,
    device: str,
    targetbus: str | None,
    mode: str | None,
    sourcetype: str | None,
    source_protocol: str | None,
    source_host_name: str | None,
    serial: str | None,
    print_xml: bool,
    force: bool,
    live: bool,
    config: bool,
    persistent: bool,
    current: bool,
) -> None:
    """Attach a disk to a domain (live via hotplug and/or in its definition)."""
    from pyvirt.api.domain_devices import DiskOptions, disk_xml

    opts = DiskOptions(
        source=source,
        target=target,
        driver=driver,
        subdriver=subdriver,
        cache=cache,
        io=io_mode,
        device=device,
        bus=targetbus,
        mode=mode,
        source_type=sourcetype,
        source_protocol=source_protocol,
        source_host=source_host_name,
        serial=serial,
        force=force,
    )
    if print_xml:
        click.echo(disk_xml(opts))
        return
    dom = api(ctx).domains.get(domain)
    dom.attach_disk(opts, live=live, config=config, current=current, persistent=persistent)
    click.echo("Disk attached successfully\n")


@click.command("detach-disk")
@DOMAIN
@click.argument("target", metavar="TARGET")
@_flags
@click.option("--timeout", type=float, default=30.0, show_default=True,
              help="seconds the guest gets to release the disk")  # fmt: skip
@click.pass_context
def detach_disk(
    ctx: click.Context,
    domain: str,
    target: str,
    live: bool,
    config: bool,
    persistent: bool,
    current: bool,
    timeout: float,
) -> None:
    """Detach a disk (by target name or source) from a domain."""
    dom = api(ctx).domains.get(domain)
    dom.detach_disk(
        target, live=live, config=config, current=current, persistent=persistent, timeout=timeout
    )
    click.echo("Disk detached successfully\n")


@click.command()
@DOMAIN
@click.option("--inactive", is_flag=True, help="the definition, not the running domain")
@click.option("--details", is_flag=True, help="also the type and device of each disk")
@click.option("--json", "as_json_", is_flag=True, help="JSON output")
@click.pass_context
def domblklist(
    ctx: click.Context, domain: str, inactive: bool, details: bool, as_json_: bool
) -> None:
    """List the disks of a domain."""
    entries = api(ctx).domains.get(domain).blklist(inactive=inactive)
    if as_json_:
        as_json([e.to_json() for e in entries])
    elif details:
        rows = [[e.type, e.device, e.target, e.source] for e in entries]
        table(["Type", "Device", "Target", "Source"], rows)
    else:
        table(["Target", "Source"], [[e.target, e.source] for e in entries])


def _human(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.3f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


@click.command()
@DOMAIN
@click.argument("target", metavar="TARGET", required=False)
@click.option("--all", "all_", is_flag=True, help="every disk of the domain")
@click.option("--human", is_flag=True, help="sizes with units")
@click.option("--json", "as_json_", is_flag=True, help="JSON output")
@click.pass_context
def domblkinfo(
    ctx: click.Context, domain: str, target: str | None, all_: bool, human: bool, as_json_: bool
) -> None:
    """Capacity, allocation and physical size of a domain's disk."""
    if not target and not all_:
        raise InvalidConfigError("name a disk target or pass --all")
    infos = api(ctx).domains.get(domain).blkinfo(None if all_ else target)
    fmt = _human if human else str
    if as_json_:
        as_json([i.to_json() for i in infos])
    elif all_:
        rows = [[i.target, fmt(i.capacity), fmt(i.allocation), fmt(i.physical)] for i in infos]
        table(["Target", "Capacity", "Allocation", "Physical"], rows)
    else:
        i = infos[0]
        click.echo(f"Capacity:       {fmt(i.capacity)}")
        click.echo(f"Allocation:     {fmt(i.allocation)}")
        click.echo(f"Physical:       {fmt(i.physical)}\n")


@click.command()
@DOMAIN
@click.argument("target", metavar="TARGET", required=False)
@click.option("--human", is_flag=True, help="descriptive field names")
@click.option("--json", "as_json_", is_flag=True, help="JSON output")
@click.pass_context
def domblkstat(
    ctx: click.Context, domain: str, target: str | None, human: bool, as_json_: bool
) -> None:
    """I/O statistics of a running domain's disks."""
    stats = api(ctx).domains.get(domain).blkstat(target)
    if as_json_:
        as_json(stats)
        return
    for dev, values in stats.items():
        for key, value in values.items():
            label = key.replace("_", " ") if human else key
            click.echo(f"{dev} {label} {value}")
    click.echo()


@click.command()
@DOMAIN
@click.argument("path", metavar="PATH")
@click.argument("size", metavar="SIZE")
@click.pass_context
def blockresize(ctx: click.Context, domain: str, path: str, size: str) -> None:
    """Grow a running domain's disk (SIZE in KiB unless it has a unit)."""
    size_bytes = parse_size(size, default_unit="KiB")  # virsh: a bare number is KiB
    api(ctx).domains.get(domain).block_resize(path, size_bytes)
    click.echo(f"Block device '{path}' is resized\n")
