"""Sizes with libvirt's units: the one parser of sizes in pyvirt, and the XML size fields.

libvirt's scaled integers (formatdomain "Memory Allocation", virsh's ``--size 10G``) take an
optional unit after the number, matched without regard to case:

===============================  =====================
``b``, ``byte``, ``bytes``       1
``KB``                           10^3
``k``, ``K``, ``KiB``            2^10
``MB``                           10^6
``M``, ``MiB``                   2^20
``GB`` / ``G``, ``GiB``          10^9 / 2^30
``TB`` / ``T``, ``TiB``          10^12 / 2^40
``PB`` / ``P``, ``PiB``          10^15 / 2^50
``EB`` / ``E``, ``EiB``          10^18 / 2^60
===============================  =====================

A letter alone or followed by ``iB`` is a power of 1024, a letter followed by ``B`` a power of
1000. What a number without a unit means depends on the place: KiB for domain memory
(``<memory>``, ``setmem``), bytes for volumes (``<capacity>``, ``vol-create-as``). Every front
end and every XML field goes through :func:`parse_size` / :func:`unit_factor`; no other module
keeps a table of units (a unit test checks that).
"""

from __future__ import annotations

import re

from pyvirt.errors import InvalidConfigError, Problem
from pyvirt.model.xmlmap import Field, XmlNode, ensure_path, join_path, parse_int
from pyvirt.model.xmltree import find_path, prune, remove_element

_PREFIXES = "kmgtpe"

KIB = 1024
MIB = 1024**2
GIB = 1024**3
TIB = 1024**4

#: the largest size libvirt accepts (an unsigned 64-bit number of bytes)
MAX_BYTES = 2**64 - 1


def _table() -> dict[str, int]:
    table = {"b": 1, "byte": 1, "bytes": 1}
    for i, p in enumerate(_PREFIXES, start=1):
        table[f"{p.upper()}B"] = 1000**i
        table[p] = table[p.upper()] = table[f"{p.upper()}iB"] = 1024**i
    return table


#: libvirt's unit spellings (as documented) -> bytes; :func:`unit_factor` ignores case
UNITS: dict[str, int] = _table()

#: units in the order shown in messages
UNIT_NAMES: tuple[str, ...] = (
    "b", "bytes", "KB", "k", "K", "KiB", "MB", "M", "MiB", "GB", "G", "GiB",
    "TB", "T", "TiB", "PB", "P", "PiB", "EB", "E", "EiB",
)  # fmt: skip

_LOWER: dict[str, int] = {name.lower(): factor for name, factor in UNITS.items() if len(name) > 2}
_SIZE_RE = re.compile(r"\s*([0-9]+)\s*([A-Za-z]*)\s*")


def unit_factor(unit: str) -> int:
    """Bytes per ``unit``, with libvirt's rules (case does not matter).

    :raises ValueError: an unknown unit
    """
    low = unit.lower()
    if low in ("b", "byte", "bytes"):
        return 1
    if len(low) == 1 and low in _PREFIXES:
        return int(1024 ** (_PREFIXES.index(low) + 1))
    if len(low) == 2 and low[0] in _PREFIXES and low[1] == "b":
        return int(1000 ** (_PREFIXES.index(low[0]) + 1))
    if low in _LOWER:
        return _LOWER[low]
    raise ValueError(f"unit '{unit}' is not one of " + ", ".join(UNIT_NAMES))


def scale(value: int, unit: str) -> int:
    """``value`` ``unit`` in bytes.

    :raises ValueError: an unknown unit, a negative value or more than 2^64-1 bytes
    """
    if value < 0:
        raise ValueError("is negative")
    total = value * unit_factor(unit)
    if total > MAX_BYTES:
        raise ValueError("is too large")
    return total


def parse_size(raw: str, *, what: str = "size", default_unit: str = "b") -> int:
    """Parse a scaled integer like virsh: ``1024``, ``10G``, ``512MiB``, ``1GB`` -> bytes.

    :param what: the value's name for the message (``"capacity"``)
    :param default_unit: the unit of a bare number (volumes: bytes; memory: ``KiB``)
    :raises InvalidConfigError: naming ``what`` and the bad text
    """
    m = _SIZE_RE.fullmatch(raw)
    if not m:
        raise InvalidConfigError(
            f"{what} '{raw}' is not a size",
            hint="use a whole number with an optional unit: 10G, 512MiB, 1GB",
        )
    try:
        return scale(int(m.group(1)), m.group(2) or default_unit)
    except ValueError as err:
        raise InvalidConfigError(f"{what} '{raw}': {err}") from None


def parse_size_kib(raw: str, *, what: str = "size", default_unit: str = "KiB") -> int:
    """:func:`parse_size` in KiB, rounded up as libvirt does; a bare number is KiB.

    :raises InvalidConfigError: naming ``what`` and the bad text
    """
    return -(-parse_size(raw, what=what, default_unit=default_unit) // KIB)


def to_kib(value: int, unit: str) -> int:
    """Convert ``value`` ``unit`` to KiB, rounding up a partial KiB.

    :raises ValueError: an unknown unit, a negative value or a value too large
    """
    return -(-scale(value, unit) // KIB)


def format_kib(kib: int) -> str:
    """A short human form of a KiB size, like ``16 TiB`` or ``219100 KiB``."""
    for i, name in reversed(list(enumerate(("KiB", "MiB", "GiB", "TiB", "PiB")))):
        if kib % (1024**i) == 0:
            return f"{kib // 1024**i} {name}"
    return f"{kib} KiB"


def format_bytes(n: int) -> str:
    """virsh's human size: ``10.00 GiB``, ``0.00 B``."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if value < 1024 or unit == "PiB":
            return f"{value:.2f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


class Size(Field[int | None]):
    """A size in KiB stored as text (or as attribute ``attr_name``) with a ``unit`` attribute."""

    def __init__(self, path: str, attr_name: str | None = None, unit_attr: str = "unit") -> None:
        super().__init__(path)
        self.attr_name = attr_name
        self.unit_attr = unit_attr

    def read(self, node: XmlNode) -> int | None:
        el = find_path(node.element, self.path)
        if el is None:
            return None
        raw = el.get(self.attr_name) if self.attr_name else el.text
        if raw is None:
            return None
        where = node.xpath(self.path)
        what = f"{self.attr_name} '{raw}'" if self.attr_name else f"'{raw}'"
        try:
            value = parse_int(raw)
        except ValueError as err:
            raise InvalidConfigError(problems=[Problem(where, f"{what} {err}")]) from None
        if value < 0:
            raise InvalidConfigError(problems=[Problem(where, f"{what} is negative")])
        try:
            return to_kib(value, el.get(self.unit_attr, "KiB"))
        except ValueError as err:
            msg = f"{what} {err}" if str(err).startswith("is ") else str(err)
            raise InvalidConfigError(problems=[Problem(where, msg)]) from None

    def write(self, node: XmlNode, value: int | None) -> None:
        if value is None:
            el = find_path(node.element, self.path)
            if el is None:
                return
            if self.attr_name:
                el.attrib.pop(self.attr_name, "")
                el.attrib.pop(self.unit_attr, "")
                if self.path:
                    prune(el, node.element)
            else:
                parent = el.getparent()
                if parent is not None:
                    remove_element(el)
            return
        if value < 0:
            raise InvalidConfigError(problems=[Problem(node.xpath(self.path), "size is negative")])
        el = ensure_path(node, self.path)
        if self.attr_name:
            el.set(self.attr_name, str(value))
        else:
            el.text = str(value)
        el.set(self.unit_attr, "KiB")

    def known(self) -> set[str]:
        extra = {join_path(self.path, "@" + self.unit_attr)}
        if self.attr_name:
            extra.add(join_path(self.path, "@" + self.attr_name))
        return super().known() | extra


def size(path: str, attr_name: str | None = None, unit_attr: str = "unit") -> Size:
    """See :class:`Size`."""
    return Size(path, attr_name, unit_attr)
