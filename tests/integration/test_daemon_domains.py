"""Domains through a real pyvirtd: the CLI (fast path and click) and ``pyvirt.api.open(
"pyvirt+unix://...")`` define, list, start (the guest boots), destroy and undefine; revisions
(ETag/If-Match) refuse a stale edit with 412; errors keep their JSON shape and CLI line."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pyvirt.api import open as api_open
from pyvirt.api.domains import Reason, State
from pyvirt.api.remote.connection import RemoteConnection
from pyvirt.errors import PreconditionFailedError
from tests.conftest import Pyvirt
from tests.daemonhelp import pyvirtd as start_pyvirtd
from tests.integration.test_lifecycle import domain_xml, state, wait_for, wait_marker

pytestmark = pytest.mark.qemu


def http(sock: Path, method: str, path: str, body: bytes = b"",
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:  # fmt: skip
    """One raw HTTP/1.1 request on the daemon's unix socket."""
    hdrs = {"Host": "localhost", "Connection": "close", "Content-Length": str(len(body)),
            **(headers or {})}  # fmt: skip
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items())
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(60)
        s.connect(str(sock))
        s.sendall(head.encode() + b"\r\n" + body)
        raw = b""
        while chunk := s.recv(65536):
            raw += chunk
    top, _, data = raw.partition(b"\r\n\r\n")
    lines = top.decode().split("\r\n")
    return int(lines[0].split()[1]), dict(l.lower().split(": ", 1) for l in lines[1:]), data  # noqa: E741


@pytest.fixture
def pyvirtd(pyvirt: Pyvirt) -> Iterator[Path]:
    """A pyvirtd serving the test's state root; yields its socket; stopped afterwards."""
    with start_pyvirtd(pyvirt.root) as d:
        yield d.sock


def test_cli_through_the_daemon(pyvirt: Pyvirt, pyvirtd: Path, tiny_image: Any) -> None:
    assert pyvirt("uri").out == "pyvirt:///system\n\n"
    embed = ["-c", f"pyvirt:///embed?root={pyvirt.root}"]
    assert pyvirt(*embed, "uri").out == f"pyvirt:///embed?root={pyvirt.root}\n\n"
    path = pyvirt.root / "t1.xml"
    path.write_text(domain_xml(tiny_image))
    assert pyvirt("define", str(path)).out == f"Domain 't1' defined from {path}\n\n"
    for argv in (["list", "--all"], ["dominfo", "t1"], ["domstate", "t1", "--reason"]):
        assert pyvirt(*argv).out == pyvirt(*embed, *argv).out  # daemon == embedded
    assert pyvirt("start", "t1").out == "Domain 't1' started\n\n"
    wait_marker(pyvirt, "t1")  # the guest booted
    assert state(pyvirt, "t1") == "running (booted)"
    listing = json.loads(pyvirt("list", "--json").out)
    assert [(d["name"], d["state"], d["id"]) for d in listing] == [("t1", "running", 1)]
    assert listing == json.loads(pyvirt(*embed, "list", "--json").out)
    info = pyvirt("dominfo", "t1").out
    assert "State:          running" in info and "CPU time:" in info
    assert pyvirt("domid", "t1").out == "1\n\n"
    # commands without a fast path go through click (and the remote API) too
    assert "<name>t1</name>" in pyvirt("dumpxml", "t1").out
    assert pyvirt("suspend", "t1").out == "Domain 't1' suspended\n\n"
    assert state(pyvirt, "t1") == "paused (user)"
    assert pyvirt("resume", "t1").out == "Domain 't1' resumed\n\n"
    assert pyvirt("destroy", "t1").out == "Domain 't1' destroyed\n\n"
    assert state(pyvirt, "t1") == "shut off (destroyed)"
    # errors: the same lines as embedded
    for argv in (["start", "nope"], ["destroy", "t1"], ["define", "/nonexistent.xml"]):
        daemon, embedded = pyvirt(*argv, check=False), pyvirt(*embed, *argv, check=False)
        assert daemon.rc == embedded.rc == 1
        assert daemon.err == embedded.err and daemon.err.startswith("error: ")
    # a transient guest: created through click and the remote API, gone after destroy
    trans = pyvirt.root / "tr.xml"
    trans.write_text(domain_xml(tiny_image, "tr"))
    assert pyvirt("create", str(trans)).out == f"Domain 'tr' created from {trans}\n\n"
    assert pyvirt("destroy", "tr").out == "Domain 'tr' destroyed\n\n"
    assert pyvirt("domstate", "tr", check=False).err.startswith("error: domain 'tr' not found")
    assert pyvirt("undefine", "t1").out == "Domain 't1' has been undefined\n\n"
    assert pyvirt("list", "--all", "--name").out == "\n"


def test_api_through_the_daemon(pyvirt: Pyvirt, pyvirtd: Path, tiny_image: Any) -> None:
    conn = api_open(f"pyvirt+unix://{pyvirtd}")
    assert isinstance(conn, RemoteConnection)
    dom, warnings = conn.domains.define(domain_xml(tiny_image, "t2"))
    assert warnings == [] and [s.name for s in conn.domains.list()] == ["t2"]
    st = dom.start()
    assert (st.state, st.reason, st.id) == (State.RUNNING, Reason.BOOTED, 1)
    wait_marker(pyvirt, "t2")
    assert dom.info().cpu_time is not None
    assert [s.name for s in conn.domains.list(states=[State.RUNNING])] == ["t2"]

    # two clients edit one definition: the second, stale one gets 412 and writes nothing
    rev = dom.revision()
    xml = dom.xml_desc(inactive=True)
    dom.redefine(xml.replace("<vcpu", "<description>first</description><vcpu"),
                 expect_revision=rev)  # fmt: skip
    saved = (pyvirt.root / "lib" / "qemu" / "t2.xml").read_bytes()
    with pytest.raises(PreconditionFailedError, match="changed since revision"):
        dom.redefine(xml.replace("<vcpu", "<description>second</description><vcpu"),
                     expect_revision=rev)  # fmt: skip
    stale = {"If-Match": f'"{rev}"', "Content-Type": "application/xml"}
    status, hdrs, body = http(pyvirtd, "PUT", "/api/v1/domains/t2/xml", xml.encode(), stale)
    assert status == 412 and hdrs["content-type"] == "application/json"
    assert set(json.loads(body)) == {"error", "hint", "code"}
    assert json.loads(body)["code"] == "precondition_failed"
    assert (pyvirt.root / "lib" / "qemu" / "t2.xml").read_bytes() == saved
    assert b"first" in saved and dom.revision() != rev

    status, _, body = http(pyvirtd, "GET", "/api/v1/domains/nope")
    assert (status, json.loads(body)["code"]) == (404, "not_found")

    dom.destroy()
    assert dom.state() == (State.SHUTOFF, Reason.DESTROYED)
    wait_for(lambda: not (pyvirt.root / "run" / "qemu" / "t2" / "runtime.json").exists(),
             10, "runtime record removed")  # fmt: skip
    assert dom.undefine() == []
    assert conn.domains.list(states=list(State)) == []
    assert os.path.exists(pyvirtd)
