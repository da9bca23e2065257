"""``cluster init | join | leave | list | status``: this host's cluster on etcd (issue 16)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import click

from pyvirt.cli.main import api
from pyvirt.cli.render import as_json, fields, read_input, table
from pyvirt.errors import OperationFailedError

if TYPE_CHECKING:
    from pyvirt.api.cluster import ClusterStatus

_ETCD_HELP = "etcd client URLs, comma-separated (http://HOST:2379,...)"


def _address_option(f: click.decorators.FC) -> click.decorators.FC:
    return click.option(
        "--address",
        default="",
        metavar="URI",
        help="this host's pyvirtd for the other hosts (pyvirt+tls://HOST:PORT/)",
    )(f)


def _tls_options(f: click.decorators.FC) -> click.decorators.FC:
    for name, what in (("key", "client key"), ("cert", "client certificate"), ("ca", "CA bundle")):
        f = click.option(
            f"--etcd-{name}",
            metavar="FILE",
            type=click.Path(dir_okay=False, resolve_path=True),  # absolute: pyvirtd reads it
            help=f"etcd {what} (PEM)",
        )(f)
    return f


def _kernel_watchdog_option(f: click.decorators.FC) -> click.decorators.FC:
    return click.option(
        "--kernel-watchdog/--no-kernel-watchdog", default=True, show_default=True,
        help="arm /dev/watchdog (softdog) while HA guests run here",
    )(f)  # fmt: skip


def _daemon_hold_option(f: click.decorators.FC) -> click.decorators.FC:
    return click.option(
        "--daemon-hold", type=click.FloatRange(0, 3600), default=120.0, show_default=True,
        metavar="SECONDS",
        help="how long the watchdog holds the lease (HA guests keep running) after pyvirtd is "
        "killed or hangs; 0: fence them at the deadline",
    )(f)  # fmt: skip


def _said(ctx: click.Context, host: str, cluster: str, verb: str) -> None:
    click.echo(f"Host {host} {verb} cluster {cluster}")
    if not api(ctx).uri.startswith(("pyvirt:///embed", "pyvirt:///session")):
        return
    # embedded: nobody keeps the lease alive until pyvirtd runs
    click.echo("warning: pyvirtd is not running: this host shows as down until it runs", err=True)


@click.group("cluster")
def cluster() -> None:
    """Hosts sharing definitions through etcd: init, join, leave, list, status, evacuate."""


@cluster.command("init")
@click.option("--etcd", "etcd", required=True, metavar="URL[,URL...]", help=_ETCD_HELP)
@click.option("--name", "name", default="pyvirt", show_default=True, help="the cluster's name")
@click.option("--host", "host", metavar="NAME", help="this host's name (default: its hostname)")
@_address_option
@click.option("--ttl", type=click.IntRange(2, 300), default=8, show_default=True,
              metavar="SECONDS", help="a host's lease")  # fmt: skip
@click.option("--renew", type=click.FloatRange(0.05, 100), default=1.0, show_default=True,
              metavar="SECONDS", help="between lease renewals")  # fmt: skip
@_tls_options
@_kernel_watchdog_option
@_daemon_hold_option
@click.pass_context
def cluster_init(
    ctx: click.Context,
    /,
    etcd: str,
    name: str,
    host: str | None,
    address: str,
    ttl: int,
    renew: float,
    etcd_ca: str | None,
    etcd_cert: str | None,
    etcd_key: str | None,
    kernel_watchdog: bool,
    daemon_hold: float,
) -> None:
    """Create a cluster in etcd with this host as its first member."""
    config = api(ctx).cluster.init(
        etcd, name=name, host=host, address=address, ttl=ttl, renew=renew,
        etcd_ca=etcd_ca, etcd_cert=etcd_cert, etcd_key=etcd_key, kernel_watchdog=kernel_watchdog,
        daemon_hold=daemon_hold,
    )  # fmt: skip
    _said(ctx, config.host, config.cluster, "created")


@cluster.command("join")
@click.option("--etcd", "etcd", required=True, metavar="URL[,URL...]", help=_ETCD_HELP)
@click.option("--host", "host", metavar="NAME", help="this host's name (default: its hostname)")
@_address_option
@_tls_options
@_kernel_watchdog_option
@_daemon_hold_option
@click.pass_context
def cluster_join(
    ctx: click.Context,
    /,
    etcd: str,
    host: str | None,
    address: str,
    etcd_ca: str | None,
    etcd_cert: str | None,
    etcd_key: str | None,
    kernel_watchdog: bool,
    daemon_hold: float,
) -> None:
    """Join the cluster whose etcd is at --etcd."""
    config = api(ctx).cluster.join(
        etcd, host=host, address=address, etcd_ca=etcd_ca, etcd_cert=etcd_cert,
        etcd_key=etcd_key, kernel_watchdog=kernel_watchdog, daemon_hold=daemon_hold,
    )  # fmt: skip
    _said(ctx, config.host, config.cluster, "joined")


@cluster.command("leave")
@click.option("--force", is_flag=True, help="leave even when etcd cannot be reached")
@click.pass_context
def cluster_leave(ctx: click.Context, /, force: bool) -> None:
    """Leave the cluster (the host's registration goes; its domains stay here)."""
    conn = api(ctx)
    config = conn.cluster.membership()
    conn.cluster.leave(force=force)
    if config is not None:
        click.echo(f"Host {config.host} left cluster {config.cluster}")


def _ago(seconds: float) -> str:
    span = max(0, int(time.time() - seconds))
    if span < 120:
        return f"{span}s"
    if span < 7200:
        return f"{span // 60}m"
    return f"{span // 3600}h"


@cluster.command("list")
@click.option("--json", "as_json_", is_flag=True, help="JSON output")
@click.pass_context
def cluster_list(ctx: click.Context, /, as_json_: bool) -> None:
    """List the cluster's hosts and whether they are up."""
    hosts = api(ctx).cluster.hosts()
    if as_json_:
        as_json([h.to_json() for h in hosts])
        return
    rows = []
    for h in hosts:
        live = h.liveness
        rows.append([
            h.name,
            f"{h.state} (maintenance)" if h.maintenance else h.state,
            _ago(live.since) if live is not None else "-",
            str(h.record.cpus),
            f"{h.record.memory_kib // 1024} MiB",
            f"{live.free_kib // 1024} MiB" if live is not None else "-",
            h.record.address or "-",
        ])  # fmt: skip
    table(["Host", "State", "Up", "CPUs", "Memory", "Free", "Address"], rows)


@cluster.command("status")
@click.option("--json", "as_json_", is_flag=True, help="JSON output")
@click.pass_context
def cluster_status(ctx: click.Context, /, as_json_: bool) -> None:
    """The cluster, its etcd members and hosts, as this host sees them."""
    st = api(ctx).cluster.status()
    if as_json_:
        as_json(st.to_json())
        return
    up = sum(1 for h in st.hosts if h.state == "up")
    healthy = sum(1 for m in st.etcd if m.healthy)
    quorum = len(st.etcd) // 2 + 1
    maint = [h.name for h in st.hosts if h.maintenance]
    in_maint = f", in maintenance: {', '.join(maint)}" if maint else ""
    fields([
        ("Cluster", st.cluster.name),
        ("This host", st.host),
        ("Hosts", f"{len(st.hosts)} ({up} up{in_maint})"),
        ("etcd members", f"{len(st.etcd)} ({healthy} healthy, quorum {quorum}: "
                         f"{'yes' if healthy >= quorum else 'NO'})"),
        ("Lease", f"{st.cluster.ttl} s, renewed every {st.cluster.renew:g} s"),
        ("HA leader", st.leader or "none"),
        ("Domains", f"{len(st.domains)} ({sum(1 for d in st.domains if d.domain.ha)} HA, "
                    f"{sum(1 for d in st.domains if d.state == 'running')} running)"),
    ])  # fmt: skip
    _status_tables(st)


def _status_tables(st: ClusterStatus) -> None:
    """``cluster status``'s hosts (with the domains each owns) and domains."""
    owned: dict[str, list[str]] = {}
    for d in st.domains:
        if d.owner:
            owned.setdefault(d.owner, []).append(d.domain.name)
    rows = []
    for h in st.hosts:
        doc = h.to_json()
        state = h.state + (" (maintenance)" if doc.get("maintenance") else "")
        live = h.liveness
        rows.append([
            h.name + (" *" if h.name == st.host else ""),
            state,
            f"{live.free_kib // 1024} MiB" if live is not None else "-",
            f"{live.load:.2f}" if live is not None else "-",
            ", ".join(owned.get(h.name, [])) or "-",
        ])  # fmt: skip
    table(["Host", "State", "Free", "Load", "Owns"], rows)  # each block ends with a blank line
    if st.domains:
        table(["Domain", "Owner", "HA", "State"],
              [[d.domain.name, d.owner or "-", "yes" if d.domain.ha else "no", d.state or "-"]
               for d in st.domains])  # fmt: skip


@cluster.command("define")
@click.argument("file", metavar="FILE")
@click.option("--ha", is_flag=True, help="restart it on another host when its host dies")
@click.option("--affinity", "affinity", default="", metavar="GROUP",
              help="run on the host where the group's other domains are")  # fmt: skip
@click.option("--anti-affinity", "anti_affinity", default="", metavar="GROUP",
              help="never on a host with another domain of the group")  # fmt: skip
@click.option("--soft", is_flag=True,
              help="the groups are preferences: broken rather than find no host")  # fmt: skip
@click.pass_context
def cluster_define(
    ctx: click.Context, /, file: str, ha: bool, affinity: str, anti_affinity: str, soft: bool
) -> None:
    """Define a domain for the whole cluster from an XML file ('-': standard input)."""
    record = api(ctx).cluster.define(
        read_input(file), ha=ha, affinity=affinity, anti_affinity=anti_affinity, soft=soft
    )
    click.echo(f"Domain '{record.name}' defined in the cluster" + (" (HA)" if ha else ""))


@cluster.command("undefine")
@click.argument("name", metavar="DOMAIN")
@click.pass_context
def cluster_undefine(ctx: click.Context, /, name: str) -> None:
    """Remove a cluster domain (refused while a host owns it)."""
    api(ctx).cluster.undefine(name)
    click.echo(f"Domain '{name}' removed from the cluster")


@cluster.command("domains")
@click.option("--json", "as_json_", is_flag=True, help="JSON output")
@click.pass_context
def cluster_domains(ctx: click.Context, /, as_json_: bool) -> None:
    """List the cluster's domains and the host owning each."""
    infos = api(ctx).cluster.domains()
    if as_json_:
        as_json([i.to_json() for i in infos])
        return
    rows = [
        [i.domain.name, i.owner or "-", "yes" if i.domain.ha else "no", str(i.domain.vcpus),
         f"{i.domain.memory_kib // 1024} MiB"]
        for i in infos
    ]  # fmt: skip
    table(["Name", "Owner", "HA", "vCPUs", "Memory"], rows)


@cluster.command("start")
@click.argument("name", metavar="DOMAIN")
@click.option("--host", "host", metavar="HOST", help="start it there (default: placement)")
@click.pass_context
def cluster_start(ctx: click.Context, /, name: str, host: str | None) -> None:
    """Start a cluster domain on a host (placement picks one unless --host)."""
    where = api(ctx).cluster.start(name, host=host)
    click.echo(f"Domain '{name}' started on {where}")


@cluster.command("place")
@click.argument("name", metavar="DOMAIN")
@click.pass_context
def cluster_place(ctx: click.Context, /, name: str) -> None:
    """Show where a cluster domain would start now, and why."""
    p = api(ctx).cluster.place(name)
    rows = [
        [c.host, "yes" if c.fits else "no", f"{c.score:.3f}" if c.fits else "-", c.why or "-"]
        for c in p.candidates
    ]
    table(["Host", "Fits", "Score", "Why not"], rows)
    click.echo(f"Chosen: {p.host}")


@cluster.command("release")
@click.argument("name", metavar="DOMAIN")
@click.pass_context
def cluster_release(ctx: click.Context, /, name: str) -> None:
    """Give up this host's ownership of a shut-off cluster domain."""
    if api(ctx).cluster.release(name):
        click.echo(f"Domain '{name}' released")
    else:
        click.echo(f"Domain '{name}' was not owned by this host")


@cluster.command("evacuate")
@click.argument("host", metavar="HOST")
@click.option("--verbose", is_flag=True, help="display the progress")
@click.pass_context
def cluster_evacuate(ctx: click.Context, /, host: str, verbose: bool) -> None:
    """Put a host in maintenance and move its cluster domains off it (running ones live)."""
    from pyvirt.cli.commands.save import progress_printer  # lazy

    progress = progress_printer("Evacuation") if verbose else None
    report = api(ctx).cluster.evacuate(host, progress=progress)
    click.echo(f"Host {host} is in maintenance")
    if report.domains:
        table(["Domain", "Result"], [[d.name, d.describe()] for d in report.domains])
    else:
        click.echo("It owned no cluster domains")
    if report.failed:
        raise OperationFailedError(
            f"{len(report.failed)} of {len(report.domains)} domains could not leave host {host}",
            hint="they stay where they were, owned there; fix the cause and evacuate again",
        )


@cluster.command("restore")
@click.argument("host", metavar="HOST")
@click.pass_context
def cluster_restore(ctx: click.Context, /, host: str) -> None:
    """End a host's maintenance (no guest moves back to it by itself)."""
    if api(ctx).cluster.restore(host):
        click.echo(f"Host {host} is out of maintenance (no guest moves back by itself)")
    else:
        click.echo(f"Host {host} was not in maintenance")


def _resource_verbs(prefix: str, kind: str, what: str) -> None:
    """``cluster net-define|net-undefine`` or ``pool-define|pool-undefine``."""

    @cluster.command(f"{prefix}-define", help=f"Define a {what} on every host of the cluster "
                     "from an XML file ('-': standard input).")  # fmt: skip
    @click.argument("file", metavar="FILE")
    @click.option("--autostart", is_flag=True, help=f"start the {what} on every host")
    @click.pass_context
    def define(ctx: click.Context, /, file: str, autostart: bool) -> None:
        record = api(ctx).cluster.resource_define(kind, read_input(file), autostart=autostart)
        label = "Network" if kind == "network" else "Pool"
        click.echo(f"{label} '{record.name}' defined in the cluster")

    @cluster.command(f"{prefix}-undefine", help=f"Remove a cluster {what} from every host "
                     "(refused while a domain uses it).")  # fmt: skip
    @click.argument("name", metavar="NAME")
    @click.pass_context
    def undefine(ctx: click.Context, /, name: str) -> None:
        api(ctx).cluster.resource_undefine(kind, name)
        label = "Network" if kind == "network" else "Pool"
        click.echo(f"{label} '{name}' removed from the cluster")


_resource_verbs("net", "network", "network")
_resource_verbs("pool", "pool", "shared storage pool")


@cluster.command("resources")
@click.option("--json", "as_json_", is_flag=True, help="JSON output")
@click.pass_context
def cluster_resources(ctx: click.Context, /, as_json_: bool) -> None:
    """List the cluster's networks and shared pools."""
    found = api(ctx).cluster.resources()
    if as_json_:
        as_json([r.to_json() for r in found])
        return
    rows = [[r.kind, r.name, r.type, "yes" if r.autostart else "no"] for r in found]
    table(["Kind", "Name", "Type", "Autostart"], rows)
