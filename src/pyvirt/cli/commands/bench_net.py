"""``pyvirt bench net``: the seed's four network scenarios, measured with iperf3."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.option("-t", "--time", "seconds", type=click.IntRange(1, 60), default=3, show_default=True,
              help="seconds of each iperf3 run")  # fmt: skip
@click.option("--scenario", "numbers", type=click.IntRange(1, 4), multiple=True,
              help="run only these scenarios (repeatable; default all four)")  # fmt: skip
@click.option("--no-baseline", is_flag=True, help="skip the host-to-host iperf3 baseline")
@click.option("--cache-dir", type=click.Path(path_type=Path), help="image cache directory")
@click.option("--json", "json_", is_flag=True, help="machine-readable output")
@click.pass_context
def net(
    ctx: click.Context,
    seconds: int,
    numbers: tuple[int, ...],
    no_baseline: bool,
    cache_dir: Path | None,
    json_: bool,
) -> None:
    """Guest-to-guest throughput in the seed's four scenarios (in network namespaces)."""
    from pyvirt.cli.main import api
    from pyvirt.cli.render import as_json

    report = api(ctx).host.bench_net(
        seconds=seconds, scenarios=numbers or (1, 2, 3, 4), baseline=not no_baseline,
        cache_dir=cache_dir,
    )  # fmt: skip
    if json_:
        as_json(report.to_json())
    else:
        click.echo(report.table())
