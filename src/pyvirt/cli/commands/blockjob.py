"""Block jobs: ``blockcommit``, ``blockpull``, ``blockcopy`` and ``blockjob`` (virsh's names,
options and messages).

As in virsh, ``--pivot``, ``--finish`` and ``--keep-overlay`` imply ``--wait`` (and
``--active`` for blockcommit), ``--timeout`` implies ``--wait``; ``--verbose`` prints
``Block Commit: [ 45 %]`` on stderr while waiting; Ctrl-C or the timeout aborts the job
(``Commit aborted``, exit status 1). ``--bandwidth`` is in MiB/s (bytes/s with ``--bytes``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from pyvirt.cli.main import api
from pyvirt.errors import InvalidConfigError, PyvirtError

if TYPE_CHECKING:
    from pyvirt.api.domain_blockjobs import BlockJobInfo, BlockJobResult

MiB = 1024 * 1024
DOMAIN = click.argument("domain", metavar="DOMAIN")
DISK = click.argument("disk", metavar="DISK")

#: kind -> virsh's job name
LABELS = {
    "pull": "Block Pull",
    "copy": "Block Copy",
    "commit": "Block Commit",
    "active-commit": "Active Block Commit",
}
#: kind -> the word of virsh's "... aborted" line
_ABORTED = {"pull": "Pull", "copy": "Copy", "commit": "Commit", "active-commit": "Commit"}


def job_progress(label: str, done: int, total: int) -> str:
    """virsh's progress text, ``Block Commit: [ 45 %]``: 100 only once nothing remains."""
    remaining = max(total - done, 0)
    pct = 100 if remaining == 0 else min(int((total - remaining) * 100.0 / total), 99)
    return f"{label}: [{pct:3d} %]"


def pretty_speed(speed: int) -> str:
    """virsh's ``Bandwidth limit`` text of ``speed`` bytes per second."""
    value, unit = float(speed), "B"
    for name in ("KiB", "MiB", "GiB", "TiB"):
        if value < 1024:
            break
        value, unit = value / 1024, name
    return f"    Bandwidth limit: {speed} bytes/s ({value:<.3f} {unit}/s)"


def info_text(job: BlockJobInfo | None, disk: str, *, raw: bool = False) -> str:
    """``blockjob --info``'s output (without the final newline)."""
    if job is None:
        return f"No current block job for {disk}"
    if raw:
        return (
            f" type={LABELS.get(job.kind, 'Unknown job')}\n bandwidth={job.bandwidth}\n"
            f" cur={job.done}\n end={job.total}"
        )
    text = job_progress(LABELS.get(job.kind, "Unknown job"), job.done, job.total)
    return text + (pretty_speed(job.bandwidth) if job.bandwidth else "")


def bandwidth_bytes(value: int | None, *, in_bytes: bool) -> int | None:
    """``--bandwidth`` in bytes per second (MiB/s unless ``--bytes``).

    :raises InvalidConfigError: negative
    """
    if value is None:
        return None
    if value < 0:
        raise InvalidConfigError(f"Scaled numeric value '{value}' for <--bandwidth> option is "
                                 "malformed or out of range")  # fmt: skip
    return value if in_bytes else value * MiB


def waiting(*, wait: bool, implied: bool, timeout: int | None, verbose: bool, async_: bool,
            names: str) -> bool:  # fmt: skip
    """Whether the command waits; ``--verbose``/``--async`` need a waiting option.

    :raises InvalidConfigError: ``--verbose`` or ``--async`` without one (virsh's message)
    """
    blocking = wait or implied or timeout is not None
    if verbose and not blocking:
        raise InvalidConfigError(f"--verbose requires at least one of {names}")
    if async_ and not blocking:
        raise InvalidConfigError(f"--async requires at least one of {names}")
    if timeout is not None and timeout < 1:
        raise InvalidConfigError("invalid timeout")
    return blocking


def exclusive(**opts: object) -> None:
    """virsh's "Options --a and --b are mutually exclusive" for the first two set.

    :raises InvalidConfigError: two of ``opts`` are set
    """
    given = [name for name, value in opts.items() if value]
    if len(given) > 1:
        a, b = (f"--{g.replace('_', '-')}" for g in given[:2])
        raise InvalidConfigError(f"Options {a} and {b} are mutually exclusive")


def outcome_text(result: BlockJobResult) -> str:
    """virsh's closing line of a waited-for job."""
    kind, outcome = result.kind, result.outcome
    if outcome == "started":
        return f"{LABELS[kind]} started"
    if outcome == "pivoted":
        return "\nSuccessfully pivoted"
    if outcome == "ready":
        return "\nNow in mirroring phase" if kind == "copy" else "\nNow in synchronized phase"
    if outcome == "finished":
        return "\nSuccessfully copied"
    if outcome == "kept-overlay":
        return "\nCommit complete, overlay image kept"
    return "\nPull complete" if kind == "pull" else "\nCommit complete"


def _printer(label: str, verbose: bool) -> Callable[[int, int], None] | None:
    if not verbose:
        return None

    def show(done: int, total: int) -> None:
        click.echo("\r" + job_progress(label, done, total), err=True, nl=False)

    return show


def _run(ctx: click.Context, kind: str, call: Callable[[], BlockJobResult]) -> None:
    """Run the job call; an abort (Ctrl-C, timeout, cancel) prints virsh's line, status 1."""
    try:
        result = call()
    except KeyboardInterrupt:
        click.echo(f"\n{_ABORTED[kind]} aborted")
        sys.exit(1)
    except PyvirtError as err:
        if err.code != "cancelled":
            raise
        click.echo(f"\n{_ABORTED[kind]} aborted")
        sys.exit(1)
    click.echo(outcome_text(result))


def _common(fn: click.decorators.FC) -> click.decorators.FC:
    for opt in (
        click.option("--bytes", "in_bytes", is_flag=True, help="the bandwidth is in bytes/s"),
        click.option("--bandwidth", type=int, help="bandwidth limit in MiB/s"),
        click.option("--async", "async_", is_flag=True,
                     help="with --wait, don't wait for cancel to finish"),
        click.option("--timeout", type=int, help="implies --wait, abort if longer (seconds)"),
        click.option("--verbose", is_flag=True, help="with --wait, display the progress"),
        click.option("--wait", is_flag=True, help="wait for job to complete"),
    ):  # fmt: skip
        fn = opt(fn)
    return fn


@click.command()
@DOMAIN
@DISK
@click.option("--base", help="path of base file to commit into (default bottom of chain)")
@click.option("--shallow", is_flag=True, help="use backing file of top as base")
@click.option("--top", help="path of top file to commit from (default top of chain)")
@click.option("--active", is_flag=True, help="trigger two-stage active commit of top file")
@click.option("--delete", is_flag=True, help="delete files that were successfully committed")
@click.option("--keep-relative", is_flag=True, help="keep the backing chain relative")
@click.option("--pivot", is_flag=True, help="implies --active --wait, pivot when commit ready")
@click.option("--keep-overlay", is_flag=True,
              help="implies --active --wait, quit when commit ready")  # fmt: skip
@_common
@click.pass_context
def blockcommit(
    ctx: click.Context,
    domain: str,
    disk: str,
    base: str | None,
    shallow: bool,
    top: str | None,
    active: bool,
    delete: bool,
    keep_relative: bool,
    pivot: bool,
    keep_overlay: bool,
    wait: bool,
    verbose: bool,
    timeout: int | None,
    async_: bool,
    bandwidth: int | None,
    in_bytes: bool,
) -> None:
    """Start a block commit operation."""
    exclusive(pivot=pivot, keep_overlay=keep_overlay)
    exclusive(base=base, shallow=shallow)
    names = "--timeout, --wait, --pivot, --keep-overlay"
    blocking = waiting(wait=wait, implied=pivot or keep_overlay, timeout=timeout,
                       verbose=verbose, async_=async_, names=names)  # fmt: skip
    active = active or pivot or keep_overlay
    speed = bandwidth_bytes(bandwidth, in_bytes=in_bytes)
    kind = "active-commit" if active else "commit"
    dom = api(ctx).domains.get(domain)
    _run(ctx, kind, lambda: dom.block_commit(
        disk, top=top, base=base, active=active, pivot=pivot, keep_overlay=keep_overlay,
        shallow=shallow, delete=delete, keep_relative=keep_relative, bandwidth=speed,
        wait=blocking,
        timeout=float(timeout) if timeout else None, progress=_printer(LABELS[kind], verbose),
    ))  # fmt: skip


@click.command()
@DOMAIN
@DISK
@click.option("--base", help="path of backing file in chain for a partial pull")
@_common
@click.pass_context
def blockpull(
    ctx: click.Context,
    domain: str,
    disk: str,
    base: str | None,
    wait: bool,
    verbose: bool,
    timeout: int | None,
    async_: bool,
    bandwidth: int | None,
    in_bytes: bool,
) -> None:
    """Populate a disk from its backing image."""
    blocking = waiting(wait=wait, implied=False, timeout=timeout, verbose=verbose,
                       async_=async_, names="--timeout, --wait")  # fmt: skip
    speed = bandwidth_bytes(bandwidth, in_bytes=in_bytes)
    dom = api(ctx).domains.get(domain)
    _run(ctx, "pull", lambda: dom.block_pull(
        disk, base=base, bandwidth=speed, wait=blocking,
        timeout=float(timeout) if timeout else None, progress=_printer("Block Pull", verbose),
    ))  # fmt: skip


@click.command()
@DOMAIN
@DISK
@click.argument("dest", metavar="DEST", required=False)
@click.option("--dest", "dest_opt", help="path of the copy to create")
@click.option("--format", "fmt", help="file format of the destination (default: the source's)")
@click.option("--shallow", is_flag=True, help="make the copy share a backing chain")
@click.option("--reuse-external", is_flag=True, help="reuse existing destination")
@click.option("--blockdev", is_flag=True, help="copy destination is a block device")
@click.option("--pivot", is_flag=True, help="implies --wait, pivot when mirroring starts")
@click.option("--finish", is_flag=True, help="implies --wait, quit when mirroring starts")
@click.option("--transient-job", is_flag=True,
              help="the copy job is not kept in the definition after a pivot")  # fmt: skip
@click.option("--xml", "xml_file", metavar="FILE", help="the destination as a <disk> XML")
@click.option("--granularity", type=click.IntRange(512), help="the dirty bitmap granularity")
@click.option("--buf-size", type=click.IntRange(1), help="maximum amount of in-flight data")
@_common
@click.pass_context
def blockcopy(
    ctx: click.Context,
    domain: str,
    disk: str,
    dest: str | None,
    dest_opt: str | None,
    fmt: str | None,
    shallow: bool,
    reuse_external: bool,
    blockdev: bool,
    pivot: bool,
    finish: bool,
    transient_job: bool,
    xml_file: str | None,
    granularity: int | None,
    buf_size: int | None,
    wait: bool,
    verbose: bool,
    timeout: int | None,
    async_: bool,
    bandwidth: int | None,
    in_bytes: bool,
) -> None:
    """Start a block copy operation."""
    from pyvirt.cli.render import read_input

    exclusive(pivot=pivot, finish=finish)
    target = dest or dest_opt
    if target and xml_file:
        raise InvalidConfigError("options --dest and --xml are mutually exclusive")
    dest_xml = read_input(xml_file).decode() if xml_file else None
    if not target and dest_xml is None:
        raise InvalidConfigError("command 'blockcopy' requires <dest> option")
    blocking = waiting(wait=wait, implied=pivot or finish, timeout=timeout, verbose=verbose,
                       async_=async_, names="--timeout, --wait, --pivot, --finish")  # fmt: skip
    speed = bandwidth_bytes(bandwidth, in_bytes=in_bytes)
    dom = api(ctx).domains.get(domain)
    _run(ctx, "copy", lambda: dom.block_copy(
        disk, target or "", format=fmt, pivot=pivot, finish=finish, shallow=shallow,
        reuse_external=reuse_external, transient_job=transient_job, blockdev=blockdev,
        bandwidth=speed, granularity=granularity, buf_size=buf_size, dest_xml=dest_xml,
        wait=blocking, timeout=float(timeout) if timeout else None,
        progress=_printer("Block Copy", verbose),
    ))  # fmt: skip


@click.command()
@DOMAIN
@DISK
@click.option("--abort", is_flag=True, help="abort the active job on the specified disk")
@click.option("--async", "async_", is_flag=True, help="implies --abort; don't wait for it")
@click.option("--pivot", is_flag=True, help="implies --abort; conclude and pivot a copy")
@click.option("--info", is_flag=True, help="get active job information (the default)")
@click.option("--raw", is_flag=True, help="implies --info; output details rather than human")
@click.option("--bandwidth", type=int, help="set the bandwidth limit in MiB/s")
@click.option("--bytes", "in_bytes", is_flag=True, help="the bandwidth is in bytes/s")
@click.pass_context
def blockjob(
    ctx: click.Context,
    domain: str,
    disk: str,
    abort: bool,
    async_: bool,
    pivot: bool,
    info: bool,
    raw: bool,
    bandwidth: int | None,
    in_bytes: bool,
) -> None:
    """Manage active block operations."""
    aborting = abort or async_ or pivot
    informing = info or raw
    exclusive(abort=aborting, info=informing, bandwidth=bandwidth is not None)
    dom = api(ctx).domains.get(domain)
    if bandwidth is not None:
        speed = bandwidth_bytes(bandwidth, in_bytes=in_bytes)
        dom.block_job_set_speed(disk, speed or 0)
        return
    if aborting:
        dom.block_job_abort(disk, pivot=pivot, wait=not async_)
        return
    click.echo(info_text(dom.block_job_info(disk), disk, raw=raw))
