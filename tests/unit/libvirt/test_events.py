"""The default event loop of pyvirt.libvirt: timers, queued calls, handles, the mapping of
pyvirt's event words to libvirt's numbers, and the state poller of embedded connections."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from pyvirt import libvirt
from pyvirt.api.event_values import Event
from pyvirt.libvirt import events
from pyvirt.libvirt.events import EventLoop, Poller, lifecycle_codes

XML = """<domain type='qemu'><name>{name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='pc'>hvm</type></os></domain>"""


def test_timers_and_queued_calls_run_in_the_loop() -> None:
    loop = EventLoop()
    fired: list[object] = []
    tid = loop.add_timeout(0, lambda t, o: fired.append(("timer", t, o)), "x")
    loop.post(lambda: fired.append("call"))
    loop.run_once()
    assert fired == ["call", ("timer", tid, "x")]
    loop.update_timeout(tid, -1)
    threading.Timer(0.05, loop.post, args=(lambda: fired.append("late"),)).start()
    deadline = time.monotonic() + 5
    while fired[-1] != "late" and time.monotonic() < deadline:
        loop.run_once()  # waits for the posted call, the timer is off
    assert fired[-1] == "late" and len(fired) == 3
    assert loop.remove_timeout(tid) == 0 and loop.remove_timeout(tid) == -1


def test_handles_are_watched() -> None:
    loop = EventLoop()
    r, w = os.pipe()
    got: list[tuple[int, int]] = []
    hid = loop.add_handle(
        r, libvirt.VIR_EVENT_HANDLE_READABLE, lambda h, fd, ev, o: got.append((fd, ev)), None
    )
    os.write(w, b"x")
    loop.run_once()
    assert got == [(r, libvirt.VIR_EVENT_HANDLE_READABLE)]
    assert loop.remove_handle(hid) == 0
    os.close(r)
    os.close(w)


def test_a_failing_callback_does_not_stop_the_loop(capsys: pytest.CaptureFixture[str]) -> None:
    loop = EventLoop()
    done: list[int] = []
    loop.post(lambda: 1 / 0)
    loop.post(lambda: done.append(1))
    loop.run_once()
    assert done == [1] and "ZeroDivisionError" in capsys.readouterr().err


@pytest.mark.parametrize(
    "event, detail, codes",
    [
        ("Defined", "Added", (0, 0)),
        ("Defined", "Updated", (0, 1)),
        ("Undefined", "Removed", (1, 0)),
        ("Started", "Booted", (2, 0)),
        ("Started", "Migrated", (2, 1)),
        ("Started", "Restored", (2, 2)),
        ("Suspended", "Paused", (3, 0)),
        ("Resumed", "Unpaused", (4, 0)),
        ("Resumed", "Migrated", (4, 1)),
        ("Stopped", "Shutdown", (5, 0)),
        ("Stopped", "Destroyed", (5, 1)),
        ("Stopped", "Crashed", (5, 2)),
        ("Stopped", "Migrated", (5, 3)),
        ("Stopped", "Saved", (5, 4)),
        ("Stopped", "Failed", (5, 5)),
        ("Shutdown", "Finished", (6, 0)),
        ("Crashed", "Panicked", (8, 0)),
    ],
)
def test_lifecycle_codes(event: str, detail: str, codes: tuple[int, int]) -> None:
    assert lifecycle_codes(Event("lifecycle", "domain", "d", event, detail)) == codes


def test_network_and_pool_codes() -> None:
    ev = Event("network-lifecycle", "network", "n", "Started")
    assert lifecycle_codes(ev) == (libvirt.VIR_NETWORK_EVENT_STARTED, 0)
    ev = Event("pool-lifecycle", "pool", "p", "Deleted")
    assert lifecycle_codes(ev) == (libvirt.VIR_STORAGE_POOL_EVENT_DELETED, 0)
    assert lifecycle_codes(Event("lifecycle", "domain", "d", "Whatever")) is None


def _words(
    old: tuple[str, str, str, bool] | None, new: tuple[str, str, str, bool] | None
) -> list[str]:
    return [f"{e.event} {e.detail}" for e in Poller.changes("d", old, new)]


def test_poller_changes() -> None:
    off = ("d", "shut off", "unknown", True)
    run = ("d", "running", "booted", True)
    paused = ("d", "paused", "user", True)
    assert _words(None, off) == ["Defined Added"]
    assert _words(off, run) == ["Started Booted"]
    assert _words(run, paused) == ["Suspended Paused"]
    assert _words(paused, run) == ["Resumed Unpaused"]
    assert _words(run, ("d", "shut off", "destroyed", True)) == ["Stopped Destroyed"]
    assert _words(run, ("d", "shut off", "shutdown", True)) == [
        "Shutdown Finished",
        "Stopped Shutdown",
    ]
    assert _words(off, None) == ["Undefined Removed"]
    assert _words(None, ("d", "running", "booted", False)) == ["Started Booted"]
    assert _words(("d", "running", "booted", False), None) == ["Stopped Destroyed"]


def test_embedded_connection_gets_events_by_polling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYVIRT_STATE_DIR", str(tmp_path / "s"))
    monkeypatch.setattr(events, "POLL_INTERVAL", 0.05)
    libvirt.virEventRegisterDefaultImpl()
    conn = libvirt.open("qemu:///system")
    got: list[tuple[str, int, int, object]] = []
    cid = conn.domainEventRegisterAny(
        None,
        libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE,
        lambda c, dom, ev, detail, opaque: got.append((dom.name(), ev, detail, opaque)),
        "op",
    )
    dom = conn.defineXML(XML.format(name="ev1"))
    deadline = time.monotonic() + 10
    while not got and time.monotonic() < deadline:
        libvirt.virEventAddTimeout(100, lambda t, o: libvirt.virEventRemoveTimeout(t), None)
        libvirt.virEventRunDefaultImpl()
    assert got == [("ev1", libvirt.VIR_DOMAIN_EVENT_DEFINED, 0, "op")]
    dom.undefine()
    while len(got) < 2 and time.monotonic() < deadline:
        libvirt.virEventAddTimeout(100, lambda t, o: libvirt.virEventRemoveTimeout(t), None)
        libvirt.virEventRunDefaultImpl()
    assert got[1] == ("ev1", libvirt.VIR_DOMAIN_EVENT_UNDEFINED, 0, "op")
    assert conn.domainEventDeregisterAny(cid) == 0
    with pytest.raises(libvirt.libvirtError):
        conn.domainEventDeregisterAny(cid)
    conn.close()


def test_a_timer_added_from_another_thread_wakes_the_loop() -> None:
    loop = EventLoop()
    fired = threading.Event()
    threading.Timer(0.05, loop.add_timeout, args=(0, lambda t, o: fired.set(), None)).start()
    start = time.monotonic()
    while not fired.is_set() and time.monotonic() - start < 5:
        loop.run_once()
    assert fired.is_set()
