"""A start killed before its runtime record: the next command finds the QEMU it launched
(by command line) and kills it; a QEMU no record describes blocks a second start. A stand-in
process with QEMU's identifying arguments plays QEMU (no QEMU runs)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyvirt.drivers.qemu import process
from pyvirt.errors import InvalidStateError
from pyvirt.service.domain import lifecycle
from pyvirt.service.domain.manager import DomainManager
from pyvirt.state.paths import StatePaths

UUID = "3e0f5c1a-7b2d-4c8e-9f10-2a3b4c5d6e7f"


@pytest.fixture
def mgr(tmp_path: Path) -> DomainManager:
    return DomainManager(StatePaths.from_root(tmp_path))


@pytest.fixture
def fake_qemu(mgr: DomainManager) -> Iterator[subprocess.Popen[bytes]]:
    sock = mgr.rundir("d").qmp_socket
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", "-uuid", UUID,
         "-qmp", f"unix:{sock},server=on,wait=off"]
    )  # fmt: skip
    deadline = time.monotonic() + 5
    while not process.find_by_cmdline(UUID, sock) and time.monotonic() < deadline:
        time.sleep(0.01)
    yield proc
    proc.kill()
    proc.wait()


def _killed_starter(run_dir: Path) -> None:
    """Make the intent name a command that is gone (a start killed midway)."""
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True)  # fmt: skip
    path = run_dir / "starting.json"
    intent = json.loads(path.read_text())
    intent["pid"] = int(gone.stdout)
    path.write_text(json.dumps(intent))


def test_a_running_starter_is_left_alone(
    mgr: DomainManager, fake_qemu: subprocess.Popen[bytes]
) -> None:
    run = mgr.rundir("d")
    run.create()
    run.write_start_intent(UUID)  # this process: a start under way
    assert run.starter_alive()
    assert mgr.live_record("d", cleanup=True) is None
    assert fake_qemu.poll() is None and run.exists()


def test_find_by_cmdline(mgr: DomainManager, fake_qemu: subprocess.Popen[bytes]) -> None:
    sock = mgr.rundir("d").qmp_socket
    assert [f.pid for f in process.find_by_cmdline(UUID, sock)] == [fake_qemu.pid]
    assert process.find_by_cmdline(UUID, sock.parent.parent / "e" / "qmp.sock") == []
    assert process.find_by_cmdline("0" * 8 + UUID[8:], sock) == []


def test_killed_start_is_cleaned_up_by_the_next_command(
    mgr: DomainManager, fake_qemu: subprocess.Popen[bytes]
) -> None:
    run = mgr.rundir("d")
    run.create()
    run.write_start_intent(UUID)  # the start died after launching, before runtime.json
    _killed_starter(run.path)
    assert run.start_intent() == UUID and not run.starter_alive()
    assert mgr.live_record("d", cleanup=False) is None  # takes the free lock, cleans up
    assert fake_qemu.wait(5) == -9
    assert not run.exists()


def test_killed_start_of_a_busy_domain_is_left_to_its_lock_holder(
    mgr: DomainManager, fake_qemu: subprocess.Popen[bytes]
) -> None:
    run = mgr.rundir("d")
    run.create()
    run.write_start_intent(UUID)
    _killed_starter(run.path)
    mgr.paths.lock_dir.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(  # a start still under way holds the domain lock
        [sys.executable, "-c",
         "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT);"
         " fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(30)",
         str(mgr.paths.lock_dir / "domain-d.lock")],
        stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
        assert mgr.live_record("d", cleanup=False) is None
        assert fake_qemu.poll() is None  # not killed: the start may still finish
        assert run.start_intent() == UUID
    finally:
        holder.kill()
        holder.wait()


@pytest.fixture
def lost_qemu(mgr: DomainManager) -> Iterator[subprocess.Popen[bytes]]:
    """A stand-in QEMU listening on the QMP socket of a run directory removed since."""
    sock = mgr.rundir("d").qmp_socket
    sock.parent.mkdir(parents=True)
    code = ("import socket, sys, time; s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); "
            "s.listen(); print('bound', flush=True); time.sleep(60)")  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(sock), "-uuid", UUID,
         "-qmp", f"unix:{sock},server=on,wait=off"], stdout=subprocess.PIPE
    )  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"bound\n"
        shutil.rmtree(sock.parent)
        yield proc
    finally:
        proc.kill()
        proc.wait()


def test_a_lost_qemu_blocks_a_second_start(
    mgr: DomainManager, lost_qemu: subprocess.Popen[bytes]
) -> None:
    assert mgr.lost_qemus("d", UUID) == [lost_qemu.pid]
    with pytest.raises(InvalidStateError, match="lost track of"):
        lifecycle._refuse_lost(mgr, "d", UUID)


def test_no_socket_on_the_qmp_path_is_no_lost_qemu(
    mgr: DomainManager, fake_qemu: subprocess.Popen[bytes]
) -> None:  # one read of /proc/net/unix instead of every process's command line
    assert process.unix_socket_bound(mgr.rundir("d").qmp_socket) is False
    assert mgr.lost_qemus("d", UUID) == []


def test_a_record_makes_the_intent_void(mgr: DomainManager) -> None:
    run = mgr.rundir("d")
    run.create()
    run.write_start_intent(UUID)
    (run.path / "runtime.json").write_text("{}")
    assert run.start_intent() is None
