"""``pyvirt bench``: measurements that compare pyvirt's choices on this host.

Subcommands live in their own modules and load lazily: ``disk`` (cache modes x image
formats, issue 3) in ``bench_disk``, ``net`` (the seed's four traffic scenarios, issue 4) in
``bench_net``.
"""

from __future__ import annotations

import importlib

import click

SUBCOMMANDS = {"disk": "bench_disk:disk", "net": "bench_net:net"}


class _LazyBench(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = SUBCOMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attr = target.split(":")
        command = getattr(importlib.import_module(f"pyvirt.cli.commands.{module}"), attr)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=_LazyBench)
def bench() -> None:
    """Benchmarks: disk cache modes and formats, network scenarios."""
