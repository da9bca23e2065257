"""The kernel's watchdog behind the process watchdog (issue 16): armed while HA guests run
here, petted before the fence deadline, disarmed (magic close) when none runs, after the fence
and when the watchdog ends; missing or turned off, the process watchdog fences alone.

The device is a plain file here (a petting write is a NUL byte, the magic close a ``V``): the
real ``/dev/watchdog`` resets the machine when it is not disarmed, so the real device is
exercised only by tests/integration/test_kernel_watchdog.py, where the kernel has softdog."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest

from pyvirt.service.cluster import watchdog
from pyvirt.service.cluster.config import ClusterConfig, write_config
from pyvirt.service.cluster.kernel_watchdog import KernelWatchdog
from pyvirt.state.paths import StatePaths


def test_a_missing_device_is_said_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    dog = KernelWatchdog(tmp_path / "nothing")
    with caplog.at_level(logging.WARNING):
        assert not dog.arm() and not dog.arm()
    said = [r.getMessage() for r in caplog.records if "softdog" in r.getMessage()]
    assert len(said) == 1 and "the process watchdog fences alone" in said[0]
    dog.pet()
    dog.disarm()  # nothing to do


def test_arm_pet_disarm_write_the_driver_protocol(tmp_path: Path) -> None:
    dev = tmp_path / "watchdog"
    dev.write_bytes(b"")
    dog = KernelWatchdog(dev)
    assert dog.arm() and dog.armed
    dog.pet()
    dog.disarm()
    assert not dog.armed
    data = dev.read_bytes()
    assert data.endswith(b"V") and set(data[:-1]) == {0} and len(data) >= 2


class Serving:
    """The watchdog's loop in a thread, with a plain file as its kernel device."""

    def __init__(self, tmp_path: Path) -> None:
        self.paths = StatePaths.from_root(tmp_path)
        self.dev = tmp_path / "watchdog"
        self.dev.write_bytes(b"")
        self.thread = threading.Thread(
            target=lambda: watchdog.serve(self.paths, device=self.dev), daemon=True
        )
        self.thread.start()
        end = time.monotonic() + 5
        while not watchdog.socket_path(self.paths).exists():
            assert time.monotonic() < end
            time.sleep(0.01)

    def wait_for(self, what: bytes, timeout: float = 3.0) -> None:
        end = time.monotonic() + timeout
        while not self.dev.read_bytes().endswith(what):
            assert time.monotonic() < end, self.dev.read_bytes()[-20:]
            time.sleep(0.02)

    def end(self) -> None:
        assert watchdog.stop(self.paths)
        self.thread.join(5)
        assert not self.thread.is_alive()


def test_armed_only_while_ha_guests_run(tmp_path: Path) -> None:
    s = Serving(tmp_path)
    try:
        watchdog.pet(s.paths, time.monotonic() + 30, [])  # no HA guest: not armed
        time.sleep(0.5)
        assert s.dev.read_bytes() == b""
        watchdog.pet(s.paths, time.monotonic() + 30, ["g1"])
        s.wait_for(b"\0")
        size = len(s.dev.read_bytes())
        time.sleep(0.6)  # petted every 0.25 s without a message from pyvirtd
        assert len(s.dev.read_bytes()) >= size + 2
        watchdog.pet(s.paths, time.monotonic() + 30, [])  # the last HA guest went
        s.wait_for(b"V")
        watchdog.pet(s.paths, time.monotonic() + 30, ["g1"])  # armed again
        s.wait_for(b"\0")
    finally:
        s.end()
    assert s.dev.read_bytes().endswith(b"V")  # the end disarms it


def test_disarmed_after_the_fence(tmp_path: Path) -> None:
    s = Serving(tmp_path)
    try:
        watchdog.pet(s.paths, time.monotonic() + 0.5, ["g1"])  # and then no more pets
        s.wait_for(b"\0")
        s.wait_for(b"V", 5.0)  # the deadline passed: fenced (nothing ran), then disarmed
        petted = s.dev.read_bytes()
        time.sleep(0.6)
        assert s.dev.read_bytes() == petted  # and left alone
    finally:
        s.end()


def test_turned_off_by_the_cluster_config(tmp_path: Path) -> None:
    paths = StatePaths.from_root(tmp_path)
    config = ClusterConfig(cluster="c", host="h1", endpoints=("http://127.0.0.1:1",),
                           kernel_watchdog=False)  # fmt: skip
    write_config(paths, config)
    assert ClusterConfig.from_json(config.to_json()).kernel_watchdog is False
    older = {k: v for k, v in config.to_json().items() if k != "kernel_watchdog"}
    assert ClusterConfig.from_json(older).kernel_watchdog is True  # a file from before: on
    s = Serving(tmp_path)
    try:
        watchdog.pet(s.paths, time.monotonic() + 30, ["g1"])
        time.sleep(0.6)
        assert s.dev.read_bytes() == b""
    finally:
        s.end()
