"""``GET /api/v1/events`` through the real server on a unix socket, read by the stdlib SSE
reader and the remote API: delivery, filters, keep-alives, errors, a client going away, the
daemon stopping; and the CLI's virsh wording."""

from __future__ import annotations

import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyvirt.api.event_values import Event
from pyvirt.api.events import watch
from pyvirt.api.remote.events import EventStream, events_path, stream
from pyvirt.cli.commands.event import describe, stamp
from pyvirt.client.events import EventSource, parse_lines
from pyvirt.errors import InvalidConfigError, NotFoundError, UnsupportedError
from tests.daemonhelp import InProcessDaemon


@pytest.fixture
def pyvirtd() -> Iterator[InProcessDaemon]:
    root = Path(tempfile.mkdtemp(prefix="pvu", dir="/tmp"))  # unix socket paths are short
    try:
        with InProcessDaemon(root) as d:
            yield d
    finally:
        shutil.rmtree(root, ignore_errors=True)


def take(s: EventStream, n: int) -> list[Event]:
    out = []
    for ev in s:
        out.append(ev)
        if len(out) == n:
            break
    return out


def test_stream_delivers_filtered_events_in_order(pyvirtd: InProcessDaemon) -> None:
    with (
        stream(pyvirtd.target, timeout=10) as every,
        stream(pyvirtd.target, kinds=["lifecycle"], domain="web", timeout=10) as web,
    ):
        pyvirtd.wait_listeners(2)
        pyvirtd.bus.publish("lifecycle", "domain", "db", "Started", "Booted")
        pyvirtd.bus.publish("device-added", "domain", "web", "virtio-disk1")
        pyvirtd.bus.publish("lifecycle", "domain", "web", "Stopped", "Destroyed")
        got = take(every, 3)
        assert [describe(e) for e in got] == [
            "event 'lifecycle' for domain 'db': Started Booted",
            "event 'device-added' for domain 'web': virtio-disk1",
            "event 'lifecycle' for domain 'web': Stopped Destroyed",
        ]
        assert [e.seq for e in got] == [1, 2, 3]
        assert [describe(e) for e in take(web, 1)] == [
            "event 'lifecycle' for domain 'web': Stopped Destroyed"
        ]
    pyvirtd.wait_listeners(0)  # closing the client unsubscribes it


def test_quiet_stream_gets_keepalives_and_times_out(pyvirtd: InProcessDaemon) -> None:
    src = EventSource(pyvirtd.client(), events_path(keepalive=0.2), idle_timeout=1.0)
    t0 = time.monotonic()
    assert list(src.messages(deadline=t0 + 1.5)) == []
    assert 1.4 < time.monotonic() - t0 < 3  # never "went silent": keep-alives came
    assert src.last_comment == "keep-alive"
    src.close()


def test_unknown_kind_is_refused_with_the_daemons_message(pyvirtd: InProcessDaemon) -> None:
    src = EventSource(pyvirtd.client(), "/api/v1/events?types=lifecycle,bogus")
    with pytest.raises(InvalidConfigError, match="unknown event type 'bogus'") as err:
        src.open()
    assert err.value.hint and "device-added" in err.value.hint


def test_client_going_away_unsubscribes(pyvirtd: InProcessDaemon) -> None:
    raw = socket.socket(socket.AF_UNIX)
    raw.connect(str(pyvirtd.socket))
    raw.sendall(b"GET /api/v1/events HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b"200 OK" in raw.recv(4096)
    pyvirtd.wait_listeners(1)
    raw.close()
    pyvirtd.wait_listeners(0)


def test_daemon_stop_ends_streams_cleanly(pyvirtd: InProcessDaemon) -> None:
    s = stream(pyvirtd.target, timeout=30)
    pyvirtd.wait_listeners(1)
    pyvirtd.bus.publish("pool-lifecycle", "pool", "default", "Started")
    assert [e.name for e in take(s, 1)] == ["default"]
    took = pyvirtd.stop()
    assert list(s) == []
    assert s.end_reason == "closing: pyvirtd is stopping"
    assert took < 3


def test_watch_needs_a_daemon(tmp_path: Path) -> None:
    uri = f"pyvirt:///embed?root={tmp_path}"
    with pytest.raises(UnsupportedError) as err:
        watch(uri)
    assert err.value.message == f"events need pyvirtd, and the connection '{uri}' is embedded"
    assert err.value.hint and "start pyvirtd" in err.value.hint


@pytest.mark.parametrize(
    ("event", "line"),
    [
        (Event("lifecycle", "domain", "w", "Started", "Booted"),
         "event 'lifecycle' for domain 'w': Started Booted"),
        (Event("device-removed", "domain", "w", "virtio-disk1"),
         "event 'device-removed' for domain 'w': virtio-disk1"),
        (Event("network-lifecycle", "network", "default", "Started"),
         "event 'network-lifecycle' for network 'default': Started"),
        (Event("pool-lifecycle", "pool", "p", "Stopped"),
         "event 'pool-lifecycle' for pool 'p': Stopped"),
        (Event("job", "job", "7", "Completed", "clone"),
         "event 'job' for job '7': Completed clone"),
    ],
)  # fmt: skip
def test_virsh_wording(event: Event, line: str) -> None:
    assert describe(event) == line


def test_timestamp_prefix() -> None:
    ev = Event("lifecycle", "domain", "w", "Started", time=1_800_000_000.25)
    assert stamp(ev) == "2027-01-15 08:00:00.250+0000: "


def test_parse_lines() -> None:
    comments: list[str] = []
    assert parse_lines([": hello"], comments) is None and comments == ["hello"]
    msg = parse_lines(["event: x", "id: 3", 'data: {"a":', "data: 1}"], comments)
    assert msg is not None and (msg.event, msg.id, msg.data) == ("x", "3", '{"a":\n1}')


def test_openapi_documents_the_stream_and_the_device_routes(pyvirtd: InProcessDaemon) -> None:
    doc = pyvirtd.client().json("GET", "/openapi.json")
    stream_doc = doc["paths"]["/api/v1/events"]["get"]
    assert "text/event-stream" in stream_doc["responses"]["200"]["content"]
    assert {p["name"] for p in stream_doc["parameters"]} == {
        "types", "domain", "network", "pool", "keepalive",
    }  # fmt: skip
    attach = doc["paths"]["/api/v1/domains/{name}/devices"]["post"]
    assert "application/xml" in attach["requestBody"]["content"]
    assert "/api/v1/domains/{name}/devices/detach" in doc["paths"]


MINIMAL = """<domain type='qemu'><name>d2</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='pc'>hvm</type></os></domain>"""


def test_device_routes_publish_and_refuse(pyvirtd: InProcessDaemon, tmp_path: Path) -> None:
    pyvirtd.daemon.conn.domains.define(MINIMAL)
    img = tmp_path / "c.raw"
    img.write_bytes(bytes(65536))
    disk = f"<disk type='file'><source file='{img}'/><target dev='vdc'/></disk>"
    client = pyvirtd.client()

    def post(path: str, xml: str) -> object:
        return client.request(
            "POST", path, body=xml.encode(), content_type="application/xml"
        ).json()

    with stream(pyvirtd.target, timeout=10) as s:
        pyvirtd.wait_listeners(1)
        with pytest.raises(NotFoundError, match="'ghost'"):
            post("/api/v1/domains/ghost/devices", disk)
        with pytest.raises(UnsupportedError, match="<panic> cannot be attached"):
            post("/api/v1/domains/d2/devices", "<panic/>")
        with pytest.raises(UnsupportedError, match="<iotune> is not supported"):
            post("/api/v1/domains/d2/devices", disk.replace("<target", "<iotune/><target"))
        with pytest.raises(InvalidConfigError):
            post("/api/v1/domains/d2/devices", "<disk")
        with pytest.raises(InvalidConfigError, match="no <target"):
            post("/api/v1/domains/d2/devices", f"<disk><source file='{img}'/></disk>")
        assert post("/api/v1/domains/d2/devices", disk) == {
            "device": "disk", "ident": "vdc", "alias": None, "live": False, "config": True,
        }  # fmt: skip
        assert post("/api/v1/domains/d2/devices/detach", "<disk><target dev='vdc'/></disk>")
        got = take(s, 2)
    assert [describe(e) for e in got] == ["event 'lifecycle' for domain 'd2': Defined Updated"] * 2
    assert "vdc" not in pyvirtd.daemon.conn.domains.get("d2").xml_desc(inactive=True)
