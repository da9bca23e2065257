"""The tuning hook's pure parts: hugepage needs of a definition, checks on a fake sysfs."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyvirt.errors import InvalidStateError, UnsupportedError
from pyvirt.model.domain import Domain
from pyvirt.service.tuning.hooks import check_hugepages, hugepage_needs

BASE = """<domain type='qemu'><name>h</name><memory unit='MiB'>{mem}</memory>
<memoryBacking>{backing}</memoryBacking><vcpu>2</vcpu><os><type>hvm</type></os>{cpu}</domain>"""


def dom(mem: int = 128, backing: str = "<hugepages/>", cpu: str = "") -> Domain:
    return Domain.from_xml(BASE.format(mem=mem, backing=backing, cpu=cpu))


def test_needs() -> None:
    assert hugepage_needs(dom()) == {2048: 128 * 1024}
    one_g = "<hugepages><page size='1' unit='GiB'/></hugepages>"
    assert hugepage_needs(dom(1024, one_g)) == {1048576: 1024 * 1024}
    assert hugepage_needs(dom(backing="<nosharepages/>")) == {}
    cells = (
        "<cpu><numa><cell id='0' cpus='0' memory='64' unit='MiB'/>"
        "<cell id='1' cpus='1' memory='64' unit='MiB'/></numa></cpu>"
    )
    per_node = "<hugepages><page size='1' unit='GiB' nodeset='1'/></hugepages>"
    # only node 1 is backed by (1 GiB) pages; node 0 stays plain RAM
    assert hugepage_needs(dom(backing=per_node, cpu=cells)) == {1048576: 64 * 1024}


def fake_sysfs(tmp_path: Path, free: int) -> Path:
    pool = tmp_path / "hugepages-2048kB"
    pool.mkdir()
    (pool / "free_hugepages").write_text(f"{free}\n")
    return tmp_path


def test_check(tmp_path: Path) -> None:
    sysfs = fake_sysfs(tmp_path, 64)
    check_hugepages("h", {2048: 128 * 1024}, sysfs)
    with pytest.raises(
        InvalidStateError, match="needs 65 free 2048 KiB hugepages, the host has 64"
    ):
        check_hugepages("h", {2048: 130 * 1024}, sysfs)
    with pytest.raises(UnsupportedError, match="1048576 KiB hugepages, which this host") as exc:
        check_hugepages("h", {1048576: 1024 * 1024}, sysfs)
    assert exc.value.hint == "supported sizes (KiB): 2048"
