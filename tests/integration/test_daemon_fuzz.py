"""Fuzz a real pyvirtd from its own OpenAPI document (schemathesis): no 5xx, no hang, every
rejection in the one error shape, and no state change for a rejected request.

The daemon runs in a fresh network namespace (a fuzzed ``net-start`` stays there) on its
unix socket; schemathesis speaks TCP, so a small loopback proxy in the test forwards to the
socket. Three passes over every operation: schema-valid requests, schema-invalid ones (negative
mode), and valid ones whose path names real objects (a dir pool with a volume, a network).
(Negative mode only where there is a query or a JSON body to break.) Examples per operation
and pass: ``PYVIRT_FUZZ_EXAMPLES`` (default 8: ~2600 requests, ~50 s on 2 idle cores, four
times that beside the rest of the suite).
"""

from __future__ import annotations

import itertools
import json
import os
import select
import shutil
import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis.generation.modes import GenerationMode  # noqa: E402
from schemathesis.specs.openapi.checks import response_schema_conformance  # noqa: E402

from tests.daemonhelp import RunningDaemon, pyvirtd  # noqa: E402
from tests.integration.nethelp import netns  # noqa: E402

EXAMPLES = int(os.environ.get("PYVIRT_FUZZ_EXAMPLES", "8"))
NET = """<network><name>{name}</name><bridge name='pvfz0'/>
<ip address='10.78.0.1' prefix='24'/></network>"""
#: a request slower than this is a hang
SLOW = 20.0


@contextmanager
def tcp_to_unix(sock_path: Path) -> Iterator[int]:
    """A loopback TCP port whose connections are forwarded to a unix socket."""

    class Pump(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            up = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            up.connect(str(sock_path))
            pair = {self.request: up, up: self.request}
            try:
                while True:
                    ready, _, _ = select.select(list(pair), [], [], 60)
                    if not ready:
                        return
                    for s in ready:
                        data = s.recv(65536)
                        if not data:
                            return
                        pair[s].sendall(data)
            except OSError:
                return
            finally:
                up.close()

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True

    server = Server(("127.0.0.1", 0), Pump)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def state_files(root: Path) -> dict[str, bytes]:
    """Definitions and state (not the daemon's log, lock or socket)."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if p.is_file() and rel.parts[0] != "log" and p.name != "pyvirtd.lock":
            out[str(rel)] = p.read_bytes()
    return out


def _json_body(op: Any) -> bool:
    return any(b.media_type == "application/json" for b in op.body or ())


#: streams that never end by design (the event stream): not fuzzed here, tested on their own
ENDLESS = {"/api/v1/events"}
#: operations that contact other hosts (an etcd, another pyvirtd): each try waits for their
#: timeouts; their input checks have unit tests (tests/unit/cluster)
REMOTE = {"/api/v1/cluster/init", "/api/v1/cluster/join", "/api/v1/cluster/domains/{name}/start"}


def _error_shape(text: str) -> bool:
    """Whether *text* is the REST API's one error shape."""
    try:
        body = json.loads(text)
    except ValueError:
        return False
    return isinstance(body, dict) and set(body) == {"error", "hint", "code"} and bool(body["error"])


@pytest.mark.timeout(900)  # a loaded CI machine answers a few thousand requests slowly
def test_fuzz_from_openapi(state_root: Path) -> None:
    with netns() as ns, pyvirtd(state_root, netns=ns) as d, tcp_to_unix(d.sock) as port:
        try:
            _fuzz(d, f"http://127.0.0.1:{port}")
        finally:
            shutil.rmtree(d.root.parent / f"{d.root.name}-fz", ignore_errors=True)


def _fuzz(d: RunningDaemon, base: str) -> None:
    # first use defines the default network and pool; do it before comparing snapshots
    for url in ("/api/v1/networks", "/api/v1/pools?all=true"):
        assert d.request("GET", url).status == 200
    doc = d.request("GET", "/openapi.json").json()
    schema = schemathesis.openapi.from_dict(doc)
    problems: list[str] = []
    counts = {"requests": 0, "2xx": 0, "4xx": 0, "dropped": 0}
    started = time.monotonic()
    waited = [0.0]
    snap = [0.0]

    pool_dir = d.root.parent / f"{d.root.name}-fz"
    xml = f"<pool type='dir'><name>fz</name><target><path>{pool_dir}</path></target></pool>"
    assert d.request("POST", "/api/v1/pools?create=true&build=true", xml).status == 201
    vol = {"name": "v0", "capacity": 1 << 20}
    assert d.request("POST", "/api/v1/pools/fz/volumes", vol).status == 201
    net = NET.format(name="fz")
    assert d.request("POST", "/api/v1/networks", net).status == 201
    #: real objects for the path parameters of the "pinned" pass
    pinned = {"pool": "fz", "vol": "v0", "name": "fz"}
    passes = [("positive", GenerationMode.POSITIVE, False),
              ("negative", GenerationMode.NEGATIVE, False),
              ("pinned", GenerationMode.POSITIVE, True)]  # fmt: skip
    for (mode_name, mode, pin), result in itertools.product(passes, schema.get_all_operations()):
        op = result.ok()
        if op.path in ENDLESS or op.path in REMOTE:
            continue
        params = {p.name for p in op.path_parameters}
        if pin and not params:
            continue
        if mode == GenerationMode.NEGATIVE and not (op.query or _json_body(op)):
            continue  # a path parameter is any string: nothing to break, and slow to try
        path_parameters = {k: v for k, v in pinned.items() if k in params} if pin else None
        if pin and op.path.startswith("/api/v1/nodedevs"):
            path_parameters = {"name": "computer"}
        strategy = op.as_strategy(mode, path_parameters=path_parameters)

        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                  phases=[Phase.explicit, Phase.generate],
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        @given(case=strategy)
        def run(case: Any) -> None:
            t0 = time.monotonic()
            before = state_files(d.root)
            snap[0] += time.monotonic() - t0
            t0 = time.monotonic()
            try:
                resp = case.call(base_url=base, timeout=SLOW)
            except OSError as err:  # requests' timeouts and connection errors: name the call
                if "RemoteDisconnected" in repr(err) and d.request("GET", "/health").status == 200:
                    # uvicorn's HTTP parser refused the bytes (it logs "Invalid HTTP request
                    # received.") and, in some parser states, closes instead of answering
                    # 400; the application never saw a request, and pyvirtd is well
                    counts["dropped"] += 1
                    return
                problems.append(f"{case.method} {case.formatted_path}: {err!r}"[:400])
                return
            took = time.monotonic() - t0
            counts["requests"] += 1
            waited[0] += took
            where = f"{case.method} {case.formatted_path} -> {resp.status_code}"
            if took > SLOW / 2:
                problems.append(f"{where}: slow ({took:.1f} s)")
            if resp.status_code >= 500:
                problems.append(f"{where}: {resp.text[:300]}")
            elif resp.status_code >= 400:
                counts["4xx"] += 1
                if resp.status_code == 400 and resp.text == "Invalid HTTP request received.":
                    pass  # not HTTP at all (e.g. a control character in a header): uvicorn's
                    # parser refuses it before the application sees a request
                elif not _error_shape(resp.text):
                    problems.append(f"{where}: not the error shape: {resp.text[:200]}")
                after = state_files(d.root)
                if after != before:
                    changed = sorted(set(after) ^ set(before)) or [
                        k for k in after if after[k] != before.get(k)
                    ]
                    problems.append(f"{where}: rejected but changed {changed[:5]}")
            else:
                counts["2xx"] += 1
                try:
                    case.validate_response(resp, checks=[response_schema_conformance])
                except Exception as err:  # schemathesis' failure group
                    problems.append(f"{where}: answer does not fit the document: {err}"[:400])

        try:
            run()
        except Unsatisfiable:
            assert mode_name == "negative", op.path  # nothing to break in this operation
    took = time.monotonic() - started
    print(f"fuzz: {counts} in {took:.1f} s, {waited[0]:.1f} s of it waiting for pyvirtd "
          f"({EXAMPLES} examples per operation and pass; snapshots {snap[0]:.1f} s)")  # fmt: skip
    assert d.proc.poll() is None, "pyvirtd died"
    assert d.request("GET", "/health").status == 200
    assert not problems, "\n".join(problems[:20])
    assert counts["requests"] > 300
