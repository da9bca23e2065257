"""QEMU block driver modules: one-line refusals naming the driver and qemu-block-extra."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from pyvirt.errors import UnsupportedError
from pyvirt.service.disk.hooks import DiskHook
from pyvirt.storage import qemu_modules as qm
from tests.conftest import Pyvirt

PYVIRT_NS = "http://pyvirt.org/xmlns/storagepool/1.0"


@pytest.fixture
def moddir(tmp_path: Path) -> Path:
    """A QEMU module directory with every module but the network block drivers."""
    d = tmp_path / "qemu-modules"
    d.mkdir()
    (d / "ui-curses.so").write_bytes(b"")
    return d


def test_module_dir_honours_qemu_module_dir(moddir: Path) -> None:
    assert qm.module_dir({"QEMU_MODULE_DIR": str(moddir)}) == moddir
    found = qm.module_dir({})
    assert found is None or found.is_dir()


@pytest.mark.parametrize(
    ("protocol", "module"),
    [("iscsi", "block-iscsi"), ("nfs", "block-nfs"), ("https", "block-curl"),
     ("http", "block-curl"), ("ftp", "block-curl"), ("rbd", "block-rbd"),
     ("gluster", "block-gluster"), ("ssh", "block-ssh")],
)  # fmt: skip
def test_missing_driver_is_one_line(moddir: Path, protocol: str, module: str) -> None:
    with pytest.raises(UnsupportedError) as exc:
        qm.require_block_driver("pool 'p'", protocol, directory=moddir)
    msg = exc.value.message
    assert msg == (
        f"pool 'p' needs QEMU's {protocol} block driver, which is not installed "
        f"({moddir}/{module}.so is missing): install the Debian package qemu-block-extra"
    )
    assert exc.value.hint is None
    (moddir / f"{module}.so").write_bytes(b"")
    qm.require_block_driver("pool 'p'", protocol, directory=moddir)


def test_builtin_protocols_and_plain_files_pass(moddir: Path) -> None:
    qm.require_block_driver("d", "nbd", directory=moddir)
    qm.require_block_drivers("d", ["/var/lib/x.qcow2", "nbd://h:1/e"], directory=moddir)
    with pytest.raises(UnsupportedError, match="nfs block driver"):
        qm.require_block_drivers("d", ["/x.img", "nfs://h:/e/a.img"], directory=moddir)


def test_disk_hook_refuses_before_launch(monkeypatch: pytest.MonkeyPatch, moddir: Path) -> None:
    monkeypatch.setenv("QEMU_MODULE_DIR", str(moddir))
    mgr: Any = SimpleNamespace()
    data = {"disks": [{"target": "vdb", "key": "iscsi://127.0.0.1:3260/iqn.x/1"}], "volumes": {}}
    with pytest.raises(UnsupportedError, match=r"^domain 'g' needs QEMU's iscsi block driver"):
        DiskHook().before_launch(mgr, "g", data)


def test_pool_start_refuses(pyvirt: Pyvirt, moddir: Path, tmp_path: Path) -> None:
    pyvirt.env["QEMU_MODULE_DIR"] = str(moddir)
    pyvirt("pool-define-as", "ip", "iscsi", "--source-host", "127.0.0.1",
           "--source-dev", "iqn.2024-01.test:t", "--target", "/dev/disk/by-path")  # fmt: skip
    res = pyvirt("pool-start", "ip", check=False)
    assert res.rc == 1 and res.out == ""
    assert res.err == (
        f"error: pool 'ip' needs QEMU's iscsi block driver, which is not installed "
        f"({moddir}/block-iscsi.so is missing): install the Debian package qemu-block-extra\n"
    )
    xml = tmp_path / "n.xml"
    xml.write_text(
        f"<pool type='netfs' xmlns:pyvirt='{PYVIRT_NS}'><name>nn</name>"
        "<source><host name='127.0.0.1'/><dir path='/e'/><format type='nfs'/></source>"
        f"<target><path>{tmp_path}</path></target><pyvirt:access mode='native'/></pool>"
    )
    pyvirt("pool-define", str(xml))
    res = pyvirt("pool-start", "nn", check=False)
    assert res.rc == 1 and "nfs block driver" in res.err and len(res.err.splitlines()) == 1
    assert os.path.basename(str(moddir)) in res.err
