"""The cluster over TLS (issue 16): three etcd members with https client and peer URLs and
client-certificate auth, two pyvirtd listening with TLS on loopback ports and publishing
``pyvirt+tls://`` addresses. ``cluster init|join`` go over https with the client certificate;
a client with the wrong CA or without a certificate is refused in one line; ``cluster start``
of a domain on the other host goes through its TLS address with this host's peer credential
(pinned certificate, no token copied by hand), and the guest boots there; a forged or unknown
host's credential is refused; ``cluster evacuate`` live-migrates the guest back through the
TLS address; an HA guest recovers on the other host after its host's daemon and QEMU are
killed."""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import ssl
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import kill_leftovers
from tests.daemonhelp import free_port, pyvirtds
from tests.integration.clusterhelp import (
    cli,
    crash,
    destroy_everywhere,
    form_cluster,
    stop_watchdogs,
    wait_owner_running,
)
from tests.integration.etcdhelp import etcd_cluster, make_etcd_tls
from tests.integration.nethelp import guest_xml


def boots(root: Path, name: str) -> int:
    """How many boot markers of the tiny guest host *root*'s console log of *name* has."""
    log = root / "log" / "qemu" / name / "console.log"
    return log.read_text(errors="replace").count("PYVIRT-TINY-READY") if log.exists() else 0


def wait_booted(root: Path, name: str, before: int = 0, timeout: float = 120) -> None:
    """Wait for one more boot marker than *before* on *name*'s console on host *root*."""
    deadline = time.monotonic() + timeout
    while boots(root, name) <= before:
        assert time.monotonic() < deadline, f"{name} did not boot on {root.name}"
        time.sleep(0.25)


def peer_call(port: int, cert_der: bytes, token: str) -> tuple[int, dict[str, Any]]:
    """``GET /api/v1/cluster/hosts`` on a daemon's TLS port with *token*, the certificate
    pinned as the cluster does: (status, JSON answer)."""
    import http.client

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=30)
    try:
        conn.connect()
        assert conn.sock.getpeercert(binary_form=True) == cert_der  # type: ignore[union-attr]
        conn.request("GET", "/api/v1/cluster/hosts", headers={"Authorization": f"Bearer {token}"})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"null")
    finally:
        conn.close()


@pytest.fixture
def roots() -> Iterator[dict[str, Path]]:
    """The hosts' state directories right under /tmp: the QEMU user must reach the TLS
    credentials of a migration in its scratch directory (pytest's base is root's only)."""
    made = {h: Path(tempfile.mkdtemp(prefix=f"pct{h}", dir="/tmp")) for h in ("ha", "hb")}
    yield made
    for root in made.values():
        kill_leftovers(root)
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.qemu
def test_cluster_over_tls(tmp_path: Path, tiny_image: Any, roots: dict[str, Path]) -> None:
    pki, wrong = make_etcd_tls(tmp_path / "pki"), make_etcd_tls(tmp_path / "wrong")
    ports = {h: free_port() for h in roots}
    address = {h: f"pyvirt+tls://127.0.0.1:{ports[h]}/" for h in roots}
    began = time.monotonic()

    def phase(what: str) -> None:
        print(f"{time.monotonic() - began:6.1f} s  {what}")

    with etcd_cluster(tmp_path / "etcd", tls=pki) as etcd, contextlib.ExitStack() as stack:
        phase("etcd up")
        assert etcd.endpoints.startswith("https://")
        stack.callback(stop_watchdogs, list(roots.values()))  # after the daemons stopped
        d = stack.enter_context(pyvirtds(roots, tls_port=ports))
        init = ["cluster", "init", "--etcd", etcd.endpoints, "--host", "ha", "--name", "tls"]

        # the wrong CA: one line naming the member; no client certificate: refused
        bad = ["--etcd-ca", str(wrong.ca), "--etcd-cert", str(pki.client_cert),
               "--etcd-key", str(pki.client_key)]  # fmt: skip
        res = cli(roots["ha"], *init, *bad, check=False)
        first = etcd.endpoints.split(",")[0]
        assert res.returncode == 1, res.stderr
        assert f"error: TLS with etcd at {first} failed: cannot verify its certificate" in (
            res.stderr
        ), res.stderr
        res = cli(roots["ha"], *init, "--etcd-ca", str(pki.ca), check=False)
        assert res.returncode == 1 and f"TLS with etcd at {first} failed" in res.stderr, res.stderr
        res = cli(roots["ha"], *init, "--etcd-ca", str(wrong.ca), "--etcd-cert", str(pki.ca),
                  check=False)  # fmt: skip
        assert res.returncode == 1 and "needs its key" in res.stderr, res.stderr
        assert not (roots["ha"] / "lib" / "daemon" / "cluster.json").exists()

        phase("daemons up, bad TLS refused")
        form_cluster(roots, address, ["--etcd", etcd.endpoints, "--name", "tls", *pki.cli_args()],
                     ["--etcd", first, *pki.cli_args()])  # fmt: skip
        for root in roots.values():
            member = root / "lib" / "daemon" / "cluster.json"
            secret = root / "lib" / "daemon" / "cluster-peer.secret"
            assert member.stat().st_mode & 0o777 == 0o600
            assert secret.stat().st_mode & 0o777 == 0o600
            assert json.loads(member.read_text())["etcd_key"] == str(pki.client_key)
        listed = {h["name"]: h for h in json.loads(cli(roots["hb"], "cluster", "list",
                                                       "--json").stdout)}  # fmt: skip
        assert {n: h["state"] for n, h in listed.items()} == {"ha": "up", "hb": "up"}
        certs = {h: ssl.PEM_cert_to_DER_cert(d[h].cert.read_text()) for h in roots}
        for h in roots:
            assert listed[h]["address"] == address[h]
            assert listed[h]["tls_fingerprint"] == hashlib.sha256(certs[h]).hexdigest()
            assert "peer_sha256" not in listed[h]

        # cluster start on the other host: through hb's TLS address, as peer ha; boots there
        xml = tmp_path / "t1.xml"
        xml.write_text(guest_xml(tiny_image, "t1", "", dhcp=False))
        stack.callback(destroy_everywhere, roots, "t1")
        cli(roots["ha"], "cluster", "define", str(xml), "--ha")
        out = cli(roots["ha"], "cluster", "start", "t1", "--host", "hb").stdout
        assert out.strip() == "Domain 't1' started on hb"
        wait_booted(roots["hb"], "t1")
        phase("t1 booted on hb")
        audit = [json.loads(line) for line in d["hb"].audit.read_text().splitlines()]
        assert any(a["identity"] == "peer:ha" and a["transport"] == "tls"
                   and a["path"] == "/api/v1/cluster/domains/t1/run-here" and a["status"] == 204
                   for a in audit), audit  # fmt: skip

        # forged credentials: an unknown host, a member's name with a wrong secret
        secret_a = (roots["ha"] / "lib" / "daemon" / "cluster-peer.secret").read_text().strip()
        status, body = peer_call(ports["hb"], certs["hb"], f"pyvirt-peer:hz:{secret_a}")
        assert status == 401, body
        assert body["error"] == "unknown cluster host 'hz' (not registered, or it left)", body
        status, body = peer_call(ports["hb"], certs["hb"], "pyvirt-peer:ha:" + "x" * 43)
        assert status == 401 and "wrong peer credential of cluster host 'ha'" in body["error"]
        status, body = peer_call(ports["hb"], certs["hb"], f"pyvirt-peer:ha:{secret_a}")
        assert status == 200 and {h["name"] for h in body} == {"ha", "hb"}
        for h in roots:  # no secret in any log
            logs = [d[h].log_text(), d[h].audit.read_text()]
            assert not any(secret_a in text for text in logs)

        phase("forged peers refused")
        # evacuate hb from ha: the live migration's calls to hb go over TLS too
        out = cli(roots["ha"], "cluster", "evacuate", "hb").stdout
        assert json.loads(cli(roots["hb"], "cluster", "domains", "--json").stdout)[0][
            "owner"] == "ha", out  # fmt: skip
        assert "running" in cli(roots["ha"], "domstate", "t1").stdout
        assert "running" not in cli(roots["hb"], "domstate", "t1", check=False).stdout
        audit = [json.loads(line) for line in d["hb"].audit.read_text().splitlines()]
        assert any(a["identity"] == "peer:ha" and "/migration" in a["path"] for a in audit), audit
        # the QEMUs' stream is TLS too: ha's QEMU was prepared through ha's own TLS listener
        # (its daemon's identity, pinned by the published fingerprint), hb's trusted it
        audit = [json.loads(line) for line in d["ha"].audit.read_text().splitlines()]
        assert any(a["identity"] == "peer:ha" and a["transport"] == "tls"
                   and a["path"] == "/api/v1/migrations/incoming" and a["status"] == 201
                   for a in audit), audit  # fmt: skip
        pin = listed["ha"]["tls_fingerprint"]
        assert f"evacuating t1 to ha over QEMU's TLS (certificate SHA256 {pin})" in d[
            "ha"].log_text()  # fmt: skip
        cli(roots["ha"], "cluster", "restore", "hb")
        phase("evacuated")

        # ha crashes (daemon, watchdog, QEMU): t1 recovers on hb and boots there again
        booted = boots(roots["hb"], "t1")
        crash(d["ha"], roots["ha"], "t1")
        host, took = wait_owner_running(roots, "t1", 45, not_on="ha")
        print(f"failover over TLS: t1 running on {host} {took:.1f} s after ha crashed")
        assert host == "hb"
        wait_booted(roots["hb"], "t1", booted)
        phase("t1 recovered and booted on hb")
