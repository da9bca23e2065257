"""Pure rules of the disk service: virsh's flag semantics, sharing conflicts, attach-disk
options, and volume sources turned into concrete disks."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyvirt.drivers.qemu.argv.devices.disk import blockdev_nodes, source_slice
from pyvirt.errors import InvalidConfigError, NotFoundError
from pyvirt.model import Disk
from pyvirt.service.disk.hooks import apply_source, conflicts, inventory_entry, source_key
from pyvirt.service.disk.options import DiskOptions, build_disk, check_source, disk_xml
from pyvirt.storage.base import DiskSource


def _entry(key: str, ro: bool = False, share: bool = False, rng: list[int] | None = None) -> dict:
    return {"target": "vdb", "key": key, "range": rng, "readonly": ro, "shareable": share}


def test_conflicts() -> None:
    a = "path:/img"
    assert conflicts(_entry(a), _entry(a))
    assert conflicts(_entry(a, ro=True), _entry(a))
    assert not conflicts(_entry(a, ro=True), _entry(a, ro=True))
    assert not conflicts(_entry(a, share=True), _entry(a, share=True))
    assert conflicts(_entry(a, share=True), _entry(a))
    assert not conflicts(_entry(a), _entry("path:/other"))
    assert not conflicts(_entry(a, rng=[0, 100]), _entry(a, rng=[100, 50]))
    assert conflicts(_entry(a, rng=[0, 101]), _entry(a, rng=[100, 50]))
    assert conflicts(_entry(a, rng=[0, 10]), _entry(a))


def test_build_disk_and_xml(tmp_path: Path) -> None:
    img = tmp_path / "a.img"
    img.write_bytes(b"\0" * 4096)
    disk = build_disk(
        DiskOptions(str(img), "sdb", subdriver="raw", cache="none", io="native", mode="shareable")
    )
    assert disk.type == "file" and disk.target_bus == "scsi" and disk.shareable
    check_source(disk)
    xml = disk_xml(disk)
    assert "cache='none'" in xml and "<shareable/>" in xml
    vol = build_disk(DiskOptions("default/v1.qcow2", "vdb", source_type="volume"))
    assert (vol.source_pool, vol.source_volume, vol.format) == ("default", "v1.qcow2", None)
    net = build_disk(
        DiskOptions("iqn.x:t/1", "vdc", source_protocol="iscsi", source_host="127.0.0.1:3261")
    )
    assert net.type == "network" and net.source_hosts == [("127.0.0.1", 3261)]


@pytest.mark.parametrize(
    ("opts", "message"),
    [
        ({"target": "vd1"}, "is not a disk name"),
        ({"driver": "xen"}, "disk driver 'xen' is not supported"),
        ({"io": "native"}, "needs a direct cache mode"),
        ({"bus": "pci"}, "disk bus 'pci' is not one of"),
        ({"subdriver": "qcow3"}, "disk format 'qcow3'"),
        ({"source_type": "network"}, "needs --source-protocol"),
    ],
)
def test_build_disk_refusals(opts: dict[str, str], message: str) -> None:
    args = {"source": "/x", "target": "vdb", **opts}
    with pytest.raises(InvalidConfigError, match=message):
        build_disk(DiskOptions(**args))


def test_check_source(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="does not exist"):
        check_source(build_disk(DiskOptions(str(tmp_path / "no"), "vdb")))
    q = tmp_path / "q.img"
    q.write_bytes(b"QFI\xfb" + b"\0" * 100)
    with pytest.raises(InvalidConfigError, match="qcow2 image but would be attached as raw"):
        check_source(build_disk(DiskOptions(str(q), "vdb")))
    check_source(build_disk(DiskOptions(str(q), "vdb", subdriver="qcow2")))


def _volume_disk() -> Disk:
    disk = Disk(type="volume", device="disk", target_dev="vdb")
    disk.source_pool, disk.source_volume = "p", "v"
    return disk


def test_apply_source_file_and_range() -> None:
    disk = _volume_disk()
    apply_source(disk, DiskSource(kind="block", format="raw", path="/dev/loop3", offset=512,
                                  size=4096))  # fmt: skip
    assert disk.type == "block" and disk.source_dev == "/dev/loop3"
    assert disk.source_pool is None and disk.format == "raw"
    assert source_slice(disk) == (512, 4096)
    assert source_key(disk) == "path:/dev/loop3"
    entry = inventory_entry(disk)
    assert entry is not None and entry["range"] == [512, 4096]


def test_apply_source_network() -> None:
    disk = _volume_disk()
    src = DiskSource(kind="network", format="qcow2", protocol="nfs", host="127.0.0.1",
                     name="/export/v.qcow2", options={"uid": "0", "gid": "0"})  # fmt: skip
    apply_source(disk, src)
    nodes, _ = blockdev_nodes(disk, "virtio-disk1")
    assert nodes[0]["driver"] == "nfs" and nodes[0]["user"] == 0 and nodes[0]["group"] == 0
    assert nodes[-1]["driver"] == "qcow2"
    disk = _volume_disk()
    apply_source(disk, DiskSource(kind="network", protocol="iscsi", host="127.0.0.1", port=3261,
                                  name="iqn.x:t/2",
                                  options={"initiator-name": "iqn.y:c"}))  # fmt: skip
    nodes, _ = blockdev_nodes(disk, "virtio-disk1")
    assert nodes[0]["lun"] == 2 and nodes[0]["initiator-name"] == "iqn.y:c"
    assert source_key(disk) == "iscsi://127.0.0.1:3261/iqn.x:t/2"
