"""A NIC and a disk hot-plugged from the CLI are, in QEMU, the devices the same XML gets at
boot: every readable QOM property of the hot-plugged devices (and of their virtio backends)
equals the property of the device QEMU creates when the live XML is started afresh."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from pyvirt.drivers.qemu.monitor import Json
from pyvirt.drivers.qemu.qmp import Monitor, QmpCommandError
from tests.conftest import Pyvirt
from tests.integration.test_lifecycle import define, wait_marker

pytestmark = pytest.mark.qemu

#: properties that say how a device came to be, not what it is
HISTORY = {"hotplugged", "realized"}


def qom_props(mon: Monitor, path: str) -> dict[str, Json]:
    """Every readable scalar QOM property of the object at *path*."""
    out: dict[str, Json] = {}
    for prop in mon.qom_list(path):
        if prop.type.startswith(("child<", "link<")) or prop.name in HISTORY:
            continue
        try:
            out[prop.name] = mon.qom_get(path, prop.name)
        except QmpCommandError:
            continue  # write-only or not gettable in this state
    return out


def device_props(pv: Pyvirt, name: str, ids: list[str]) -> dict[str, dict[str, Json]]:
    with Monitor(pv.root / "run" / "qemu" / name / "qmp.sock") as mon:
        out = {}
        for ident in ids:
            path = f"/machine/peripheral/{ident}"
            out[ident] = qom_props(mon, path)
            out[f"{ident}/virtio-backend"] = qom_props(mon, f"{path}/virtio-backend")
        return out


def test_hotplugged_devices_equal_boot_devices(pyvirt: Pyvirt, tiny_image: Any) -> None:
    define(pyvirt, tiny_image, "h1")
    pyvirt("start", "h1")
    wait_marker(pyvirt, "h1")
    image = pyvirt.root / "data.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(image), "8M"], check=True)
    pyvirt("attach-interface", "h1", "user", "none", "--model", "virtio",
           "--mac", "52:54:00:ab:cd:01", "--live")  # fmt: skip
    pyvirt("attach-disk", "h1", str(image), "vdb", "--subdriver", "qcow2",
           "--cache", "writeback", "--serial", "HOT1", "--live")  # fmt: skip
    ids = ["net0", "virtio-disk1"]
    hot = device_props(pyvirt, "h1", ids)
    assert hot["net0"]["mac"] == "52:54:00:ab:cd:01"
    assert hot["virtio-disk1"]["drive"] == "virtio-disk1-format"
    assert hot["virtio-disk1/virtio-backend"]["serial"] == "HOT1"

    live = Path(pyvirt.root / "live.xml")
    live.write_text(pyvirt("dumpxml", "h1").out)
    pyvirt("destroy", "h1")
    pyvirt("create", str(live))
    wait_marker(pyvirt, "h1", count=1)
    boot = device_props(pyvirt, "h1", ids)
    for key in hot:
        assert hot[key] == boot[key], key
    assert len(hot["net0"]) > 10 and len(hot["virtio-disk1/virtio-backend"]) > 10
