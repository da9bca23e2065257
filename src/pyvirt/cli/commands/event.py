"""``event``: print the daemon's events as they happen, in virsh's words.

    event 'lifecycle' for domain 'web1': Started Booted
    event 'device-added' for domain 'web1': virtio-disk1
    event 'network-lifecycle' for network 'default': Started

Events come from pyvirtd (``GET /api/v1/events``); embedded, there is nobody to report them.
"""

from __future__ import annotations

import json
import time

import click

from pyvirt.api.events import KINDS, Event, watch
from pyvirt.errors import InvalidConfigError, OperationFailedError

__all__ = ["describe", "event"]


def describe(ev: Event) -> str:
    """The virsh line of ``ev``: ``event 'lifecycle' for domain 'web1': Started Booted``."""
    what = " ".join(part for part in (ev.event, ev.detail) if part)
    return f"event '{ev.kind}' for {ev.object} '{ev.name}': {what}"


def stamp(ev: Event) -> str:
    """virsh's ``--timestamp`` prefix: ``2026-12-06 06:50:01.123+0000: ``."""
    when = ev.time or time.time()
    millis = int(when * 1000) % 1000
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(when)) + f".{millis:03d}+0000: "


@click.command()
@click.option("--domain", metavar="NAME", help="only the events of this domain")
@click.option("--event", "kind", type=click.Choice(KINDS), help="the event type to wait for")
@click.option("--all", "all_", is_flag=True, help="all event types")
@click.option("--loop", is_flag=True, help="keep printing events (default: stop after one)")
@click.option("--timeout", type=float, metavar="SECONDS", help="stop after this many seconds")
@click.option("--list", "list_", is_flag=True, help="list the event types")
@click.option("--timestamp", is_flag=True, help="prefix each event with its time")
@click.option("--json", "as_json", is_flag=True, help="one JSON object per event")
@click.pass_context
def event(
    ctx: click.Context,
    domain: str | None,
    kind: str | None,
    all_: bool,
    loop: bool,
    timeout: float | None,
    list_: bool,
    timestamp: bool,
    as_json: bool,
) -> None:
    """Wait for events of pyvirtd and print them (virsh's wording)."""
    if list_:
        for name in KINDS:
            click.echo(name)
        return
    if not kind and not all_:
        raise InvalidConfigError(
            "either --list, --event TYPE or --all is required",
            hint=f"event types: {', '.join(KINDS)}",
        )
    if timeout is not None and timeout <= 0:
        raise InvalidConfigError("--timeout must be a positive number of seconds")
    uri = ctx.find_root().obj.get("uri") if ctx.find_root().obj else None
    stream = watch(uri, kinds=None if all_ else [kind or ""], domain=domain, timeout=timeout)
    count = 0
    try:
        for ev in stream:
            count += 1
            if as_json:
                click.echo(json.dumps(ev.to_json(), sort_keys=True))
            else:
                click.echo((stamp(ev) if timestamp else "") + describe(ev))
            if not loop:
                break
    except KeyboardInterrupt:
        if not as_json:
            click.echo("event loop interrupted")
            click.echo(f"events received: {count}")
        return
    finally:
        stream.close()
    if stream.end_reason and not stream.timed_out:
        raise OperationFailedError(
            f"pyvirtd ended the event stream ({stream.end_reason})",
            hint="run the command again once pyvirtd runs",
        )
    if not as_json:
        if stream.timed_out:
            click.echo("event loop timed out")
        click.echo(f"events received: {count}")
