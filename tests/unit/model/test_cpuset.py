"""pyvirt.model.cpuset: libvirt's CPU/node set syntax, the one parser and formatter."""

from __future__ import annotations

import pytest

from pyvirt.api import values
from pyvirt.errors import InvalidConfigError
from pyvirt.host import cpu
from pyvirt.model.cpuset import MAX_ID, format_cpuset, parse_cpuset


@pytest.mark.parametrize(
    ("text", "cpus", "formatted"),
    [
        ("0", {0}, "0"),
        ("0-3", {0, 1, 2, 3}, "0-3"),
        ("0-3,^2,8", {0, 1, 3, 8}, "0-1,3,8"),
        ("^2,0-3", {0, 1, 3}, "0-1,3"),
        ("0-7,^2-5", {0, 1, 6, 7}, "0-1,6-7"),
        (" 1 , 3 - 4 ", {1, 3, 4}, "1,3-4"),
        ("5,5,5", {5}, "5"),
        (f"{MAX_ID}", {MAX_ID}, f"{MAX_ID}"),
    ],
)
def test_parse_and_format(text: str, cpus: set[int], formatted: str) -> None:
    assert parse_cpuset(text) == cpus
    assert format_cpuset(cpus) == formatted
    assert parse_cpuset(formatted) == cpus


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is malformed"),
        ("a", "is malformed"),
        ("1-", "is malformed"),
        ("-1", "is malformed"),
        ("0,,1", "is malformed"),
        ("0-3,", "is malformed"),
        ("^", "is malformed"),
        ("3-1", "ends before it starts"),
        ("0-1,^0-1", "is empty"),
        (f"{MAX_ID + 1}", "above the limit"),
        ("١", "is malformed"),
    ],
)
def test_refused(text: str, message: str) -> None:
    with pytest.raises(InvalidConfigError, match=message):
        parse_cpuset(text, what="nodeset")


def test_sysfs_lists_may_be_empty() -> None:
    assert parse_cpuset("", allow_empty=True) == set()
    assert cpu.parse_cpu_list("") == ()
    assert cpu.parse_cpu_list("0-3,8,10-11\n") == (0, 1, 2, 3, 8, 10, 11)
    with pytest.raises(ValueError, match="malformed"):
        cpu.parse_cpu_list("x")


def test_one_implementation() -> None:
    assert values.parse_cpuset is parse_cpuset
    assert values.format_cpuset is format_cpuset
    assert format_cpuset([]) == ""


def test_no_other_module_parses_cpu_sets() -> None:
    """A ``^`` exclusion or a ``lo-hi`` range split is only handled in model/cpuset.py."""
    from pathlib import Path

    import pyvirt

    src = Path(pyvirt.__file__).parent
    offenders = []
    for path in sorted(src.rglob("*.py")):
        rel = path.relative_to(src).as_posix()
        if rel == "model/cpuset.py":
            continue
        text = path.read_text()
        if 'startswith("^")' in text or 'lstrip("^")' in text or "def parse_set(" in text:
            offenders.append(rel)
    assert not offenders, f"use pyvirt.model.cpuset instead: {offenders}"
