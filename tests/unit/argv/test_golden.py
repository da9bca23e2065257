"""Golden files: tests/data/argv/<case>.xml -> <case>.args (one argument per line).

Regenerate after an intended change with ``PYVIRT_REGEN_ARGV=1 pytest tests/unit/argv`` and
review the diff.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pyvirt.drivers.qemu.argv import ArgvContext, build_argv
from pyvirt.model.domain import Domain

DATA = Path(__file__).resolve().parents[2] / "data" / "argv"
CASES = sorted(p.stem for p in DATA.glob("*.xml"))
#: fixed clock, for <clock offset='variable'>
NOW = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


def context(name: str) -> ArgvContext:
    """The context every golden file is generated with."""
    return ArgvContext.for_domain(name, now=NOW)


def render(case: str) -> str:
    domain = Domain.from_xml((DATA / f"{case}.xml").read_bytes())
    return "\n".join(build_argv(domain, context(domain.name))) + "\n"


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str) -> None:
    expected_file = DATA / f"{case}.args"
    actual = render(case)
    if os.environ.get("PYVIRT_REGEN_ARGV") or not expected_file.exists():
        expected_file.write_text(actual)
    assert actual == expected_file.read_text()


def test_every_golden_has_args() -> None:
    stems = {p.stem for p in DATA.glob("*.args")}
    assert stems == set(CASES)
