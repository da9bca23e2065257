"""logical backend: lvs parsing, device-mapper detection, range rules (pure parts)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyvirt.errors import UnsupportedError
from pyvirt.storage import lvm


def test_parse_lvs_groups_segments() -> None:
    rows = [
        {"lv_name": "b", "lv_size": "8388608", "lv_attr": "-wi---", "seg_pe_ranges": "/dev/x:2-3"},
        {"lv_name": "a", "lv_size": "4194304", "lv_attr": "-wi---", "seg_pe_ranges": "/dev/x:0-0"},
        {"lv_name": "b", "lv_size": "8388608", "lv_attr": "-wi---", "seg_pe_ranges": "/dev/y:0-0"},
    ]
    lvs = lvm.parse_lvs(rows)
    assert [lv.name for lv in lvs] == ["a", "b"]
    assert lvs[0].segments == (("/dev/x", 0, 0),)
    assert lvs[1].segments == (("/dev/x", 2, 3), ("/dev/y", 0, 0))


def test_multi_segment_lv_has_no_range() -> None:
    lv = lvm.LogicalVolume("b", 8 << 20, "", "", "", (("/dev/x", 2, 3), ("/dev/y", 0, 0)))
    with pytest.raises(UnsupportedError, match="2 segments"):
        lvm.lv_range(lv, 4 << 20)


def test_device_mapper_detection(tmp_path: Path) -> None:
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/misc").write_text(" 62 ptp\n183 hw_random\n")
    assert not lvm.device_mapper_available(tmp_path)
    (tmp_path / "proc/misc").write_text("236 device-mapper\n")
    assert lvm.device_mapper_available(tmp_path)
