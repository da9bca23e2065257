"""Pure parts of the cluster's TLS (issue 16): the etcd TLS settings in the membership file,
the checks of the TLS files, the peer secret and credential, the certificate fingerprint,
the verifier's answers (its etcd replaced by a dict) and the etcd TLS error line."""

from __future__ import annotations

import hashlib
import json
import ssl
from pathlib import Path
from typing import Any

import pytest

from pyvirt.drivers.etcd import Entry, _tls_failure
from pyvirt.errors import InvalidConfigError, InvalidStateError
from pyvirt.service.cluster import peers
from pyvirt.service.cluster.config import (
    ClusterConfig,
    check_tls_files,
    read_config,
    write_config,
)
from pyvirt.service.cluster.membership import HostStatus
from pyvirt.service.cluster.records import HostRecord
from pyvirt.state.paths import StatePaths


def _record(name: str = "ha", **kw: Any) -> HostRecord:
    base: dict[str, Any] = dict(name=name, host_id="m:/x", address="", joined=1.0,
                                version="1", arch="x86_64", cpu_model="", cpu_flags=(),
                                cpus=1, memory_kib=1, numa_cells=1)  # fmt: skip
    return HostRecord(**{**base, **kw})


def test_etcd_tls_settings_round_trip_in_a_0600_file(tmp_path: Path) -> None:
    paths = StatePaths.from_root(tmp_path)
    config = ClusterConfig("lab", "ha", ("https://a:2379",), etcd_ca="/pki/ca.pem",
                           etcd_cert="/pki/c.pem", etcd_key="/pki/c.key")  # fmt: skip
    write_config(paths, config)
    assert read_config(paths) == config
    assert paths.cluster_membership.stat().st_mode & 0o777 == 0o600


def test_tls_files_are_checked(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    check_tls_files(str(ca), None, None)
    check_tls_files(None, None, None)
    with pytest.raises(InvalidConfigError, match="needs its key"):
        check_tls_files(str(ca), str(ca), None)
    with pytest.raises(InvalidConfigError, match="not an absolute path"):
        check_tls_files("ca.pem", None, None)
    with pytest.raises(InvalidConfigError, match=r"cannot read --etcd-key .*/nope"):
        check_tls_files(None, str(ca), str(tmp_path / "nope"))


def test_peer_secret_is_private_and_forms_the_credential(tmp_path: Path) -> None:
    paths = StatePaths.from_root(tmp_path)
    with pytest.raises(InvalidStateError, match="no cluster peer secret"):
        peers.credential(paths, "ha")
    secret = peers.new_secret(paths)
    assert len(secret) >= 43 and peers.secret_path(paths).stat().st_mode & 0o777 == 0o600
    token = peers.credential(paths, "ha")
    assert token == f"pyvirt-peer:ha:{secret}"
    assert peers.parse_credential(token) == ("ha", secret)
    assert peers.new_secret(paths) != secret  # a re-join makes a new one
    peers.remove_secret(paths)
    assert not peers.secret_path(paths).exists()


@pytest.mark.parametrize("token", ["pyvirt_abc", "pyvirt-peer:", "pyvirt-peer:ha",
                                   "pyvirt-peer::s", "pyvirt-peer:ha:"])  # fmt: skip
def test_malformed_credentials(token: str) -> None:
    assert peers.parse_credential(token) is None


def test_fingerprint_of_the_daemon_certificate(tmp_path: Path) -> None:
    from tests.integration.etcdhelp import make_etcd_tls

    tls = make_etcd_tls(tmp_path / "pki")
    pem = tls.server_cert.read_bytes()
    want = hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem.decode())).hexdigest()
    assert peers.cert_fingerprint(pem) == want
    paths = StatePaths.from_root(tmp_path / "root")
    assert peers.local_fingerprint(paths, "pyvirt+tls://h:1/") == ""  # no certificate yet
    paths.daemon_config_dir.mkdir(parents=True)
    (paths.daemon_config_dir / "server-cert.pem").write_bytes(pem)
    assert peers.local_fingerprint(paths, "pyvirt+tls://h:1/") == want
    assert peers.local_fingerprint(paths, "pyvirt+unix:///s") == ""


class _FakeEtcd:
    def __init__(self, records: dict[str, HostRecord]) -> None:
        self.records = records
        self.reads = 0

    def get(self, key: str) -> Entry | None:
        self.reads += 1
        record = self.records.get(key.rsplit("/", 1)[1])
        return Entry(key, record.encode(), 1, 1, 0) if record is not None else None

    def close(self) -> None:
        pass


def test_the_verifier_accepts_members_only(tmp_path: Path) -> None:
    paths = StatePaths.from_root(tmp_path)
    now = [100.0]
    verifier = peers.PeerVerifier(paths, clock=lambda: now[0])
    assert verifier.verify("pyvirt-peer:ha:s")[0] is None  # not in a cluster
    write_config(paths, ClusterConfig("lab", "hb", ("http://a:2379",)))
    etcd = _FakeEtcd({"ha": _record(peer_sha256=peers.digest("s3cret"))})
    verifier._etcd = etcd  # type: ignore[assignment]  # no etcd: a dict
    verifier._endpoints = ("http://a:2379",)
    assert verifier.verify("pyvirt-peer:ha:s3cret") == ("ha", "")
    reads = etcd.reads
    assert verifier.verify("pyvirt-peer:ha:s3cret") == ("ha", "")
    assert etcd.reads == reads  # cached
    host, why = verifier.verify("pyvirt-peer:ha:wrong")
    assert host is None and why == "revoked or wrong peer credential of cluster host 'ha'"
    assert "wrong" not in why.replace("wrong peer", "")  # never the secret
    host, why = verifier.verify("pyvirt-peer:hz:s3cret")
    assert host is None and why == "unknown cluster host 'hz' (not registered, or it left)"
    assert verifier.verify("pyvirt_token")[1] == "malformed cluster peer credential"
    # the host leaves: refused once the cached digest is older than FRESH
    del etcd.records["ha"]
    now[0] += peers.FRESH + 0.1
    assert verifier.verify("pyvirt-peer:ha:s3cret")[0] is None
    # it joins again with a new secret: accepted at once (a mismatch looks again)
    etcd.records["ha"] = _record(peer_sha256=peers.digest("new"))
    now[0] += peers.FRESH / 4 + 0.1
    assert verifier.verify("pyvirt-peer:ha:new") == ("ha", "")


def test_host_list_json_leaves_the_digest_out() -> None:
    record = _record(peer_sha256="ab" * 32, tls_fingerprint="cd" * 32)
    out = HostStatus(record, "down").to_json()
    assert "peer_sha256" not in out and out["tls_fingerprint"] == "cd" * 32
    assert HostStatus.from_json(json.loads(json.dumps(out))).record.tls_fingerprint == "cd" * 32
    assert HostRecord.decode(record.encode()) == record


def test_tls_failures_are_told_apart_from_a_dead_member() -> None:
    def chained(cause: BaseException) -> BaseException:
        try:
            try:
                raise cause
            except BaseException as inner:
                raise ConnectionError("wrapped") from inner
        except ConnectionError as outer:
            return outer

    verify = ssl.SSLCertVerificationError(1, "certificate verify failed")
    verify.verify_message = "unable to get local issuer certificate"
    assert _tls_failure(chained(verify)) == (
        "cannot verify its certificate (unable to get local issuer certificate)"
    )
    assert "client certificate" in _tls_failure(chained(ssl.SSLEOFError(8, "EOF")))
    assert _tls_failure(chained(ConnectionRefusedError(111, "refused"))) == ""


def test_the_daemon_republishes_its_certificate_fingerprint() -> None:
    class Etcd(_FakeEtcd):
        def transaction(self, compare: list[Any], success: list[Any]) -> bool:
            self.records[success[0].key.rsplit("/", 1)[1]] = HostRecord.decode(success[0].value)
            return True

    etcd = Etcd({"ha": _record(tls_fingerprint="")})
    assert peers.publish_fingerprint(etcd, "ha", "m:/x", "ab" * 32)  # type: ignore[arg-type]
    assert etcd.records["ha"].tls_fingerprint == "ab" * 32
    assert not peers.publish_fingerprint(etcd, "ha", "m:/x", "ab" * 32)  # type: ignore[arg-type]
    # another machine's registration of the name is not touched
    assert not peers.publish_fingerprint(etcd, "ha", "other:/y", "cd" * 32)  # type: ignore[arg-type]
    assert not peers.publish_fingerprint(etcd, "zz", "m:/x", "cd" * 32)  # type: ignore[arg-type]
