"""``cluster init | join | leave | list | status``: this host's cluster on etcd (issue 16)."""

from __future__ import annotations

import time

import click

from pyvirt.cli.main import api
from pyvirt.cli.render import as_json, fields, read_input, table

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
        f = click.option(f"--etcd-{name}", metavar="FILE", help=f"etcd {what} (PEM)")(f)
    return f


def _said(ctx: click.Context, host: str, cluster: str, verb: str) -> None:
    click.echo(f"Host {host} {verb} cluster {cluster}")
    if not api(ctx).uri.startswith(("pyvirt:///embed", "pyvirt:///session")):
        return
    # embedded: nobody keeps the lease alive until pyvirtd runs
    click.echo("warning: pyvirtd is not running: this host shows as down until it runs", err=True)


@click.group("cluster")
def cluster() -> None:
    """Hosts sharing definitions through etcd: init, join, leave, list, status."""


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
) -> None:
    """Create a cluster in etcd with this host as its first member."""
    config = api(ctx).cluster.init(
        etcd, name=name, host=host, address=address, ttl=ttl, renew=renew,
        etcd_ca=etcd_ca, etcd_cert=etcd_cert, etcd_key=etcd_key,
    )  # fmt: skip
    _said(ctx, config.host, config.cluster, "created")


@cluster.command("join")
@click.option("--etcd", "etcd", required=True, metavar="URL[,URL...]", help=_ETCD_HELP)
@click.option("--host", "host", metavar="NAME", help="this host's name (default: its hostname)")
@_address_option
@_tls_options
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
) -> None:
    """Join the cluster whose etcd is at --etcd."""
    config = api(ctx).cluster.join(
        etcd, host=host, address=address, etcd_ca=etcd_ca, etcd_cert=etcd_cert, etcd_key=etcd_key
    )
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
            h.state,
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
    fields([
        ("Cluster", st.cluster.name),
        ("This host", st.host),
        ("Hosts", f"{len(st.hosts)} ({up} up)"),
        ("etcd members", f"{len(st.etcd)} ({healthy} healthy, quorum {quorum}: "
                         f"{'yes' if healthy >= quorum else 'NO'})"),
        ("Lease", f"{st.cluster.ttl} s, renewed every {st.cluster.renew:g} s"),
    ])  # fmt: skip


@cluster.command("define")
@click.argument("file", metavar="FILE")
@click.option("--ha", is_flag=True, help="restart it on another host when its host dies")
@click.pass_context
def cluster_define(ctx: click.Context, /, file: str, ha: bool) -> None:
    """Define a domain for the whole cluster from an XML file ('-': standard input)."""
    record = api(ctx).cluster.define(read_input(file), ha=ha)
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
