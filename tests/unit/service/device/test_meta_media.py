"""desc, metadata and change-media's rules on a fake running guest (definition side and live
definition side), and the <disk> change-media hands to update-device."""

from __future__ import annotations

import pytest

from pyvirt.errors import InvalidConfigError, InvalidStateError, NotFoundError
from pyvirt.model.domain import Domain
from pyvirt.service.device import meta
from pyvirt.service.device.media import change_media, find_drive, media_xml
from tests.unit.service.conftest import Guest

URI = "http://example.org/app1/"
CDROM = (
    "<disk type='file' device='cdrom'><driver name='qemu' type='raw'/>"
    "<source file='/srv/a.iso'/><target dev='hdc' bus='ide'/><readonly/>"
    "<alias name='ide0-1-0'/></disk>"
)


def test_desc_live_and_config_are_separate(guest: Guest) -> None:
    meta.set_desc(guest.mgr, guest.name, "live text")
    meta.set_desc(guest.mgr, guest.name, "Web 1", title=True, config=True)
    assert meta.get_desc(guest.mgr, guest.name) == "live text"
    assert meta.get_desc(guest.mgr, guest.name, config=True) == ""
    assert meta.get_desc(guest.mgr, guest.name, title=True, config=True) == "Web 1"
    assert guest.live().description == "live text"
    meta.set_desc(guest.mgr, guest.name, "", current=True)
    assert guest.live().description is None
    with pytest.raises(InvalidConfigError, match="newline"):
        meta.set_desc(guest.mgr, guest.name, "a\nb", title=True)


def test_metadata_round_trip(guest: Guest) -> None:
    xml = "<owner team='ops'><name>ann</name></owner>"
    meta.set_metadata(guest.mgr, guest.name, URI, key="app1", xml=xml, config=True)
    got = meta.get_metadata(guest.mgr, guest.name, URI, config=True)
    assert got.startswith("<app1:owner") and f"xmlns:app1='{URI}'" in got
    assert "<app1:name>ann</app1:name>" in got
    stored = guest.mgr.dumpxml(guest.name, inactive=True)
    assert "<metadata>" in stored and Domain.from_xml(stored).name == guest.name
    # replacing keeps one element per namespace; another namespace stays
    meta.set_metadata(guest.mgr, guest.name, URI, key="app1", xml="<owner/>", config=True)
    meta.set_metadata(guest.mgr, guest.name, "urn:b", key="b", xml="<x/>", config=True)
    assert meta.get_metadata(guest.mgr, guest.name, URI, config=True).count("owner") == 1
    meta.set_metadata(guest.mgr, guest.name, URI, config=True)
    with pytest.raises(NotFoundError, match="metadata not found"):
        meta.get_metadata(guest.mgr, guest.name, URI, config=True)
    assert "urn:b" in meta.get_metadata(guest.mgr, guest.name, "urn:b", config=True)
    meta.set_metadata(guest.mgr, guest.name, "urn:b", config=True)
    assert "<metadata" not in guest.mgr.dumpxml(guest.name, inactive=True)
    with pytest.raises(NotFoundError):
        meta.get_metadata(guest.mgr, guest.name, URI)  # live: never set
    with pytest.raises(InvalidConfigError, match="namespace prefix"):
        meta.set_metadata(guest.mgr, guest.name, URI, xml="<a/>", config=True)


def test_media_xml_replaces_or_drops_the_source() -> None:
    dom = Domain.from_xml(
        "<domain type='qemu'><name>m</name><memory>1024</memory><vcpu>1</vcpu>"
        "<os><type>hvm</type></os><devices>"
        f"{CDROM}<disk type='file' device='disk'><source file='/srv/d.img'/>"
        "<target dev='vda' bus='virtio'/></disk></devices></domain>"
    )
    disk = find_drive(dom, "hdc")
    assert find_drive(dom, "/srv/a.iso").element is disk.element
    with pytest.raises(InvalidConfigError, match="not a CD-ROM or floppy"):
        find_drive(dom, "vda")
    with pytest.raises(NotFoundError, match="source path or target is sdz"):
        find_drive(dom, "sdz")
    empty = media_xml(disk, None)
    assert "<source" not in empty and "<alias" not in empty and "dev='hdc'" in empty
    new = media_xml(disk, "/srv/b.iso")
    assert new.index("<driver") < new.index("<source file='/srv/b.iso'/>") < new.index("<target")


def test_change_media_rules_in_the_definition(guest: Guest) -> None:
    dom, rev = guest.mgr.read_config(guest.name)
    from pyvirt.model.devices import Disk
    from pyvirt.model.xmltree import parse_xml

    dom.devices.add(Disk(parse_xml(CDROM.replace("<alias name='ide0-1-0'/>", ""))))
    guest.mgr.write_config(guest.name, dom, rev)
    mgr, name = guest.mgr, guest.name
    with pytest.raises(InvalidStateError, match="already has media"):
        change_media(mgr, name, "hdc", "/srv/b.iso", put_in=True, config=True)
    assert change_media(mgr, name, "hdc", None, take_out=True, config=True) == "ejected"
    assert "a.iso" not in mgr.dumpxml(name, inactive=True)
    with pytest.raises(InvalidStateError, match="doesn't have media"):
        change_media(mgr, name, "hdc", None, take_out=True, config=True)
    with pytest.raises(InvalidConfigError, match="no source"):
        change_media(mgr, name, "hdc", None, put_in=True, config=True)
    assert change_media(mgr, name, "hdc", "/srv/b.iso", put_in=True, config=True) == "inserted"
    assert change_media(mgr, name, "/srv/b.iso", "/srv/c.iso", config=True) == "updated"
    assert "c.iso" in mgr.dumpxml(name, inactive=True)
    assert change_media(mgr, name, "hdc", None, config=True) == "ejected"  # update, no source
