"""``pyvirt migrate``'s options reach the API as virsh means them (no QEMU: the migration
itself is replaced; tests/integration/test_migrate*.py run them for real)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import pyvirt.api
from pyvirt.api import domain_migrate, migrate_p2p
from pyvirt.cli.main import main
from tests.unit.daemon.test_domains import domain_xml


def run(*args: str) -> int:
    try:
        main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


@pytest.fixture
def calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    root = tmp_path / "s"
    monkeypatch.setenv("PYVIRT_STATE_DIR", str(root))
    monkeypatch.delenv("PYVIRT_TOKEN", raising=False)
    pyvirt.api.open(f"pyvirt:///embed?root={root}").domains.define(domain_xml("web1"))
    seen: list[dict[str, Any]] = []

    def fake(*args: Any, **kwargs: Any) -> None:
        seen.append({"dest": args[-1], **kwargs})

    monkeypatch.setattr(domain_migrate, "migrate", fake)
    monkeypatch.setattr(migrate_p2p, "migrate_p2p", fake)
    return seen


def test_the_policy_options(calls: list[dict[str, Any]], tmp_path: Path) -> None:
    xml = tmp_path / "d.xml"
    xml.write_text("<domain/>")
    assert run("migrate", "--live", "--auto-converge-initial", "30", "--auto-converge-increment",
               "5", "--compressed", "--parallel", "--parallel-connections", "4", "--bandwidth",
               "8", "--postcopy", "--postcopy-after-precopy", "--postcopy-bandwidth", "2",
               "--timeout", "9", "--timeout-postcopy", "--abort-on-error", "--xml", str(xml),
               "--copy-storage-all",
               "--migrate-disks", "vda,vdb", "--listen-address", "10.0.0.2", "--dname", "w2",
               "web1", "pyvirt+tls://h/") == 0  # fmt: skip
    (call,) = calls
    p = call["policy"]
    assert (p.auto_converge, p.auto_converge_initial, p.auto_converge_increment) == (True, 30, 5)
    assert (p.compressed, p.parallel, p.bandwidth) == (True, 4, 8 << 20)
    assert (p.postcopy, p.postcopy_after_passes, p.postcopy_bandwidth) == (True, 1, 2 << 20)
    assert (p.timeout, p.timeout_action, p.abort_on_error) == (9.0, "postcopy", True)
    assert call["xml"] == "<domain/>" and call["migrate_disks"] == ["vda", "vdb"]
    assert call["migrate_uri"] == "tcp://10.0.0.2" and call["dname"] == "w2"
    assert call["copy_storage_all"] and call["live"]
    # --parallel alone: QEMU's two channels; no policy option: QEMU's defaults
    calls.clear()
    assert run("migrate", "--parallel", "web1", "pyvirt+tls://h/") == 0
    p = calls[0]["policy"]
    assert (p.parallel, p.auto_converge, p.abort_on_error, p.timeout) == (2, False, False, None)


def test_p2p_takes_the_storage_xml_and_tls_options(
    calls: list[dict[str, Any]], tmp_path: Path
) -> None:
    xml = tmp_path / "p.xml"
    xml.write_text("<domain>p</domain>")
    assert run("migrate", "--p2p", "--tls", "--copy-storage-inc", "--migrate-disks", "vda",
               "--persistent", "--persistent-xml", str(xml), "--postcopy-resume", "web1",
               "pyvirt+unix:///run/b.sock") == 0  # fmt: skip
    (call,) = calls
    assert call["persistent_xml"] == "<domain>p</domain>" and call["tls"]
    assert call["copy_storage_inc"] and call["migrate_disks"] == ["vda"]
    assert call["postcopy_resume"] and call["persistent"]


def test_refusals(calls: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]) -> None:
    for argv, first in [
        (["--tunnelled"], "error: --tunnelled requires --p2p"),
        (["--live", "--offline"], "error: options --live and --offline are mutually exclusive"),
        (["--timeout-postcopy", "--timeout", "3"], "error: --timeout-postcopy requires --postcopy"),
        (["--timeout-suspend"], "error: --timeout-suspend and --timeout-postcopy need --timeout"),
    ]:
        assert run("migrate", *argv, "web1", "pyvirt+tls://h/") == 1
        assert capsys.readouterr().err.splitlines()[0] == first
    assert calls == []
