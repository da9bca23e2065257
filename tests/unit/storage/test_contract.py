"""One suite run against every registered pool backend (tmp dirs, no root, no devices).

Every backend: registered under its type, capabilities are data, ``check()`` refuses a
definition without the source parts it declares. Backends that need no source (``dir``) also
run a full pool and volume lifecycle in a tmp dir.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pyvirt.errors import InvalidConfigError, PyvirtError
from pyvirt.model.pool import POOL_TYPES, new_pool
from pyvirt.model.volume import VOLUME_FORMATS
from pyvirt.storage.base import CreateRequest, PoolBackend, PoolCapabilities
from pyvirt.storage.registry import backend_class, pool_types

TYPES = pool_types()


def make(ptype: str, tmp: Path) -> PoolBackend:
    pool = new_pool(f"t-{ptype}", ptype)
    pool.ensure_target().path = str(tmp / "target")
    return backend_class(ptype)(pool, tmp / "run")


def test_dir_and_fs_are_registered() -> None:
    assert {"dir", "fs"} <= set(TYPES)
    with pytest.raises(InvalidConfigError, match="pool type 'nope' is not supported"):
        backend_class("nope")


@pytest.mark.parametrize("ptype", TYPES)
def test_capabilities_are_data(ptype: str) -> None:
    cls = backend_class(ptype)
    assert cls.type == ptype and ptype in POOL_TYPES
    caps = cls.capabilities
    assert isinstance(caps, PoolCapabilities)
    assert caps.default_format in caps.formats or not caps.create_volumes
    assert set(caps.formats) <= set(VOLUME_FORMATS)
    assert set(caps.source_fields) <= {"host", "dir", "device", "name", "adapter"}
    assert not (caps.build_overwrite and not caps.build)


@pytest.mark.parametrize("ptype", TYPES)
def test_check_without_source_is_clean(ptype: str, tmp_path: Path) -> None:
    """A definition without <source> either passes check() or fails with a clear error."""
    backend = make(ptype, tmp_path)
    try:
        backend.check()
    except InvalidConfigError as err:
        assert backend.capabilities.source_fields, "refused a source the type does not use"
        assert err.message == err.message.lower() or "'" in err.message
    else:
        assert ptype not in ("fs", "netfs", "iscsi", "disk"), "these need a source"


FILE_TYPES = [t for t in TYPES if not backend_class(t).capabilities.source_fields]


def test_fs_needs_a_source_device(tmp_path: Path) -> None:
    with pytest.raises(InvalidConfigError, match="needs <source><device"):
        make("fs", tmp_path).check()


@pytest.mark.parametrize("ptype", FILE_TYPES)
def test_lifecycle_in_tmp_dir(ptype: str, tmp_path: Path) -> None:
    b = make(ptype, tmp_path)
    caps = b.capabilities
    with pytest.raises(PyvirtError):
        b.start()  # not built yet
    b.build()
    b.start()
    assert b.is_started()
    info = b.info()
    assert info.capacity >= info.available > 0
    assert b.refresh() == []
    thin = b.create_volume(CreateRequest("thin.img", 8 << 20, caps.default_format, 0))
    thick = b.create_volume(CreateRequest("thick.img", 8 << 20, caps.default_format, 8 << 20))
    assert thin.capacity == thick.capacity == 8 << 20
    assert thin.allocation < 1 << 20 <= 8 << 20 <= thick.allocation
    if "qcow2" in caps.formats:
        q = b.create_volume(CreateRequest("q.qcow2", 1 << 30, "qcow2", 0))
        assert (q.format, q.capacity) == ("qcow2", 1 << 30)
        if caps.backing:
            c = b.create_volume(CreateRequest("c.qcow2", 1 << 30, "qcow2", 0, q.path, "qcow2"))
            assert (c.backing_path, c.backing_format) == (q.path, "qcow2")
            b.delete_volume(c)
        b.delete_volume(q)
    assert [v.name for v in b.refresh()] == ["thick.img", "thin.img"]
    with pytest.raises(PyvirtError):
        b.create_volume(CreateRequest("thin.img", 1 << 20, caps.default_format, 0))
    assert b.volume("thin.img") is not None and b.volume("nope") is None
    fd = b.open_volume(thin, write=True)
    os.pwrite(fd, b"x" * 4096, 4096)
    os.close(fd)
    if caps.resize:
        grown = b.resize_volume(thin, 16 << 20, allocate=False)
        assert grown.capacity == 16 << 20
    b.wipe_volume(b.volume("thin.img") or thin, "zero")
    with open(thin.path, "rb") as f:
        assert not any(f.read())
    src = b.disk_source(thin)
    assert src.kind == "file" and src.path == thin.path and src.format == "raw"
    with pytest.raises(PyvirtError):
        b.delete()  # not empty
    for v in b.refresh():
        b.delete_volume(v)
    b.stop()
    b.delete()
    assert not (tmp_path / "target").exists()


def test_target_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "target").write_text("x")
    with pytest.raises(InvalidConfigError, match="not a directory"):
        make("dir", tmp_path).build()
