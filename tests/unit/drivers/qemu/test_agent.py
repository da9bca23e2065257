"""Every typed guest agent method against the fake agent: the command and arguments it
sends after the sync handshake, and the typed value it makes of the reply."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pyvirt.drivers.qemu.agent import AgentError, AgentTimeoutError, GuestAgent
from pyvirt.drivers.qemu.agent_types import (
    AgentInfo,
    GuestDiskAddress,
    GuestFilesystem,
    GuestIpAddress,
    GuestNetworkInterface,
    GuestPciAddress,
    GuestTimezone,
    GuestUser,
)
from pyvirt.errors import MonitorError
from tests.fakeqmp import NO_REPLY, FakeQmp

FSINFO = [
    {"name": "vda1", "mountpoint": "/", "type": "ext4", "total-bytes": 1000, "used-bytes": 10,
     "disk": [{"pci-controller": {"domain": 0, "bus": 0, "slot": 4, "function": 0},
               "bus-type": "virtio", "bus": 0, "target": 0, "unit": 0, "dev": "/dev/vda1",
               "serial": "abc"}]},
    {"name": "tmpfs", "mountpoint": "/run", "type": "tmpfs", "disk": []},
]  # fmt: skip
IFACES = [
    {"name": "lo", "hardware-address": "00:00:00:00:00:00",
     "ip-addresses": [{"ip-address-type": "ipv4", "ip-address": "127.0.0.1", "prefix": 8}]},
    {"name": "eth0", "hardware-address": "52:54:00:aa:bb:cc",
     "ip-addresses": [{"ip-address-type": "ipv6", "ip-address": "fe80::1", "prefix": 64}]},
]  # fmt: skip

CASES: list[tuple[str, Callable[[GuestAgent], Any], str, dict[str, Any], Any, Any]] = [
    ("ping", lambda g: g.ping(), "guest-ping", {}, {}, None),
    ("info", lambda g: g.info(), "guest-info", {},
     {"version": "7.2.0", "supported_commands": [
         {"name": "guest-ping", "enabled": True, "success-response": True},
         {"name": "guest-exec", "enabled": False, "success-response": True}]},
     AgentInfo("7.2.0", {"guest-ping": True, "guest-exec": False})),
    ("fsinfo", lambda g: g.get_fsinfo(), "guest-get-fsinfo", {}, FSINFO,
     [GuestFilesystem("vda1", "/", "ext4",
                      [GuestDiskAddress(GuestPciAddress(0, 0, 4, 0), "virtio", "/dev/vda1", "abc")],
                      1000, 10),
      GuestFilesystem("tmpfs", "/run", "tmpfs", [])]),
    ("freeze", lambda g: g.fsfreeze_freeze(), "guest-fsfreeze-freeze", {}, 2, 2),
    ("freeze-list", lambda g: g.fsfreeze_freeze(["/", "/srv"]), "guest-fsfreeze-freeze-list",
     {"mountpoints": ["/", "/srv"]}, 2, 2),
    ("thaw", lambda g: g.fsfreeze_thaw(), "guest-fsfreeze-thaw", {}, 2, 2),
    ("freeze-status", lambda g: g.fsfreeze_status(), "guest-fsfreeze-status", {}, "thawed",
     "thawed"),
    ("get-time", lambda g: g.get_time(), "guest-get-time", {}, 1700000000123456789,
     1700000000123456789),
    ("set-time", lambda g: g.set_time(1700000000000000000), "guest-set-time",
     {"time": 1700000000000000000}, {}, None),
    ("set-time-rtc", lambda g: g.set_time(), "guest-set-time", {}, {}, None),
    ("password", lambda g: g.set_user_password("root", "pw"), "guest-set-user-password",
     {"username": "root", "password": "cHc=", "crypted": False}, {}, None),
    ("interfaces", lambda g: g.network_get_interfaces(), "guest-network-get-interfaces", {},
     IFACES,
     [GuestNetworkInterface("lo", "00:00:00:00:00:00", [GuestIpAddress("127.0.0.1", "ipv4", 8)]),
      GuestNetworkInterface("eth0", "52:54:00:aa:bb:cc", [GuestIpAddress("fe80::1", "ipv6", 64)])]),
    ("users", lambda g: g.get_users(), "guest-get-users", {},
     [{"user": "root", "login-time": 1700000000.5}, {"user": "bob", "domain": "AD",
                                                     "login-time": 1}],
     [GuestUser("root", 1700000000.5), GuestUser("bob", 1.0, "AD")]),
    ("timezone", lambda g: g.get_timezone(), "guest-get-timezone", {},
     {"zone": "CET", "offset": 3600}, GuestTimezone("CET", 3600)),
    ("hostname", lambda g: g.get_host_name(), "guest-get-host-name", {}, {"host-name": "tiny"},
     "tiny"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("call", "command", "args", "reply", "result"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_wire_format(
    fake_agent: FakeQmp,
    call: Callable[[GuestAgent], Any],
    command: str,
    args: dict[str, Any],
    reply: Any,
    result: Any,
) -> None:
    fake_agent.on(command, reply)
    with GuestAgent(fake_agent.path, timeout=5, name="web1") as ga:
        assert call(ga) == result
    assert fake_agent.names() == ["guest-sync-delimited", command]
    assert fake_agent.calls(command) == [args]


def test_osinfo_keeps_virsh_order(fake_agent: FakeQmp) -> None:
    fake_agent.on(
        "guest-get-osinfo",
        {"kernel-release": "6.1", "id": "debian", "pretty-name": "Debian 12", "extra": "x"},
    )
    with GuestAgent(fake_agent.path, timeout=5) as ga:
        info = ga.get_osinfo()
    assert list(info.items()) == [
        ("id", "debian"),
        ("pretty-name", "Debian 12"),
        ("kernel-release", "6.1"),
    ]


def test_shutdown_expects_no_answer(fake_agent: FakeQmp) -> None:
    fake_agent.on("guest-shutdown", NO_REPLY)
    with GuestAgent(fake_agent.path, timeout=5) as ga:
        ga.shutdown(grace=0.05)
    assert fake_agent.calls("guest-shutdown") == [{"mode": "powerdown"}]


def test_error_reply_keeps_command_and_class(fake_agent: FakeQmp) -> None:
    fake_agent.on("guest-fsfreeze-freeze", error=("GenericError", "failed to freeze /: busy"))
    with (
        GuestAgent(fake_agent.path, timeout=5, name="web1") as ga,
        pytest.raises(AgentError) as exc,
    ):
        ga.fsfreeze_freeze()
    err = exc.value
    assert isinstance(err, MonitorError)
    assert err.command == "guest-fsfreeze-freeze"
    assert err.error_class == "GenericError"
    assert err.desc == "failed to freeze /: busy"
    assert str(err) == (
        "the guest agent of domain 'web1' failed 'guest-fsfreeze-freeze': failed to freeze /: busy"
    )


def test_silent_agent_times_out(fake_agent: FakeQmp) -> None:
    fake_agent.on("guest-get-time", NO_REPLY)
    with GuestAgent(fake_agent.path, timeout=0.1) as ga, pytest.raises(AgentTimeoutError) as exc:
        ga.get_time()
    assert "guest-get-time" in str(exc.value)
    assert exc.value.hint is not None and "qemu-guest-agent" in exc.value.hint
