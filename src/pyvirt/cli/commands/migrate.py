"""``migrate``: move a running domain to another host, with virsh's options and messages."""

from __future__ import annotations

import click

from pyvirt.cli.commands.save import progress_printer
from pyvirt.cli.main import api
from pyvirt.cli.render import read_input
from pyvirt.errors import InvalidConfigError, UnsupportedError

_NOT_YET = {
    "tunnelled": "--tunnelled (the stream through the daemons' channel)",
}


@click.command()
@click.argument("domain", metavar="DOMAIN")
@click.argument("desturi", metavar="DESTURI")
@click.argument("migrateuri", metavar="[MIGRATEURI]", required=False)
@click.option("--live", is_flag=True, help="live migration (the guest keeps running)")
@click.option("--offline", is_flag=True, help="move only the definition")
@click.option("--p2p", is_flag=True, help="peer-to-peer: accepted; this process drives both")
@click.option("--direct", is_flag=True, help="accepted for virsh compatibility")
@click.option("--tunnelled", "--tunneled", "tunnelled", is_flag=True, help="not yet supported")
@click.option("--persistent", is_flag=True, help="define the domain on the destination")
@click.option("--undefinesource", is_flag=True, help="undefine the domain on the source")
@click.option("--suspend", is_flag=True, help="leave the domain paused on the destination")
@click.option("--copy-storage-all", is_flag=True, help="copy the disks (non-shared storage)")
@click.option("--copy-storage-inc", is_flag=True, help="copy the top images (backing there)")
@click.option("--migrate-disks", metavar="TARGETS", help="the disks to copy (vda,vdb)")
@click.option("--tls", is_flag=True, help="QEMU's TLS for the migration streams")
@click.option("--postcopy", is_flag=True, help="allow switching to post-copy")
@click.option("--postcopy-after-precopy", is_flag=True, help="switch after the first pass")
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
@click.option("--abort-on-error", is_flag=True, help="accepted (an I/O error aborts anyway)")
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
    **unsupported: bool,
) -> None:
    """Migrate a domain to another host."""
    import pyvirt.api  # lazy
    from pyvirt.api.domain_migrate import migrate as run_migration  # lazy

    for key, what in _NOT_YET.items():
        if unsupported.get(key):
            raise UnsupportedError(
                f"{what} is not supported yet",
                hint="use --tls, or the direct QEMU stream (the default) on a private network",
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
        timeout=float(timeout) if timeout else None,
        timeout_action="postcopy" if timeout_postcopy else "suspend",
    )
    uri = migrateuri_opt or migrateuri
    if listen_address and not uri:
        uri = f"tcp://{listen_address}"
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
        progress=progress_printer("Migration") if verbose else None,
        copy_storage_all=copy_storage_all,
        copy_storage_inc=copy_storage_inc,
        migrate_disks=[t for t in migrate_disks.split(",") if t] if migrate_disks else None,
        tls=tls,
        on_warning=lambda text: click.echo(f"warning: {text}", err=True),
    )
