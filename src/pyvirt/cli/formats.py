"""Text formats of CLI output, click-free: the click commands (via :mod:`pyvirt.cli.render`)
and the fast path (:mod:`pyvirt.cli.fast`) print through the same functions, so the two print
the same bytes.

Each function returns the whole text, ending in a newline, ready for one write.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # no typing, collections or json at run time (see pyvirt.cli.fast)
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from typing import Any

__all__ = [
    "MAX_INPUT",
    "domain_cells",
    "dominfo_pairs",
    "format_fields",
    "format_json",
    "format_names",
    "format_table",
    "read_input",
]

#: an XML definition larger than this is refused by the parser anyway
MAX_INPUT = 8 * 1024 * 1024


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A virsh-style table: a header, a dashed rule, one space of indent, a blank line.

    :raises ValueError: a row with another number of cells than ``headers``
    """
    count = len(headers)
    if any(len(row) != count for row in rows):
        raise ValueError(f"every row of the table needs {count} cells")
    # one %-format per line (1000 rows: a fifth of what a join of ljust()s per line costs)
    columns = zip(*rows, strict=True) if rows else ((),) * count
    widths = [
        max(len(h), max(map(len, col), default=0)) for h, col in zip(headers, columns, strict=True)
    ]
    line = "   ".join(f"%-{w}s" for w in widths)
    out = [" " + (line % tuple(headers)).rstrip(), "-" * (sum(widths) + 3 * (count - 1) + 2)]
    out += [" " + (line % tuple(row)).rstrip() for row in rows]
    return "\n".join(out) + "\n\n"


def format_fields(pairs: Sequence[tuple[str, str]]) -> str:
    """``Key:   value`` lines aligned like virsh's dominfo, then a blank line."""
    width = max(len(k) for k, _ in pairs) + 2
    return "".join(f"{f'{key}:':<{width}}{value}".rstrip() + "\n" for key, value in pairs) + "\n"


def format_json(data: Any) -> str:
    """``--json`` output."""
    import json  # lazy: it imports re

    return json.dumps(data, indent=2, sort_keys=False) + "\n"


def domain_cells(rows: Iterable[tuple[int | None, str, str]]) -> list[list[str]]:
    """The ``Id``/``Name``/``State`` cells of ``list`` from (id, name, state) triples."""
    return [[str(i) if i is not None else "-", name, state] for i, name, state in rows]


def format_names(rows: Iterable[tuple[str, str]], *, uuids: bool, names: bool) -> str:
    """``list --name``/``--uuid`` output from (uuid, name) pairs, then a blank line."""
    lines = (" ".join(x for x in (uuids and uuid, names and name) if x) for uuid, name in rows)
    return "".join(f"{line}\n" for line in lines) + "\n"


def dominfo_pairs(info: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``dominfo``'s lines from ``DomainInfo.to_json()``."""
    pairs = [
        ("Id", str(info["id"]) if info["id"] is not None else "-"),
        ("Name", str(info["name"])),
        ("UUID", str(info["uuid"])),
    ]
    if info.get("title"):
        pairs.append(("Title", str(info["title"])))
    pairs += [
        ("OS Type", str(info["os_type"])),
        ("State", str(info["state"])),
        ("CPU(s)", str(info["vcpus"])),
    ]
    cpu = info.get("cpu_time")
    if cpu is not None:
        pairs.append(("CPU time", f"{cpu:.1f}s"))
    pairs += [
        ("Max memory", f"{info['max_memory_kib']} KiB"),
        ("Used memory", f"{info['used_memory_kib']} KiB"),
        ("Persistent", "yes" if info["persistent"] else "no"),
        ("Autostart", "enable" if info["autostart"] else "disable"),
        ("Managed save", "yes" if info.get("managed_save") else "no"),
        ("Security model", "none"),
        ("Security DOI", "0"),
    ]
    return pairs


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
