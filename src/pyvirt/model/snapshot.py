"""``<domainsnapshot>``: libvirt's domain snapshot XML.

::

    <domainsnapshot>
      <name>s1</name>
      <description>before the upgrade</description>
      <state>running</state>              <!-- running|paused|shutoff|disk-snapshot -->
      <parent><name>s0</name></parent>
      <creationTime>1700000000</creationTime>
      <memory snapshot='internal'/>       <!-- internal|external|no, file= when external -->
      <disks>
        <disk name='vda' snapshot='external' type='file'>
          <driver type='qcow2'/>
          <source file='/images/vm.s1.qcow2'/>
        </disk>
      </disks>
      <domain>...</domain>                <!-- the definition when it was taken -->
    </domainsnapshot>

For an external disk ``<source file>`` is the overlay the snapshot created; the file it froze
is that disk's source in the embedded ``<domain>``. pyvirt also records ``<source file>`` of
an internal disk snapshot: the qcow2 file that holds it.
"""

from __future__ import annotations

from pyvirt.errors import Problem
from pyvirt.model.xmlmap import (
    Element,
    XmlDocument,
    XmlNode,
    attr,
    children,
    copy_element,
    int_text,
    parse_xml,
    text,
)
from pyvirt.model.xmltree import insert_element, remove_element

SNAPSHOT_STATES = ("running", "paused", "shutoff", "disk-snapshot", "blocked", "crashed")
LOCATIONS = ("internal", "external", "no", "manual")


class SnapshotDisk(XmlNode):
    """``<disks>/<disk>``: what the snapshot did with one disk."""

    TAG = "disk"
    ORDER = ("driver", "source")
    name = attr("name")
    snapshot = attr("snapshot", choices=LOCATIONS)
    type = attr("type")
    driver_type = attr("type", "driver")
    source_file = attr("file", "source")


class DomainSnapshot(XmlDocument):
    """One snapshot's metadata: see the module docstring."""

    TAG = "domainsnapshot"
    WHAT = "snapshot XML"
    ORDER = (
        "name",
        "description",
        "state",
        "parent",
        "creationTime",
        "memory",
        "disks",
        "domain",
    )
    EXTRA_KNOWN = ("domain", "active", "cookie")

    name = text("name")
    description = text("description")
    state = text("state", choices=SNAPSHOT_STATES)
    parent = text("parent/name")
    creation_time = int_text("creationTime")
    memory = attr("snapshot", "memory", choices=LOCATIONS)
    memory_file = attr("file", "memory")
    disks = children("disks/disk", SnapshotDisk)

    def validate(self) -> list[Problem]:
        """Every problem in this snapshot XML (empty when valid)."""
        problems = self.field_problems()
        if problems:
            return problems
        if self.name is not None and ("/" in self.name or self.name.startswith(".")):
            problems.append(
                Problem("<domainsnapshot>/<name>", f"snapshot name '{self.name}' is not allowed")
            )
        seen: set[str] = set()
        for disk in self.disks:
            if not disk.name:
                problems.append(Problem(disk.xpath(), "a snapshot disk needs a name"))
            elif disk.name in seen:
                problems.append(Problem(disk.xpath(), f"disk '{disk.name}' is listed twice"))
            else:
                seen.add(disk.name)
        if self.memory == "external" and not self.memory_file:
            problems.append(Problem("<memory>", "an external memory snapshot needs a file"))
        return problems

    @property
    def warnings(self) -> list[str]:
        """Unknown elements/attributes, except inside the embedded ``<domain>`` (its own
        model checks that when it is used)."""
        return [w for w in super().warnings if not w.startswith("<domain>")]

    def disk(self, name: str) -> SnapshotDisk | None:
        """The ``<disk>`` entry for target *name*, if any."""
        return next((d for d in self.disks if d.name == name), None)

    def add_disk(self, **values: object) -> SnapshotDisk:
        """Append a ``<disks>/<disk>`` with *values*; returns it."""
        disk = SnapshotDisk(**values)
        self.disks = [*self.disks, disk]
        return disk

    @property
    def domain_xml(self) -> str | None:
        """The embedded ``<domain>`` as text (None when absent)."""
        from pyvirt.model.xmltree import to_string

        el = self.element.find("domain")
        return None if el is None else to_string(el) + "\n"

    @domain_xml.setter
    def domain_xml(self, xml: str | None) -> None:
        old = self.element.find("domain")
        if old is not None:
            remove_element(old)
        if xml is None:
            return
        el: Element = copy_element(parse_xml(xml, what="domain XML"))
        insert_element(self.element, el, self.ORDER)

    @property
    def is_external(self) -> bool:
        """Whether any disk (or the memory) went to an external file."""
        return self.memory == "external" or any(d.snapshot == "external" for d in self.disks)

    @property
    def is_internal(self) -> bool:
        """Whether any disk (or the memory) is kept inside a qcow2 image."""
        return self.memory == "internal" or any(d.snapshot == "internal" for d in self.disks)
