"""disk backend: parted output parsing, placement and partition names (pure parts)."""

from __future__ import annotations

import pytest

from pyvirt.errors import InvalidConfigError
from pyvirt.storage import parted

GPT = """BYT;
/dev/loop0:67108864B:loopback:512:512:gpt:Loopback device:;
1:17408B:1048575B:1031168B:free;
1:1048576B:9437183B:8388608B::primary:;
1:9437184B:67091967B:57654784B:free;
"""


def test_parse_gpt_table() -> None:
    table = parted.parse_table("/dev/loop0", GPT)
    assert (table.size, table.sector_size, table.label) == (67108864, 512, "gpt")
    assert table.partitions == (parted.Partition(1, 1048576, 9437183),)
    assert table.partitions[0].size == 8 * 1024 * 1024
    assert [f.start for f in table.free] == [17408, 9437184]


def test_parse_unlabelled_and_garbage() -> None:
    table = parted.parse_table("/dev/sdb", "BYT;\n/dev/sdb:1000000B:scsi:512:512:unknown:Disk:;\n")
    assert table.label == "unknown" and table.partitions == ()
    with pytest.raises(InvalidConfigError, match="not a block device"):
        parted.parse_table("/dev/sdb", "", "Error: Could not stat device /dev/sdb")


def test_place_aligns_to_mib_and_fits_exactly() -> None:
    table = parted.parse_table("/dev/loop0", GPT)
    assert parted.place(table, 4 * 1024 * 1024) == (9437184, 9437184 + 4 * 1024 * 1024 - 1)
    assert parted.place(table, 1024 * 1024 * 1024) is None


def test_node_names_and_labels() -> None:
    assert parted.node_name("/dev/sdb", 2) == "/dev/sdb2"
    assert parted.node_name("/dev/loop0", 1) == "/dev/loop0p1"
    assert parted.node_name("/dev/nvme0n1", 3) == "/dev/nvme0n1p3"
    assert parted.parted_label("dos") == "msdos"
    assert parted.parted_label(None) == "msdos"
    with pytest.raises(InvalidConfigError, match="'sun'"):
        parted.parted_label("sun")
