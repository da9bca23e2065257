"""iscsi backend: iscsi-ls parsing, names and definition checks (pure parts)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyvirt.errors import InvalidConfigError, UnsupportedError
from pyvirt.model.pool import Pool
from pyvirt.storage import libiscsi
from pyvirt.storage.backends.iscsi import IscsiPool, volume_name
from pyvirt.storage.base import VolumeInfo

LISTING = """Target:iqn.2024-01.test:t1 Portal:127.0.0.1:3260,1
Lun:0    Type:STORAGE_ARRAY_CONTROLLER
Lun:1    Type:DIRECT_ACCESS (Size:63M)
Lun:2    Type:DIRECT_ACCESS (Size:1G)
Target:iqn.2024-01.test:t2 Portal:127.0.0.1:3260,1
Target:iqn.2024-01.test:t1 Portal:[::1]:3260,1
Lun:1    Type:DIRECT_ACCESS (Size:63M)
"""


def test_parse_listing() -> None:
    found = libiscsi.parse_listing(LISTING)
    assert list(found) == ["iqn.2024-01.test:t1", "iqn.2024-01.test:t2"]
    assert [(lun.number, lun.type) for lun in found["iqn.2024-01.test:t1"]] == [
        (0, "STORAGE_ARRAY_CONTROLLER"),
        (1, "DIRECT_ACCESS"),
        (2, "DIRECT_ACCESS"),
    ]
    assert found["iqn.2024-01.test:t2"] == []


def test_urls_and_names() -> None:
    assert libiscsi.lun_url("10.0.0.1", None, "iqn.x:y", 3) == "iscsi://10.0.0.1:3260/iqn.x:y/3"
    assert libiscsi.portal_url("::1", 3261) == "iscsi://[::1]:3261"
    assert volume_name(1) == "unit:0:0:1"


def iscsi(source: str) -> IscsiPool:
    xml = f"<pool type='iscsi'><name>i</name><source>{source}</source></pool>"
    return IscsiPool(Pool.from_xml(xml), Path("/x"))


def test_check() -> None:
    with pytest.raises(InvalidConfigError, match="needs <source><host"):
        iscsi("<device path='iqn.x:y'/>").check()
    with pytest.raises(InvalidConfigError, match="IQN"):
        iscsi("<host name='h'/>").check()
    with pytest.raises(UnsupportedError, match="chap"):
        iscsi(
            "<host name='h'/><device path='iqn.x:y'/>"
            "<auth type='chap' username='u'><secret usage='s'/></auth>"
        ).check()


def test_disk_source_is_network_iscsi() -> None:
    pool = iscsi("<host name='h' port='3261'/><device path='iqn.x:y'/>")
    src = pool.disk_source(VolumeInfo("unit:0:0:2", "k", "p", type="network"))
    assert (src.kind, src.protocol, src.host, src.port, src.name) == (
        "network", "iscsi", "h", 3261, "iqn.x:y/2",
    )  # fmt: skip
