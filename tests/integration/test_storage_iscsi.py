"""iscsi pools through the CLI against a user-space tgtd in a private network namespace:
LUNs as volumes, opened by QEMU's libiscsi driver, seen by the tiny guest."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Pyvirt
from tests.integration.storage_servers import (
    NsPyvirt,
    assert_pattern,
    need,
    netns,
    ns_pids,
    run_guest,
    tgtd,
    volume_disk,
)

pytestmark = pytest.mark.qemu
MIB = 1024 * 1024
SEED_IQN = "iqn.2017-10.com.cloud.www:storage001"


def test_seed_iscsi_command_defines_as_written(pyvirt: Pyvirt) -> None:
    pyvirt(
        "pool-define-as", "--name", "storage01", "--type", "iscsi",
        "--source-host", "192.168.2.20", "--source-dev", SEED_IQN,
        "--target", "/dev/disk/by-path",
    )  # fmt: skip
    xml = pyvirt("pool-dumpxml", "storage01").out
    assert "<host name='192.168.2.20'" in xml.replace('"', "'")
    assert SEED_IQN in xml and "/dev/disk/by-path" in xml
    assert "inactive" in pyvirt("pool-list", "--all").out


def test_iscsi_pool_lun_seen_by_guest(pyvirt: Pyvirt, tiny_image: Any) -> None:
    need("iscsi-ls", "iscsi-readcapacity16")
    with netns() as ns:
        pv = NsPyvirt(pyvirt.root, ns)
        with tgtd(ns) as target:
            lun1 = target.add_lun(1, 24 * MIB)
            pv(
                "pool-define-as", "ip", "iscsi", "--source-host", "127.0.0.1",
                "--source-dev", target.iqn, "--target", "/dev/disk/by-path",
            )  # fmt: skip
            try:
                pv("pool-start", "ip")
                listing = pv("vol-list", "ip", "--details").out
                assert "unit:0:0:1" in listing
                sources = pv("find-storage-pool-sources", "iscsi", "--host", "127.0.0.1").out
                assert target.iqn in sources

                run = run_guest(pv, tiny_image, volume_disk("ip", "unit:0:0:1"), "PYVIRT-ISCSI")
                assert run.vda_bytes == 24 * MIB
                assert "GUEST-WROTE" in run.output
                assert_pattern(lun1, 0, 24 * MIB, "PYVIRT-ISCSI")

                # a LUN made on the target behind pyvirt's back appears after pool-refresh
                target.add_lun(2, 8 * MIB)
                pv("pool-refresh", "ip")
                assert "unit:0:0:2" in pv("vol-list", "ip").out
                made = pv("vol-create-as", "ip", "new", "8M", check=False)
                assert made.rc == 1 and "iscsi" in made.err
                pv("pool-destroy", "ip")
                pv("pool-undefine", "ip")
            finally:
                pv("pool-destroy", "ip", check=False)
                pv("pool-undefine", "ip", check=False)
        assert ns_pids(ns) == []


def test_iscsi_pool_start_refuses_unknown_target(pyvirt: Pyvirt) -> None:
    need("iscsi-ls")
    with netns() as ns, tgtd(ns) as target:
        pv = NsPyvirt(pyvirt.root, ns)
        pv(
            "pool-define-as", "bad", "iscsi", "--source-host", "127.0.0.1",
            "--source-dev", target.iqn + "-nosuch", "--target", "/dev/disk/by-path",
        )  # fmt: skip
        res = pv("pool-start", "bad", check=False)
        assert res.rc == 1 and "does not offer target" in res.err
        assert "inactive" in pv("pool-list", "--all").out
