"""The domain routes of pyvirtd and the remote API on top of them, on a real daemon app in
this process (no QEMU: definitions, revisions, errors, events, the wire shapes)."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest

import pyvirt.api
from pyvirt.api.domains import DomainInfo, DomainStatus, Reason, State
from pyvirt.api.remote.connection import RemoteConnection
from pyvirt.api.remote.domains import info_from_json, status_from_json
from pyvirt.daemon.routes import domain_models as m
from pyvirt.daemon.routes.domains import status_json
from pyvirt.errors import (
    AlreadyExistsError,
    InvalidConfigError,
    InvalidStateError,
    NotFoundError,
    PreconditionFailedError,
)
from tests.unit.daemon.conftest import Served

UUID = "8d1f1c53-8f47-4c25-9a0e-3c1c4d2f7a10"


def domain_xml(name: str = "web1", vcpus: int = 1, uuid: str = UUID) -> str:
    return (
        f"<domain type='qemu'><name>{name}</name><uuid>{uuid}</uuid>"
        "<memory unit='MiB'>64</memory>"
        f"<vcpu>{vcpus}</vcpu><os><type arch='x86_64' machine='pc'>hvm</type></os></domain>"
    )


def http(served: Served, method: str, path: str, body: bytes = b"",
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:  # fmt: skip
    """A raw HTTP/1.1 request on the daemon's socket (what curl --unix-socket sends)."""
    hdrs = {"Host": "localhost", "Connection": "close", "Content-Length": str(len(body)),
            **(headers or {})}  # fmt: skip
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items())
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(served.sock))
        s.sendall(head.encode() + b"\r\n" + body)
        raw = b""
        while chunk := s.recv(65536):
            raw += chunk
    top, _, data = raw.partition(b"\r\n\r\n")
    lines = top.decode().split("\r\n")
    got = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), got, data


# -- the wire shapes ---------------------------------------------------------------------------
STATUS = DomainStatus("a", UUID, 3, State.RUNNING, Reason.BOOTED, True, False, pid=42)


@pytest.mark.parametrize(
    "st",
    [
        STATUS,
        DomainStatus(
            "b",
            "",
            None,
            State.UNKNOWN,
            Reason.UNKNOWN,
            True,
            True,
            problem="definition unreadable",
        ),
    ],
)
def test_status_json_is_to_json_and_round_trips(st: DomainStatus) -> None:
    assert status_json(st) == st.to_json()
    assert json.dumps(status_json(st)) == json.dumps(st.to_json())  # same key order
    assert status_from_json(json.loads(json.dumps(st.to_json()))) == st


def test_models_name_the_fields_of_to_json() -> None:
    assert set(m.DomainStatus.model_fields) == set(STATUS.to_json()) | {"problem"}
    info = DomainInfo(STATUS, "hvm", 2, 1.5, 1024, 512, "t")
    assert set(m.DomainInfo.model_fields) == set(info.to_json()) | {"problem"}
    assert info_from_json(json.loads(json.dumps(info.to_json()))) == info
    m.DomainInfo.model_validate(info.to_json())


# -- the routes --------------------------------------------------------------------------------
def test_define_list_info_and_the_error_shape(served: Served) -> None:
    status, hdrs, body = http(served, "POST", "/api/v1/domains", domain_xml().encode(),
                              {"Content-Type": "application/xml"})  # fmt: skip
    assert status == 201 and hdrs["location"] == "/api/v1/domains/web1"
    assert json.loads(body) == {"name": "web1", "uuid": UUID, "warnings": []}
    status, _, body = http(served, "GET", "/api/v1/domains?all=true")
    assert status == 200 and [d["name"] for d in json.loads(body)] == ["web1"]
    assert json.loads(http(served, "GET", "/api/v1/domains")[2]) == []  # active only
    status, hdrs, body = http(served, "GET", f"/api/v1/domains/{UUID}")
    assert status == 200 and json.loads(body)["max_memory_kib"] == 65536
    assert hdrs["etag"].startswith('"')
    status, _, body = http(served, "GET", "/api/v1/domains/nope/state")
    assert status == 404
    assert json.loads(body) == {
        "error": "domain 'nope' not found",
        "hint": "list the defined domains with 'list --all'",
        "code": "not_found",
    }
    status, _, body = http(served, "POST", "/api/v1/domains", b"<domain>",
                           {"Content-Type": "application/xml"})  # fmt: skip
    assert status == 400 and json.loads(body)["code"] == "invalid_config"
    status, _, body = http(served, "POST", "/api/v1/domains/web1/start", b'{"bogus": 1}',
                           {"Content-Type": "application/json"})  # fmt: skip
    assert status == 422 and "bogus" in json.loads(body)["error"]
    status, _, body = http(served, "POST", "/api/v1/domains/web1/destroy")
    assert status == 409 and json.loads(body)["error"] == "domain 'web1' is not running"
    assert served.events == [("web1", "Defined", "Added")]


def test_if_match_guards_the_definition(served: Served) -> None:
    http(served, "POST", "/api/v1/domains", domain_xml().encode())
    status, hdrs, xml = http(served, "GET", "/api/v1/domains/web1/xml?inactive=true")
    assert status == 200 and hdrs["content-type"] == "application/xml"
    etag = hdrs["etag"]
    changed = xml.replace(b"<vcpu", b"<description>two</description><vcpu")
    status, hdrs2, body = http(served, "PUT", "/api/v1/domains/web1/xml", changed,
                               {"If-Match": etag})  # fmt: skip
    assert status == 200 and hdrs2["etag"] != etag
    before = (served.root / "lib/qemu/web1.xml").read_bytes()
    status, _, body = http(served, "PUT", "/api/v1/domains/web1/xml", xml, {"If-Match": etag})
    assert status == 412 and json.loads(body)["code"] == "precondition_failed"
    assert (served.root / "lib/qemu/web1.xml").read_bytes() == before
    status, _, _ = http(served, "POST", "/api/v1/domains", xml, {"If-None-Match": "*"})
    assert status == 412
    status, _, _ = http(served, "POST", "/api/v1/domains", xml, {"If-Match": hdrs2["etag"]})
    assert status == 201
    assert served.events[-2:] == [("web1", "Defined", "Updated")] * 2


def test_remote_api_through_the_daemon(served: Served) -> None:
    conn = pyvirt.api.open(served.uri)
    assert isinstance(conn, RemoteConnection) and conn.uri == served.uri
    dom, warnings = conn.domains.define(domain_xml())
    assert (dom.name, warnings) == ("web1", [])
    with pytest.raises(AlreadyExistsError):
        conn.domains.define(domain_xml(uuid="8d1f1c53-8f47-4c25-9a0e-3c1c4d2f7a11"))
    assert [s.name for s in conn.domains.list()] == ["web1"]
    assert conn.domains.list(states=[State.RUNNING]) == []
    assert conn.domains.get(UUID) == dom
    assert dom.state() == (State.SHUTOFF, Reason.UNKNOWN)
    assert dom.info().vcpus == 1 and dom.info().status.uuid == UUID
    rev = dom.revision()
    dom.redefine(domain_xml(vcpus=2), expect_revision=rev)
    with pytest.raises(PreconditionFailedError) as err:
        dom.redefine(domain_xml(vcpus=3), expect_revision=rev)
    assert isinstance(err.value, InvalidStateError)  # embedded callers' except still works
    assert dom.info().vcpus == 2
    with pytest.raises(InvalidConfigError, match="must not change the name"):
        dom.redefine(domain_xml("other"))
    with pytest.raises(InvalidStateError, match="not running"):
        dom.destroy()
    dom.set_autostart(True)
    assert dom.status().autostart
    assert "<vcpu" in dom.xml_desc()
    # not overridden: the embedded implementation on the same state directory
    assert dom.native_argv()[0].endswith("qemu-system-x86_64")
    dom.rename("web2")
    assert dom.name == "web2" and conn.domains.get("web2").status().uuid == UUID
    assert dom.undefine() == []
    with pytest.raises(NotFoundError):
        conn.domains.get("web2")
    assert served.events == [
        ("web1", "Defined", "Added"),
        ("web1", "Defined", "Updated"),
        ("web1", "Undefined", "Renamed"),
        ("web2", "Defined", "Renamed"),
        ("web2", "Undefined", "Removed"),
    ]


def test_openapi_documents_the_domain_routes(served: Served) -> None:
    doc: dict[str, Any] = json.loads(http(served, "GET", "/openapi.json")[2])
    paths = doc["paths"]
    wanted = ["", "/{name}", "/{name}/xml", "/{name}/start", "/{name}/destroy", "/{name}/state"]
    assert {f"/api/v1/domains{p}" for p in wanted} <= set(paths)
    assert "application/xml" in paths["/api/v1/domains"]["post"]["requestBody"]["content"]
    assert "DomainStatus" in doc["components"]["schemas"]
    assert doc["components"]["schemas"]["StartRequest"]["additionalProperties"] is False
