"""The disk lowering as data (used by live attach-disk) matches the command line exactly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pyvirt.drivers.qemu.argv import ArgvContext, build_argv
from pyvirt.drivers.qemu.argv.builder import Build
from pyvirt.drivers.qemu.argv.devices.disk import (
    blockdev_nodes,
    device_spec,
    fixed_alias,
    source_slice,
)
from pyvirt.drivers.qemu.argv.opts import json_opts
from pyvirt.errors import InvalidConfigError, UnsupportedError
from pyvirt.model import Disk
from pyvirt.model.domain import Domain

DATA = Path(__file__).resolve().parents[2] / "data" / "argv"


def _ctx(name: str) -> ArgvContext:
    return ArgvContext.for_domain(name)


@pytest.mark.parametrize("case", ["disk-buses", "disk-sources", "disk-cache-none"])
def test_device_spec_equals_argv(case: str) -> None:
    dom = Domain.from_xml((DATA / f"{case}.xml").read_bytes())
    argv = build_argv(dom, _ctx(dom.name))
    b = Build(dom, _ctx(dom.name))
    for disk in b.disks:
        if disk.source_path is None and disk.type not in ("network",):
            continue
        spec = device_spec(disk, b)
        for node in spec.nodes:
            assert json_opts(node) in argv, node
        # PCI slots depend on what was lowered before; live attach gives explicit addresses
        device = {k: v for k, v in spec.device.items() if v is not None and k != "addr"}
        devices = [json.loads(a) for a in argv if a.startswith('{"driver"')]
        assert any({k: v for k, v in d.items() if k != "addr"} == device for d in devices)


def test_fixed_alias_is_the_argv_alias() -> None:
    dom = Domain.from_xml((DATA / "disk-sources.xml").read_bytes())
    b = Build(dom, _ctx(dom.name))
    aliases = [fixed_alias(d, Build(dom, _ctx(dom.name))) for d in b.disks]
    assert aliases == ["virtio-disk0", "virtio-disk1", "scsi0-0-0-0", "scsi0-0-0-1"]


def test_raw_slice_on_format_node() -> None:
    disk = Disk(type="file", device="disk", source_file="/i.raw", target_dev="vdb")
    disk.format = "raw"
    src = disk.element.find("source")
    assert src is not None
    slices = src.makeelement("slices", {})
    src.append(slices)
    slices.append(slices.makeelement("slice", {"type": "storage", "offset": "512", "size": "1024"}))
    assert source_slice(disk) == (512, 1024)
    nodes, top = blockdev_nodes(disk, "virtio-disk1")
    assert top == "virtio-disk1-format"
    assert nodes[-1]["offset"] == 512 and nodes[-1]["size"] == 1024
    assert nodes[-1]["file"] == "virtio-disk1-storage"


def test_bad_slice_and_unresolved_volume() -> None:
    disk = Disk(type="file", device="disk", source_file="/i.raw", target_dev="vdb")
    src = disk.element.find("source")
    assert src is not None
    slices = src.makeelement("slices", {})
    slices.append(src.makeelement("slice", {"type": "storage", "offset": "-1"}))
    src.append(slices)
    with pytest.raises(InvalidConfigError, match="offset and size must be byte counts"):
        blockdev_nodes(disk, "d")
    vol = Disk(type="volume", device="disk", target_dev="vdc")
    vol.source_pool, vol.source_volume = "p", "v"
    with pytest.raises(UnsupportedError, match="volume 'v' of pool 'p' is only resolved"):
        blockdev_nodes(vol, "d")
