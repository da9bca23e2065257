"""CPU model commands: ``cpu-models``, ``domcapabilities``, ``cpu-baseline``, ``cpu-compare``,
``hypervisor-cpu-baseline`` and ``cpu-stats``."""

from __future__ import annotations

import sys

import click

from pyvirt.cli.main import api
from pyvirt.cli.render import as_json
from pyvirt.errors import InvalidConfigError, InvalidStateError

_NS = 1_000_000_000


def _read(path: str) -> str:
    """The text of FILE (``-``: standard input)."""
    if path == "-":
        return sys.stdin.read()
    try:
        with open(path, encoding="utf-8") as f:
            return f.read(4 * 1024 * 1024)
    except OSError as err:
        raise InvalidConfigError(
            f"cannot read '{path}': {(err.strerror or str(err)).lower()}",
            hint="give a file holding <cpu> XML",
        ) from None


@click.command(name="cpu-models")
@click.argument("arch", metavar="ARCH")
@click.option("--json", "json_", is_flag=True, help="machine-readable output")
@click.pass_context
def cpu_models(ctx: click.Context, arch: str, json_: bool) -> None:
    """Print the CPU models QEMU offers for an architecture."""
    models = api(ctx).host.cpu_models(arch)
    if json_:
        as_json(
            [
                {
                    "name": m.name,
                    "alias_of": m.alias_of,
                    "usable": not m.unavailable,
                    "deprecated": m.deprecated,
                }
                for m in models
            ]
        )
        return
    for m in models:
        click.echo(m.name)


@click.command()
@click.option("--virttype", metavar="TYPE", help="kvm or qemu (default: kvm when usable)")
@click.option("--emulatorbin", metavar="PATH", help="the QEMU binary")
@click.option("--arch", metavar="ARCH", help="guest architecture (default: the host's)")
@click.option("--machine", metavar="MACHINE", help="machine type (default: pc)")
@click.pass_context
def domcapabilities(
    ctx: click.Context,
    virttype: str | None,
    emulatorbin: str | None,
    arch: str | None,
    machine: str | None,
) -> None:
    """Print what domains can use with one emulator and machine type, as XML."""
    xml = api(ctx).host.domain_capabilities(
        virttype=virttype, emulatorbin=emulatorbin, arch=arch, machine=machine
    )
    click.echo(xml.rstrip("\n"))


@click.command(name="cpu-baseline")
@click.argument("file", metavar="FILE")
@click.option("--features", is_flag=True, help="list the model's features too")
@click.option("--migratable", is_flag=True, help="accepted: every QEMU model is migratable")
@click.pass_context
def cpu_baseline(ctx: click.Context, file: str, features: bool, migratable: bool) -> None:
    """Compute the baseline CPU of the <cpu> elements in FILE."""
    click.echo(api(ctx).host.cpu_baseline(_read(file), features=features).to_xml().rstrip())


@click.command(name="hypervisor-cpu-baseline")
@click.argument("file", metavar="FILE")
@click.option("--virttype", metavar="TYPE", help="kvm or qemu (default: kvm when usable)")
@click.option("--emulator", metavar="PATH", help="the QEMU binary")
@click.option("--arch", metavar="ARCH", help="guest architecture (default: the host's)")
@click.option("--machine", metavar="MACHINE", help="machine type (default: pc)")
@click.option("--features", is_flag=True, help="list the model's features too")
@click.option("--migratable", is_flag=True, help="accepted: every QEMU model is migratable")
@click.pass_context
def hypervisor_cpu_baseline(
    ctx: click.Context,
    file: str,
    virttype: str | None,
    emulator: str | None,
    arch: str | None,
    machine: str | None,
    features: bool,
    migratable: bool,
) -> None:
    """Compute a baseline CPU of FILE's CPUs that this hypervisor can run."""
    base = api(ctx).host.hypervisor_cpu_baseline(
        _read(file),
        virttype=virttype,
        emulatorbin=emulator,
        arch=arch,
        machine=machine,
        features=features,
    )
    click.echo(base.to_xml().rstrip())


@click.command(name="cpu-compare")
@click.argument("file", metavar="FILE")
@click.option("--error", is_flag=True, help="report an incompatible CPU as an error")
@click.option("--json", "json_", is_flag=True, help="machine-readable output")
@click.pass_context
def cpu_compare(ctx: click.Context, file: str, error: bool, json_: bool) -> None:
    """Compare the CPU described in FILE with the host CPU."""
    verdict = api(ctx).host.cpu_compare(_read(file))
    if json_:
        as_json(verdict.to_json())
    elif verdict.result == "identical":
        click.echo(f"CPU described in {file} is identical to host CPU\n")
    elif verdict.result == "superset":
        click.echo(f"Host CPU is a superset of CPU described in {file}\n")
    elif error:
        raise InvalidStateError(
            f"CPU described in {file} is incompatible with host CPU: {verdict.reason}",
            hint="'cpu-baseline' computes a CPU that both can run",
        )
    else:
        click.echo(f"CPU described in {file} is incompatible with host CPU\n")
    if verdict.result == "incompatible":
        raise SystemExit(1)


def _seconds(ns: int) -> str:
    return f"{ns // _NS:9d}.{ns % _NS:09d} seconds"


@click.command(name="cpu-stats")
@click.argument("domain", metavar="DOMAIN")
@click.option("--total", is_flag=True, help="only the total")
@click.option("--start", type=int, default=0, show_default=True, help="first host CPU shown")
@click.option("--count", type=int, default=None, help="how many host CPUs to show")
@click.option("--json", "json_", is_flag=True, help="machine-readable output")
@click.pass_context
def cpu_stats(
    ctx: click.Context, domain: str, total: bool, start: int, count: int | None, json_: bool
) -> None:
    """Show a running domain's CPU time per host CPU and in total."""
    usage = api(ctx).host.cpu_stats(domain)
    ncpus = len(usage.per_cpu)
    if start < 0 or start >= ncpus:
        raise InvalidConfigError(
            f"--start {start} is out of range", hint=f"the host has CPUs 0 to {ncpus - 1}"
        )
    if count is not None and count < 0:
        raise InvalidConfigError(f"--count {count} is negative")
    end = ncpus if count is None else min(ncpus, start + count)
    # like virsh: --total alone shows the total, --start/--count alone the CPUs; else both
    show_cpus = count is not None or start != 0 or not total
    show_total = total or not (count is not None or start != 0)
    if json_:
        out: dict[str, object] = {"source": usage.source}
        if show_total:
            out["total"] = {
                "cpu_time": usage.cpu_ns,
                "user_time": usage.user_ns,
                "system_time": usage.system_ns,
            }
        if show_cpus:
            out["cpus"] = {
                str(i): {"cpu_time": usage.per_cpu[i], "vcpu_time": usage.vcpu_per_cpu[i]}
                for i in range(start, end)
            }
        as_json(out)
        return
    if show_cpus:
        for i in range(start, end):
            click.echo(f"CPU{i}:")
            click.echo(f"\t{'cpu_time':<12} {_seconds(usage.per_cpu[i])}")
            click.echo(f"\t{'vcpu_time':<12} {_seconds(usage.vcpu_per_cpu[i])}")
    if show_total:
        click.echo("Total:")
        click.echo(f"\t{'cpu_time':<12} {_seconds(usage.cpu_ns)}")
        click.echo(f"\t{'user_time':<12} {_seconds(usage.user_ns)}")
        click.echo(f"\t{'system_time':<12} {_seconds(usage.system_ns)}")
