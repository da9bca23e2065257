"""Output helpers shared by CLI commands: virsh-style tables and JSON (the texts come from
the click-free :mod:`pyvirt.cli.formats`, shared with the fast path)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

from pyvirt.cli.formats import MAX_INPUT, format_fields, format_json, format_table, read_input

__all__ = ["MAX_INPUT", "as_json", "fields", "read_input", "table", "warn"]


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Print a virsh-style table: a header, a dashed rule, one space of indent."""
    click.echo(format_table(headers, rows), nl=False)


def fields(pairs: Sequence[tuple[str, str]]) -> None:
    """Print ``Key:   value`` lines aligned like virsh's dominfo."""
    click.echo(format_fields(pairs), nl=False)


def as_json(data: Any) -> None:
    """Print ``data`` as indented JSON (``--json``)."""
    click.echo(format_json(data), nl=False)


def warn(warnings: Sequence[str]) -> None:
    """Print each warning as ``warning: ...`` on stderr."""
    for w in warnings:
        click.echo(f"warning: {w}", err=True)
