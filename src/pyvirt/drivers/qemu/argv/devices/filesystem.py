"""Lowering of ``<filesystem type='mount'>``, as libvirt 9.0 writes it: a QEMU ``local`` 9p
backend (``-fsdev``) and its ``virtio-9p-pci`` device, or for ``<driver type='virtiofs'>`` a
``-chardev socket`` to the share's virtiofsd and ``vhost-user-fs-pci``.

``accessmode`` picks the 9p backend's ``security_model`` (``passthrough``, ``mapped`` -- owners
and modes kept in ``user.virtfs.*`` xattrs -- or ``none`` for ``squash``); ``<readonly/>``
becomes ``readonly=on``; ``wrpolicy='immediate'`` ``writeout=immediate``. The virtiofsd itself
is run by the ``shares`` hook (:mod:`pyvirt.service.domain.shares`), which also refuses a
start on a host without one. Other filesystem types and drivers are refused, naming them.
"""

from __future__ import annotations

import posixpath
from typing import TYPE_CHECKING

from pyvirt.drivers.qemu.argv.opts import JsonValue, json_opts, qemu_opts
from pyvirt.drivers.qemu.argv.registry import lowers
from pyvirt.errors import InvalidConfigError, UnsupportedError
from pyvirt.model.devices.filesystem import Filesystem

if TYPE_CHECKING:
    from pyvirt.drivers.qemu.argv.builder import Build
    from pyvirt.model.domain import Domain

#: accessmode -> the local backend's security_model
SECURITY_MODELS = {"passthrough": "passthrough", "mapped": "mapped", "squash": "none"}
#: model -> QEMU device
DEVICES = {"virtio": "virtio-9p-pci", "virtio-transitional": "virtio-9p-pci-transitional",
           "virtio-non-transitional": "virtio-9p-pci-non-transitional"}  # fmt: skip
#: <driver> virtio options -> device properties
VIRTIO_OPTIONS = (("iommu", "iommu_platform"), ("ats", "ats"), ("packed", "packed"),
                  ("page_per_vq", "page-per-vq"))  # fmt: skip


def source_dir(dev: Filesystem) -> str:
    """The shared host directory: absolute, without ``..`` components.

    :raises InvalidConfigError: it is missing, relative or climbs with ``..``
    """
    where = dev.xpath("source")
    path = dev.source_dir
    if not path:
        raise InvalidConfigError(f"{where}: a shared directory needs <source dir='...'/>")
    if not posixpath.isabs(path):
        raise InvalidConfigError(f"{where}: source dir '{path}' is not an absolute path")
    if ".." in path.split("/"):
        raise InvalidConfigError(f"{where}: source dir '{path}' must not contain '..'")
    return path


def _mode(dev: Filesystem, name: str, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        mode = int(value, 8)
    except ValueError:
        mode = -1
    if not 0 <= mode <= 0o777:
        raise InvalidConfigError(f"{dev.xpath()}: {name}='{value}' is not an octal file mode")
    return f"{mode:04o}"


def shared_memory(dom: Domain) -> bool:
    """Whether the guest's RAM is shared with other processes (what vhost-user needs)."""
    backing = dom.memory_backing
    if backing is not None and backing.access_mode == "shared":
        return True
    cells = dom.element.findall("cpu/numa/cell")
    return bool(cells) and all(c.get("memAccess") == "shared" for c in cells)


def socket_name(alias: str) -> str:
    """The vhost-user socket of virtiofs share ``alias`` in the domain's run directory."""
    return f"{alias}-fs.sock"


def _virtiofs(dev: Filesystem, b: Build, props: dict[str, JsonValue]) -> list[str]:
    """``-chardev socket`` to the share's virtiofsd (started by the ``shares`` hook) and
    ``vhost-user-fs-pci``."""
    where = dev.xpath()
    if not shared_memory(b.domain):
        raise InvalidConfigError(
            f"{where}: virtiofs needs the guest's memory shared",
            hint="add <memoryBacking><access mode='shared'/></memoryBacking>",
        )
    if dev.readonly:
        raise InvalidConfigError(f"{where}: virtiofs cannot be read-only")
    name = str(props["id"])
    chardev = qemu_opts("socket", id=f"chr-vu-{name}", path=str(b.ctx.run_dir / socket_name(name)))
    props.update({"chardev": f"chr-vu-{name}", "queue-size": dev.queue, "tag": dev.target_dir,
                  "bootindex": dev.boot_order})  # fmt: skip
    props.update(b.pci(dev.address))
    return ["-chardev", chardev, "-device", json_opts(props)]


@lowers(Filesystem)
def lower_filesystem(dev: Filesystem, b: Build) -> list[str]:
    """Lower one ``<filesystem>`` to ``-fsdev local`` + ``virtio-9p-pci`` (ids ``fsN``,
    ``fsdev-fsN``), or virtiofs to ``-chardev`` (``chr-vu-fsN``) + ``vhost-user-fs-pci``."""
    kind = dev.type or "mount"
    if kind != "mount":
        raise UnsupportedError(
            f"{dev.xpath()}: filesystem type '{kind}' is not supported",
            hint="share a host directory with type='mount'",
        )
    driver = dev.driver_type or "path"
    if driver not in ("path", "virtiofs"):
        raise UnsupportedError(
            f"{dev.xpath('driver')}: filesystem driver '{driver}' is not supported",
            hint="use <driver type='path'/> (QEMU's local 9p backend) or no <driver>",
        )
    path = source_dir(dev)
    tag = dev.target_dir
    if not tag:
        raise InvalidConfigError(f"{dev.xpath('target')}: a share needs <target dir='TAG'/>")
    index = [f.element for f in b.domain.devices.filesystems].index(dev.element)
    name = b.alias(dev, "fs", fixed=f"fs{index}")
    props: dict[str, JsonValue] = {
        "driver": "vhost-user-fs-pci" if dev.virtiofs else DEVICES[dev.model or "virtio"]
    }
    drv = dev.element.find("driver")
    for xml_name, prop in VIRTIO_OPTIONS:
        value = drv.get(xml_name) if drv is not None else None
        if value is not None:
            props[prop] = value == "on"
    props["id"] = name
    if dev.virtiofs:
        return _virtiofs(dev, b, props)
    fsdev = qemu_opts(
        "local",
        security_model=SECURITY_MODELS[dev.accessmode or "passthrough"],
        multidevs=dev.multidevs if dev.multidevs not in (None, "default") else None,
        writeout=dev.wrpolicy,
        fmode=_mode(dev, "fmode", dev.fmode),
        dmode=_mode(dev, "dmode", dev.dmode),
        id=f"fsdev-{name}",
        path=path,
        readonly=True if dev.readonly else None,
    )
    props.update({"fsdev": f"fsdev-{name}", "mount_tag": tag})
    props.update(b.pci(dev.address))
    return ["-fsdev", fsdev, "-device", json_opts(props)]
