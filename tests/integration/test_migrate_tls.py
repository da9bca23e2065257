"""``migrate --tls`` between two pyvirtd in two network namespaces (``test_migrate_hosts``'
fixtures): B's QEMU listens with B's daemon certificate (its self-signed pair), A's QEMU
trusts the CA the client trusts for B (``?ca=``) and checks B's address in it. The RAM and
the copied disk (``--copy-storage-all``, NBD over TLS too) arrive; a client that trusts B
only by fingerprint, or a destination without a daemon certificate, is refused before
anything moves. Then ``--p2p --tls`` moves it back, driven by B's daemon."""

from __future__ import annotations

import hashlib
import json
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pyvirt.drivers.qemu.qmp import Monitor
from tests.conftest import Pyvirt
from tests.daemonhelp import free_port, pyvirtd
from tests.integration.nethelp import NsPyvirt
from tests.integration.test_disks import guest, write_pattern
from tests.integration.test_lifecycle import define, state, wait_marker
from tests.integration.test_migrate_hosts import ADDR_A, ADDR_B, _token, hosts, roots  # noqa: F401
from tests.integration.test_migrate_storage import _qcow2_disk, _read

pytestmark = pytest.mark.qemu


SNIFF = """
import socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind((sys.argv[1], 0))
s.settimeout(0.5)
with open(sys.argv[2], "wb") as out:
    while True:
        try:
            out.write(s.recv(65535))
        except TimeoutError:
            out.flush()
"""


def cert_fingerprint(cert: Path) -> str:
    der = ssl.PEM_cert_to_DER_cert(cert.read_text())
    return "SHA256:" + hashlib.sha256(der).hexdigest()


def _qmp(root: Path) -> str:
    rec = json.loads((root / "run" / "qemu" / "t1" / "runtime.json").read_text())
    return str(rec["qmp_socket"])


def test_tls_migration_with_copied_storage(
    hosts: tuple[str, str],  # noqa: F811
    roots: tuple[Path, Path],  # noqa: F811
    tiny_image: Any,
) -> None:
    ns_a, ns_b = hosts
    root_a, root_b = roots
    port, port_a = free_port(), free_port()
    with (
        pyvirtd(root_a, netns=ns_a, args=("--listen-tcp", f"{ADDR_A}:{port_a}")) as da,
        pyvirtd(root_b, netns=ns_b, args=("--listen-tcp", f"{ADDR_B}:{port}")) as db,
    ):
        a = NsPyvirt(root_a, ns_a)
        b = Pyvirt(root_b)
        src_img, dest_img = root_a / "d.qcow2", root_b / "d.qcow2"
        define(a, tiny_image, extra_devices=_qcow2_disk(src_img))
        a("start", "t1")
        wait_marker(a, "t1")
        guest(a, "t1", "export KEEP=tls-$((6*7))")
        write_pattern(a, "t1", "vda", "sent-over-tls!")
        a.env["PYVIRT_TOKEN"] = _token(db)
        dest_xml = root_a / "dest.xml"
        dest_xml.write_text(a("dumpxml", "t1").out.replace(str(src_img), str(dest_img)))
        # trusted by fingerprint only: the client has no CA to give QEMU
        pinned = f"pyvirt+tls://{ADDR_B}:{port}/?fingerprint={cert_fingerprint(db.cert)}"
        res = a("migrate", "--live", "--tls", "t1", pinned, check=False)
        assert res.rc == 1
        assert res.err.splitlines()[0] == (
            "error: --tls: this client has no CA for the destination's certificate (it "
            "trusts it by fingerprint or not at all)"
        )
        assert state(a, "t1") == "running (booted)"
        assert not (root_b / "run" / "qemu" / "t1").exists()
        # the move, over TLS, the disk copied; B's side of the wire is recorded meanwhile
        dest = f"pyvirt+tls://{ADDR_B}:{port}/?ca={db.cert}"
        wire = root_b.parent / f"{root_b.name}.wire"
        sniffer = subprocess.Popen(
            ["ip", "netns", "exec", ns_b, sys.executable, "-c", SNIFF, f"{ns_b}b", str(wire)]
        )
        try:
            a("migrate", "--live", "--tls", "--copy-storage-all", "--xml", str(dest_xml),
              "--persistent", "--undefinesource", "t1", dest)  # fmt: skip
        finally:
            sniffer.terminate()
            sniffer.wait(10)
        data = wire.read_bytes()
        wire.unlink()
        # the disk (16 MiB) crossed that wire; NBD negotiated in clear up to its STARTTLS, but
        # neither QEMU's migration stream (its magic) nor the disk's data is there in clear
        assert len(data) > 16 << 20
        assert b"NBDMAGIC" in data
        found = [m for m in (b"QEVM", b"sent-over-tls!") if m in data]
        assert found == []
        assert state(b, "t1") == "running (migrated)"
        assert guest(b, "t1", "echo $KEEP").strip() == "tls-42"
        assert _read(dest_img, 4096, 14) == b"sent-over-tls!"
        # the credentials are gone again: a later save (an fd migration) is plain
        with Monitor(_qmp(root_b), name="t1") as mon:
            params = mon.execute("query-migrate-parameters")
            objects = mon.execute("qom-list", path="/objects")
        assert params["tls-creds"] == ""
        assert not any(o["name"] == "migrate-tls" for o in objects)
        assert "tls" not in " ".join(p.name for p in (root_b / "run" / "qemu" / "t1").rglob("*"))
        assert a("list", "--all", "--name").out.strip() == ""
        # an embedded destination (no daemon certificate there) is refused with --tls
        c = root_b.parent / f"{root_b.name}c"
        try:
            res = b("migrate", "--live", "--tls", "t1", f"pyvirt:///embed?root={c}", check=False)
            assert res.rc == 1
            assert res.err.splitlines()[0].startswith("error: --tls needs a pyvirt+tls://")
            assert state(b, "t1") == "running (migrated)"
        finally:
            subprocess.run(["rm", "-rf", str(c)], check=False)
        # back to A with --p2p: B's daemon drives it, its QEMU trusting the CA this client
        # sent along for A (the image is on the storage both hosts see)
        bd = NsPyvirt(root_b, ns_b)
        bd.env["PYVIRT_TOKEN"] = _token(da)
        bd("migrate", "--p2p", "--live", "--tls", "t1",
           f"pyvirt+tls://{ADDR_A}:{port_a}/?ca={da.cert}")  # fmt: skip
        assert state(a, "t1") == "running (migrated)"
        assert guest(a, "t1", "echo $KEEP").strip() == "tls-42"
        with Monitor(_qmp(root_a), name="t1") as mon:
            assert mon.execute("query-migrate-parameters")["tls-creds"] == ""
