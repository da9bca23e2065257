"""``<domainsnapshot>``: libvirt's snapshot XML reads, validates and round trips verbatim."""

from __future__ import annotations

import pytest

from pyvirt.errors import InvalidConfigError
from pyvirt.model.snapshot import DomainSnapshot

LIBVIRT_XML = """<domainsnapshot>
  <name>s1</name>
  <description>before the upgrade</description>
  <state>disk-snapshot</state>
  <parent>
    <name>s0</name>
  </parent>
  <creationTime>1700000000</creationTime>
  <memory snapshot='no'/>
  <disks>
    <disk name='vda' snapshot='external' type='file'>
      <driver type='qcow2'/>
      <source file='/img/vm.s1'/>
    </disk>
    <disk name='vdb' snapshot='no'/>
  </disks>
  <domain type='kvm'>
    <name>vm</name>
    <devices>
      <disk type='file' device='disk'>
        <source file='/img/vm.qcow2'/>
        <target dev='vda' bus='virtio'/>
      </disk>
    </devices>
  </domain>
</domainsnapshot>
"""


def test_libvirt_xml_reads_and_round_trips() -> None:
    snap = DomainSnapshot.from_xml(LIBVIRT_XML)
    assert (snap.name, snap.description, snap.state) == ("s1", "before the upgrade",
                                                         "disk-snapshot")  # fmt: skip
    assert (snap.parent, snap.creation_time, snap.memory) == ("s0", 1700000000, "no")
    vda = snap.disk("vda")
    assert vda is not None and (vda.snapshot, vda.driver_type, vda.source_file) == (
        "external", "qcow2", "/img/vm.s1",
    )  # fmt: skip
    assert snap.is_external and not snap.is_internal
    assert snap.domain_xml is not None and "<source file='/img/vm.qcow2'/>" in snap.domain_xml
    assert snap.to_xml() == LIBVIRT_XML
    assert snap.warnings == []


def test_built_snapshot_puts_elements_in_libvirt_order() -> None:
    snap = DomainSnapshot()
    snap.domain_xml = "<domain><name>vm</name></domain>"
    snap.add_disk(name="vda", snapshot="internal", source_file="/img/a.qcow2")
    snap.memory = "internal"
    snap.creation_time = 5
    snap.parent = "p"
    snap.state = "running"
    snap.name = "n"
    tags = [el.tag for el in snap.element]
    assert tags == ["name", "state", "parent", "creationTime", "memory", "disks", "domain"]
    again = DomainSnapshot.from_xml(snap.to_xml())
    assert again.to_xml() == snap.to_xml() and again.is_internal
    snap.domain_xml = None
    assert snap.domain_xml is None


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        ("<domainsnapshot><name>a/b</name></domainsnapshot>", "is not allowed"),
        ("<domainsnapshot><state>dancing</state></domainsnapshot>", "dancing"),
        ("<domainsnapshot><memory snapshot='external'/></domainsnapshot>", "needs a file"),
        ("<domainsnapshot><disks><disk name='vda'/><disk name='vda'/></disks></domainsnapshot>",
         "listed twice"),
        ("<domainsnapshot><disks><disk snapshot='bogus' name='x'/></disks></domainsnapshot>",
         "bogus"),
        ("<snapshot/>", "root element must be <domainsnapshot>"),
        ("<!DOCTYPE x [<!ENTITY a 'b'>]><domainsnapshot/>", ""),
    ],
)  # fmt: skip
def test_invalid_snapshot_xml_is_refused(xml: str, message: str) -> None:
    with pytest.raises(InvalidConfigError) as err:
        DomainSnapshot.from_xml(xml)
    assert message in str(err.value) + " ".join(p.message for p in err.value.problems)
