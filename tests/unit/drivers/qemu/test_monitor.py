"""Every typed monitor method against the fake QMP server: the command and arguments it
sends, and the typed value it makes of QEMU's reply."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pyvirt.drivers.qemu.monitor import (
    BalloonStats,
    BlockDevice,
    BlockNode,
    BlockStats,
    CpuInfo,
    HotpluggableCpu,
    IOThreadInfo,
    PciBus,
    PciDevice,
    QomProperty,
)
from pyvirt.drivers.qemu.qmp import Monitor
from tests.fakeqmp import FakeQmp

CPUS_FAST = [
    {"cpu-index": 0, "qom-path": "/machine/unattached/device[0]", "thread-id": 4242,
     "props": {"core-id": 0, "thread-id": 0, "socket-id": 0}, "target": "x86_64"},
    {"cpu-index": 1, "qom-path": "/machine/peripheral/vcpu1-0-0", "thread-id": 4243,
     "props": {"core-id": 0, "thread-id": 0, "socket-id": 1}, "target": "x86_64"},
]  # fmt: skip
HOTPLUGGABLE = [
    {"props": {"core-id": 0, "thread-id": 0, "socket-id": 1}, "vcpus-count": 1,
     "type": "qemu64-x86_64-cpu"},
    {"props": {"core-id": 0, "thread-id": 0, "socket-id": 0}, "vcpus-count": 1,
     "qom-path": "/machine/unattached/device[0]", "type": "qemu64-x86_64-cpu"},
]  # fmt: skip
PCI = [
    {"bus": 0, "devices": [
        {"bus": 0, "slot": 0, "function": 0, "class_info": {"class": 1536}, "qdev_id": "",
         "id": {"device": 4663, "vendor": 32902}, "regions": []},
        {"bus": 0, "slot": 2, "function": 0, "qdev_id": "pci.1", "regions": [],
         "pci_bridge": {"bus": {"number": 1, "secondary": 1, "subordinate": 1},
                        "devices": [{"bus": 1, "slot": 0, "function": 0,
                                     "qdev_id": "virtio-disk1"}]}},
        {"bus": 0, "slot": 3, "function": 0, "qdev_id": "pci.2",
         "pci_bridge": {"bus": {"number": 2}, "devices": []}},
    ]},
]  # fmt: skip
NODES = [
    {"node-name": "virtio-disk0-format", "drv": "qcow2", "file": "/img/a.qcow2", "ro": False,
     "image": {"virtual-size": 1073741824, "actual-size": 200704, "filename": "/img/a.qcow2",
               "format": "qcow2"}},
    {"node-name": "virtio-disk0-storage", "drv": "file", "file": "/img/a.qcow2",
     "image": {"virtual-size": 262144, "filename": "/img/a.qcow2", "format": "file"}},
]  # fmt: skip
BLOCK = [
    {"device": "", "qdev": "ide0-1-0", "removable": True, "locked": False, "tray_open": False,
     "inserted": {"node-name": "ide0-1-0-format", "ro": True}},
    {"device": "", "qdev": "/machine/peripheral/virtio-disk0/virtio-backend",
     "removable": False, "locked": False},
]  # fmt: skip
BLOCKSTATS = [
    {"qdev": "/machine/peripheral/virtio-disk0/virtio-backend", "node-name": "x",
     "stats": {"rd_bytes": 4096, "wr_operations": 3, "account_invalid": True,
               "timed_stats": [], "idle_time_ns": 99}},
]  # fmt: skip

#: (call, command sent, its arguments, QEMU's reply, the typed result)
CASES: list[tuple[str, Callable[[Monitor], Any], str, dict[str, Any], Any, Any]] = [
    ("status", lambda m: m.query_status(), "query-status", {},
     {"status": "paused", "singlestep": False, "running": False}, ("paused", False)),
    ("powerdown", lambda m: m.system_powerdown(), "system_powerdown", {}, {}, None),
    ("stop", lambda m: m.stop(), "stop", {}, {}, None),
    ("cont", lambda m: m.cont(), "cont", {}, {}, None),
    ("reset", lambda m: m.system_reset(), "system_reset", {}, {}, None),
    ("cpus", lambda m: m.query_cpus_fast(), "query-cpus-fast", {}, CPUS_FAST,
     [CpuInfo(0, 4242, "/machine/unattached/device[0]",
              {"core-id": 0, "thread-id": 0, "socket-id": 0}),
      CpuInfo(1, 4243, "/machine/peripheral/vcpu1-0-0",
              {"core-id": 0, "thread-id": 0, "socket-id": 1})]),
    ("vcpu-threads", lambda m: m.vcpu_threads(), "query-cpus-fast", {}, CPUS_FAST,
     {0: 4242, 1: 4243}),
    ("hotpluggable", lambda m: m.query_hotpluggable_cpus(), "query-hotpluggable-cpus", {},
     HOTPLUGGABLE,
     [HotpluggableCpu("qemu64-x86_64-cpu", 1, {"core-id": 0, "thread-id": 0, "socket-id": 1}),
      HotpluggableCpu("qemu64-x86_64-cpu", 1, {"core-id": 0, "thread-id": 0, "socket-id": 0},
                      "/machine/unattached/device[0]")]),
    ("iothreads", lambda m: m.query_iothreads(), "query-iothreads", {},
     [{"id": "iothread1", "thread-id": 77, "poll-max-ns": 32768}],
     [IOThreadInfo("iothread1", 77, 32768)]),
    ("balloon", lambda m: m.query_balloon(), "query-balloon", {}, {"actual": 536870912},
     536870912),
    ("set-balloon", lambda m: m.set_balloon(268435456), "balloon", {"value": 268435456}, {}, None),
    ("balloon-stats", lambda m: m.balloon_stats("/machine/peripheral/balloon0"), "qom-get",
     {"path": "/machine/peripheral/balloon0", "property": "guest-stats"},
     {"stats": {"stat-free-memory": 1024, "stat-swap-in": -1}, "last-update": 1700000000},
     BalloonStats({"stat-free-memory": 1024, "stat-swap-in": -1}, 1700000000)),
    ("stats-period", lambda m: m.set_balloon_stats_period("/machine/peripheral/balloon0", 5),
     "qom-set", {"path": "/machine/peripheral/balloon0",
                 "property": "guest-stats-polling-interval", "value": 5}, {}, None),
    ("password", lambda m: m.set_password("vnc", "s3cret"), "set_password",
     {"protocol": "vnc", "password": "s3cret"}, {}, None),
    ("screendump", lambda m: m.screendump("/run/x.ppm"), "screendump",
     {"filename": "/run/x.ppm"}, {}, None),
    ("screendump-head", lambda m: m.screendump("/run/x.ppm", head=1), "screendump",
     {"filename": "/run/x.ppm", "head": 1}, {}, None),
    ("device-add", lambda m: m.device_add(
        {"driver": "virtio-net-pci", "netdev": "hostnet1", "id": "net1", "mac": "52:54:00:aa:bb:cc",
         "bootindex": None, "host_mtu": None, "bus": "pci.0", "addr": "0x5"}),
     "device_add", {"driver": "virtio-net-pci", "netdev": "hostnet1", "id": "net1",
                    "mac": "52:54:00:aa:bb:cc", "bus": "pci.0", "addr": "0x5"}, {}, None),
    ("device-del", lambda m: m.device_del("net1"), "device_del", {"id": "net1"}, {}, None),
    ("netdev-add", lambda m: m.netdev_add(
        {"type": "tap", "id": "hostnet1", "ifname": "tap9", "script": "no", "downscript": "no",
         "queues": None, "vhost": True}),
     "netdev_add", {"type": "tap", "id": "hostnet1", "ifname": "tap9", "script": "no",
                    "downscript": "no", "vhost": True}, {}, None),
    ("netdev-del", lambda m: m.netdev_del("hostnet1"), "netdev_del", {"id": "hostnet1"}, {}, None),
    ("set-link", lambda m: m.set_link("net0", False), "set_link", {"name": "net0", "up": False},
     {}, None),
    ("qom-list", lambda m: m.qom_list("/machine/peripheral"), "qom-list",
     {"path": "/machine/peripheral"},
     [{"name": "type", "type": "string"}, {"name": "net0", "type": "child<virtio-net-pci>"}],
     [QomProperty("type", "string"), QomProperty("net0", "child<virtio-net-pci>")]),
    ("peripherals", lambda m: m.peripheral_ids(), "qom-list", {"path": "/machine/peripheral"},
     [{"name": "type", "type": "string"}, {"name": "net0", "type": "child<virtio-net-pci>"}],
     {"net0"}),
    ("qom-get", lambda m: m.qom_get("/machine/peripheral/net0", "mac"), "qom-get",
     {"path": "/machine/peripheral/net0", "property": "mac"}, "52:54:00:12:34:56",
     "52:54:00:12:34:56"),
    ("qom-set", lambda m: m.qom_set("/machine/peripheral/net0", "x-y", True), "qom-set",
     {"path": "/machine/peripheral/net0", "property": "x-y", "value": True}, {}, None),
    ("pci", lambda m: m.query_pci(), "query-pci", {}, PCI,
     [PciBus(0, [PciDevice(0, 0, 0, ""),
                 PciDevice(0, 2, 0, "pci.1", [PciDevice(1, 0, 0, "virtio-disk1")]),
                 PciDevice(0, 3, 0, "pci.2", [])])]),
    ("blockdev-add", lambda m: m.blockdev_add(
        {"driver": "qcow2", "node-name": "virtio-disk1-format", "file": "virtio-disk1-storage",
         "read-only": False, "cache": {"direct": True, "no-flush": None}, "discard": None}),
     "blockdev-add", {"driver": "qcow2", "node-name": "virtio-disk1-format",
                      "file": "virtio-disk1-storage", "read-only": False,
                      "cache": {"direct": True}}, {}, None),
    ("blockdev-del", lambda m: m.blockdev_del("virtio-disk1-format"), "blockdev-del",
     {"node-name": "virtio-disk1-format"}, {}, None),
    ("nodes", lambda m: m.query_named_block_nodes(), "query-named-block-nodes", {"flat": True},
     NODES, [BlockNode("virtio-disk0-format", "qcow2", "/img/a.qcow2", 1073741824, 200704),
             BlockNode("virtio-disk0-storage", "file", "/img/a.qcow2", 262144, None)]),
    ("block", lambda m: m.query_block(), "query-block", {}, BLOCK,
     [BlockDevice("", "ide0-1-0", True, "ide0-1-0-format"),
      BlockDevice("", "/machine/peripheral/virtio-disk0/virtio-backend", False)]),
    ("blockstats", lambda m: m.query_blockstats(), "query-blockstats", {"query-nodes": False},
     BLOCKSTATS, [BlockStats("/machine/peripheral/virtio-disk0/virtio-backend",
                             {"rd_bytes": 4096, "wr_operations": 3, "idle_time_ns": 99})]),
    ("resize", lambda m: m.block_resize("virtio-disk0-format", 2 << 30), "block_resize",
     {"node-name": "virtio-disk0-format", "size": 2 << 30}, {}, None),
    ("change-medium", lambda m: m.blockdev_change_medium("ide0-1-0", "/iso/a.iso"),
     "blockdev-change-medium", {"id": "ide0-1-0", "filename": "/iso/a.iso", "format": "raw"},
     {}, None),
    ("eject", lambda m: m.eject("ide0-1-0", force=True), "eject",
     {"id": "ide0-1-0", "force": True}, {}, None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("call", "command", "args", "reply", "result"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_wire_format(
    fake_qmp: FakeQmp,
    call: Callable[[Monitor], Any],
    command: str,
    args: dict[str, Any],
    reply: Any,
    result: Any,
) -> None:
    fake_qmp.on(command, reply)
    with Monitor(fake_qmp.path, timeout=5) as mon:
        assert call(mon) == result
    assert fake_qmp.names() == [command]
    assert fake_qmp.calls(command) == [args]


def test_session_negotiates_capabilities_first(fake_qmp: FakeQmp) -> None:
    fake_qmp.on("stop", {})
    with Monitor(fake_qmp.path) as mon:
        mon.stop()
    assert [c.name for c in fake_qmp.commands] == ["qmp_capabilities", "stop"]


def test_blockstats_device_id() -> None:
    stats = BlockStats("/machine/peripheral/virtio-disk0/virtio-backend", {})
    assert stats.device_id == "virtio-disk0"
    assert BlockStats("scsi0-0-0-1", {}).device_id == "scsi0-0-0-1"


def test_device_del_wait_sees_the_event(fake_qmp: FakeQmp) -> None:
    def device_del(args: dict[str, Any]) -> dict[str, Any]:
        fake_qmp.event("DEVICE_DELETED", {"device": "other", "path": "/x"})
        fake_qmp.event("DEVICE_DELETED", {"device": args["id"], "path": "/y"})
        return {}

    fake_qmp.on_call("device_del", device_del)
    with Monitor(fake_qmp.path) as mon:
        assert mon.device_del_wait("virtio-disk1", timeout=2) is True
    assert fake_qmp.calls("device_del") == [{"id": "virtio-disk1"}]


def test_device_del_wait_times_out(fake_qmp: FakeQmp) -> None:
    fake_qmp.on("device_del", {})
    with Monitor(fake_qmp.path) as mon:
        assert mon.device_del_wait("virtio-disk1", timeout=0.05) is False


def test_typed_methods_check_their_required_properties(fake_qmp: FakeQmp) -> None:
    with Monitor(fake_qmp.path) as mon:
        with pytest.raises(TypeError, match="driver"):
            mon.device_add({"id": "x"})
        with pytest.raises(TypeError, match="'type' and 'id'"):
            mon.netdev_add({"id": "x"})
        with pytest.raises(TypeError, match="node-name"):
            mon.blockdev_add({"driver": "raw"})
    assert fake_qmp.names() == []


def test_raw_passthrough(fake_qmp: FakeQmp) -> None:
    fake_qmp.on("query-version", {"qemu": {"major": 7, "minor": 2, "micro": 0}})
    with Monitor(fake_qmp.path) as mon:
        assert mon.execute("query-version")["qemu"]["major"] == 7


def test_guest_io_commands(fake_qmp: FakeQmp) -> None:
    """send-key, QOM objects, the watchdog action and the block I/O status."""
    from pyvirt.drivers.qemu.monitor.guestio import BlockIoStatus

    for name in ("send-key", "object-add", "object-del", "set-action"):
        fake_qmp.on(name, {})
    fake_qmp.on("query-block", [
        {"device": "", "qdev": "/machine/peripheral/virtio-disk0/virtio-backend",
         "io-status": "nospace", "removable": False},
        {"device": "", "qdev": "ide0-1-0", "removable": True, "tray_open": True},
    ])  # fmt: skip
    with Monitor(fake_qmp.path, timeout=5) as mon:
        mon.send_key([0x1D, 0x38], hold_time=50)
        mon.send_key([0x1E])
        mon.object_add({"qom-type": "rng-builtin", "id": "objrng0", "x": None})
        mon.object_del("objrng0")
        mon.set_watchdog_action("poweroff")
        got = mon.block_io_status()
        with pytest.raises(TypeError):
            mon.object_add({"id": "x"})
    assert fake_qmp.calls("send-key") == [
        {"keys": [{"type": "number", "data": 0x1D}, {"type": "number", "data": 0x38}],
         "hold-time": 50},
        {"keys": [{"type": "number", "data": 0x1E}]},
    ]  # fmt: skip
    assert fake_qmp.calls("object-add") == [{"qom-type": "rng-builtin", "id": "objrng0"}]
    assert fake_qmp.calls("set-action") == [{"watchdog": "poweroff"}]
    assert got == [
        BlockIoStatus("/machine/peripheral/virtio-disk0/virtio-backend", "nospace", None, None),
        BlockIoStatus("ide0-1-0", "ok", True, None),
    ]
