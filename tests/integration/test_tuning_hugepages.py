"""Hugepage-backed guests: reserved pages are used; too few pages refuse the start cleanly."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Pyvirt
from tests.integration.test_lifecycle import wait_marker
from tests.integration.test_tuning import tune_xml

pytestmark = pytest.mark.qemu

POOL = Path("/sys/kernel/mm/hugepages/hugepages-2048kB")
BACKING = "<memoryBacking><hugepages><page size='2' unit='MiB'/></hugepages></memoryBacking>"


def free() -> int:
    return int((POOL / "free_hugepages").read_text())


@pytest.fixture
def reserved() -> Iterator[int]:
    """Reserve 64 more 2 MiB pages (128 MiB) for the test; give them back afterwards."""
    if not POOL.exists():
        pytest.skip("the kernel has no 2 MiB hugepages (CONFIG_HUGETLBFS)")
    before = int((POOL / "nr_hugepages").read_text())
    (POOL / "nr_hugepages").write_text(str(before + 64))
    got = int((POOL / "nr_hugepages").read_text()) - before
    try:
        if got < 64:
            pytest.skip(f"the kernel reserved only {got} of 64 hugepages (memory fragmented)")
        yield 64
    finally:
        (POOL / "nr_hugepages").write_text(str(before))


def test_hugepage_guest(pyvirt: Pyvirt, tiny_image: Any, reserved: int) -> None:
    xml = tune_xml(tiny_image, "hp", memory_mib=128, extra=BACKING)
    (pyvirt.root / "hp.xml").write_text(xml)
    pyvirt("define", str(pyvirt.root / "hp.xml"))
    start_free = free()
    pyvirt("start", "hp")
    # QEMU preallocates the whole guest RAM on hugetlbfs: 128 MiB = 64 pages
    assert start_free - free() == 64
    mounts = Path("/proc/mounts").read_text()
    assert any(line.split()[1:3] == ["/dev/hugepages", "hugetlbfs"] for line in mounts.splitlines())
    wait_marker(pyvirt, "hp")
    pyvirt("destroy", "hp")
    assert free() == start_free


def test_too_few_hugepages(pyvirt: Pyvirt, tiny_image: Any) -> None:
    if not POOL.exists():
        pytest.skip("the kernel has no 2 MiB hugepages (CONFIG_HUGETLBFS)")
    pages = free() + 100
    xml = tune_xml(tiny_image, "hp2", memory_mib=pages * 2, extra=BACKING)
    (pyvirt.root / "hp2.xml").write_text(xml)
    pyvirt("define", str(pyvirt.root / "hp2.xml"))
    res = pyvirt("start", "hp2", check=False)
    assert res.rc == 1
    assert f"domain 'hp2' needs {pages} free 2048 KiB hugepages" in res.err
    assert "allocpages" in res.err
    # nothing left running or half set up
    assert not (pyvirt.root / "run" / "qemu" / "hp2").exists()
    assert "shut off" in pyvirt("domstate", "hp2").out
    ps = subprocess.run(["pgrep", "-f", "guest=hp2,"], capture_output=True, text=True)
    assert ps.stdout.strip() == ""
    listing = json.loads(pyvirt("list", "--all", "--json").out)
    assert [d["state"] for d in listing if d["name"] == "hp2"] == ["shut off"]


def test_unsupported_page_size(pyvirt: Pyvirt, tiny_image: Any) -> None:
    backing = "<memoryBacking><hugepages><page size='4' unit='MiB'/></hugepages></memoryBacking>"
    (pyvirt.root / "hp3.xml").write_text(tune_xml(tiny_image, "hp3", extra=backing))
    # refused at define (libvirt's rule): no x86 host has 4 MiB pages
    res = pyvirt("define", str(pyvirt.root / "hp3.xml"), check=False)
    assert res.rc == 1
    assert res.err.splitlines()[0] == (
        "error: <memoryBacking>/<hugepages>/<page>: size 4096 KiB is not an x86 huge page "
        "size (2 MiB, 1 GiB)"
    )
    assert "hp3" not in pyvirt("list", "--all", "--name").out
