"""Console tickets: single use, short-lived, bound to a domain and a kind; the ticket route
refuses what cannot be opened and the WebSocket closes with the reason (in-process app)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

import pyvirt.api
from pyvirt.daemon.app import create_app
from pyvirt.daemon.context import Daemon, DaemonConfig
from pyvirt.daemon.routes.consoles import MAX_TICKETS, TicketStore
from pyvirt.errors import OperationFailedError
from pyvirt.state.paths import StatePaths


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_ticket_is_single_use_and_bound() -> None:
    clock = Clock()
    store = TicketStore(ttl=30, clock=clock)
    a, ttl = store.issue("web1", "vnc", "local")
    assert ttl == 30 and len(a) >= 32
    assert store.take(a, "web1", "vnc") is None
    assert store.take(a, "web1", "vnc") == "console ticket unknown or already used"
    b, _ = store.issue("web1", "vnc", "local")
    assert store.take(b, "web2", "vnc") == "console ticket was issued for another console"
    assert store.take(b, "web1", "vnc") == "console ticket unknown or already used"  # burnt
    c, _ = store.issue("web1", "serial", "local")
    assert store.take(c, "web1", "vnc") == "console ticket was issued for another console"
    d, _ = store.issue("web1", "vnc", "local")
    clock.now += 30
    assert store.take(d, "web1", "vnc") == "console ticket expired"
    assert store.take("", "web1", "vnc") == "console ticket unknown or already used"


def test_outstanding_tickets_are_capped_and_expire() -> None:
    clock = Clock()
    store = TicketStore(ttl=30, clock=clock)
    for _ in range(MAX_TICKETS):
        store.issue("d", "vnc", "local")
    with pytest.raises(OperationFailedError, match="too many console tickets"):
        store.issue("d", "vnc", "local")
    clock.now += 31  # expired ones make room
    store.issue("d", "vnc", "local")


@pytest.fixture
def http(tmp_path: Path) -> Iterator[TestClient]:
    conn = pyvirt.api.open(f"pyvirt:///embed?root={tmp_path / 's'}")
    conn.domains.define(
        """<domain type='qemu'><name>off</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='pc'>hvm</type></os><devices>
<graphics type='vnc'/></devices></domain>"""
    )
    daemon = Daemon(DaemonConfig(StatePaths.from_root(tmp_path / "s")), conn)
    with TestClient(create_app(daemon)) as client:
        yield client


def test_ticket_route_refuses_what_cannot_open(http: TestClient) -> None:
    r = http.post("/api/v1/domains/off/console-tickets", json={"kind": "vnc"})
    assert r.status_code == 409 and r.json()["error"] == "domain 'off' is not running"
    r = http.post("/api/v1/domains/nosuch/console-tickets", json={"kind": "serial"})
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    r = http.post("/api/v1/domains/off/console-tickets", json={"kind": "rdp"})
    assert r.status_code == 422 and r.json()["code"] == "invalid_request"


def test_websocket_without_ticket_is_closed_with_the_reason(http: TestClient) -> None:
    url = "/api/v1/domains/off/console/vnc?ticket=nope"
    with http.websocket_connect(url) as ws, pytest.raises(WebSocketDisconnect) as info:
        ws.receive_bytes()
    assert info.value.code == 1008
    assert info.value.reason == "console ticket unknown or already used"
