"""pyvirt.host.hugepages: sizes, pools per node, allocation with read-back, mounts."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pyvirt.errors import InvalidConfigError, OperationFailedError, UnsupportedError
from pyvirt.host import hugepages as hp


@pytest.fixture
def root(data_dir: Path, tmp_path: Path) -> Path:
    shutil.copytree(data_dir / "seed-2x8", tmp_path / "h")
    return tmp_path / "h"


@pytest.mark.parametrize(
    ("text", "kib"),
    [("2M", 2048), ("2048", 2048), ("2048KiB", 2048), ("1G", 1048576), ("1gib", 1048576)],
)
def test_parse_page_size(text: str, kib: int) -> None:
    assert hp.parse_page_size(text) == kib
    assert hp.format_page_size(kib) in ("2M", "1G")


def test_parse_page_size_bad() -> None:
    with pytest.raises(InvalidConfigError, match="page size 'huge' is not a size"):
        hp.parse_page_size("huge")
    # libvirt's units: GB is 10^9 bytes, which is no page size
    with pytest.raises(InvalidConfigError, match="not a whole number of KiB"):
        hp.parse_page_size("1GB")


def test_pools(root: Path) -> None:
    assert hp.page_sizes(root) == [2048, 1048576]
    assert [(p.size_kib, p.total, p.free) for p in hp.global_pools(root)] == [
        (2048, 1024, 512),
        (1048576, 0, 0),
    ]
    assert hp.node_pools(root, 1)[0].total == 512
    assert hp.hugetlbfs_mounts(root) == {"/dev/hugepages": 2048}
    assert hp.default_page_size(root) == 2048


def test_allocate_on_node_and_add(root: Path) -> None:
    pool = hp.allocate(root, 2048, 600, node=1)
    assert (pool.node, pool.total) == (1, 600)
    assert root / "sys/devices/system/node/node1/hugepages/hugepages-2048kB/nr_hugepages"
    pool = hp.allocate(root, 2048, 10, node=1, add=True)
    assert pool.total == 610


def test_unsupported_size_and_missing_node(root: Path) -> None:
    with pytest.raises(UnsupportedError, match="page size '16M' is not supported") as err:
        hp.allocate(root, 16384, 1)
    assert err.value.hint == "use one of: 2M, 1G"
    with pytest.raises(UnsupportedError, match="NUMA node 5 does not exist"):
        hp.allocate(root, 2048, 1, node=5)


def test_shortfall_is_reported(root: Path) -> None:
    """A pool whose count reads back lower (the kernel's answer) is an error, not success."""
    target = root / "sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages"
    target.unlink()
    target.mkdir()  # writing fails like a refusing kernel would
    with pytest.raises(OperationFailedError, match="cannot set 1G hugepages to 4"):
        hp.allocate(root, 1048576, 4)


def test_no_hugetlb_kernel(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedError, match="CONFIG_HUGETLBFS"):
        hp.check_size(tmp_path, 2048)
