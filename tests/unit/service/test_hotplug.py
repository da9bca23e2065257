"""Hot-plug lowers devices with the boot-time code: what ``netdev_add``, ``device_add`` and
``blockdev-add`` receive (recorded by the fake QMP server) is exactly the ``-netdev``,
``-device`` and ``-blockdev`` that ``build_argv`` gives the resulting live XML at boot.
Also the error paths (a refused device takes its backend or nodes back out) and the live
paths of setvcpus and setmem.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from pyvirt.drivers.qemu.argv import ArgvContext, build_argv
from pyvirt.drivers.qemu.qmp import Monitor
from pyvirt.errors import MonitorError, OperationFailedError, UnsupportedError
from pyvirt.model.devices.interface import Interface
from pyvirt.model.domain import Domain
from pyvirt.service.disk.attach import DiskManager
from pyvirt.service.disk.options import DiskOptions
from pyvirt.service.domain.hotplug import free_pci_slot
from pyvirt.service.nic import hooks as nic_hooks
from pyvirt.service.nic.hotplug import hotplug, unplug_live
from pyvirt.service.tuning import cpu, memory
from tests.fakeqmp import FakeQmp
from tests.unit.service.conftest import Guest


@pytest.fixture
def taps(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Record tap creation and removal instead of touching the host's links."""
    done: list[tuple[str, str]] = []
    monkeypatch.setattr(
        nic_hooks, "plug", lambda paths, nic, owner: done.append(("plug", str(nic["tap"])))
    )
    monkeypatch.setattr(
        nic_hooks, "unplug", lambda paths, nic: done.append(("unplug", str(nic["tap"])))
    )
    return done


def _bridge_nic(mac: str = "52:54:00:12:34:56") -> Interface:
    iface = Interface(type="bridge", mac=mac)
    iface.source_bridge = "br0"
    iface.model = "virtio"
    return iface


def _keyval(text: str) -> dict[str, str]:
    """``tap,id=x,ifname=y`` -> ``{"type": "tap", "id": "x", "ifname": "y"}`` (no ``,,`` here)."""
    kind, *pairs = text.split(",")
    return {"type": kind, **dict(p.split("=", 1) for p in pairs)}


def _as_keyval(props: dict[str, Any]) -> dict[str, str]:
    """QMP arguments as QEMU's keyval parser would have read them from the command line."""
    return {k: ("on" if v else "off") if isinstance(v, bool) else str(v) for k, v in props.items()}


def _boot(g: Guest) -> dict[str, dict[str, Any]]:
    """``build_argv`` of the live XML: ``-device`` by id, ``-netdev`` by id, ``-blockdev`` by
    node name."""
    ctx = ArgvContext(
        run_dir=g.mgr.paths.domain_run_dir(g.name), log_dir=g.mgr.paths.domain_log_dir(g.name)
    )
    argv = build_argv(g.live(), ctx)
    out: dict[str, dict[str, Any]] = {"-device": {}, "-netdev": {}, "-blockdev": {}}
    for opt, value in itertools.pairwise(argv):
        if opt == "-device":
            props = json.loads(value)
            out[opt][props["id"]] = props
        elif opt == "-netdev":
            props = _keyval(value)
            out[opt][props["id"]] = props
        elif opt == "-blockdev":
            props = json.loads(value)
            out[opt][props["node-name"]] = props
    return out


def test_hotplugged_nic_and_disk_are_the_boot_devices(
    guest: Guest, taps: list[tuple[str, str]], sock_dir: Path
) -> None:
    image = sock_dir / "data.img"
    image.write_bytes(b"\0" * 4096)
    hotplug(guest.mgr, guest.name, _bridge_nic())
    DiskManager(guest.mgr).attach(
        guest.name,
        DiskOptions(
            source=str(image), target="vdb", subdriver="raw", serial="D1", cache="writeback"
        ),
        live=True,
    )
    boot = _boot(guest)
    qmp = guest.qmp

    # the NIC: same backend (as keyval text) and same device, down to bus and slot
    [netdev] = qmp.calls("netdev_add")
    assert _as_keyval(netdev) == boot["-netdev"]["hostnet0"]
    assert netdev["type"] == "tap" and netdev["ifname"].startswith("pv8f1c0a6e")
    nic_add = [d for d in qmp.calls("device_add") if d["id"] == "net0"]
    assert nic_add == [boot["-device"]["net0"]]
    assert nic_add[0]["driver"] == "virtio-net-pci" and nic_add[0]["addr"] == "0x4"

    # the disk: the same block nodes, bottom first, and the same device
    added = qmp.calls("blockdev-add")
    assert [n["node-name"] for n in added] == ["virtio-disk1-storage", "virtio-disk1-format"]
    assert added == [boot["-blockdev"][n["node-name"]] for n in added]
    disk_add = [d for d in qmp.calls("device_add") if d["id"] == "virtio-disk1"]
    assert disk_add == [boot["-device"]["virtio-disk1"]]
    assert disk_add[0]["serial"] == "D1" and disk_add[0]["write-cache"] == "on"

    assert taps == [("plug", netdev["ifname"])]
    live = guest.live()
    assert [i.alias for i in live.devices.interfaces] == ["net0"]
    assert [d.target_dev for d in live.devices.disks] == ["vda", "vdb"]


def test_refused_nic_takes_its_backend_out(guest: Guest, taps: list[tuple[str, str]]) -> None:
    guest.qmp.on("device_add", error=("GenericError", "Bus 'pci.0' does not support hotplugging"))
    with pytest.raises(MonitorError, match="does not support hotplugging") as exc:
        hotplug(guest.mgr, guest.name, _bridge_nic())
    assert getattr(exc.value, "command", None) == "device_add"
    assert guest.qmp.names() == ["qom-list", "query-pci", "netdev_add", "device_add", "netdev_del"]
    assert guest.qmp.calls("netdev_del") == [{"id": "hostnet0"}]
    assert guest.machine.netdevs == set()
    assert [t[0] for t in taps] == ["plug", "unplug"]
    assert guest.live().devices.interfaces == []


def test_refused_disk_takes_its_nodes_out(guest: Guest, sock_dir: Path) -> None:
    image = sock_dir / "data.img"
    image.write_bytes(b"\0" * 4096)
    guest.qmp.on("device_add", error=("GenericError", "PCI: slot 5 function 0 not available"))
    with pytest.raises(OperationFailedError, match="slot 5"):
        DiskManager(guest.mgr).attach(
            guest.name, DiskOptions(source=str(image), target="vdb"), live=True
        )
    assert guest.qmp.calls("blockdev-del") == [
        {"node-name": "virtio-disk1-format"},
        {"node-name": "virtio-disk1-storage"},
    ]
    assert guest.machine.nodes == ["virtio-disk0-storage", "virtio-disk0-format"]
    assert [d.target_dev for d in guest.live().devices.disks] == ["vda"]


def test_nic_unplug(
    guest: Guest, taps: list[tuple[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    hotplug(guest.mgr, guest.name, _bridge_nic())
    [iface] = guest.live().devices.interfaces
    unplug_live(guest.mgr, guest.name, iface)
    assert guest.qmp.names()[-3:] == ["device_del", "qom-list", "netdev_del"]
    assert guest.machine.devices == {"virtio-disk0", "balloon0"}
    assert guest.live().devices.interfaces == []
    assert [t[0] for t in taps] == ["plug", "unplug"]


def test_disk_detach_waits_for_the_device_then_drops_nodes(guest: Guest, sock_dir: Path) -> None:
    image = sock_dir / "data.img"
    image.write_bytes(b"\0" * 4096)
    disks = DiskManager(guest.mgr)
    disks.attach(guest.name, DiskOptions(source=str(image), target="vdb"), live=True)
    disks.detach(guest.name, "vdb", live=True, timeout=2)
    assert guest.qmp.calls("device_del") == [{"id": "virtio-disk1"}]
    assert guest.qmp.calls("blockdev-del") == [
        {"node-name": "virtio-disk1-format"},
        {"node-name": "virtio-disk1-storage"},
    ]
    assert [d.target_dev for d in guest.live().devices.disks] == ["vda"]


def test_setvcpus_live_plugs_the_next_slots(guest: Guest) -> None:
    plugged = {"qom-path": "/machine/unattached/device[0]"}
    slots = [
        {"props": {"core-id": 0, "thread-id": 0, "socket-id": s}, "vcpus-count": 1,
         "type": "qemu64-x86_64-cpu", **(plugged if s == 0 else {})}
        for s in (3, 1, 0, 2)
    ]  # fmt: skip
    guest.qmp.on("query-hotpluggable-cpus", slots)
    guest.qmp.on("device_add", {})
    cpu.set_vcpus(guest.mgr, guest.name, 3, live=True)
    assert guest.qmp.calls("device_add") == [
        {"driver": "qemu64-x86_64-cpu", "id": "vcpu0-1-0", "core-id": 0, "socket-id": 1,
         "thread-id": 0},
        {"driver": "qemu64-x86_64-cpu", "id": "vcpu0-2-0", "core-id": 0, "socket-id": 2,
         "thread-id": 0},
    ]  # fmt: skip
    assert guest.live().vcpu.current == 3
    assert guest.mgr.definition(guest.name, inactive=True).vcpu.current == 1


def test_setmem_live_goes_through_the_balloon(guest: Guest) -> None:
    memory.set_mem(guest.mgr, guest.name, 131072, live=True)
    assert guest.qmp.names() == ["query-balloon", "balloon"]
    assert guest.qmp.calls("balloon") == [{"value": 131072 * 1024}]
    assert guest.live().current_memory_kib == 131072
    assert memory.balloon_kib(guest.mgr, guest.name) == 131072


def test_hotplugged_scsi_disk_and_its_controller_are_the_boot_devices(
    guest: Guest, sock_dir: Path
) -> None:
    image = sock_dir / "data.img"
    image.write_bytes(b"\0" * 4096)
    DiskManager(guest.mgr).attach(
        guest.name, DiskOptions(source=str(image), target="sdb", bus="scsi"), live=True
    )
    boot = _boot(guest)
    added = guest.qmp.calls("device_add")
    assert [d["id"] for d in added] == ["scsi0", "scsi0-0-0-1"]
    assert added == [boot["-device"]["scsi0"], boot["-device"]["scsi0-0-0-1"]]
    assert added[0]["driver"] == "virtio-scsi-pci" and added[1]["driver"] == "scsi-hd"
    nodes = guest.qmp.calls("blockdev-add")
    assert nodes == [boot["-blockdev"][n["node-name"]] for n in nodes]
    assert [c.type for c in guest.live().devices.controllers] == ["scsi"]


Q35 = """<domain type='qemu'><name>q</name><memory>65536</memory>
<os><type arch='x86_64' machine='q35'>hvm</type></os></domain>"""


def test_q35_hotplug_slot_is_an_empty_root_port(fake_qmp: FakeQmp) -> None:
    port = {"bus": 0, "function": 0, "pci_bridge": {"bus": {"number": 1}}}
    fake_qmp.on("query-pci", [{"bus": 0, "devices": [
        {**port, "slot": 1, "qdev_id": "pci.1", "pci_bridge": {"devices": [
            {"bus": 1, "slot": 0, "function": 0, "qdev_id": "net0"}]}},
        {**port, "slot": 2, "qdev_id": "pci.2"},
    ]}])  # fmt: skip
    with Monitor(fake_qmp.path) as mon:
        addr = free_pci_slot(Domain.from_xml(Q35), mon, "disk")
    assert (addr.bus, addr.slot, addr.function) == ("0x02", "0x00", "0x0")


def test_q35_without_a_free_root_port(fake_qmp: FakeQmp) -> None:
    fake_qmp.on("query-pci", [{"bus": 0, "devices": [{"bus": 0, "slot": 0, "function": 0}]}])
    with Monitor(fake_qmp.path) as mon, pytest.raises(UnsupportedError) as exc:
        free_pci_slot(Domain.from_xml(Q35), mon, "interface")
    assert str(exc.value) == "domain 'q' has no empty PCIe root port for a hotplug interface"
    assert exc.value.hint is not None and "pcie-root-port" in exc.value.hint
