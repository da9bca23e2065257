"""The application's on-demand features: loaded on the first request no loaded route matches,
in their FEATURES place, never changing which route answers a request."""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

import pyvirt.api
from pyvirt.daemon.app import FEATURES, ON_DEMAND, create_app, load_on_demand
from pyvirt.daemon.context import Daemon, DaemonConfig
from pyvirt.state.paths import StatePaths


def _routes(feature: str) -> list[Any]:
    router = getattr(importlib.import_module(f"pyvirt.daemon.{feature}"), "router", None)
    return list(router.routes) if router is not None else []


def _sample(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x1", path)


def _app(root: Path, monkeypatch: pytest.MonkeyPatch) -> FastAPI:
    monkeypatch.setenv("PYVIRT_STATE_DIR", str(root))
    daemon = Daemon(DaemonConfig(StatePaths.from_root(root)), pyvirt.api.open("pyvirt:///embed"))
    return create_app(daemon)


def _pending(app: FastAPI) -> list[str]:
    return [r.feature for r in app.router.routes if type(r).__name__ == "_Pending"]


def _key(route: Any) -> Any:
    """A feature's router (the same object in every app), else the route's path."""
    return getattr(route, "original_router", None) or getattr(route, "path", None)


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    with TestClient(_app(tmp_path / "s", monkeypatch), raise_server_exceptions=False) as tc:
        yield tc


def test_on_demand_features_have_routes_and_no_start_up_work() -> None:
    assert set(FEATURES) >= ON_DEMAND
    for feature in ON_DEMAND:
        mod = importlib.import_module(f"pyvirt.daemon.{feature}")
        assert not hasattr(mod, "setup"), f"{feature} has start-up work: load it at start-up"
        assert mod.router.routes and not mod.router.on_startup, feature


def test_no_loaded_route_answers_an_on_demand_path_or_the_reverse() -> None:
    """Else a request would reach another route before the feature is loaded than after."""
    lazy = [r for f in FEATURES if f in ON_DEMAND for r in _routes(f)]
    eager = [r for f in FEATURES if f not in ON_DEMAND for r in _routes(f)]
    for a, b in [(lazy, eager), (eager, lazy)]:
        for route in a:
            for other in b:
                sample = _sample(route.path)
                for path in (sample, sample.rstrip("/") + "/"):
                    assert not other.path_regex.match(path), (route.path, other.path)


def test_first_unmatched_request_loads_the_features_in_place(
    client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = client.app
    assert isinstance(app, FastAPI)
    assert sorted(_pending(app)) == sorted(ON_DEMAND)
    assert client.get("/api/v1/domains").status_code == 200  # always loaded: nothing pending
    assert sorted(_pending(app)) == sorted(ON_DEMAND)
    r = client.get("/api/v1/networks")
    assert r.status_code == 200 and isinstance(r.json(), list)
    assert _pending(app) == []
    eager = _app(tmp_path / "e", monkeypatch)
    load_on_demand(eager)
    assert [_key(r) for r in app.router.routes] == [_key(r) for r in eager.router.routes]
    r = client.get("/api/v1/no-such-thing")
    assert r.status_code == 404 and r.json()["code"] == "not_found"


def test_unknown_path_and_openapi_load_everything(client: TestClient) -> None:
    app = client.app
    assert isinstance(app, FastAPI)
    r = client.get("/api/v1/no-such-thing")
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    assert _pending(app) == []
    paths = client.get("/openapi.json").json()["paths"]
    assert "/api/v1/pools/{pool}/volumes" in paths and "/api/v1/domains/{name}/snapshots" in paths


def test_a_websocket_loads_its_feature(client: TestClient) -> None:
    """The consoles' WebSocket route is on demand too: the first connection reaches it."""
    with client.websocket_connect("/api/v1/domains/nosuch/console/vnc?ticket=x") as ws:
        msg = ws.receive()
    assert msg["type"] == "websocket.close" and "ticket" in msg["reason"]
