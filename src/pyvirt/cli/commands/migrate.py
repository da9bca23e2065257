"""``migrate``: move a running domain to another host, with virsh's options and messages;
``migrate-setmaxdowntime``, ``-getmaxdowntime``, ``-setspeed``, ``-getspeed``, ``-compcache``
and ``migrate-postcopy`` tune it while it runs."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from pyvirt.cli.commands.save import progress_printer
from pyvirt.cli.main import api
from pyvirt.cli.render import read_input
from pyvirt.errors import InvalidConfigError

if TYPE_CHECKING:
    from pyvirt.service.domain.migrate import LiveStatus


@click.command()
@click.argument("domain", metavar="DOMAIN")
@click.argument("desturi", metavar="DESTURI")
@click.argument("migrateuri", metavar="[MIGRATEURI]", required=False)
@click.option("--live", is_flag=True, help="live migration (the guest keeps running)")
@click.option("--offline", is_flag=True, help="move only the definition")
@click.option("--p2p", is_flag=True, help="peer-to-peer: the source host's daemon drives it")
@click.option("--direct", is_flag=True, help="accepted for virsh compatibility")
@click.option(
    "--tunnelled",
    "--tunneled",
    "tunnelled",
    is_flag=True,
    help="the stream through the daemons' channel (with --p2p)",
)
@click.option("--persistent", is_flag=True, help="define the domain on the destination")
@click.option("--undefinesource", is_flag=True, help="undefine the domain on the source")
@click.option("--suspend", is_flag=True, help="leave the domain paused on the destination")
@click.option("--copy-storage-all", is_flag=True, help="copy the disks (non-shared storage)")
@click.option("--copy-storage-inc", is_flag=True, help="copy the top images (backing there)")
@click.option("--migrate-disks", metavar="TARGETS", help="the disks to copy (vda,vdb)")
@click.option("--tls", is_flag=True, help="QEMU's TLS for the migration streams")
@click.option("--postcopy", is_flag=True, help="allow switching to post-copy")
@click.option("--postcopy-after-precopy", is_flag=True, help="switch after the first pass")
@click.option("--postcopy-bandwidth", type=click.IntRange(1), metavar="MiB/s",
              help="bandwidth of post-copy's background transfer")  # fmt: skip
@click.option("--postcopy-resume", is_flag=True, help="resume a paused post-copy migration")
@click.option("--auto-converge", is_flag=True, help="throttle the vCPUs to converge")
@click.option("--auto-converge-initial", type=click.IntRange(1, 99), metavar="PERCENT")
@click.option("--auto-converge-increment", type=click.IntRange(1, 99), metavar="PERCENT")
@click.option("--compressed", is_flag=True, help="XBZRLE compression of re-sent pages")
@click.option("--parallel", is_flag=True, help="several connections (multifd)")
@click.option("--parallel-connections", type=click.IntRange(1, 255), metavar="N")
@click.option("--bandwidth", type=click.IntRange(1), metavar="MiB/s", help="bandwidth limit")
@click.option("--timeout", type=click.IntRange(1), metavar="SECONDS")
@click.option("--timeout-suspend", is_flag=True, help="on timeout pause the guest (default)")
@click.option("--timeout-postcopy", is_flag=True, help="on timeout switch to post-copy")
@click.option("--abort-on-error", is_flag=True,
              help="cancel it if the guest stops on a disk's I/O error")  # fmt: skip
@click.option("--xml", "xml_file", metavar="FILE", help="the domain XML for the destination")
@click.option("--persistent-xml", "persistent_xml_file", metavar="FILE")
@click.option("--dname", metavar="NAME", help="the domain's name on the destination")
@click.option("--migrateuri", "migrateuri_opt", metavar="URI", help="where QEMU listens")
@click.option("--listen-address", metavar="ADDRESS", help="the destination QEMU's address")
@click.option("--verbose", is_flag=True, help="display the progress")
@click.pass_context
def migrate(
    ctx: click.Context,
    /,
    domain: str,
    desturi: str,
    migrateuri: str | None,
    live: bool,
    offline: bool,
    p2p: bool,
    persistent: bool,
    undefinesource: bool,
    suspend: bool,
    postcopy: bool,
    postcopy_after_precopy: bool,
    auto_converge: bool,
    auto_converge_initial: int | None,
    auto_converge_increment: int | None,
    compressed: bool,
    parallel: bool,
    parallel_connections: int | None,
    bandwidth: int | None,
    timeout: int | None,
    timeout_suspend: bool,
    timeout_postcopy: bool,
    xml_file: str | None,
    persistent_xml_file: str | None,
    dname: str | None,
    migrateuri_opt: str | None,
    listen_address: str | None,
    verbose: bool,
    copy_storage_all: bool,
    copy_storage_inc: bool,
    migrate_disks: str | None,
    tls: bool,
    postcopy_resume: bool,
    postcopy_bandwidth: int | None,
    tunnelled: bool,
    abort_on_error: bool,
    **_accepted: bool,
) -> None:
    """Migrate a domain to another host."""
    import pyvirt.api  # lazy
    from pyvirt.api.domain_migrate import migrate as run_migration  # lazy

    if tunnelled and not p2p:
        raise InvalidConfigError(
            "--tunnelled requires --p2p",
            hint="the source host's daemon carries the stream: add --p2p",
        )
    if offline and live:
        raise InvalidConfigError("options --live and --offline are mutually exclusive")
    if timeout_postcopy and not postcopy:
        raise InvalidConfigError("--timeout-postcopy requires --postcopy")
    if (timeout_suspend or timeout_postcopy) and timeout is None:
        raise InvalidConfigError("--timeout-suspend and --timeout-postcopy need --timeout")
    policy = pyvirt.api.MigrationPolicy(
        bandwidth=bandwidth << 20 if bandwidth else None,
        auto_converge=auto_converge or bool(auto_converge_initial or auto_converge_increment),
        auto_converge_initial=auto_converge_initial,
        auto_converge_increment=auto_converge_increment,
        compressed=compressed,
        parallel=(parallel_connections or 2) if parallel or parallel_connections else None,
        postcopy=postcopy or postcopy_after_precopy,
        postcopy_after_passes=1 if postcopy_after_precopy else None,
        postcopy_bandwidth=postcopy_bandwidth << 20 if postcopy_bandwidth else None,
        timeout=float(timeout) if timeout else None,
        timeout_action="postcopy" if timeout_postcopy else "suspend",
        abort_on_error=abort_on_error,
    )
    uri = migrateuri_opt or migrateuri
    if listen_address and not uri:
        uri = f"tcp://{listen_address}"
    progress = progress_printer("Migration") if verbose else None
    if p2p:
        from pyvirt.api.migrate_p2p import destination_from_settings, migrate_p2p  # lazy

        migrate_p2p(api(ctx), domain, destination_from_settings(desturi), live=live,
                    offline=offline, persistent=persistent, undefine_source=undefinesource,
                    suspend=suspend, dname=dname, migrate_uri=uri, policy=policy,
                    progress=progress, tunnelled=tunnelled,
                    xml=read_input(xml_file).decode() if xml_file else None,
                    persistent_xml=read_input(persistent_xml_file).decode()
                    if persistent_xml_file else None,
                    copy_storage_all=copy_storage_all, copy_storage_inc=copy_storage_inc,
                    migrate_disks=_targets(migrate_disks),
                    postcopy_resume=postcopy_resume, tls=tls)  # fmt: skip
        return
    src = api(ctx).domains.get(domain)
    run_migration(
        src,
        desturi,
        live=live,
        offline=offline,
        persistent=persistent,
        undefine_source=undefinesource,
        suspend=suspend,
        dname=dname,
        xml=read_input(xml_file).decode() if xml_file else None,
        persistent_xml=read_input(persistent_xml_file).decode() if persistent_xml_file else None,
        migrate_uri=uri,
        policy=policy,
        progress=progress,
        copy_storage_all=copy_storage_all,
        copy_storage_inc=copy_storage_inc,
        migrate_disks=_targets(migrate_disks),
        tls=tls,
        postcopy_resume=postcopy_resume,
        on_warning=lambda text: click.echo(f"warning: {text}", err=True),
    )


def _targets(migrate_disks: str | None) -> list[str] | None:
    """``--migrate-disks vda,vdb``'s targets."""
    return [t for t in migrate_disks.split(",") if t] if migrate_disks else None


# -- tuning a running migration (virsh's commands and output) --------------------------------
@click.command("migrate-setmaxdowntime")
@click.argument("domain", metavar="DOMAIN")
@click.option("--downtime", type=click.IntRange(1), required=True, metavar="MS",
              help="the longest pause the migration may end with")  # fmt: skip
@click.pass_context
def migrate_setmaxdowntime(ctx: click.Context, domain: str, downtime: int) -> None:
    """Set the maximum downtime of the domain's migration (also while it runs)."""
    api(ctx).domains.get(domain).set_migration_tuning(downtime_ms=downtime)


@click.command("migrate-getmaxdowntime")
@click.argument("domain", metavar="DOMAIN")
@click.pass_context
def migrate_getmaxdowntime(ctx: click.Context, domain: str) -> None:
    """Print the maximum downtime of the domain's migration (ms)."""
    click.echo(api(ctx).domains.get(domain).migration_tuning().downtime_ms)


@click.command("migrate-setspeed")
@click.argument("domain", metavar="DOMAIN")
@click.option("--bandwidth", type=click.IntRange(0), required=True, metavar="MiB/s")
@click.option("--postcopy", is_flag=True, help="post-copy's bandwidth (0: unlimited)")
@click.pass_context
def migrate_setspeed(ctx: click.Context, domain: str, bandwidth: int, postcopy: bool) -> None:
    """Set the bandwidth limit of the domain's migration (also while it runs)."""
    dom = api(ctx).domains.get(domain)
    if postcopy:
        dom.set_migration_tuning(postcopy_bandwidth=bandwidth << 20)
    else:
        dom.set_migration_tuning(bandwidth=bandwidth << 20)


@click.command("migrate-getspeed")
@click.argument("domain", metavar="DOMAIN")
@click.option("--postcopy", is_flag=True, help="post-copy's bandwidth (0: unlimited)")
@click.pass_context
def migrate_getspeed(ctx: click.Context, domain: str, postcopy: bool) -> None:
    """Print the bandwidth limit of the domain's migration (MiB/s)."""
    t = api(ctx).domains.get(domain).migration_tuning()
    click.echo((t.postcopy_bandwidth if postcopy else t.bandwidth) >> 20)


@click.command("migrate-compcache")
@click.argument("domain", metavar="DOMAIN")
@click.option("--size", type=click.IntRange(0), metavar="BYTES", help="set the cache size")
@click.pass_context
def migrate_compcache(ctx: click.Context, domain: str, size: int | None) -> None:
    """Get or set the XBZRLE compression cache of the domain's migration."""
    dom = api(ctx).domains.get(domain)
    t = dom.set_migration_tuning(compcache=size) if size is not None else dom.migration_tuning()
    value, unit = float(t.compcache), "B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            break
        value /= 1024
    click.echo(f"Compression cache: {value:.3f} {unit}")


@click.command("migrate-postcopy")
@click.argument("domain", metavar="DOMAIN")
@click.pass_context
def migrate_postcopy(ctx: click.Context, domain: str) -> None:
    """Switch the domain's running migration to post-copy."""
    api(ctx).domains.get(domain).migration_start_postcopy()


def migration_job_lines(status: LiveStatus, *, completed: bool = False) -> list[str]:
    """``domjobinfo``'s lines for a running outgoing migration, or with *completed* for the
    last completed one (virsh's layout)."""
    from pyvirt.api.values import format_bytes  # lazy

    def row(key: str, value: str) -> str:
        return f"{key:<17} {value:<12}".rstrip()

    lines = [
        row("Job type:", "Completed" if completed else "Unbounded"),
        row("Operation:", "Outgoing migration"),
        row("Time elapsed:", f"{status.elapsed_ms:<12} ms"),
        row("Data processed:", format_bytes(status.transferred)),
        row("Data remaining:", format_bytes(status.remaining)),
        row("Data total:", format_bytes(status.total)),
        row("Memory bandwidth:", f"{format_bytes(status.rate)}/s"),
        row("Dirty rate:", f"{format_bytes(status.dirty_rate)}/s"),
        row("Iteration:", str(status.iteration)),
    ]
    if completed:
        if status.downtime_ms is not None:
            lines.append(row("Total downtime:", f"{status.downtime_ms:<12} ms"))
    elif status.expected_downtime_ms is not None:
        lines.append(row("Expected downtime:", f"{status.expected_downtime_ms:<12} ms"))
    return lines
