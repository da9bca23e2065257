"""pyvirt.api.remote without a daemon: which targets are local, what inherited verbs do on a
connection to another host, how queries and paths are written."""

from __future__ import annotations

from pathlib import Path

import pytest

import pyvirt.api
from pyvirt.api.remote.connection import RemoteConnection, Unavailable, local_paths, service_for
from pyvirt.api.remote.domains import RemoteDomain, _query, domain_path
from pyvirt.client.transport import Client
from pyvirt.client.uri import Target, resolve
from pyvirt.errors import UnsupportedError
from pyvirt.state.paths import StatePaths


def test_a_state_directory_socket_is_local(tmp_path: Path) -> None:
    paths = StatePaths.from_root(tmp_path)
    paths.config.mkdir(parents=True)
    sock = paths.daemon_socket
    assert local_paths(Target("unix", f"pyvirt+unix://{sock}", sock)) == paths
    assert local_paths(resolve(f"pyvirt:///system?root={tmp_path}")) == paths
    assert local_paths(Target("unix", "x", tmp_path / "elsewhere.sock")) is None
    assert local_paths(Target("tls", "pyvirt+tls://h/", None, "h", 16514)) is None
    # a socket under a directory that holds no pyvirt state is not taken for one
    other = tmp_path / "o" / "run" / "pyvirtd.sock"
    assert local_paths(Target("unix", "x", other)) is None


def test_inherited_verbs_over_tls_fail_with_one_clear_error() -> None:
    target = Target("tls", "pyvirt+tls://h/", None, "h", 16514)
    service = service_for(target)
    assert isinstance(service, Unavailable)
    unix = Target("unix", "pyvirt+unix:///x.sock", Path("/x.sock"))
    conn = RemoteConnection(Client.for_target(unix), service)
    dom = RemoteDomain(service, "web1", conn.client)
    with pytest.raises(UnsupportedError) as err:
        dom.vcpu_info()
    assert str(err.value) == (
        "Domain.vcpu_info() is not available over a remote connection yet; run it on the host"
    )
    assert err.value.hint and "pyvirt+tls://h/" in err.value.hint
    with pytest.raises(UnsupportedError, match=r"^DomainCollection.native_argv\(\) is not"):
        conn.domains.native_argv("<domain/>")


def test_open_without_a_daemon_is_embedded(tmp_path: Path) -> None:
    conn = pyvirt.api.open(f"pyvirt:///embed?root={tmp_path}")
    assert not isinstance(conn, RemoteConnection)
    assert conn.uri == f"pyvirt:///embed?root={tmp_path}"


def test_paths_and_queries() -> None:
    assert domain_path("a b/c", "xml") == "/api/v1/domains/a%20b%2Fc/xml"
    assert _query(all=True, state=["running", "shut off"], uuids=False, x=None) == (
        "?all=true&state=running&state=shut+off&uuids=false"
    )
    assert _query(x=None) == ""
