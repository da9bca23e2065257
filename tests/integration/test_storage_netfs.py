"""netfs pools through the CLI: the seed's command, the kernel-mount refusal on a kernel
without an NFS client, and the native mode against nfs-ganesha in a private network namespace
(volumes on nfs:// URLs, seen by the tiny guest through QEMU's nfs driver)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pyvirt.storage.backends.netfs import PYVIRT_NS, kernel_has_nfs
from tests.conftest import Pyvirt
from tests.integration.storage_servers import (
    NsPyvirt,
    assert_pattern,
    in_ns,
    need,
    netns,
    nfs_server,
    ns_pids,
    run_guest,
    volume_disk,
)

pytestmark = pytest.mark.qemu
MIB = 1024 * 1024


def native_pool_xml(name: str, export: Path, target: Path) -> str:
    return (
        f"<pool type='netfs' xmlns:pyvirt='{PYVIRT_NS}'><name>{name}</name>"
        f"<source><host name='127.0.0.1'/><dir path='{export}'/><format type='nfs'/></source>"
        f"<target><path>{target}</path></target><pyvirt:access mode='native'/></pool>"
    )


def test_seed_netfs_command_defines_as_written(pyvirt: Pyvirt) -> None:
    pyvirt(
        "pool-define-as", "--name", "kvmnfs", "--type", "netfs",
        "--source-host", "192.168.2.20", "--source-path", "/nfsshare", "--target", "/nfstest",
    )  # fmt: skip
    xml = pyvirt("pool-dumpxml", "kvmnfs").out.replace('"', "'")
    assert "<pool type='netfs'>" in xml
    assert "<host name='192.168.2.20'/>" in xml and "<dir path='/nfsshare'/>" in xml
    assert "<path>/nfstest</path>" in xml


def test_kernel_mode_refused_without_nfs_client(pyvirt: Pyvirt) -> None:
    if kernel_has_nfs():
        pytest.skip("this kernel has an NFS client; the refusal path is not reachable")
    target = pyvirt.root / "mnt"
    pyvirt(
        "pool-define-as", "kn", "netfs", "--source-host", "127.0.0.1",
        "--source-path", "/export", "--target", str(target),
    )  # fmt: skip
    pyvirt("pool-build", "kn")
    res = pyvirt("pool-start", "kn", check=False)
    assert res.rc == 1
    assert "CONFIG_NFS_FS" in res.err and "native" in res.err, res.err
    assert "inactive" in pyvirt("pool-list", "--all").out
    assert not os.path.ismount(target)


def test_native_nfs_pool_volume_seen_by_guest(pyvirt: Pyvirt, tiny_image: Any) -> None:
    need("qemu-img")
    with netns() as ns:
        pv = NsPyvirt(pyvirt.root, ns)
        with nfs_server(ns) as server:
            xml = pyvirt.root / "pool.xml"
            xml.write_text(native_pool_xml("np", server.export, pyvirt.root / "np"))
            pv("pool-define", str(xml))
            try:
                pv("pool-build", "np")
                pv("pool-start", "np")
                sources = pv("find-storage-pool-sources", "netfs", "--host", "127.0.0.1").out
                assert str(server.export) in sources
                pv("vol-create-as", "np", "v1.img", "20M", "--format", "raw")
                pv("vol-create-as", "np", "v2.qcow2", "1G", "--format", "qcow2")
                details = pv("vol-list", "np", "--details").out
                assert "v1.img" in details and "v2.qcow2" in details
                path = pv("vol-path", "v1.img", "--pool", "np").out.strip()
                assert path == f"nfs://127.0.0.1{server.export}/v1.img"
                assert (server.export / "v1.img").stat().st_size == 20 * MIB

                run = run_guest(pv, tiny_image, volume_disk("np", "v1.img"), "PYVIRT-NFS")
                assert run.vda_bytes == 20 * MIB
                assert "GUEST-WROTE" in run.output
                assert_pattern(server.export / "v1.img", 0, 20 * MIB, "PYVIRT-NFS")

                # a file another NFS client makes behind pyvirt's back appears after
                # pool-refresh (ganesha caches directories, so not behind ganesha's back)
                side = f"nfs://127.0.0.1{server.export}/side.img"
                subprocess.run(
                    in_ns(ns, ["qemu-img", "create", "-q", "-f", "raw", side, "4M"]), check=True
                )
                pv("pool-refresh", "np")
                assert "side.img" in pv("vol-list", "np").out

                pv("vol-delete", "v1.img", "--pool", "np")
                assert not (server.export / "v1.img").exists()
                pv("pool-destroy", "np")
                pv("pool-undefine", "np")
            finally:
                pv("pool-destroy", "np", check=False)
                pv("pool-undefine", "np", check=False)
        assert ns_pids(ns) == []
