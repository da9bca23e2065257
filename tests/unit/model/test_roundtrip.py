"""Golden round trips: ``<case>-in.xml`` -> Domain -> ``<case>-out.xml``, and no XML lost.

Set ``PYVIRT_REGOLD=1`` to rewrite the ``-out.xml`` files after a deliberate change.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pyvirt.model import Domain

from .helpers import DATA, c14n

CASES = sorted(p.name.removesuffix("-in.xml") for p in DATA.glob("*-in.xml"))
# libvirt's own test domains live in ../shared beside the checkout (read-only reference data)
CORPUS = Path(__file__).resolve().parents[4] / "shared" / "libvirt-corpus" / "public"


def test_cases_exist() -> None:
    assert len(CASES) >= 6


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str) -> None:
    domain = Domain.from_xml((DATA / f"{case}-in.xml").read_bytes())
    out = DATA / f"{case}-out.xml"
    if os.environ.get("PYVIRT_REGOLD"):
        out.write_text(domain.to_xml())
    assert domain.to_xml() == out.read_text()


@pytest.mark.parametrize("case", CASES)
def test_lossless(case: str) -> None:
    raw = (DATA / f"{case}-in.xml").read_bytes()
    assert c14n(Domain.from_xml(raw).to_xml()) == c14n(raw)


@pytest.mark.parametrize("case", CASES)
def test_output_reparses_identically(case: str) -> None:
    first = Domain.from_xml((DATA / f"{case}-in.xml").read_bytes()).to_xml()
    assert Domain.from_xml(first).to_xml() == first


@pytest.mark.parametrize("case", CASES)
def test_copy_is_independent(case: str) -> None:
    domain = Domain.from_xml((DATA / f"{case}-in.xml").read_bytes())
    clone = domain.copy()
    clone.name = "other"
    assert domain.name != "other"
    assert clone.uuid == domain.uuid


def _corpus() -> list[Path]:
    return sorted(CORPUS.glob("*/domain.xml")) if CORPUS.is_dir() else []


@pytest.mark.skipif(not CORPUS.is_dir(), reason="libvirt corpus not available")
@pytest.mark.parametrize("path", _corpus(), ids=lambda p: p.parent.name)
def test_libvirt_corpus(path: Path) -> None:
    """Real libvirt test inputs load without problems and round trip losslessly."""
    raw = path.read_bytes()
    domain = Domain.from_xml(raw)
    assert c14n(domain.to_xml()) == c14n(raw)
    for device in domain.devices:  # every field of every device can be read
        for field in type(device)._fields:
            getattr(device, field)
    assert all(w.endswith(": not understood by pyvirt; kept as is") for w in domain.warnings)
