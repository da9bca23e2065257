"""Pool and volume XML: lossless round trip, unknown XML kept and reported, validation, sizes."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyvirt.errors import InvalidConfigError
from pyvirt.model.pool import Pool, SourceHost, new_pool
from pyvirt.model.volume import Volume, format_bytes, new_volume, parse_size

DATA = Path(__file__).parents[2] / "data" / "xml" / "pool"


def test_pool_round_trip_is_lossless_and_reports_unknown() -> None:
    text = (DATA / "netfs-in.xml").read_text()
    pool = Pool.from_xml(text)
    assert pool.to_xml().replace('"', "'") == text
    assert pool.type == "netfs" and pool.name == "nfs1"
    assert pool.source is not None and pool.source.host == "nfs.example.com"
    assert pool.source.hosts[0].port == 2049
    assert pool.source.dir == "/export/vms" and pool.source.format == "nfs"
    assert pool.target_path == "/var/lib/pyvirt/nfs1"
    assert pool.capacity == 0
    assert pool.warnings == ["<source>/<frobnicate>: not understood by pyvirt; kept as is"]


def test_pool_edit_keeps_unknown_and_indentation() -> None:
    pool = Pool.from_xml((DATA / "netfs-in.xml").read_text())
    assert pool.source is not None
    pool.source.hosts = [SourceHost(name="10.0.0.1")]
    out = pool.to_xml()
    assert "<frobnicate level" in out and "10.0.0.1" in out and "nfs.example.com" not in out
    assert Pool.from_xml(out).source is not None


def test_new_pool_and_missing_uuid_generated() -> None:
    pool = new_pool("p", "dir")
    pool.ensure_target().path = "/srv/p"
    again = Pool.from_xml(pool.to_xml())
    assert again.uuid == pool.uuid and len(pool.uuid) == 36
    assert Pool.from_xml("<pool type='dir'><name>x</name></pool>").uuid


@pytest.mark.parametrize(
    ("xml", "path", "words"),
    [
        ("<pool><name>x</name></pool>", "<pool>", "needs a type"),
        ("<pool type='zzz'><name>x</name></pool>", "<pool>", "type 'zzz' is not one of"),
        ("<pool type='dir'/>", "<pool>/<name>", "needs a name"),
        ("<pool type='dir'><name>a/b</name></pool>", "<pool>/<name>", "must not contain '/'"),
        (
            "<pool type='dir'><name>x</name><target><path>rel</path></target></pool>",
            "<pool>/<target>/<path>",
            "not an absolute path",
        ),
        (
            "<pool type='dir'><name>x</name><capacity unit='XB'>1</capacity></pool>",
            "<capacity>",
            "unit 'XB'",
        ),
        ("<pool type='dir'><name>x</name><uuid>nope</uuid></pool>", "<pool>/<uuid>", "not a UUID"),
        ("<volume/>", "<volume>", "root element must be <pool>"),
    ],
)
def test_pool_validation_names_the_element(xml: str, path: str, words: str) -> None:
    with pytest.raises(InvalidConfigError) as err:
        Pool.from_xml(xml)
    assert any(p.path == path and words in p.message for p in err.value.problems), err.value


def test_pool_parser_is_hardened() -> None:
    bomb = '<!DOCTYPE p [<!ENTITY a "aaaa">]><pool type="dir"><name>&a;</name></pool>'
    with pytest.raises(InvalidConfigError, match="DOCTYPE"):
        Pool.from_xml(bomb)


def test_volume_round_trip_units_and_backing() -> None:
    text = """<volume type='file'>
  <name>v.qcow2</name>
  <capacity unit='G'>10</capacity>
  <allocation>4096</allocation>
  <target>
    <path>/x/v.qcow2</path>
    <format type='qcow2'/>
    <compat>1.1</compat>
    <features>
      <lazy_refcounts/>
    </features>
  </target>
  <backingStore>
    <path>/x/base.img</path>
    <format type='raw'/>
  </backingStore>
  <wat/>
</volume>
"""
    vol = Volume.from_xml(text)
    assert vol.to_xml().replace('"', "'") == text
    assert vol.capacity == 10 * 1024**3 and vol.allocation == 4096
    assert vol.format == "qcow2" and vol.target is not None and vol.target.lazy_refcounts
    assert vol.backing is not None and vol.backing.path == "/x/base.img"
    assert vol.warnings == ["<wat>: not understood by pyvirt; kept as is"]


@pytest.mark.parametrize(
    ("xml", "words"),
    [
        ("<volume><capacity>1</capacity></volume>", "needs a name"),
        ("<volume><name>../x</name><capacity>1</capacity></volume>", "must not contain '/'"),
        ("<volume><name>x</name></volume>", "needs a capacity"),
        ("<volume><name>x</name><capacity>-1</capacity></volume>", "is negative"),
        (
            "<volume><name>x</name><capacity>1</capacity>"
            "<target><format type='bogus'/></target></volume>",
            "format 'bogus' is not known",
        ),
    ],
)
def test_volume_validation(xml: str, words: str) -> None:
    with pytest.raises(InvalidConfigError, match=words):
        Volume.from_xml(xml)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0", 0),
        ("1024", 1024),
        ("10G", 10 * 1024**3),
        ("10g", 10 * 1024**3),
        ("512MiB", 512 * 1024**2),
        ("1KB", 1000),
        ("1k", 1024),
        ("3 T", 3 * 1024**4),
        ("7b", 7),
    ],
)
def test_parse_size(text: str, value: int) -> None:
    assert parse_size(text) == value


@pytest.mark.parametrize("text", ["", "G", "1.5G", "-1", "10XB", "ten"])
def test_parse_size_refuses(text: str) -> None:
    with pytest.raises(InvalidConfigError):
        parse_size(text, what="capacity")


def test_format_bytes_and_new_volume() -> None:
    assert format_bytes(0) == "0.00 B"
    assert format_bytes(10 * 1024**3) == "10.00 GiB"
    vol = new_volume("a", 5, "raw", 0)
    assert Volume.from_xml(vol.to_xml()).allocation == 0
