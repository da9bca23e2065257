"""``<domaincheckpoint>`` and ``<domainbackup>``: libvirt's XML reads, validates and round
trips verbatim."""

from __future__ import annotations

import pytest

from pyvirt.errors import InvalidConfigError
from pyvirt.model.checkpoint import DomainBackup, DomainCheckpoint

CHECKPOINT_XML = """<domaincheckpoint>
  <name>c1</name>
  <description>after the install</description>
  <parent>
    <name>c0</name>
  </parent>
  <creationTime>1700000000</creationTime>
  <disks>
    <disk name='vda' checkpoint='bitmap' bitmap='c1' size='1048576'/>
    <disk name='vdb' checkpoint='no'/>
  </disks>
  <domain type='kvm'>
    <name>vm</name>
  </domain>
</domaincheckpoint>
"""

PUSH_XML = """<domainbackup mode='push'>
  <incremental>c1</incremental>
  <disks>
    <disk name='vda' backup='yes' type='file'>
      <driver type='qcow2'/>
      <target file='/backups/vda.qcow2'/>
    </disk>
    <disk name='vdb' backup='no'/>
  </disks>
</domainbackup>
"""

PULL_XML = """<domainbackup mode='pull'>
  <server transport='tcp' name='localhost' port='10809'/>
  <disks>
    <disk name='vda' backup='yes' type='file' exportname='vda' exportbitmap='backup-vda'>
      <driver type='qcow2'/>
      <scratch file='/var/tmp/vda.scratch'/>
    </disk>
  </disks>
</domainbackup>
"""


def test_checkpoint_reads_and_round_trips() -> None:
    cp = DomainCheckpoint.from_xml(CHECKPOINT_XML)
    assert (cp.name, cp.description, cp.parent, cp.creation_time) == (
        "c1", "after the install", "c0", 1700000000,
    )  # fmt: skip
    assert cp.bitmaps() == {"vda": "c1"}
    disk = cp.disk("vda")
    assert disk is not None and disk.size == 1048576
    assert cp.to_xml() == CHECKPOINT_XML
    assert cp.warnings == []
    assert cp.domain_xml is not None and "<name>vm</name>" in cp.domain_xml
    cp.domain_xml = None
    assert "<domain " not in cp.to_xml()


def test_checkpoint_built_from_scratch() -> None:
    cp = DomainCheckpoint(name="c2")
    cp.add_disk(name="vda", checkpoint="bitmap")  # the bitmap defaults to the name
    cp.add_disk(name="vdb", checkpoint="no")
    assert cp.bitmaps() == {"vda": "c2"}
    assert DomainCheckpoint.from_xml(cp.to_xml()).bitmaps() == {"vda": "c2"}


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        ("<domaincheckpoint><name>a/b</name></domaincheckpoint>", "is not allowed"),
        ("<domaincheckpoint><disks><disk checkpoint='bitmap'/></disks></domaincheckpoint>",
         "needs a name"),
        ("<domaincheckpoint><disks><disk name='vda'/><disk name='vda'/></disks>"
         "</domaincheckpoint>", "listed twice"),
        ("<domaincheckpoint><disks><disk name='vda' checkpoint='internal'/></disks>"
         "</domaincheckpoint>", "internal"),
        ("<domainsnapshot/>", "root element must be <domaincheckpoint>"),
    ],
)  # fmt: skip
def test_checkpoint_problems(xml: str, message: str) -> None:
    with pytest.raises(InvalidConfigError) as err:
        DomainCheckpoint.from_xml(xml)
    assert message in str(err.value) + " ".join(p.message for p in err.value.problems)


def test_backup_push_and_pull_round_trip() -> None:
    push = DomainBackup.from_xml(PUSH_XML)
    assert (push.mode, push.incremental) == ("push", "c1")
    vda = push.disk("vda")
    assert vda is not None and (vda.target_file, vda.driver_type) == ("/backups/vda.qcow2", "qcow2")
    assert push.to_xml() == PUSH_XML
    pull = DomainBackup.from_xml(PULL_XML)
    assert (pull.transport, pull.server_name, pull.server_port) == ("tcp", "localhost", "10809")
    disk = pull.disk("vda")
    assert disk is not None and (disk.exportname, disk.exportbitmap, disk.scratch_file) == (
        "vda", "backup-vda", "/var/tmp/vda.scratch",
    )  # fmt: skip
    assert pull.to_xml() == PULL_XML
    assert pull.warnings == [] and push.warnings == []


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        ("<domainbackup mode='push'><server transport='unix' socket='/s'/></domainbackup>",
         "only a pull mode backup has a server"),
        ("<domainbackup mode='pull'><server transport='tcp'/></domainbackup>", "needs a port"),
        ("<domainbackup mode='pull'><disks><disk name='vda'><target file='/t'/></disk>"
         "</disks></domainbackup>", "has no <target>"),
        ("<domainbackup><disks><disk name='vda'><scratch file='/t'/></disk></disks>"
         "</domainbackup>", "has no <scratch>"),
        ("<domainbackup mode='copy'/>", "copy"),
    ],
)  # fmt: skip
def test_backup_problems(xml: str, message: str) -> None:
    with pytest.raises(InvalidConfigError) as err:
        DomainBackup.from_xml(xml)
    assert message in str(err.value) + " ".join(p.message for p in err.value.problems)
