"""pyvirt.host.ksm: read and set KSM settings on a copy of the seed's host tree."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pyvirt.errors import InvalidConfigError, UnsupportedError
from pyvirt.host import ksm


@pytest.fixture
def root(data_dir: Path, tmp_path: Path) -> Path:
    shutil.copytree(data_dir / "seed-2x8", tmp_path / "h")
    return tmp_path / "h"


def test_read_state(root: Path) -> None:
    state = ksm.read_state(root)
    assert state.running
    assert state.get("pages_shared") == 1200 and state.get("pages_sharing") == 5400
    assert state.saved_kib == 5400 * 4
    assert ksm.VIRSH_NAMES["pages_to_scan"] == "shm_pages_to_scan"


def test_set_params_writes_and_reads_back(root: Path) -> None:
    state = ksm.set_params(root, {"pages_to_scan": 1000, "sleep_millisecs": 5, "run": 2})
    assert state.get("pages_to_scan") == 1000 and state.get("run") == 2
    assert (root / "sys/kernel/mm/ksm/sleep_millisecs").read_text() == "5\n"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"run": 3}, "KSM run must be one of 0, 1, 2, not 3"),
        ({"merge_across_nodes": 2}, "merge_across_nodes must be one of 0, 1"),
        ({"pages_to_scan": -1}, "pages_to_scan must be between 0 and"),
        ({"bogus": 1}, "KSM setting 'bogus' is unknown"),
    ],
)
def test_bad_values_refused_before_writing(
    root: Path, params: dict[str, int], message: str
) -> None:
    before = (root / "sys/kernel/mm/ksm/run").read_text()
    with pytest.raises(InvalidConfigError, match=message):
        ksm.set_params(root, params)
    assert (root / "sys/kernel/mm/ksm/run").read_text() == before


def test_kernel_without_ksm(tmp_path: Path) -> None:
    assert not ksm.available(tmp_path)
    with pytest.raises(UnsupportedError, match="CONFIG_KSM"):
        ksm.read_state(tmp_path)
