"""``domstats``: statistics of domains in virsh's layout (``Domain: 'NAME'`` then
``  state.state=1``, ``  cpu.time=...``, ``  block.0.rd.bytes=...`` lines)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import click

from pyvirt.cli.main import api
from pyvirt.cli.render import as_json
from pyvirt.errors import InvalidConfigError

if TYPE_CHECKING:
    from pyvirt.api.stats import DomainStats, StatsGroup

#: group option (a StatsGroup value) -> help
GROUP_OPTIONS = {
    "state": "state and reason",
    "cpu-total": "CPU time of the QEMU process",
    "balloon": "current and maximum memory, balloon statistics, RSS",
    "vcpu": "vCPU counts and each vCPU's run time",
    "interface": "NIC traffic counters (as the guest sees them)",
    "block": "disk I/O counters",
    "perf": "perf event counters (the events <perf> enables; software events only)",
    "iothread": "I/O threads' polling settings",
    "memory": "memory bandwidth monitoring (resctrl; pyvirt creates no monitors: nothing)",
    "dirtyrate": "the last dirty rate measurement (domdirtyrate-calc)",
}
#: ``--list-NAME`` filters
LIST_OPTIONS = (
    "active", "inactive", "persistent", "transient", "running", "paused", "shutoff", "other",
)  # fmt: skip


def _options(fn: click.decorators.FC) -> click.decorators.FC:
    for name in reversed(LIST_OPTIONS):
        what = "in an unknown state" if name == "other" else name
        fn = click.option(f"--list-{name}", f"list_{name}", is_flag=True,
                          help=f"only {what} domains")(fn)  # fmt: skip
    for name, text in reversed(GROUP_OPTIONS.items()):
        fn = click.option(f"--{name}", name.replace("-", "_"), is_flag=True, help=text)(fn)
    return fn


def format_records(records: Sequence[DomainStats], groups: Sequence[StatsGroup]) -> str:
    """virsh's text: per domain ``Domain: 'NAME'``, indented ``key=value`` lines, a blank line."""
    from pyvirt.api.stats import params  # lazy

    lines: list[str] = []
    for rec in records:
        lines.append(f"Domain: '{rec.name}'")
        lines += [f"  {key}={value}" for key, value in params(rec, groups)]
        lines.append("")
    return "\n".join(lines) + ("\n" if lines else "")


def _wanted_names(ctx: click.Context, flags: dict[str, bool]) -> list[str] | None:
    """Names selected by the ``--list-*`` filters (None: no filter given)."""
    from pyvirt.api.domains import State  # lazy

    if not any(flags.values()):
        return None
    sets: list[set[State]] = []
    if flags["active"] or flags["inactive"]:
        activity: set[State] = set()
        if flags["active"]:
            activity |= {State.RUNNING, State.PAUSED}
        if flags["inactive"]:
            activity.add(State.SHUTOFF)
        sets.append(activity)
    by_state = {"running": State.RUNNING, "paused": State.PAUSED, "shutoff": State.SHUTOFF,
                "other": State.UNKNOWN}  # fmt: skip
    picked = {state for flag, state in by_state.items() if flags[flag]}
    if picked:
        sets.append(picked)
    persistent = None
    if flags["persistent"] != flags["transient"]:
        persistent = flags["persistent"]
    states = set.intersection(*sets) if sets else None
    rows = api(ctx).domains.list(states=states, persistent=persistent, with_uuids=False)
    return [r.name for r in rows]


@click.command()
@click.argument("domains", nargs=-1, metavar="[DOMAIN]...")
@_options
@click.option("--json", "json_", is_flag=True, help="machine-readable output")
# virsh's --raw, --enforce (every group is supported), --backing and --nowait change nothing here
@click.option("--raw", is_flag=True, help="raw values (pyvirt prints them unformatted anyway)")
@click.option("--enforce", is_flag=True, hidden=True)
@click.option("--backing", is_flag=True, hidden=True)
@click.option("--nowait", is_flag=True, hidden=True)
@click.pass_context
def domstats(ctx: click.Context, /, domains: tuple[str, ...], json_: bool, **opts: bool) -> None:
    """Statistics of domains (all of them, or the named ones): state, CPU, balloon, vCPUs,
    NICs, disks, perf events, I/O threads and the dirty rate."""
    from pyvirt.api.stats import StatsGroup  # lazy

    for ignored in ("raw", "enforce", "backing", "nowait"):
        opts.pop(ignored, None)
    groups = [StatsGroup(g) for g in GROUP_OPTIONS if opts[g.replace("-", "_")]]
    if not groups:
        groups = list(StatsGroup)
    flags = {name: opts[f"list_{name}"] for name in LIST_OPTIONS}
    if domains and any(flags.values()):
        raise InvalidConfigError(
            "--list-* filters cannot be combined with domain names",
            hint="name the domains or filter them, not both",
        )
    names = list(domains) if domains else _wanted_names(ctx, flags)
    records = api(ctx).domains.stats(names, groups)
    if json_:
        as_json([r.to_json() for r in records])
        return
    click.echo(format_records(records, groups), nl=False)


@click.command(name="domdirtyrate-calc")
@click.argument("domain", metavar="DOMAIN")
@click.option("--seconds", type=int, default=1, show_default=True, help="how long (1-60)")
@click.option(
    "--mode", type=click.Choice(["page-sampling", "dirty-bitmap", "dirty-ring"]), default=None
)
@click.pass_context
def domdirtyrate_calc(ctx: click.Context, domain: str, seconds: int, mode: str | None) -> None:
    """Start measuring how fast a running guest dirties its memory (see domstats --dirtyrate)."""
    api(ctx).domains.get(domain).dirtyrate_calc(seconds, mode=mode)
    click.echo("Start to calculate domain's memory dirty rate successfully.")
