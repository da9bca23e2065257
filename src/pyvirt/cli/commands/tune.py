"""vCPU, NUMA and memory tuning commands (virsh names, options and output)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from pyvirt.cli.main import api
from pyvirt.cli.render import as_json, table
from pyvirt.errors import InvalidConfigError

DOMAIN = click.argument("domain", metavar="DOMAIN")
F = TypeVar("F", bound=Callable[..., Any])


def scope_options(f: F) -> F:
    """``--live``, ``--config`` and ``--current`` (virsh: current is neither of the others)."""
    f = click.option("--current", is_flag=True, help="affect the current state (default)")(f)
    f = click.option("--config", is_flag=True, help="affect the persistent definition")(f)
    return click.option("--live", is_flag=True, help="affect the running domain")(f)


def _flags(live: bool, config: bool, current: bool) -> dict[str, bool]:
    if current and (live or config):  # the service's affect rule words it the same way
        other = "live" if live else "config"
        raise InvalidConfigError(f"options --current and --{other} are mutually exclusive")
    return {"live": live, "config": config}


def parse_kib(text: str, what: str = "size") -> int:
    """A virsh scaled integer (``512M``, ``1G``, ``262144``; plain numbers are KiB); -1 kept
    (memtune's "unlimited")."""
    from pyvirt.api.values import parse_size_kib

    if text.strip() == "-1":
        return -1
    return parse_size_kib(text.strip(), what=what)


def _affinity(cpus: frozenset[int]) -> str:
    from pyvirt.api.values import format_cpuset

    return format_cpuset(set(cpus))


def _pairs(pairs: list[tuple[str, Any]]) -> None:
    for key, value in pairs:
        click.echo(f"{key:<15}: {value}")
    click.echo()


@click.command()
@DOMAIN
@click.argument("count", type=int)
@click.option("--maximum", is_flag=True, help="set the maximum vCPU count (config only)")
@scope_options
@click.pass_context
def setvcpus(
    ctx: click.Context, domain: str, count: int, maximum: bool, live: bool, config: bool,
    current: bool,
) -> None:  # fmt: skip
    """Change the number of virtual CPUs (live: CPU hotplug)."""
    flags = _flags(live, config, current)
    api(ctx).domains.get(domain).set_vcpus(count, maximum=maximum, **flags)


@click.command()
@DOMAIN
@click.option("--json", "as_json_", is_flag=True, help="JSON output")
@click.pass_context
def vcpucount(ctx: click.Context, domain: str, as_json_: bool) -> None:
    """Show the maximum and current vCPU counts, config and live."""
    counts = api(ctx).domains.get(domain).vcpu_count().to_json()
    if as_json_:
        as_json(counts)
        return
    for kind in ("maximum", "current"):
        for where in ("config", "live"):
            if where in counts[kind]:
                click.echo(f"{kind:<12} {where:<14} {counts[kind][where]}")
    click.echo()


@click.command()
@DOMAIN
@click.option("--json", "as_json_", is_flag=True, help="JSON output")
@click.pass_context
def vcpuinfo(ctx: click.Context, domain: str, as_json_: bool) -> None:
    """Per vCPU: host CPU, state, CPU time and affinity."""
    from pyvirt.api.domain_tuning import host_cpu_count

    infos = api(ctx).domains.get(domain).vcpu_info()
    if as_json_:
        as_json([i.to_json() for i in infos])
        return
    ncpu = host_cpu_count()
    for i in infos:
        amap = "".join("y" if c in i.affinity else "-" for c in range(ncpu))
        click.echo(f"{'VCPU:':<16}{i.vcpu}")
        click.echo(f"{'CPU:':<16}{i.cpu}")
        click.echo(f"{'State:':<16}{i.state}")
        click.echo(f"{'CPU time:':<16}{i.cpu_time:.1f}s")
        click.echo(f"{'CPU Affinity:':<16}{amap}")
        click.echo()


@click.command()
@DOMAIN
@click.argument("vcpu", type=int, required=False)
@click.argument("cpulist", required=False)
@scope_options
@click.pass_context
def vcpupin(
    ctx: click.Context, domain: str, vcpu: int | None, cpulist: str | None, live: bool,
    config: bool, current: bool,
) -> None:  # fmt: skip
    """Show or change the host CPUs each vCPU may run on."""
    flags = _flags(live, config, current)
    dom = api(ctx).domains.get(domain)
    if cpulist is not None:
        if vcpu is None:
            raise InvalidConfigError("vcpupin needs a vCPU number with a CPU list")
        dom.pin_vcpu(vcpu, cpulist, **flags)
    else:
        pins = dom.vcpu_pins(vcpu, **flags)
        table(["VCPU", "CPU Affinity"], [[str(v), _affinity(c)] for v, c in pins.items()])


@click.command()
@DOMAIN
@click.argument("cpulist", required=False)
@scope_options
@click.pass_context
def emulatorpin(
    ctx: click.Context, domain: str, cpulist: str | None, live: bool, config: bool, current: bool
) -> None:
    """Show or change the host CPUs of the emulator threads (all non-vCPU threads)."""
    flags = _flags(live, config, current)
    dom = api(ctx).domains.get(domain)
    if cpulist is not None:
        dom.pin_emulator(cpulist, **flags)
    else:
        cpus = dom.emulator_affinity(**flags)
        click.echo("emulator: CPU Affinity")
        click.echo("-" * 34)
        click.echo(f"       *: {_affinity(cpus)}\n")


@click.command()
@DOMAIN
@click.pass_context
def iothreadinfo(ctx: click.Context, domain: str) -> None:
    """List the domain's I/O threads and their CPU affinity."""
    infos = api(ctx).domains.get(domain).iothread_info()
    if not infos:
        click.echo("No IOThreads found for the domain\n")
        return
    table(["IOThread ID", "CPU Affinity"], [[str(i.id), _affinity(i.affinity)] for i in infos])


@click.command()
@DOMAIN
@click.option("--set", "sets", multiple=True, metavar="NAME=VALUE", help="e.g. cpu_shares=512")
@click.argument("params", nargs=-1, metavar="[NAME=VALUE]...")
@scope_options
@click.pass_context
def schedinfo(
    ctx: click.Context, domain: str, sets: tuple[str, ...], params: tuple[str, ...], live: bool,
    config: bool, current: bool,
) -> None:  # fmt: skip
    """Show or set scheduler parameters (cpu_shares, vcpu_period, vcpu_quota) via cgroups."""
    settings: dict[str, int] = {}
    for item in [p for s in (*sets, *params) for p in s.split(",") if p]:
        key, _, value = item.partition("=")
        try:
            settings[key.strip()] = int(value)
        except ValueError:
            raise InvalidConfigError(
                f"scheduler parameter '{item}' is not NAME=INTEGER",
                hint="e.g. --set cpu_shares=512",
            ) from None
    flags = _flags(live, config, current)
    dom = api(ctx).domains.get(domain)
    values = dom.set_sched_params(settings, **flags) if settings else dom.sched_info(**flags)
    _pairs([("Scheduler", "posix"), *values.items()])


@click.command()
@DOMAIN
@click.option("--mode", type=click.Choice(["strict", "preferred", "interleave", "restrictive"]))
@click.option("--nodeset", metavar="SET", help="host NUMA nodes, e.g. 0-1")
@scope_options
@click.pass_context
def numatune(
    ctx: click.Context, domain: str, mode: str | None, nodeset: str | None, live: bool,
    config: bool, current: bool,
) -> None:  # fmt: skip
    """Show or set the NUMA memory policy (mode and host nodes)."""
    flags = _flags(live, config, current)
    tune = api(ctx).domains.get(domain).set_numa_tune(mode, nodeset, **flags)
    if mode is None and nodeset is None:
        _pairs(list(tune.to_json().items()))


@click.command()
@DOMAIN
@click.argument("size")
@scope_options
@click.pass_context
def setmem(
    ctx: click.Context, domain: str, size: str, live: bool, config: bool, current: bool
) -> None:
    """Change the current memory (live: through the balloon). SIZE in KiB or e.g. 512M."""
    kib, flags = parse_kib(size), _flags(live, config, current)
    api(ctx).domains.get(domain).set_memory(kib, **flags)


@click.command()
@DOMAIN
@click.argument("size")
@scope_options
@click.pass_context
def setmaxmem(
    ctx: click.Context, domain: str, size: str, live: bool, config: bool, current: bool
) -> None:
    """Change the maximum memory (persistent definition only)."""
    kib, flags = parse_kib(size), _flags(live, config, current)
    api(ctx).domains.get(domain).set_max_memory(kib, **flags)


@click.command()
@DOMAIN
@click.option("--period", type=int, help="guest statistics polling period in seconds")
@click.option("--json", "as_json_", is_flag=True, help="JSON output")
@scope_options
@click.pass_context
def dommemstat(
    ctx: click.Context, domain: str, period: int | None, as_json_: bool, live: bool,
    config: bool, current: bool,
) -> None:  # fmt: skip
    """Balloon memory statistics (KiB): actual, guest-reported values, rss."""
    flags = _flags(live, config, current) if period is not None else {}
    dom = api(ctx).domains.get(domain)
    if period is not None:
        dom.set_memory_stats_period(period, **flags)
        if config and not live:
            return
    stats = dom.memory_stats()
    if as_json_:
        as_json(stats)
        return
    for key, value in stats.items():
        click.echo(f"{key} {value}")
    click.echo()


@click.command()
@DOMAIN
@click.option("--hard-limit", metavar="SIZE", help="KiB or e.g. 512M; -1 = unlimited")
@click.option("--soft-limit", metavar="SIZE")
@click.option("--swap-hard-limit", metavar="SIZE", help="memory plus swap")
@scope_options
@click.pass_context
def memtune(
    ctx: click.Context, domain: str, hard_limit: str | None, soft_limit: str | None,
    swap_hard_limit: str | None, live: bool, config: bool, current: bool,
) -> None:  # fmt: skip
    """Show or set the memory limits of the domain's cgroup."""

    def size(text: str | None, what: str) -> int | None:
        return None if text is None else parse_kib(text, what)

    hard, soft = size(hard_limit, "hard limit"), size(soft_limit, "soft limit")
    swap, flags = size(swap_hard_limit, "swap hard limit"), _flags(live, config, current)
    values = (
        api(ctx)
        .domains.get(domain)
        .set_memory_tune(hard_limit=hard, soft_limit=soft, swap_hard_limit=swap, **flags)
    )
    if hard_limit is soft_limit is swap_hard_limit is None:
        _pairs([(k, "unlimited" if v is None else v) for k, v in values.to_json().items()])
