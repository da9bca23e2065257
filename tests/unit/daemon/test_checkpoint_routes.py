"""The checkpoint routes of pyvirtd and the remote API on top of them, on a real daemon app
in this process, through a path to its socket that matches no local state directory (so the
connection counts as another host's: nothing can quietly run embedded). No QEMU: the
checkpoints are redefined records (their bitmaps are the integration test's)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import pyvirt.api
from pyvirt.api.remote.connection import RemoteConnection, Unavailable
from pyvirt.errors import InvalidConfigError, NotFoundError, PreconditionFailedError
from tests.unit.daemon.conftest import Served
from tests.unit.daemon.test_domains import domain_xml, http


def cp_xml(name: str, parent: str | None = None, t: int = 1000, desc: str = "") -> str:
    par = f"<parent><name>{parent}</name></parent>" if parent else ""
    return (f"<domaincheckpoint><name>{name}</name><description>{desc}</description>{par}"
            f"<creationTime>{t}</creationTime><disks><disk name='vda' checkpoint='bitmap' "
            f"bitmap='{name}'/></disks></domaincheckpoint>")  # fmt: skip


@pytest.fixture
def remote(served: Served) -> Iterator[RemoteConnection]:
    """A connection to the daemon through a symlink to its socket (another host's, for the
    API: every verb must be a request)."""
    link_dir = Path(tempfile.mkdtemp(prefix="pvl", dir="/tmp"))
    link = link_dir / "d.sock"
    link.symlink_to(served.sock)
    try:
        conn = pyvirt.api.open(f"pyvirt+unix://{link}")
        assert isinstance(conn, RemoteConnection)
        assert isinstance(conn._service, Unavailable)  # the point of the test
        yield conn
    finally:
        link.unlink()
        link_dir.rmdir()


def test_checkpoint_verbs_through_the_daemon(served: Served, remote: RemoteConnection) -> None:
    dom, _ = remote.domains.define(domain_xml("cpd"))
    assert dom.checkpoints() == []
    assert dom.checkpoint_create(cp_xml("c1", t=1000), redefine=True) == "c1"
    assert dom.checkpoint_create(cp_xml("c2", "c1", t=2000), redefine=True) == "c2"
    assert dom.checkpoint_create(cp_xml("c3", "c1", t=3000), redefine=True) == "c3"
    infos = dom.checkpoints()
    assert [(i.name, i.parent, i.children) for i in infos] == [
        ("c1", None, 2), ("c2", "c1", 0), ("c3", "c1", 0)
    ]  # fmt: skip
    info = dom.checkpoint_info("c2")
    assert (info.domain, info.creation_time, info.disks) == ("cpd", 2000, {"vda": "c2"})
    assert dom.checkpoint_children(None) == ["c1"]
    assert dom.checkpoint_children("c1") == ["c2", "c3"]
    assert dom.checkpoint_children("c1", descendants=True) == ["c2", "c3"]
    xml = dom.checkpoint_xml("c2", no_domain=True)
    assert "<name>c2</name>" in xml and "<domain>" not in xml and "<domain " not in xml

    # checkpoint-edit: the description changes, the name may not; If-Match guards the XML
    assert dom.checkpoint_edit("c2", cp_xml("c2", "c1", t=2000, desc="edited")) == "c2"
    assert "<description>edited</description>" in dom.checkpoint_xml("c2")
    with pytest.raises(InvalidConfigError, match="must not rename"):
        dom.checkpoint_edit("c2", cp_xml("c9", "c1", t=2000))
    status, headers, _ = http(served, "GET", "/api/v1/domains/cpd/checkpoints/c2/xml")
    assert status == 200 and headers["etag"]
    body = cp_xml("c2", "c1", t=2000, desc="again").encode()
    status, _, _ = http(served, "PUT", "/api/v1/domains/cpd/checkpoints/c2/xml", body,
                        {"Content-Type": "application/xml", "If-Match": '"0000"'})  # fmt: skip
    assert status == 412
    with pytest.raises(PreconditionFailedError):  # the remote API raises it too
        remote.domains.get("cpd")._client.request(  # type: ignore[attr-defined]
            "PUT", "/api/v1/domains/cpd/checkpoints/c2/xml", body=body,
            content_type="application/xml", headers={"If-Match": '"0000"'},
        )  # fmt: skip

    # checkpoint-delete --metadata (the records only: these have no bitmaps to merge)
    with pytest.raises(NotFoundError, match="no checkpoint 'nope'"):
        dom.checkpoint_info("nope")
    assert sorted(dom.checkpoint_delete("c1", children_only=True, metadata=True)) == ["c2", "c3"]
    assert dom.checkpoint_delete("c1", metadata=True) == ["c1"]
    assert dom.checkpoints() == []
    with pytest.raises(NotFoundError):
        dom.checkpoint_delete("c1", metadata=True)
    # the options build the XML without the daemon (--print-xml)
    assert "<name>x</name>" in dom.checkpoint_xml_for("x", "d", ["vda"])


def test_checkpoint_create_as_body_is_checked(served: Served) -> None:
    status, _, data = http(served, "POST", "/api/v1/domains/cpd/checkpoints/create-as",
                           b'{"name": "c1", "bogus": 1}',
                           {"Content-Type": "application/json"})  # fmt: skip
    assert status == 422 and b"invalid_request" in data
    status, _, data = http(served, "GET", "/api/v1/domains/nosuch/checkpoints")
    assert status == 404 and b"not_found" in data
