"""``<domaincheckpoint>`` and ``<domainbackup>``: libvirt's checkpoint and backup XML.

::

    <domaincheckpoint>
      <name>c1</name>
      <description>before the upgrade</description>
      <parent><name>c0</name></parent>
      <creationTime>1700000000</creationTime>
      <disks>
        <disk name='vda' checkpoint='bitmap' bitmap='c1' size='1048576'/>  <!-- size: --size -->
        <disk name='vdb' checkpoint='no'/>
      </disks>
      <domain>...</domain>                <!-- the definition when it was taken -->
    </domaincheckpoint>

    <domainbackup mode='push'>            <!-- or mode='pull' -->
      <incremental>c1</incremental>       <!-- only what changed since checkpoint c1 -->
      <server transport='unix' socket='/run/b.sock'/>  <!-- pull; or tcp, name=, port= -->
      <disks>
        <disk name='vda' backup='yes' type='file' exportname='vda' exportbitmap='backup-vda'>
          <driver type='qcow2'/>
          <target file='/backups/vda.qcow2'/>   <!-- push -->
          <scratch file='/var/tmp/vda.scratch'/> <!-- pull -->
        </disk>
        <disk name='vdb' backup='no'/>
      </disks>
    </domainbackup>
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
    int_attr,
    int_text,
    parse_xml,
    text,
)
from pyvirt.model.xmltree import insert_element, remove_element

CHECKPOINT_KINDS = ("bitmap", "no")
BACKUP_MODES = ("push", "pull")
TRANSPORTS = ("tcp", "unix")


def _name_problem(what: str, name: str | None, where: str) -> list[Problem]:
    if name is not None and ("/" in name or name.startswith(".") or not name.strip()):
        return [Problem(where, f"{what} name '{name}' is not allowed")]
    return []


def _disk_problems(disks: list[CheckpointDisk] | list[BackupDisk]) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[str] = set()
    for disk in disks:
        if not disk.name:
            problems.append(Problem(disk.xpath(), "a disk entry needs a name"))
        elif disk.name in seen:
            problems.append(Problem(disk.xpath(), f"disk '{disk.name}' is listed twice"))
        else:
            seen.add(disk.name)
    return problems


class CheckpointDisk(XmlNode):
    """``<disks>/<disk>`` of a checkpoint: its dirty bitmap (or ``checkpoint='no'``)."""

    TAG = "disk"
    name = attr("name")
    checkpoint = attr("checkpoint", choices=CHECKPOINT_KINDS)
    bitmap = attr("bitmap")
    size = int_attr("size")


class DomainCheckpoint(XmlDocument):
    """One checkpoint's metadata: see the module docstring."""

    TAG = "domaincheckpoint"
    WHAT = "checkpoint XML"
    ORDER = ("name", "description", "parent", "creationTime", "disks", "domain")
    EXTRA_KNOWN = ("domain",)

    name = text("name")
    description = text("description")
    parent = text("parent/name")
    creation_time = int_text("creationTime")
    disks = children("disks/disk", CheckpointDisk)

    def validate(self) -> list[Problem]:
        """Every problem in this checkpoint XML (empty when valid)."""
        problems = self.field_problems()
        if problems:
            return problems
        problems += _name_problem("checkpoint", self.name, "<domaincheckpoint>/<name>")
        return problems + _disk_problems(self.disks)

    @property
    def warnings(self) -> list[str]:
        """Unknown elements/attributes, except inside the embedded ``<domain>``."""
        return [w for w in super().warnings if not w.startswith("<domain>")]

    def disk(self, name: str) -> CheckpointDisk | None:
        """The ``<disk>`` entry for target *name*, if any."""
        return next((d for d in self.disks if d.name == name), None)

    def bitmaps(self) -> dict[str, str]:
        """Disk target -> bitmap name, for the disks this checkpoint tracks."""
        return {
            d.name: d.bitmap or str(self.name)
            for d in self.disks
            if d.name and d.checkpoint != "no"
        }

    def add_disk(self, **values: object) -> CheckpointDisk:
        """Append a ``<disks>/<disk>`` with *values*; returns it."""
        disk = CheckpointDisk(**values)
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


class BackupDisk(XmlNode):
    """``<disks>/<disk>`` of a backup: where one disk's copy goes (push) or how it is
    exported (pull)."""

    TAG = "disk"
    ORDER = ("driver", "target", "scratch")
    name = attr("name")
    backup = attr("backup", choices=("yes", "no"))
    type = attr("type", choices=("file",))
    backupmode = attr("backupmode", choices=("full", "incremental"))
    incremental = attr("incremental")
    exportname = attr("exportname")
    exportbitmap = attr("exportbitmap")
    driver_type = attr("type", "driver")
    target_file = attr("file", "target")
    scratch_file = attr("file", "scratch")


class DomainBackup(XmlDocument):
    """A backup job's description: see the module docstring."""

    TAG = "domainbackup"
    WHAT = "backup XML"
    ORDER = ("incremental", "server", "disks")

    mode = attr("mode", choices=BACKUP_MODES)
    incremental = text("incremental")
    transport = attr("transport", "server", choices=TRANSPORTS)
    server_name = attr("name", "server")
    server_port = attr("port", "server")
    server_socket = attr("socket", "server")
    disks = children("disks/disk", BackupDisk)

    def validate(self) -> list[Problem]:
        """Every problem in this backup XML (empty when valid)."""
        problems = self.field_problems()
        if problems:
            return problems
        problems += _disk_problems(self.disks)
        pull = self.mode == "pull"
        has_server = self.element.find("server") is not None
        if has_server and not pull:
            problems.append(Problem("<server>", "only a pull mode backup has a server"))
        if pull and self.transport == "tcp" and not self.server_port:
            problems.append(Problem("<server>", "a tcp server needs a port"))
        for disk in self.disks:
            if pull and disk.target_file:
                problems.append(Problem(disk.xpath(), "a pull mode backup has no <target>"))
            if not pull and (disk.scratch_file or disk.exportname):
                problems.append(
                    Problem(disk.xpath(), "a push mode backup has no <scratch> or export")
                )
        return problems

    def disk(self, name: str) -> BackupDisk | None:
        """The ``<disk>`` entry for target *name*, if any."""
        return next((d for d in self.disks if d.name == name), None)

    def add_disk(self, **values: object) -> BackupDisk:
        """Append a ``<disks>/<disk>`` with *values*; returns it."""
        disk = BackupDisk(**values)
        self.disks = [*self.disks, disk]
        return disk
