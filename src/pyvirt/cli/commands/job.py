"""Daemon jobs: ``job-list``, ``job-info``, ``job-cancel``, and virsh's ``domjobinfo`` and
``domjobabort`` for a domain's running job.

Jobs live in pyvirtd; with no daemon, the job commands say so in one line (``domjobinfo``
then shows ``Job type: None``: nothing runs as a job). :func:`daemon_bar` is the progress
bar the long commands (``vol-clone``, ``vol-wipe``, ``clone``) show when they talk to a
daemon, on a terminal only.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from pyvirt.api.values import format_bytes
from pyvirt.cli.main import api
from pyvirt.cli.render import as_json, fields, table
from pyvirt.errors import UnsupportedError

if TYPE_CHECKING:
    from pyvirt.api.domain import Domain
    from pyvirt.api.remote.jobs import JobInfo, Jobs
    from pyvirt.client.transport import Client


def _uri(ctx: click.Context) -> str | None:
    obj = ctx.find_root().obj
    return obj.get("uri") if obj else None


def _client(ctx: click.Context) -> Client | None:
    """A client of the daemon the connection goes to, None when it is embedded."""
    from pyvirt.client.transport import Client
    from pyvirt.client.uri import resolve

    target = resolve(_uri(ctx))
    return Client.for_target(target) if target.remote else None


def _jobs(ctx: click.Context) -> Jobs:
    from pyvirt.api.remote.jobs import Jobs

    client = _client(ctx)
    if client is None:
        raise UnsupportedError(
            "jobs need pyvirtd: no daemon serves this connection (start pyvirtd)"
        )
    return Jobs(client)


def daemon_bar(ctx: click.Context, label: str) -> Callable[[int, int], None] | None:
    """A progress bar on stderr when the command talks to a daemon and stderr is a terminal
    (None otherwise: scripts and embedded runs stay quiet)."""
    if not sys.stderr.isatty():
        return None
    from pyvirt.client.uri import resolve

    if not resolve(_uri(ctx)).remote:
        return None
    t0 = time.monotonic()
    last = [0.0]

    def show(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] < 0.1 and done < total:
            return
        last[0] = now
        pct = min(100, 100 * done // total) if total else 0
        filled = pct * 30 // 100
        rate = done / (now - t0) if now > t0 else 0.0
        sys.stderr.write(
            f"\r{label} [{'#' * filled}{' ' * (30 - filled)}] {pct:3d}% "
            f"{format_bytes(int(rate))}/s   "
        )
        if total and done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return show


def _when(t: float | None) -> str:
    return "-" if t is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def _progress(job: JobInfo) -> str:
    if job.unit == "percent" or not job.total:
        return f"{job.done}%" if job.unit == "percent" else format_bytes(job.done)
    return f"{100 * job.done // job.total}%"


@click.command("job-list")
@click.option("--all", "all_", is_flag=True, help="also recently finished jobs")
@click.option("--json", "as_json_", is_flag=True, help="JSON output")
@click.pass_context
def job_list(ctx: click.Context, all_: bool, as_json_: bool) -> None:
    """List the daemon's running jobs (--all: finished ones too)."""
    jobs = _jobs(ctx).list(all=all_)
    if as_json_:
        as_json([j.to_json() for j in jobs])
        return
    rows = [[j.id, j.kind, j.object, j.state, _progress(j), j.owner] for j in jobs]
    table(["Id", "Kind", "Object", "State", "Progress", "Owner"], rows)


@click.command("job-info")
@click.argument("job_id", metavar="ID")
@click.option("--json", "as_json_", is_flag=True, help="JSON output")
@click.pass_context
def job_info(ctx: click.Context, job_id: str, as_json_: bool) -> None:
    """Show one job."""
    job = _jobs(ctx).get(job_id)
    if as_json_:
        as_json(job.to_json())
        return
    pairs = [
        ("Id", job.id),
        ("Kind", job.kind),
        ("Object", job.object),
        ("State", job.state),
        ("Owner", job.owner),
        ("Started", _when(job.started)),
        ("Finished", _when(job.finished)),
        ("Time elapsed", f"{job.elapsed:.1f} s"),
    ]
    if job.unit == "bytes":
        pairs += [
            ("Data processed", format_bytes(job.done)),
            ("Data remaining", format_bytes(max(0, job.total - job.done))),
            ("Data total", format_bytes(job.total)),
            ("Rate", f"{format_bytes(int(job.rate))}/s"),
        ]
    else:
        pairs.append(("Progress", f"{job.done}%"))
    if job.error:
        pairs.append(("Error", str(job.error.get("error", ""))))
    fields(pairs)


@click.command("job-cancel")
@click.argument("job_id", metavar="ID")
@click.pass_context
def job_cancel(ctx: click.Context, job_id: str) -> None:
    """Cancel a running job; returns once it stopped and removed what it had half-made."""
    jobs = _jobs(ctx)
    jobs.cancel(job_id)
    job = jobs.get(job_id, wait=30.0)
    click.echo(f"Job {job_id} {job.state}\n")


def _row(key: str, value: str) -> str:
    return f"{key:<17} {value:<12}".rstrip()


@click.command("domjobinfo")
@click.argument("domain", metavar="DOMAIN")
@click.option("--completed", is_flag=True, help="return statistics of a recently completed job")
@click.pass_context
def domjobinfo(ctx: click.Context, domain: str, completed: bool) -> None:
    """Show the domain's running job (virsh's layout)."""
    client = _client(ctx)
    if client is None or completed:
        from pyvirt.cli.commands.checkpoint import backup_job_lines  # a backup job runs in QEMU

        dom = api(ctx).domains.get(domain)
        lines = backup_job_lines(dom, completed=completed)
        if not lines and not completed:
            lines = _migration_lines(dom)  # a migration driven by another pyvirt process
        elif not lines:  # the last completed outgoing migration, if it stayed defined here
            from pyvirt.cli.commands.migrate import migration_job_lines

            done = dom.migration_completed()
            lines = migration_job_lines(done, completed=True) if done is not None else []
        click.echo("\n".join(lines or [_row("Job type:", "None")]) + "\n")
        return
    from urllib.parse import quote

    from pyvirt.api.remote.jobs import JobInfo
    from pyvirt.client.transport import API

    doc = client.json("GET", f"{API}/domains/{quote(domain, safe='')}/job")
    if not doc or doc.get("job") is None:
        click.echo(_row("Job type:", "None") + "\n")
        return
    job = JobInfo.from_json(doc["job"])
    if job.kind == "domain-migrate":
        mig = _migration_lines(api(ctx).domains.get(domain))
        if mig:
            click.echo("\n".join(mig) + "\n")
            return
    lines = [
        _row("Job type:", "Unbounded"),
        _row("Operation:", "Backup" if job.kind == "backup" else job.kind),
        _row("Time elapsed:", f"{int(job.elapsed * 1000):<12} ms"),
        _row("Data processed:", format_bytes(job.done)),
        _row("Data remaining:", format_bytes(max(0, job.total - job.done))),
        _row("Data total:", format_bytes(job.total)),
    ]
    if job.rate:
        lines.append(_row("Data rate:", f"{format_bytes(int(job.rate))}/s"))
    click.echo("\n".join(lines) + "\n")


def _migration_lines(dom: Domain) -> list[str]:
    """``domjobinfo``'s lines of the domain's running outgoing migration ([]: none)."""
    from pyvirt.cli.commands.migrate import migration_job_lines
    from pyvirt.errors import InvalidStateError

    try:
        status = dom.migration_status()
    except InvalidStateError:  # not running
        return []
    return migration_job_lines(status) if status.active else []


@click.command("domjobabort")
@click.argument("domain", metavar="DOMAIN")
@click.option("--postcopy", is_flag=True, help="pause a migration in post-copy (resumable)")
@click.pass_context
def domjobabort(ctx: click.Context, domain: str, postcopy: bool) -> None:
    """Abort the domain's running job."""
    from pyvirt.errors import InvalidStateError

    if postcopy:  # both hosts wait; 'migrate --postcopy-resume' goes on
        api(ctx).domains.get(domain).migration_pause_postcopy()
        return
    client = _client(ctx)
    if client is None:
        dom = api(ctx).domains.get(domain)
        if dom.has_backup_job():
            dom.backup_end()
        elif _migration_lines(dom):
            dom.migration_cancel()  # its perform step sees it and lets the guest run on
        else:
            raise InvalidStateError(f"no job is active on domain '{domain}'")
        return
    from urllib.parse import quote

    from pyvirt.api.remote.jobs import JobInfo, Jobs
    from pyvirt.client.transport import API

    doc = client.json("DELETE", f"{API}/domains/{quote(domain, safe='')}/job")
    Jobs(client).get(JobInfo.from_json(doc).id, wait=30.0)
