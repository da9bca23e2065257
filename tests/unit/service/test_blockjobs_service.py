"""Block job service pieces that need no QEMU: the <backingStore> XML, and the offline
commit and pull (qemu-img) of a shut-off domain's chain, through the API."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

import pyvirt.api
from pyvirt.errors import InvalidConfigError, InvalidStateError
from pyvirt.model import Disk
from pyvirt.model.xmltree import parse_xml, to_string
from pyvirt.service.disk.blockjobs import backing_xml, set_chain

needs_qemu_img = pytest.mark.skipif(shutil.which("qemu-img") is None, reason="no qemu-img")

DISK = """<disk type='file' device='disk'>
  <driver name='qemu' type='qcow2'/>
  <source file='/i/top.qcow2'/>
  <target dev='vda' bus='virtio'/>
</disk>"""


def test_backing_store_chain_is_libvirts() -> None:
    xml = backing_xml([("/i/mid.qcow2", "qcow2"), ("/i/base.raw", "raw")])
    assert xml == (
        "<backingStore type='file' index='1'><format type='qcow2'/>"
        "<source file='/i/mid.qcow2'/><backingStore type='file' index='2'>"
        "<format type='raw'/><source file='/i/base.raw'/><backingStore/></backingStore>"
        "</backingStore>"
    )


def test_set_chain_moves_the_source_and_replaces_the_chain() -> None:
    disk = Disk(parse_xml(DISK))
    set_chain(disk, [("/i/top.qcow2", "qcow2"), ("/i/base.qcow2", "qcow2")])
    text = to_string(disk.element)
    assert (
        text.index("<source file='/i/top.qcow2'/>")
        < text.index("<backingStore")
        < (text.index("<target"))
    )
    set_chain(disk, [("/i/base.qcow2", "raw")])
    text = to_string(disk.element)
    assert "<backingStore" not in text and "top.qcow2" not in text
    assert disk.source_path == "/i/base.qcow2" and disk.format == "raw"


def _img(path: Path, backing: Path | None = None) -> Path:
    argv = ["qemu-img", "create", "-q", "-f", "qcow2"]
    if backing is not None:
        argv += ["-b", str(backing), "-F", "qcow2"]
    subprocess.run([*argv, str(path), "4M"], check=True)
    return path


def _backing(path: Path) -> str | None:
    out = subprocess.run(["qemu-img", "info", "-U", "--output=json", str(path)],
                         check=True, capture_output=True, text=True).stdout  # fmt: skip
    return json.loads(out).get("backing-filename")


def _domain(tmp_path: Path, image: Path) -> pyvirt.api.Domain:
    conn = pyvirt.api.open(f"pyvirt:///embed?root={tmp_path / 's'}")
    conn.domains.define(
        f"""<domain type='qemu'><name>off</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='pc'>hvm</type></os><devices>
<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>
<source file='{image}'/><target dev='vda' bus='virtio'/></disk></devices></domain>"""
    )
    return conn.domains.get("off")


@needs_qemu_img
def test_offline_active_commit_pivots_the_definition(tmp_path: Path) -> None:
    base = _img(tmp_path / "base.qcow2")
    top = _img(tmp_path / "top.qcow2", base)
    dom = _domain(tmp_path, top)
    with pytest.raises(InvalidConfigError, match="requires --active"):
        dom.block_commit("vda", pivot=False)
    with pytest.raises(InvalidStateError, match="synchronized phase"):
        dom.block_commit("vda", active=True, pivot=False)
    seen: list[tuple[int, int]] = []
    res = dom.block_commit(
        "vda", active=True, delete=True, progress=lambda d, t: seen.append((d, t))
    )
    assert (res.outcome, res.kind, res.source) == ("pivoted", "active-commit", str(base))
    assert seen[-1] == (100, 100) and not top.exists()
    assert f"<source file='{base}'/>" in dom.xml_desc(inactive=True)
    with pytest.raises(InvalidStateError, match="does not have a backing image"):
        dom.block_commit("vda", active=True)


@needs_qemu_img
def test_offline_pull_to_a_base_and_flat(tmp_path: Path) -> None:
    base = _img(tmp_path / "base.qcow2")
    mid = _img(tmp_path / "mid.qcow2", base)
    top = _img(tmp_path / "top.qcow2", mid)
    dom = _domain(tmp_path, top)
    with pytest.raises(InvalidConfigError, match="not in the backing chain"):
        dom.block_pull("vda", base=str(tmp_path / "other.qcow2"))
    assert dom.block_pull("vda", base=str(base)).chain == [str(top), str(base)]
    assert _backing(top) == str(base)
    assert dom.block_pull("vda").chain == [str(top)]
    assert _backing(top) is None
    with pytest.raises(InvalidStateError, match="is not running"):
        dom.block_copy("vda", str(tmp_path / "copy.qcow2"))
