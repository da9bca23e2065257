"""How monitor failures surface: every one is a :class:`pyvirt.errors.MonitorError`; a QMP
error reply keeps the command, QEMU's error class and description, and what was sent."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from pyvirt.drivers.qemu.qmp import Monitor, QmpCommandError
from pyvirt.errors import MonitorError, PyvirtError
from tests.fakeqmp import HANG_UP, FakeQmp


def test_error_reply_keeps_command_class_and_arguments(fake_qmp: FakeQmp) -> None:
    fake_qmp.on("device_add", error=("GenericError", "Duplicate device ID 'net1' for device"))
    with Monitor(fake_qmp.path) as mon, pytest.raises(QmpCommandError) as exc:
        mon.device_add({"driver": "e1000", "id": "net1", "bootindex": None})
    err = exc.value
    assert isinstance(err, MonitorError) and isinstance(err, PyvirtError)
    assert err.command == "device_add"
    assert err.error_class == "GenericError"
    assert err.desc == "Duplicate device ID 'net1' for device"
    assert str(err) == "QMP command 'device_add' failed: Duplicate device ID 'net1' for device"
    assert err.sent["arguments"] == {"driver": "e1000", "id": "net1"}
    assert err.received["error"]["class"] == "GenericError"


def test_unknown_command(fake_qmp: FakeQmp) -> None:
    with Monitor(fake_qmp.path) as mon, pytest.raises(QmpCommandError) as exc:
        mon.query_iothreads()
    assert exc.value.error_class == "CommandNotFound"
    assert exc.value.command == "query-iothreads"


def test_device_not_found_class(fake_qmp: FakeQmp) -> None:
    fake_qmp.on("device_del", error=("DeviceNotFound", "Device 'net7' not found"))
    with Monitor(fake_qmp.path) as mon, pytest.raises(QmpCommandError) as exc:
        mon.device_del("net7")
    assert exc.value.error_class == "DeviceNotFound"
    assert "net7" in exc.value.desc


def test_session_survives_an_error(fake_qmp: FakeQmp) -> None:
    fake_qmp.on("cont", error=("GenericError", "no"))
    fake_qmp.on("query-status", {"status": "running", "running": True})
    with Monitor(fake_qmp.path) as mon:
        with pytest.raises(QmpCommandError):
            mon.cont()
        assert mon.query_status() == ("running", True)


def test_missing_socket(sock_dir: Path) -> None:
    with pytest.raises(MonitorError) as exc:
        Monitor(sock_dir / "nope.sock", timeout=1).connect()
    assert not isinstance(exc.value, QmpCommandError)
    assert "connect" in str(exc.value) and "nope.sock" in str(exc.value)


def test_no_greeting_times_out(sock_dir: Path) -> None:
    path = sock_dir / "mute.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)
    try:
        with pytest.raises(MonitorError) as exc:
            Monitor(path, timeout=0.2).connect()
        assert "timed out" in str(exc.value)
        assert exc.value.hint is not None and "destroy" in exc.value.hint
    finally:
        server.close()


def test_hang_up_during_a_command(fake_qmp: FakeQmp) -> None:
    fake_qmp.on("system_powerdown", HANG_UP)
    with Monitor(fake_qmp.path, timeout=2) as mon, pytest.raises(MonitorError) as exc:
        mon.system_powerdown()
    assert "system_powerdown" in str(exc.value)


def test_quit_tolerates_the_hang_up(fake_qmp: FakeQmp) -> None:
    fake_qmp.on("quit", HANG_UP)
    with Monitor(fake_qmp.path, timeout=2) as mon:
        mon.quit()
    assert fake_qmp.names() == ["quit"]
