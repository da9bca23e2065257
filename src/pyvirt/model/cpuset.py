"""CPU and NUMA node sets in libvirt's syntax (``0-3,^2,8``): the one parser and formatter.

The same syntax serves ``<vcpu cpuset=...>``, ``<vcpupin cpuset=...>``, ``<numatune nodeset=...>``,
``virsh vcpupin 0 1-3`` and the kernel's lists in sysfs and ``/proc`` (``0-3,8,10-11``, which
just never use ``^``). Items are separated by commas; an item is a number, a range ``lo-hi``
or an exclusion ``^n`` / ``^lo-hi`` taken out of the rest, wherever it appears.
"""

from __future__ import annotations

from collections.abc import Iterable

from pyvirt.errors import InvalidConfigError

#: the largest CPU or node number accepted (libvirt's cpumask length, less one)
MAX_ID = 8191


def parse_cpuset(text: str, what: str = "CPU list", *, allow_empty: bool = False) -> set[int]:
    """Parse ``0-3,^2,8`` into ``{0, 1, 3, 8}``.

    :param what: the value's name for messages (``"nodeset"``, ``"CPU list"``)
    :param allow_empty: accept an empty text or result (sysfs lists of CPU-less nodes)
    :raises InvalidConfigError: malformed text, a number above :data:`MAX_ID`, or (unless
        ``allow_empty``) an empty set
    """
    keep: set[int] = set()
    drop: set[int] = set()
    for raw in text.split(","):
        part = raw.strip()
        if not part:
            if allow_empty and not text.strip():
                continue
            raise _malformed(what, text)
        target = keep
        if part.startswith("^"):
            target, part = drop, part[1:].strip()
        lo, sep, hi = part.partition("-")
        lo, hi = lo.strip(), hi.strip()
        if not _number(lo) or (sep and not _number(hi)):
            raise _malformed(what, text)
        first, last = int(lo), int(hi) if sep else int(lo)
        if last < first:
            raise InvalidConfigError(
                f"{what} '{text}' has a range that ends before it starts", hint="write it as 2-5"
            )
        if last > MAX_ID:
            raise InvalidConfigError(f"{what} '{text}' names {last}, above the limit of {MAX_ID}")
        target.update(range(first, last + 1))
    result = keep - drop
    if not result and not allow_empty:
        raise InvalidConfigError(f"{what} '{text}' is empty", hint="name at least one number")
    return result


def _number(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _malformed(what: str, text: str) -> InvalidConfigError:
    return InvalidConfigError(
        f"{what} '{text}' is malformed", hint="use a list like 0-3,^2,8 or 0,2"
    )


def format_cpuset(values: Iterable[int]) -> str:
    """``{0, 1, 2, 5}`` -> ``0-2,5`` (sorted, runs of two or more as ranges)."""
    items = sorted(set(values))
    out: list[str] = []
    i = 0
    while i < len(items):
        j = i
        while j + 1 < len(items) and items[j + 1] == items[j] + 1:
            j += 1
        out.append(str(items[i]) if i == j else f"{items[i]}-{items[j]}")
        i = j + 1
    return ",".join(out)
