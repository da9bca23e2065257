"""netfs backend: kernel NFS detection, format probing, definition checks, XDR (pure parts)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from pyvirt.errors import InvalidConfigError, UnsupportedError
from pyvirt.model.pool import Pool
from pyvirt.storage import nfsrpc
from pyvirt.storage.backends.netfs import PYVIRT_NS, NetfsPool, kernel_has_nfs, probe


def pool(extra: str = "", source: str = "<host name='h'/><dir path='/exp/'/>") -> NetfsPool:
    xml = (
        f"<pool type='netfs' xmlns:pyvirt='{PYVIRT_NS}'><name>n</name>"
        f"<source>{source}<format type='nfs'/></source>"
        f"<target><path>/mnt/n</path></target>{extra}</pool>"
    )
    return NetfsPool(Pool.from_xml(xml), Path("/nonexistent"))


def test_kernel_nfs_detection_on_fake_roots(tmp_path: Path) -> None:
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/filesystems").write_text("nodev\tproc\n\text4\n")
    assert not kernel_has_nfs(tmp_path)
    (tmp_path / "proc/filesystems").write_text("nodev\tproc\nnodev\tnfs\n")
    assert kernel_has_nfs(tmp_path)


def test_probe_qcow2_and_raw() -> None:
    head = b"QFI\xfb" + b"\0" * 20 + struct.pack(">Q", 10 << 30)
    assert probe(head, 196616) == ("qcow2", 10 << 30)
    assert probe(b"\0" * 32, 4096) == ("raw", 4096)
    assert probe(b"", 0) == ("raw", 0)


def test_native_mode_and_urls() -> None:
    kernel = pool()
    assert not kernel.native
    native = pool("<pyvirt:access mode='native'/>")
    assert native.native
    assert native.export == "/exp"
    assert native.url("v.img") == "nfs://h/exp/v.img"
    from pyvirt.storage.base import VolumeInfo

    src = native.disk_source(VolumeInfo("v.img", "k", "p", type="network", format="qcow2"))
    assert (src.kind, src.protocol, src.host, src.name, src.format) == (
        "network", "nfs", "h", "/exp/v.img", "qcow2",
    )  # fmt: skip


def test_check_needs_host_and_dir() -> None:
    with pytest.raises(InvalidConfigError, match="needs <source><host"):
        pool(source="<dir path='/x'/>").check()
    with pytest.raises(InvalidConfigError, match="needs <source><dir"):
        pool(source="<host name='h'/>").check()
    pool().check()


def test_unsupported_format_refused() -> None:
    xml = (
        "<pool type='netfs'><name>n</name><source><host name='h'/><dir path='/x'/>"
        "<format type='cifs'/></source><target><path>/mnt/n</path></target></pool>"
    )
    with pytest.raises(UnsupportedError, match="'cifs'"):
        NetfsPool(Pool.from_xml(xml), Path("/x")).check()


def test_xdr_round_trip() -> None:
    p = nfsrpc.Packer().u32(7).u64(1 << 40).string("abcde").opaque(b"\x01\x02")
    assert len(p.buf) % 4 == 0
    u = nfsrpc.Unpacker(bytes(p.buf))
    assert (u.u32(), u.u64(), u.string(), u.opaque()) == (7, 1 << 40, "abcde", b"\x01\x02")


def test_fattr3_decoding() -> None:
    raw = struct.pack(">5I", 1, 0o644, 1, 0, 0) + struct.pack(">QQ", 4096, 512) + b"\0" * 48
    attrs = nfsrpc._post_op_attr(nfsrpc.Unpacker(struct.pack(">I", 1) + raw))
    assert attrs == nfsrpc.Attributes(type=1, size=4096, used=512)
