"""The watcher's lifecycle policies after a SHUTDOWN (QEMU runs with ``-no-shutdown``), with a
fake QMP client: what it sends, and the exit reason it records."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from qemu.qmp import Runstate

from pyvirt.drivers.qemu import process, runtime, watch


class FakeClient:
    """Records the commands the watcher sends."""

    def __init__(self, status: str = "running") -> None:
        self.sent: list[str] = []
        self.status = status
        self.runstate = Runstate.RUNNING

    async def execute(self, cmd: str, args: Any = None) -> Any:
        self.sent.append(cmd)
        if cmd == "query-status":
            return {"status": self.status, "running": self.status == "running"}
        return {}


@pytest.fixture
def devnull() -> Iterator[int]:
    fd = os.open(os.devnull, os.O_WRONLY)
    yield fd
    os.close(fd)


def _watch(run_dir: Path, out: int, **policy: str) -> tuple[watch.Watch, list[str]]:
    runtime.write_policy(run_dir, **policy)
    seen: list[str] = []
    w = watch.Watch(run_dir, out_fd=out, on_event=lambda e: seen.append(str(e["event"])))
    return w, seen


def _shutdown(w: watch.Watch, client: FakeClient, reason: str, guest: bool) -> None:
    event = {"event": "SHUTDOWN", "data": {"reason": reason, "guest": guest}}
    asyncio.run(w.handle(client, event))


@pytest.mark.parametrize(
    ("policy", "reason", "sent", "exit_reason"),
    [
        ({}, "guest-shutdown", ["quit"], "shutdown"),  # on_poweroff=destroy (default)
        ({"on_poweroff": "destroy"}, "guest-shutdown", ["quit"], "shutdown"),
        ({"on_poweroff": "preserve"}, "guest-shutdown", [], "shutdown"),
        ({"on_reboot": "destroy"}, "guest-reset", ["quit"], "shutdown"),
        ({"on_reboot": "preserve"}, "guest-reset", [], "shutdown"),
        ({}, "guest-panic", ["quit"], "crashed"),  # on_crash=destroy, panic action shutdown
        ({}, "host-signal", [], "crashed"),  # a signal: QEMU exits by itself
        ({}, "host-qmp-quit", [], "shutdown"),
    ],
)
def test_policy_after_shutdown(
    tmp_path: Path,
    devnull: int,
    policy: dict[str, str],
    reason: str,
    sent: list[str],
    exit_reason: str,
) -> None:
    w, seen = _watch(tmp_path, devnull, **policy)
    client = FakeClient()
    _shutdown(w, client, reason, guest=reason.startswith("guest"))
    assert client.sent == sent
    assert seen == ["SHUTDOWN"]
    if sent == ["quit"]:  # the SHUTDOWN that our quit causes keeps the real cause
        _shutdown(w, client, "host-qmp-quit", guest=False)
        assert w.last_shutdown is not None and w.last_shutdown["reason"] == reason
    assert watch.classify(w.last_shutdown, False).reason == exit_reason


def test_poweroff_restart_resets_and_continues(tmp_path: Path, devnull: int) -> None:
    w, _ = _watch(tmp_path, devnull, on_poweroff="restart")
    client = FakeClient()
    _shutdown(w, client, "guest-shutdown", guest=True)
    assert client.sent == ["system_reset", "cont"]
    assert w.last_shutdown is None  # it runs again: no shutdown to report


def test_catch_up_applies_poweroff_that_happened_unwatched(tmp_path: Path, devnull: int) -> None:
    w, seen = _watch(tmp_path, devnull)
    w.qemu_pid, w.qemu_start = os.getpid(), process.proc_stat(os.getpid())[1]  # type: ignore[index]
    client = FakeClient(status="shutdown")
    asyncio.run(w.catch_up(client))
    assert client.sent == ["query-status", "quit"]
    assert seen == ["SHUTDOWN"]
    assert watch.classify(w.last_shutdown, False).reason == "shutdown"
    running = FakeClient()
    asyncio.run(w.catch_up(running))
    assert running.sent == ["query-status"]


def test_catch_up_leaves_an_exiting_qemu_alone(tmp_path: Path, devnull: int) -> None:
    """A destroy under way, or a QEMU whose monitor closes (it is exiting on a signal): its
    cleanup-time ``shutdown`` run state is no guest power-off."""
    runtime.mark_destroying(tmp_path)
    w, seen = _watch(tmp_path, devnull)
    w.qemu_pid, w.qemu_start = os.getpid(), process.proc_stat(os.getpid())[1]  # type: ignore[index]
    client = FakeClient(status="shutdown")
    asyncio.run(w.catch_up(client))
    assert (client.sent, seen, w.last_shutdown) == (["query-status"], [], None)
    (tmp_path / "signalled").mkdir()
    w2, seen2 = _watch(tmp_path / "signalled", devnull)
    w2.qemu_pid, w2.qemu_start = os.getpid(), process.proc_stat(os.getpid())[1]  # type: ignore[index]
    closing = FakeClient(status="shutdown")
    closing.runstate = Runstate.DISCONNECTING
    asyncio.run(w2.catch_up(closing))
    assert (closing.sent, seen2, w2.last_shutdown) == (["query-status"], [], None)


def test_an_incoming_migration_runs_on_arrival_once_and_only_when_asked(
    tmp_path: Path, devnull: int
) -> None:
    w, seen = _watch(tmp_path, devnull)
    client = FakeClient(status="paused")
    completed = {"event": "MIGRATION", "data": {"status": "completed"}}
    asyncio.run(w.handle(client, {"event": "MIGRATION", "data": {"status": "active"}}))
    asyncio.run(w.handle(client, completed))
    assert client.sent == []  # not asked for (--suspend, --persistent, an outgoing one)
    flag = tmp_path / runtime.RUN_ON_ARRIVAL_FILE
    flag.touch()
    asyncio.run(w.handle(client, {"event": "MIGRATION", "data": {"status": "active"}}))
    assert client.sent == [] and flag.exists()
    asyncio.run(w.handle(client, completed))
    assert client.sent == ["cont"] and not flag.exists()
    asyncio.run(w.handle(client, completed))  # a later outgoing migration: left alone
    assert client.sent == ["cont"]
    assert seen == ["MIGRATION"] * 5
