"""Guest agent use cases against a fake agent (and fake QMP for disk addresses): the typed
replies become virsh's output rows, and agent errors reach the caller with their command."""

from __future__ import annotations

import pytest

from pyvirt.drivers.qemu.agent import AgentError
from pyvirt.errors import InvalidConfigError, UnsupportedError
from pyvirt.service.domain import agent
from pyvirt.service.nic import ops as nic_ops
from pyvirt.service.tuning import memory
from tests.fakeqmp import FakeQmp
from tests.unit.service.conftest import Guest

FSINFO = [
    {"name": "vda1", "mountpoint": "/", "type": "ext4", "total-bytes": 1000, "used-bytes": 10,
     "disk": [{"pci-controller": {"domain": 0, "bus": 0, "slot": 2, "function": 0},
               "bus-type": "virtio", "dev": "/dev/vda1", "serial": "S1"}]},
    {"name": "sdz", "mountpoint": "/mnt", "type": "xfs",
     "disk": [{"bus-type": "scsi", "dev": "/dev/sdz"}]},
]  # fmt: skip


def test_guest_info_rows(agent_guest: tuple[Guest, FakeQmp]) -> None:
    g, ga = agent_guest
    ga.on("guest-get-users", [{"user": "root", "login-time": 1.5}])
    ga.on("guest-get-osinfo", {"name": "Tiny", "id": "tiny", "kernel-release": "6.1"})
    ga.on("guest-get-timezone", {"offset": 0})
    ga.on("guest-get-host-name", {"host-name": "box"})
    ga.on("guest-get-fsinfo", FSINFO)
    rows = agent.guest_info(g.mgr, g.name)
    assert rows == [
        ("user.count", "1"),
        ("user.0.name", "root"),
        ("user.0.login-time", "1500"),
        ("os.id", "tiny"),
        ("os.name", "Tiny"),
        ("os.kernel-release", "6.1"),
        ("timezone.offset", "0"),
        ("hostname", "box"),
        ("fs.count", "2"),
        ("fs.0.name", "vda1"),
        ("fs.0.mountpoint", "/"),
        ("fs.0.fstype", "ext4"),
        ("fs.0.total-bytes", "1000"),
        ("fs.0.used-bytes", "10"),
        ("fs.0.disk.count", "1"),
        ("fs.0.disk.0.alias", "vda"),
        ("fs.0.disk.0.serial", "S1"),
        ("fs.0.disk.0.device", "/dev/vda1"),
        ("fs.1.name", "sdz"),
        ("fs.1.mountpoint", "/mnt"),
        ("fs.1.fstype", "xfs"),
        ("fs.1.disk.count", "1"),
        ("fs.1.disk.0.device", "/dev/sdz"),
    ]
    assert g.qmp.names() == ["query-pci"]


def test_fs_info_maps_pci_addresses_to_targets(agent_guest: tuple[Guest, FakeQmp]) -> None:
    g, ga = agent_guest
    ga.on("guest-get-fsinfo", FSINFO)
    infos = agent.fs_info(g.mgr, g.name)
    assert [(f.mountpoint, f.targets) for f in infos] == [("/", ["vda"]), ("/mnt", ["sdz"])]


def test_freeze_thaw_time_and_password(agent_guest: tuple[Guest, FakeQmp]) -> None:
    g, ga = agent_guest
    ga.on("guest-fsfreeze-freeze-list", 1)
    ga.on("guest-fsfreeze-thaw", 1)
    ga.on("guest-set-time", {})
    ga.on("guest-set-user-password", {})
    assert agent.fs_freeze(g.mgr, g.name, ["/"]) == 1
    assert agent.fs_thaw(g.mgr, g.name) == 1
    agent.set_time(g.mgr, g.name, None)
    agent.set_user_password(g.mgr, g.name, "root", "pw", encrypted=True)
    assert ga.calls("guest-fsfreeze-freeze-list") == [{"mountpoints": ["/"]}]
    assert ga.calls("guest-set-time") == [{}]
    assert ga.calls("guest-set-user-password") == [
        {"username": "root", "password": "cHc=", "crypted": True}
    ]


def test_interface_addresses(agent_guest: tuple[Guest, FakeQmp]) -> None:
    g, ga = agent_guest
    ga.on(
        "guest-network-get-interfaces",
        [{"name": "eth0", "ip-addresses": [
            {"ip-address-type": "ipv4", "ip-address": "10.0.0.5", "prefix": 24}]}],
    )  # fmt: skip
    [row] = nic_ops.interface_addresses(g.mgr, g.name)
    assert (row.target, row.mac, row.protocol, row.address) == (
        "eth0", "00:00:00:00:00:00", "ipv4", "10.0.0.5/24",
    )  # fmt: skip


def test_raw_command_and_its_errors(agent_guest: tuple[Guest, FakeQmp]) -> None:
    g, ga = agent_guest
    ga.on("guest-info", {"version": "7.2"})
    assert agent.command(g.mgr, g.name, {"execute": "guest-info"}) == {"version": "7.2"}
    with pytest.raises(InvalidConfigError):
        agent.command(g.mgr, g.name, ["guest-info"])
    ga.on("guest-fsfreeze-thaw", error=("GenericError", "nothing frozen"))
    with pytest.raises(AgentError, match="nothing frozen") as exc:
        agent.fs_thaw(g.mgr, g.name)
    assert exc.value.command == "guest-fsfreeze-thaw"


def test_agent_shutdown_reports_a_refusal(agent_guest: tuple[Guest, FakeQmp]) -> None:
    g, ga = agent_guest
    ga.on("guest-shutdown", error=("GenericError", "shutdown not allowed"))
    with pytest.raises(AgentError, match="shutdown not allowed"):
        agent.shutdown(g.mgr, g.name)
    assert ga.calls("guest-shutdown") == [{"mode": "powerdown"}]


def test_missing_balloon_is_unsupported(guest: Guest) -> None:
    guest.qmp.on("query-balloon", error=("DeviceNotActive", "No balloon device has been activated"))
    with pytest.raises(UnsupportedError) as exc:
        memory.balloon_kib(guest.mgr, guest.name)
    assert str(exc.value) == (
        "domain 'hp' has no active memory balloon: No balloon device has been activated"
    )
