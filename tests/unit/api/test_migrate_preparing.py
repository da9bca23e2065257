"""The destination's prepare in a thread of its own (``pyvirt.api.domain_migrate._Preparing``):
its QEMU starts once the source's set-up asked for the URI (bounded), the URI goes to the
source as soon as that QEMU listens, and errors reach the caller."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from pyvirt.api import domain_migrate
from pyvirt.errors import OperationFailedError
from pyvirt.service.domain.migrate import Incoming


def _prepare(
    log: list[str], launched: threading.Event
) -> Callable[..., Incoming]:  # the service's prepare, as the API calls it
    def prepare(
        *, on_listening: Callable[[str], None], before_launch: Callable[[], None]
    ) -> Incoming:
        log.append("checks")
        before_launch()
        log.append("launch")
        launched.set()
        on_listening("unix:/x.sock")
        log.append("watcher")
        return Incoming("g", "unix:/x.sock")

    return prepare


def test_the_qemu_starts_once_the_source_asks_for_the_uri(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(domain_migrate, "_SOURCE_FIRST", 30.0)
    log: list[str] = []
    launched = threading.Event()
    preparing = domain_migrate._Preparing(_prepare(log, launched))
    assert not launched.wait(0.2)  # the source's set-up first
    assert log == ["checks"]
    log.append("source set up")
    assert preparing.uri() == "unix:/x.sock"
    assert preparing.result().name == "g"
    assert log == ["checks", "source set up", "launch", "watcher"]


def test_a_slow_source_holds_the_qemu_back_for_a_bounded_time() -> None:
    log: list[str] = []
    launched = threading.Event()
    start = time.monotonic()
    preparing = domain_migrate._Preparing(_prepare(log, launched))
    assert launched.wait(5)
    assert time.monotonic() - start >= domain_migrate._SOURCE_FIRST * 0.9
    assert preparing.uri() == "unix:/x.sock"


def test_a_source_that_failed_first_does_not_hold_prepare_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(domain_migrate, "_SOURCE_FIRST", 30.0)
    log: list[str] = []
    launched = threading.Event()
    preparing = domain_migrate._Preparing(_prepare(log, launched))
    start = time.monotonic()
    assert preparing.listened()  # the caller's clean-up path: its QEMU is to be stopped
    assert time.monotonic() - start < 10


def test_what_prepare_raised_reaches_the_source() -> None:
    def failing(**_: object) -> Incoming:
        raise OperationFailedError("no room here")

    preparing = domain_migrate._Preparing(failing)
    with pytest.raises(OperationFailedError, match="no room"):
        preparing.uri()
    assert not preparing.listened()
