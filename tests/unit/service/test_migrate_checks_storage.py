"""The destination's checks of a migration and the copy-storage commands, without QEMU: the
QMP wire format of the new commands (against the fake QMP server), the checks that need no
host probe, the values passed between the hosts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pyvirt.drivers.qemu.qmp import Monitor
from pyvirt.errors import InvalidStateError, NotFoundError
from pyvirt.model.domain import Domain
from pyvirt.service.domain import migrate_checks, migrate_storage
from pyvirt.service.domain.migrate_storage import DiskCopy, StorageCopy
from tests.fakeqmp import FakeQmp

CASES = [
    ("mirror", lambda m: m.blockdev_mirror("migrate-vda", "virtio-disk0-format",
                                           "migrate-vda-nbd", shallow=False),
     "blockdev-mirror", {"job-id": "migrate-vda", "device": "virtio-disk0-format",
                         "target": "migrate-vda-nbd", "sync": "full", "auto-dismiss": False}),
    ("mirror-top", lambda m: m.blockdev_mirror("j", "d", "t", shallow=True),
     "blockdev-mirror", {"job-id": "j", "device": "d", "target": "t", "sync": "top",
                         "auto-dismiss": False}),
    ("nbd-fd", lambda m: m.nbd_server_start_fd("migrate-nbd"), "nbd-server-start",
     {"addr": {"type": "fd", "data": {"str": "migrate-nbd"}}}),
    ("export-rw", lambda m: m.nbd_export_add("migrate-vda", "n", "vda", writable=True),
     "block-export-add", {"type": "nbd", "id": "migrate-vda", "node-name": "n", "name": "vda",
                          "writable": True}),
    ("continue", lambda m: m.migrate_continue(), "migrate-continue",
     {"state": "pre-switchover"}),
]  # fmt: skip


@pytest.mark.parametrize(("call", "command", "args"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_wire_format(
    fake_qmp: FakeQmp, call: Callable[[Monitor], Any], command: str, args: dict[str, Any]
) -> None:
    fake_qmp.on(command, {})
    with Monitor(fake_qmp.path, timeout=5) as mon:
        call(mon)
    assert fake_qmp.calls(command) == [args]


def test_switchover_capability(fake_qmp: FakeQmp) -> None:
    fake_qmp.on("migrate-set-capabilities", {})
    with Monitor(fake_qmp.path, timeout=5) as mon:
        mon.set_migration_capabilities(pause_before_switchover=True)
    caps = fake_qmp.calls("migrate-set-capabilities")[0]["capabilities"]
    assert {"capability": "pause-before-switchover", "state": True} in caps


def _dom(extra: str = "", devices: str = "") -> Domain:
    return Domain.from_xml(
        f"<domain type='qemu'><name>m1</name><memory unit='MiB'>64</memory>{extra}"
        f"<os><type>hvm</type></os><devices>{devices}</devices></domain>"
    )


def test_host_cpu_modes_warn(tmp_path: Path) -> None:
    for mode in ("host-model", "host-passthrough"):
        warnings = migrate_checks.check_destination(
            None,  # type: ignore[arg-type]  # no probe is needed for these modes
            _dom(f"<cpu mode='{mode}'/>"),
            (),
        )
        assert len(warnings) == 1 and f"CPU mode {mode}" in warnings[0]


def test_missing_image_refused_unless_copied(tmp_path: Path) -> None:
    img = tmp_path / "gone.img"
    disk = (f"<disk type='file' device='disk'><source file='{img}'/>"
            "<target dev='vda' bus='virtio'/></disk>")  # fmt: skip
    with pytest.raises(NotFoundError, match=r"image '.*gone.img' does not exist on the dest"):
        migrate_checks.check_destination(None, _dom(devices=disk), ())  # type: ignore[arg-type]
    assert migrate_checks.check_destination(None, _dom(devices=disk), {"vda"}) == []  # type: ignore[arg-type]


def test_memory_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "meminfo").write_text("MemTotal: 99 kB\nMemAvailable: 32768 kB\n")
    monkeypatch.setenv("PYVIRT_HOST_ROOT", str(tmp_path))
    with pytest.raises(InvalidStateError, match=r"has 32 MiB of memory available, .* 64 MiB"):
        migrate_checks.check_destination(None, _dom(), ())  # type: ignore[arg-type]


def test_incremental_needs_the_backing_file(tmp_path: Path) -> None:
    top = tmp_path / "top.qcow2"
    disk = (f"<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
            f"<source file='{top}'/><target dev='vda' bus='virtio'/></disk>")  # fmt: skip
    copy = DiskCopy("vda", "qcow2", 1 << 20, backing="base.qcow2", backing_format="qcow2")
    with pytest.raises(NotFoundError, match=r"backing file '.*/base.qcow2' does not exist"):
        migrate_storage.create_images(_dom(devices=disk), [copy])
    assert not top.exists()
    made = migrate_storage.create_images(_dom(devices=disk), [DiskCopy("vda", "raw", 1 << 20)])
    assert made == [str(top)] and top.stat().st_size == 1 << 20
    # an image already there is used as it is, and never listed for removal
    assert migrate_storage.create_images(_dom(devices=disk), [DiskCopy("vda", "raw", 1)]) == []


def test_values_between_hosts() -> None:
    assert migrate_storage._relative("/a/b/base.qcow2", "/a/b/top.qcow2") == "base.qcow2"
    assert migrate_storage._relative("/a/x/base.qcow2", "/a/b/top.qcow2") == "/a/x/base.qcow2"
    sc = StorageCopy("tcp:10.0.0.2:4711", {"vda": "vda"}, True)
    assert sc.to_json() == {"nbd": "tcp:10.0.0.2:4711", "exports": {"vda": "vda"},
                            "incremental": True}  # fmt: skip
    assert migrate_storage._server(sc.nbd) == {"type": "inet", "host": "10.0.0.2",
                                               "port": "4711"}  # fmt: skip
    assert migrate_storage._server("unix:/run/x.sock") == {"type": "unix", "path": "/run/x.sock"}
    assert DiskCopy(**DiskCopy("vda", "qcow2", 5).to_json()) == DiskCopy("vda", "qcow2", 5)


def test_tls_leaf_is_signed_by_the_daemons_self_signed_pair(tmp_path: Path) -> None:
    """QEMU refuses a CA certificate as a server's: the destination QEMU gets a leaf for the
    same names, signed by the daemon's key, that verifies against the daemon's certificate."""
    from cryptography import x509

    from pyvirt.daemon.tls import _self_signed
    from pyvirt.service.domain import migrate_tls

    cert, key = tmp_path / "server-cert.pem", tmp_path / "server-key.pem"
    _self_signed(cert, key, "10.231.7.2", ())
    assert migrate_tls._is_ca(cert.read_bytes())
    files = migrate_tls._leaf(cert.read_bytes(), key.read_bytes())
    ca = x509.load_pem_x509_certificate(cert.read_bytes())
    leaf = x509.load_pem_x509_certificate(files["server-cert.pem"])
    leaf.verify_directly_issued_by(ca)
    assert not migrate_tls._is_ca(files["server-cert.pem"])
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "10.231.7.2" in {str(ip) for ip in names.get_values_for_type(x509.IPAddress)}
    assert b"PRIVATE KEY" in files["server-key.pem"]
