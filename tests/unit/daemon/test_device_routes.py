"""The device routes of pyvirtd on a shut-off domain: generic devices attach and detach (and
publish Defined Updated), change-media, description, metadata, control; the live-only routes
refuse a shut-off domain with the API's error shape."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyvirt.api.event_values import Event
from pyvirt.api.remote.events import EventStream, stream
from pyvirt.errors import InvalidStateError, NotFoundError
from tests.daemonhelp import InProcessDaemon

DOMAIN = """<domain type='qemu'><name>d3</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='pc'>hvm</type></os><devices>
<disk type='file' device='cdrom'><source file='/srv/a.iso'/><target dev='hdc' bus='ide'/>
<readonly/></disk></devices></domain>"""
BASE = "/api/v1/domains/d3"


@pytest.fixture
def pyvirtd() -> Iterator[InProcessDaemon]:
    root = Path(tempfile.mkdtemp(prefix="pvd", dir="/tmp"))  # unix socket paths are short
    try:
        with InProcessDaemon(root) as d:
            d.daemon.conn.domains.define(DOMAIN)
            yield d
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _take(s: EventStream, n: int) -> list[Event]:
    out = []
    for ev in s:
        out.append(ev)
        if len(out) == n:
            break
    return out


def test_generic_device_attach_detach_publish(pyvirtd: InProcessDaemon) -> None:
    client = pyvirtd.client()
    xml = b"<watchdog model='i6300esb' action='reset'/>"
    base = pyvirtd.bus.listeners  # the daemon's own listeners (the supervisor's)
    with stream(pyvirtd.target, timeout=10) as s:
        deadline = time.monotonic() + 5
        while pyvirtd.bus.listeners < base + 1:  # the stream has subscribed
            assert time.monotonic() < deadline, "the event stream did not subscribe"
            time.sleep(0.01)
        got = client.request(
            "POST", f"{BASE}/devices", body=xml, content_type="application/xml"
        ).json()
        assert got == {
            "device": "watchdog", "ident": "watchdog", "alias": None, "live": False,
            "config": True,
        }  # fmt: skip
        assert "<watchdog" in pyvirtd.daemon.conn.domains.get("d3").xml_desc(inactive=True)
        client.request(
            "POST", f"{BASE}/devices/detach?config=true", body=xml, content_type="application/xml"
        )
        events = _take(s, 2)
    assert [(e.kind, e.event, e.detail) for e in events] == [
        ("lifecycle", "Defined", "Updated")
    ] * 2
    assert "<watchdog" not in pyvirtd.daemon.conn.domains.get("d3").xml_desc(inactive=True)


def test_media_desc_metadata_control(pyvirtd: InProcessDaemon) -> None:
    client = pyvirtd.client()
    got = client.json("POST", f"{BASE}/media", {"target": "hdc", "action": "eject"})
    assert got == {"action": "ejected"}
    got = client.json("POST", f"{BASE}/media",
                      {"target": "hdc", "source": "/srv/c.iso", "print_xml": True})  # fmt: skip
    assert got["action"] == "print-xml" and "<source file='/srv/c.iso'/>" in got["xml"]
    with pytest.raises(InvalidStateError, match="doesn't have media"):  # still empty
        client.json("POST", f"{BASE}/media", {"target": "hdc", "action": "eject"})
    client.json("PUT", f"{BASE}/description", {"text": "hello", "title": True})
    assert client.json("GET", f"{BASE}/description?title=true", None) == {"text": "hello"}
    assert client.json("GET", f"{BASE}/description", None) == {"text": ""}
    client.json("PUT", f"{BASE}/metadata", {"uri": "urn:a", "key": "a", "xml": "<x/>"})
    body = client.request("GET", f"{BASE}/metadata?uri=urn:a").body
    assert b"<a:x xmlns:a='urn:a'/>" in body
    client.request("DELETE", f"{BASE}/metadata?uri=urn:a")
    with pytest.raises(NotFoundError, match="metadata not found"):
        client.request("GET", f"{BASE}/metadata?uri=urn:a")
    assert client.json("GET", f"{BASE}/control", None)["state"] == "ok"
    with pytest.raises(InvalidStateError, match="not running"):
        client.json("POST", f"{BASE}/keys", {"keys": ["KEY_A"]})
    with pytest.raises(InvalidStateError, match="not running"):
        client.json("GET", f"{BASE}/blkerrors", None)
