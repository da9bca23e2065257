"""Which disks a checkpoint covers, and dirty bitmaps in images of shut-off domains
(``qemu-img bitmap``, ``qemu-img info``). Shared by create, delete and backup."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pyvirt import hostcmd
from pyvirt.errors import InvalidConfigError, UnsupportedError

if TYPE_CHECKING:
    from pyvirt.model.checkpoint import DomainCheckpoint
    from pyvirt.model.domain import Domain

# lazy: function-local imports marked ``# lazy`` keep CLI start-up fast.


@dataclass(frozen=True)
class DiskImage:
    """One disk a checkpoint or backup covers: its target, image file and format."""

    target: str
    path: str
    fmt: str


def disk_images(dom: Domain) -> dict[str, DiskImage]:
    """The writable local disks of *dom* that may hold bitmaps, by target."""
    from pyvirt.service.snapshot.disks import snapshottable  # lazy

    out: dict[str, DiskImage] = {}
    for disk in snapshottable(dom):
        path = disk.source_path
        if disk.type not in (None, "file", "block") or not path or not disk.target_dev:
            continue
        out[disk.target_dev] = DiskImage(disk.target_dev, path, disk.format or "raw")
    return out


def plan(dom: Domain, cp: DomainCheckpoint) -> list[DiskImage]:
    """The disks checkpoint *cp* covers (from its ``<disks>``; default: every qcow2 disk
    named or not); fills in *cp*'s ``<disks>``.

    :raises InvalidConfigError: an unknown disk, or no disk at all
    :raises UnsupportedError: a raw disk asked for (bitmaps need qcow2)
    """
    images = disk_images(dom)
    for entry in cp.disks:
        if entry.name not in images and entry.checkpoint != "no":
            raise InvalidConfigError(
                f"domain '{dom.name}' has no writable disk '{entry.name}' to checkpoint",
                hint="name disks by target (vda), as 'domblklist' shows them",
            )
    out: list[DiskImage] = []
    entries = []
    for target, img in images.items():
        spec = cp.disk(target)
        kind = (spec.checkpoint if spec is not None else None) or "bitmap"
        if kind == "no":
            entries.append({"name": target, "checkpoint": "no"})
            continue
        if img.fmt != "qcow2":
            raise UnsupportedError(
                f"disk '{target}' is {img.fmt}; checkpoints need qcow2 images (dirty bitmaps)",
                hint=f"leave it out with --diskspec {target},checkpoint=no",
            )
        bitmap = (spec.bitmap if spec is not None else None) or str(cp.name)
        entries.append({"name": target, "checkpoint": "bitmap", "bitmap": bitmap})
        out.append(img)
    if not out:
        raise InvalidConfigError(f"domain '{dom.name}' has no qcow2 disk to checkpoint")
    cp.disks = []
    for values in entries:
        cp.add_disk(**values)
    return out


def build(name: str | None, description: str | None, diskspecs: list[str]) -> DomainCheckpoint:
    """The ``<domaincheckpoint>`` of ``checkpoint-create-as``'s options
    (``--diskspec vda[,checkpoint=bitmap|no][,bitmap=NAME]``).

    :raises InvalidConfigError: a malformed diskspec
    """
    from pyvirt.model.checkpoint import DomainCheckpoint  # lazy

    cp = DomainCheckpoint()
    if name:
        cp.name = name
    if description:
        cp.description = description
    for spec in diskspecs:
        parts = [p for p in spec.replace(",,", "\0").split(",")]
        disk = parts[0].replace("\0", ",")
        if not disk or "=" in disk:
            raise InvalidConfigError(f"--diskspec '{spec}' must start with the disk's name")
        values: dict[str, object] = {"name": disk, "checkpoint": "bitmap"}
        for part in parts[1:]:
            key, _, value = part.replace("\0", ",").partition("=")
            if key == "checkpoint" and value in ("bitmap", "no"):
                values["checkpoint"] = value
            elif key == "bitmap" and value:
                values["bitmap"] = value
            else:
                raise InvalidConfigError(
                    f"--diskspec '{spec}': bad '{part}'",
                    hint="use DISK[,checkpoint=bitmap|no][,bitmap=NAME]",
                )
        if values["checkpoint"] == "no":
            values.pop("bitmap", None)
        cp.add_disk(**values)
    problems = cp.validate()
    if problems:
        raise InvalidConfigError(problems=problems)
    return cp


# -- shut-off domains: qemu-img ----------------------------------------------------------
@dataclass(frozen=True)
class ImageBitmap:
    """A persistent bitmap stored in a closed qcow2 image."""

    name: str
    enabled: bool
    in_use: bool  # left "in use" by a QEMU that did not stop cleanly: inconsistent


def image_bitmaps(path: str) -> dict[str, ImageBitmap]:
    """The bitmaps stored in the qcow2 image *path*, by name."""
    from pyvirt.storage import qemu_img  # lazy

    data = qemu_img.info(path, "qcow2")
    raw = ((data.get("format-specific") or {}).get("data") or {}).get("bitmaps") or []
    out = {}
    for bm in raw:
        flags = bm.get("flags") or []
        out[str(bm["name"])] = ImageBitmap(str(bm["name"]), "auto" in flags, "in-use" in flags)
    return out


def qemu_img_bitmap(path: str, bitmap: str, *ops: str) -> None:
    """Run ``qemu-img bitmap OPS PATH BITMAP`` on a closed qcow2 image (``--add``,
    ``--remove``, ``--enable``, ``--disable``, ``--merge SOURCE``)."""
    from pyvirt.storage import qemu_img  # lazy

    hostcmd.run(
        [qemu_img.binary(), "bitmap", *ops, "-f", "qcow2", path, bitmap],
        what=f"cannot change bitmap '{bitmap}' of '{path}'",
    )
