"""Memory sizes with libvirt units, and the descriptor that exposes them in KiB.

``KB``, ``MB``, ... are powers of 1000; ``k``/``K``/``KiB``, ``M``/``MiB``, ... powers of 1024;
``b``/``bytes`` are bytes. A value without a unit is in KiB.
"""

from __future__ import annotations

from pyvirt.errors import InvalidConfigError, Problem
from pyvirt.model.xmlmap import Field, XmlNode, ensure_path, join_path, parse_int
from pyvirt.model.xmltree import find_path, prune, remove_element

_POWERS = ("K", "M", "G", "T", "P", "E")

UNITS: dict[str, int] = {"b": 1, "bytes": 1}
for _i, _p in enumerate(_POWERS, start=1):
    UNITS[f"{_p}B"] = 1000**_i
    UNITS[_p.lower() if _p == "K" else _p] = 1024**_i
    if _p == "K":
        UNITS["K"] = 1024
    UNITS[f"{_p}iB"] = 1024**_i

#: units in the order shown in messages
UNIT_NAMES: tuple[str, ...] = tuple(UNITS)


def to_kib(value: int, unit: str) -> int:
    """Convert ``value`` ``unit`` to KiB, rounding up a partial KiB.

    :raises ValueError: unknown unit
    """
    try:
        factor = UNITS[unit]
    except KeyError:
        raise ValueError(f"unit '{unit}' is not one of " + ", ".join(UNIT_NAMES)) from None
    return -(-value * factor // 1024)


def format_kib(kib: int) -> str:
    """A short human form of a KiB size, like ``16 TiB`` or ``219100 KiB``."""
    for i, name in reversed(list(enumerate(("KiB", "MiB", "GiB", "TiB", "PiB")))):
        if kib % (1024**i) == 0:
            return f"{kib // 1024**i} {name}"
    return f"{kib} KiB"


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
            raise InvalidConfigError(problems=[Problem(where, str(err))]) from None

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
