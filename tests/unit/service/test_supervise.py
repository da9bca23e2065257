"""Supervision by a long-lived process: the claim, start listeners, and the translation of
QMP events into virsh's lifecycle words."""

from __future__ import annotations

import json
import os
from pathlib import Path

from pyvirt.service.domain import supervise
from pyvirt.service.domain.supervise import DomainEvent, EventTranslator, stopped_event
from pyvirt.state.paths import StatePaths


def _words(events: list[DomainEvent]) -> list[str]:
    return [f"{e.kind}:{e.event} {e.detail}".strip() for e in events]


def _run(tr: EventTranslator, *names: str, **data: object) -> list[str]:
    out: list[DomainEvent] = []
    for name in names:
        out += tr.translate({"event": name, "data": dict(data)})
    return _words(out)


def test_suspend_and_resume() -> None:
    tr = EventTranslator()
    assert _run(tr, "STOP") == ["lifecycle:Suspended Paused"]
    assert _run(tr, "STOP") == []  # already paused
    assert _run(tr, "RESUME") == ["lifecycle:Resumed Unpaused"]
    assert _run(tr, "RESUME") == []


def test_started_paused_then_resumed() -> None:
    assert _run(EventTranslator(paused=True), "RESUME") == ["lifecycle:Resumed Unpaused"]


def test_guest_poweroff_is_shutdown_finished_not_a_suspend() -> None:
    tr = EventTranslator()
    assert _run(tr, "SHUTDOWN", guest=True, reason="guest-shutdown") == [
        "lifecycle:Shutdown Finished"
    ]
    assert _run(tr, "STOP") == []  # -no-shutdown pauses QEMU after the power-off
    assert _run(tr, "SHUTDOWN", guest=False, reason="host-qmp-quit") == []


def test_restart_after_poweroff_then_suspend_counts_again() -> None:
    tr = EventTranslator()
    _run(tr, "SHUTDOWN", guest=True, reason="guest-shutdown")
    _run(tr, "STOP")
    assert _run(tr, "RESET", "RESUME") == []  # on_poweroff=restart: not a resume by a user
    assert _run(tr, "STOP") == ["lifecycle:Suspended Paused"]


def test_destroy_signal_says_nothing_before_stopped() -> None:
    assert _run(EventTranslator(), "SHUTDOWN", guest=False, reason="host-signal") == []


def test_panic_and_device_removed() -> None:
    tr = EventTranslator()
    assert _run(tr, "GUEST_PANICKED", action="pause") == ["lifecycle:Crashed Panicked"]
    assert _run(tr, "DEVICE_DELETED", device="net1", path="/x") == ["device-removed:net1"]
    assert _run(tr, "DEVICE_DELETED", path="/machine/peripheral/x/virtio-backend") == []
    assert _run(tr, "BLOCK_JOB_COMPLETED") == []


def test_the_resume_that_ends_an_incoming_migration() -> None:
    """libvirt's words on the destination: ``Resumed Migrated`` once, then as any other;
    a restore's resume is part of its ``Started Restored``."""
    tr = EventTranslator(paused=True, incoming="migration")
    assert _run(tr, "RESUME") == ["lifecycle:Resumed Migrated"]
    assert _run(tr, "STOP") == ["lifecycle:Suspended Paused"]
    assert _run(tr, "RESUME") == ["lifecycle:Resumed Unpaused"]
    tr = EventTranslator(paused=True, incoming="restore")
    assert _run(tr, "RESUME") == []
    assert EventTranslator(paused=False, incoming="migration").incoming is None  # it arrived


def test_the_source_of_a_migration_says_migrated() -> None:
    """libvirt's words on the source: the switch-over's stop is ``Suspended Migrated``
    (``PostCopy`` in post-copy); a failed migration's resume is ``Resumed Migrated``; after
    it, a stop is a plain pause again."""
    tr = EventTranslator()
    assert _run(tr, "MIGRATION", status="setup") == []
    assert _run(tr, "MIGRATION", status="active") == []
    assert _run(tr, "STOP") == ["lifecycle:Suspended Migrated"]
    assert _run(tr, "MIGRATION", status="failed") == []
    assert _run(tr, "RESUME") == ["lifecycle:Resumed Migrated"]
    assert _run(tr, "STOP") == ["lifecycle:Suspended Paused"]
    assert _run(tr, "RESUME") == ["lifecycle:Resumed Unpaused"]
    tr = EventTranslator()
    _run(tr, "MIGRATION", status="active")
    assert _run(tr, "MIGRATION", status="postcopy-active") == []
    assert _run(tr, "STOP") == ["lifecycle:Suspended PostCopy"]
    # the destination's own MIGRATION events (incoming) make no stop of it a migration's
    tr = EventTranslator(paused=True, incoming="migration")
    _run(tr, "MIGRATION", status="active")
    assert _run(tr, "RESUME") == ["lifecycle:Resumed Migrated"]
    assert _run(tr, "STOP") == ["lifecycle:Suspended Paused"]


def test_stopped_event_words() -> None:
    assert stopped_event("shutdown", "guest-shutdown").detail == "Shutdown"
    assert stopped_event("destroyed", "host-signal").detail == "Destroyed"
    assert stopped_event("crashed", "guest-panic").detail == "Crashed"
    assert stopped_event("migrated", None).detail == "Migrated"  # the source after confirm
    assert stopped_event("saved", None).detail == "Saved"
    assert stopped_event("crashed", "no-shutdown-event").detail == "Failed"  # killed QEMU
    assert stopped_event("crashed", None).detail == "Failed"
    assert stopped_event("shutdown", None).event == "Stopped"


def test_claim_release_and_a_dead_claimant(tmp_path: Path) -> None:
    paths = StatePaths.from_root(tmp_path)
    assert not supervise.supervisor_alive(paths)
    supervise.claim(paths)
    assert supervise.supervisor_alive(paths)
    supervise.release(paths)
    assert not supervise.supervisor_alive(paths)
    # a killed supervisor leaves its claim; a process that is gone does not count
    (paths.run / supervise.CLAIM_FILE).write_text(json.dumps({"pid": 2**22 + 7, "starttime": 1}))
    assert not supervise.supervisor_alive(paths)
    supervise.release(paths)  # not ours: left alone
    assert (paths.run / supervise.CLAIM_FILE).exists()
    # a pid reused by another process (other start time) does not count either
    (paths.run / supervise.CLAIM_FILE).write_text(json.dumps({"pid": os.getppid(), "starttime": 1}))
    assert not supervise.supervisor_alive(paths)


def test_start_listeners() -> None:
    seen: list[str] = []

    def boom(name: str) -> None:
        raise RuntimeError(name)

    supervise.add_start_listener(boom)
    supervise.add_start_listener(seen.append)
    try:
        supervise.notify_started("web1")  # a failing listener does not stop the others
    finally:
        supervise.remove_start_listener(boom)
        supervise.remove_start_listener(seen.append)
    supervise.notify_started("web2")
    assert seen == ["web1"]
