"""pyvirt.model.units: libvirt's size units, the one size parser, and no other unit table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pyvirt.api import values
from pyvirt.errors import InvalidConfigError
from pyvirt.model import units
from pyvirt.model.domain import Domain
from pyvirt.model.xmltree import parse_xml

SRC = Path(units.__file__).parents[1]

# every unit libvirt documents, with its value in bytes
TABLE = [
    ("b", 1), ("bytes", 1), ("byte", 1),
    ("KB", 10**3), ("k", 2**10), ("K", 2**10), ("KiB", 2**10),
    ("MB", 10**6), ("M", 2**20), ("MiB", 2**20),
    ("GB", 10**9), ("G", 2**30), ("GiB", 2**30),
    ("TB", 10**12), ("T", 2**40), ("TiB", 2**40),
    ("PB", 10**15), ("P", 2**50), ("PiB", 2**50),
    ("EB", 10**18), ("E", 2**60), ("EiB", 2**60),
]  # fmt: skip


@pytest.mark.parametrize(("unit", "factor"), TABLE)
def test_unit_factor(unit: str, factor: int) -> None:
    assert units.unit_factor(unit) == factor
    # libvirt matches units without regard to case: kb is still 1000, gib still 2^30
    assert units.unit_factor(unit.lower()) == factor
    assert units.unit_factor(unit.upper()) == factor
    assert units.parse_size(f"3{unit}") == 3 * factor


@pytest.mark.parametrize(("unit", "factor"), TABLE)
def test_xml_memory_unit(unit: str, factor: int) -> None:
    xml = f"<domain type='qemu'><name>u</name><memory unit='{unit}'>3</memory></domain>"
    assert Domain(parse_xml(xml)).memory_kib == -(-3 * factor // 1024)


def test_documented_units_are_the_table() -> None:
    assert set(units.UNIT_NAMES) == {u for u, _ in TABLE} - {"byte"}
    assert all(units.UNITS[name] == dict(TABLE)[name] for name in units.UNIT_NAMES)


@pytest.mark.parametrize("unit", ["", "x", "KX", "KiBB", "Ki", "iB", "bb", "Z"])
def test_unknown_units(unit: str) -> None:
    if unit == "":
        assert units.parse_size("5") == 5
        return
    with pytest.raises(ValueError, match="is not one of"):
        units.unit_factor(unit)


def test_default_unit_and_kib() -> None:
    assert units.parse_size("5", default_unit="KiB") == 5 * 1024
    assert units.parse_size_kib("512") == 512
    assert units.parse_size_kib("1G") == 1024**2
    assert units.parse_size_kib("1GB") == 976563  # 10^9 bytes, rounded up to a whole KiB
    assert units.to_kib(1, "b") == 1
    assert units.to_kib(2048, "KB") == 2000


@pytest.mark.parametrize("text", ["", "G", "1.5G", "-1", "10XB", "ten", "1 0G", "0x10", "١G"])
def test_parse_size_refuses(text: str) -> None:
    with pytest.raises(InvalidConfigError, match=r"^capacity '"):
        units.parse_size(text, what="capacity")


def test_too_large() -> None:
    with pytest.raises(InvalidConfigError, match="is too large"):
        units.parse_size("17EiB")
    assert units.parse_size("15EiB") == 15 * 2**60


def test_format() -> None:
    assert units.format_bytes(0) == "0.00 B"
    assert units.format_bytes(10 * 1024**3) == "10.00 GiB"
    assert units.format_kib(16 * 1024**3) == "16 TiB"
    assert units.format_kib(219100) == "219100 KiB"


def test_api_values_are_the_same_functions() -> None:
    assert values.parse_size is units.parse_size
    assert values.to_kib is units.to_kib
    assert values.format_bytes is units.format_bytes
    assert values.parse_size("1GB", what="size") == 10**9


# A unit table is a mapping from a unit spelling to a factor: "g": 1024**3, 'GiB': GIB, ...
_TABLE_ENTRY = re.compile(
    r"""["'](?:[kmgtpe]i?b?|bytes?|b)["']\s*:\s*(?:\d|\(|_?[A-Z]|1024|1000)""", re.IGNORECASE
)
# modules allowed to keep such a mapping, and why
_ALLOWED = {
    "model/units.py": "the one table",
    "netbench/scenarios.py": "network rates in bit/s (iperf's K/M/G), not sizes",
}


def test_no_other_module_has_a_unit_table() -> None:
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel in _ALLOWED:
            continue
        for n, line in enumerate(path.read_text().splitlines(), start=1):
            code = line.split("#", 1)[0]
            if _TABLE_ENTRY.search(code):
                offenders.append(f"{rel}:{n}: {line.strip()}")
    assert not offenders, "use pyvirt.model.units instead of a unit table:\n" + "\n".join(offenders)


def test_meta_test_sees_a_table() -> None:
    assert _TABLE_ENTRY.search('_UNITS = {"": 1, "k": 1, "m": 1024, "g": _GIB}')
    assert _TABLE_ENTRY.search("{'GiB': 1024**3}")
    assert not _TABLE_ENTRY.search('{"bus": "virtio", "model": 1}')
