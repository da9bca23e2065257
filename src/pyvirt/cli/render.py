"""Output helpers shared by CLI commands: virsh-style tables and JSON."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

import click


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Print a virsh-style table: a header, a dashed rule, one space of indent."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def line(cells: Sequence[str]) -> str:
        return " " + "   ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    rule = "-" * (sum(widths) + 3 * (len(widths) - 1) + 2)
    # one write, not one per row: ``list --all`` with 1000 domains spent ~5 ms in click.echo
    click.echo("\n".join([line(headers), rule, *(line(row) for row in rows), ""]))


def fields(pairs: Sequence[tuple[str, str]]) -> None:
    """Print ``Key:   value`` lines aligned like virsh's dominfo."""
    width = max(len(k) for k, _ in pairs) + 2
    for key, value in pairs:
        click.echo(f"{key + ':':<{width}}{value}".rstrip())
    click.echo()


def as_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False))


#: an XML definition larger than this is refused by the parser anyway
MAX_INPUT = 8 * 1024 * 1024


def read_input(path: str) -> bytes:
    """The bytes of an input file (``-`` = standard input), bounded by :data:`MAX_INPUT`.

    :raises InvalidConfigError: the file cannot be read
    """
    from pyvirt.errors import InvalidConfigError

    if path == "-":
        return sys.stdin.buffer.read(MAX_INPUT + 1)
    try:
        with open(path, "rb") as f:
            return f.read(MAX_INPUT + 1)
    except OSError as err:
        raise InvalidConfigError(f"cannot read '{path}': {err.strerror}") from None


def warn(warnings: Sequence[str]) -> None:
    """Print each warning as ``warning: ...`` on stderr."""
    for w in warnings:
        click.echo(f"warning: {w}", err=True)
