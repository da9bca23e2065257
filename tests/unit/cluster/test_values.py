"""Pure parts of the cluster (issue 16): etcd endpoints, transactions' encoding, the
membership file and the records hosts publish."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from pyvirt.drivers.etcd import Compare, Delete, Put, absent, parse_endpoints
from pyvirt.errors import InvalidConfigError
from pyvirt.service.cluster.config import (
    ClusterConfig,
    check_host_name,
    read_config,
    remove_config,
    write_config,
)
from pyvirt.service.cluster.records import HostRecord, Liveness
from pyvirt.state.paths import StatePaths


def test_endpoints_are_normalised_and_deduplicated() -> None:
    assert parse_endpoints("http://a:2379, http://b,https://[::1]:2380,http://a:2379") == (
        "http://a:2379",
        "http://b:2379",
        "https://[::1]:2380",
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("a:2379", "is not a URL"),
        ("ftp://a", "is not a URL"),
        ("http://a:2379/v3", "must not have a path"),
        ("http://a:99999", "invalid port"),
        (" , ", "no etcd endpoint"),
    ],
)
def test_bad_endpoints_are_refused(spec: str, message: str) -> None:
    with pytest.raises(InvalidConfigError, match=message):
        parse_endpoints(spec)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_transaction_parts_encode_as_the_gateway_wants() -> None:
    assert absent("/k").encode() == {
        "key": b64("/k"),
        "target": "CREATE",
        "result": "EQUAL",
        "create_revision": 0,
    }
    assert Compare("/k", "value", "EQUAL", "v").encode()["value"] == b64("v")
    assert Put("/k", "v", lease=7).encode() == {
        "request_put": {"key": b64("/k"), "value": b64("v"), "lease": 7}
    }
    assert "lease" not in Put("/k", "v").encode()["request_put"]
    assert Delete("/k").encode() == {"request_delete_range": {"key": b64("/k")}}


@pytest.mark.parametrize("name", ["a", "host-1", "h.example_2", "x" * 63])
def test_good_host_names(name: str) -> None:
    assert check_host_name(name) == name


@pytest.mark.parametrize("name", ["", "../x", "-a", "a b", "x" * 64, "a/b"])
def test_bad_host_names(name: str) -> None:
    with pytest.raises(InvalidConfigError, match="invalid cluster host name"):
        check_host_name(name)


def test_membership_file_round_trip(tmp_path: Path) -> None:
    paths = StatePaths.from_root(tmp_path)
    assert read_config(paths) is None
    config = ClusterConfig("lab", "h1", ("http://a:2379",), address="pyvirt+tls://h1/", ttl=9)
    write_config(paths, config)
    assert read_config(paths) == config
    assert remove_config(paths) and read_config(paths) is None


def test_a_broken_membership_file_is_named(tmp_path: Path) -> None:
    paths = StatePaths.from_root(tmp_path)
    path = paths.daemon_config_dir / "cluster.json"
    path.parent.mkdir(parents=True)
    path.write_text('{"cluster": "lab"}')
    with pytest.raises(InvalidConfigError, match="not a valid cluster membership file"):
        read_config(paths)
    path.write_text("{")
    with pytest.raises(InvalidConfigError, match="not valid JSON"):
        read_config(paths)


def test_records_ignore_fields_of_newer_versions() -> None:
    record = HostRecord("h1", "m:/s", "", 1.0, "1", "x86_64", "cpu", ("sse2",), 2, 1024, 1)
    data = json.loads(record.encode())
    data["future"] = 1
    assert HostRecord.decode(json.dumps(data)) == record
    live = Liveness(5, 1.0, 42, free_kib=10, load=0.5, updated=2.0)
    assert Liveness.decode(live.encode()) == live
