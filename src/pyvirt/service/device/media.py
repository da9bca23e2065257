"""``change-media``: eject, insert or replace the medium of a CD-ROM or floppy drive.

The drive is named by its target (``hdc``, ``sda``) or its current source path. The new
``<disk>`` element (the drive's own, with its ``<source>`` dropped or replaced) goes through
``update-device`` (:func:`pyvirt.service.domain.display.update_device`), which changes the
definition and, live, passes the file to QEMU by descriptor and changes the medium over QMP.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyvirt.errors import InvalidConfigError, InvalidStateError, NotFoundError

if TYPE_CHECKING:
    from pyvirt.model.devices import Disk
    from pyvirt.model.domain import Domain
    from pyvirt.service.domain.manager import DomainManager

# lazy: function-local imports marked ``# lazy`` keep CLI start-up fast (lxml, QMP).


def find_drive(dom: Domain, path_or_target: str) -> Disk:
    """The CD-ROM or floppy of *dom* with that target or source path.

    :raises NotFoundError: none
    :raises InvalidConfigError: the disk found is not removable
    """
    for disk in dom.devices.disks:
        if path_or_target in (disk.target_dev, disk.source_path):
            if disk.device not in ("cdrom", "floppy"):
                raise InvalidConfigError(
                    f"disk '{disk.target_dev}' of domain '{dom.name}' is not a CD-ROM or "
                    "floppy; only their media can change",
                    hint="use detach-disk and attach-disk",
                )
            return disk
    raise NotFoundError(f"no disk found whose source path or target is {path_or_target}")


def media_xml(disk: Disk, source: str | None) -> str:
    """The drive's ``<disk>`` with its medium replaced by *source* (None: empty)."""
    from lxml import etree  # lazy

    from pyvirt.model.xmltree import copy_element, to_string  # lazy

    el = copy_element(disk.element)
    for old in el.findall("source"):
        el.remove(old)
    for name in ("alias",):
        for sub in el.findall(name):
            el.remove(sub)
    if source:
        el.set("type", "file")  # QEMU gets it by descriptor, a device node as well
        src = etree.Element("source", {"file": source})
        driver = el.find("driver")
        (driver.addnext(src) if driver is not None else el.insert(0, src))
    return to_string(el)


def change_media(
    mgr: DomainManager,
    ident: str,
    path_or_target: str,
    source: str | None,
    *,
    take_out: bool = False,
    put_in: bool = False,
    force: bool = False,
    live: bool = False,
    config: bool = False,
    current: bool = False,
    print_xml: bool = False,
) -> str:
    """Eject, insert or update a drive's medium; returns virsh's word for what was done
    (``ejected``, ``inserted``, ``updated``).

    :param take_out: eject the medium (``--eject``)
    :param put_in: insert *source* into an empty drive (``--insert``); neither: *source*
        replaces the medium, and no *source* ejects it (``--update``)
    :param force: eject even if the guest locked the tray
    :param print_xml: change nothing; return the drive's new ``<disk>`` XML (``--print-xml``)
    :raises InvalidStateError: insert into a drive with a medium, eject of an empty one
    """
    from pyvirt.service.domain import display  # lazy

    del force  # the live change always forces: QEMU asks a locking guest, then opens the tray
    if take_out and put_in:
        raise InvalidConfigError("options --eject and --insert are mutually exclusive")
    if put_in and not source:
        raise InvalidConfigError("no source is specified for inserting media")
    if take_out and source:
        raise InvalidConfigError("--eject takes no source", hint="leave the source out")
    name = mgr.resolve(ident)
    with mgr.locked(name):
        scope = mgr.affect(name, live=live, config=config, current=current)
        dom = mgr.live_definition(name) if scope.live else mgr.read_config(name)[0]
    disk = find_drive(dom, path_or_target)
    if put_in and disk.source_path:
        raise InvalidStateError(
            f"the disk device '{disk.target_dev}' already has media",
            hint="use --update to replace it, or --eject first",
        )
    if take_out and not disk.source_path:
        raise InvalidStateError(f"the disk device '{disk.target_dev}' doesn't have media")
    new = media_xml(disk, None if take_out else source)
    if print_xml:
        return new
    display.update_device(mgr, name, new, live=live, config=config, current=current)
    if put_in:
        return "inserted"
    return "updated" if source else "ejected"
