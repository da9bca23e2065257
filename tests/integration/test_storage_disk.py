"""disk pools through the CLI on a loop device: a GPT label, partitions made with parted and
seen by the tiny guest with their exact size."""

from __future__ import annotations

import os
import subprocess
from typing import Any

import pytest

from pyvirt.storage import rawrange
from tests.conftest import Pyvirt
from tests.integration.storage_servers import (
    assert_pattern,
    loop_device,
    need,
    run_guest,
    volume_disk,
)

pytestmark = pytest.mark.qemu
MIB = 1024 * 1024


def test_disk_pool_partition_seen_by_guest(pyvirt: Pyvirt, tiny_image: Any) -> None:
    need("parted", "partx", "blkid")
    with loop_device(64 * MIB) as dev:
        base = os.path.basename(dev)
        xml = pyvirt.root / "pool.xml"
        xml.write_text(
            f"<pool type='disk'><name>dp</name><source><device path='{dev}'/>"
            "<format type='gpt'/></source><target><path>/dev</path></target></pool>"
        )
        pyvirt("pool-define", str(xml))
        try:
            pyvirt("pool-build", "dp")
            again = pyvirt("pool-build", "dp", check=False)
            assert again.rc == 1 and "already holds 'gpt'" in again.err
            pyvirt("pool-build", "dp", "--overwrite")
            pyvirt("pool-start", "dp")

            wrong = pyvirt("vol-create-as", "dp", "data", "12M", check=False)
            assert wrong.rc == 1 and f"'{base}p1'" in wrong.err
            pyvirt("vol-create-as", "dp", f"{base}p1", "12M", "--format", "raw")
            info = pyvirt("vol-info", f"{base}p1", "--pool", "dp", "--bytes").out
            assert "12582912" in info

            run = run_guest(pyvirt, tiny_image, volume_disk("dp", f"{base}p1"), "PYVIRT-PART")
            assert run.vda_bytes == 12 * MIB
            assert "GUEST-WROTE" in run.output
            table = subprocess.run(
                ["parted", "-s", "-m", dev, "unit", "B", "print"], capture_output=True, text=True
            ).stdout
            start = int(table.splitlines()[2].split(":")[1].rstrip("B"))
            assert_pattern(dev, start, 12 * MIB, "PYVIRT-PART")
            # nothing written past the partition's end
            assert rawrange.read(dev, start + 12 * MIB, 4096) == bytes(4096)

            # a partition made behind pyvirt's back appears after pool-refresh
            subprocess.run(
                ["parted", "-s", dev, "mkpart", "extra", "20MiB", "24MiB"],
                check=True,
                capture_output=True,
            )
            pyvirt("pool-refresh", "dp")
            assert f"{base}p2" in pyvirt("vol-list", "dp").out

            pyvirt("vol-wipe", f"{base}p1", "--pool", "dp")
            assert rawrange.read(dev, start + 512, 64) == bytes(64)
            pyvirt("vol-delete", f"{base}p1", "--pool", "dp")
            assert f"{base}p1" not in pyvirt("vol-list", "dp").out
            pyvirt("pool-destroy", "dp")
            pyvirt("pool-delete", "dp")
            probe = subprocess.run(["blkid", "-p", dev], capture_output=True, text=True)
            assert probe.returncode == 2, probe.stdout
        finally:
            pyvirt("pool-destroy", "dp", check=False)
            pyvirt("pool-undefine", "dp", check=False)
        assert not [p for p in os.listdir("/dev") if p.startswith(base + "p")]
