"""``<volume>``: a storage volume definition (libvirt's storage volume XML), and byte sizes.

Volume sizes are bytes: ``<capacity unit='G'>10</capacity>`` reads as 10 GiB in bytes and a
value without a unit is bytes (unlike domain memory, which defaults to KiB). The same scaled
integers are accepted on the command line by :func:`pyvirt.model.units.parse_size` (virsh's
``10G``, ``512MiB``), re-exported here with :func:`~pyvirt.model.units.format_bytes`.
"""

from __future__ import annotations

from pyvirt.errors import InvalidConfigError, Problem
from pyvirt.model.units import format_bytes as format_bytes  # re-exported for callers
from pyvirt.model.units import parse_size as parse_size  # re-exported for callers
from pyvirt.model.units import scale
from pyvirt.model.xmlmap import (
    Element,
    Field,
    XmlDocument,
    XmlNode,
    attr,
    child,
    ensure_path,
    flag,
    join_path,
    parse_int,
    parse_xml,
    text,
)
from pyvirt.model.xmltree import find_path, remove_element

VOLUME_TYPES = ("file", "block", "dir", "network", "netdir", "ploop")
#: libvirt's file volume formats (what a definition may name); pools accept a subset
VOLUME_FORMATS = (
    "raw", "dir", "bochs", "cloop", "dmg", "iso", "vpc", "vdi", "fat", "vhd", "ploop",
    "cow", "qcow", "qcow2", "qed", "vmdk", "luks", "vhdx", "none", "linux", "extended",
    "swap", "linux-swap", "linux-lvm", "linux-raid", "primary", "logical",
)  # fmt: skip


class ByteSize(Field[int | None]):
    """A size in bytes stored as element text with a ``unit`` attribute (default bytes)."""

    def read(self, node: XmlNode) -> int | None:
        el = find_path(node.element, self.path)
        if el is None or el.text is None or not el.text.strip():
            return None
        where = node.xpath(self.path)
        try:
            return scale(parse_int(el.text), el.get("unit", "bytes"))
        except ValueError as err:
            raise InvalidConfigError(problems=[Problem(where, f"'{el.text}' {err}")]) from None

    def write(self, node: XmlNode, value: int | None) -> None:
        if value is None:
            el = find_path(node.element, self.path)
            if el is not None:
                remove_element(el)
            return
        if value < 0:
            raise InvalidConfigError(problems=[Problem(node.xpath(self.path), "size is negative")])
        el = ensure_path(node, self.path)
        el.text = str(value)
        el.set("unit", "bytes")

    def known(self) -> set[str]:
        return super().known() | {join_path(self.path, "@unit")}


def byte_size(path: str) -> ByteSize:
    """See :class:`ByteSize`."""
    return ByteSize(path)


class Permissions(XmlNode):
    """``<permissions>``: mode (octal text), owner, group, label."""

    TAG = "permissions"
    ORDER = ("mode", "owner", "group", "label")
    mode = text("mode")
    owner = text("owner")
    group = text("group")
    label = text("label")


class VolumeTarget(XmlNode):
    """``<target>`` of a volume (and ``<backingStore>``): path, format, permissions."""

    TAG = "target"
    ORDER = ("path", "format", "permissions", "timestamps", "compat", "nocow", "features")
    EXTRA_KNOWN = ("timestamps", "timestamps/*", "features/*", "encryption", "encryption/*")
    path = text("path")
    format = attr("type", "format")
    permissions = child("permissions", Permissions)
    compat = text("compat")
    nocow = flag("nocow")
    lazy_refcounts = flag("features/lazy_refcounts")


class Volume(XmlDocument):
    """A storage volume: a typed, lossless view over a ``<volume>`` element tree."""

    TAG = "volume"
    WHAT = "volume XML"
    ORDER = (
        "name", "key", "source", "capacity", "allocation", "physical", "target", "backingStore",
    )  # fmt: skip
    EXTRA_KNOWN = ("source", "source/*", "source/*/*")
    type = attr("type")
    name = text("name", default="")
    key = text("key")
    capacity = byte_size("capacity")
    allocation = byte_size("allocation")
    physical = byte_size("physical")
    target = child("target", VolumeTarget)
    backing = child("backingStore", VolumeTarget)

    @property
    def format(self) -> str | None:
        """``<target><format type=...>``."""
        return self.target.format if self.target is not None else None

    def validate(self) -> list[Problem]:
        """Every problem in this definition (empty when valid)."""
        problems = self.field_problems()
        if problems:
            return problems
        if not self.name:
            problems.append(Problem("<volume>/<name>", "a volume needs a name"))
        elif "/" in self.name or self.name in (".", ".."):
            problems.append(
                Problem(
                    "<volume>/<name>",
                    f"volume name '{self.name}' must not contain '/' or be '.' or '..'",
                )
            )
        if self.type is not None and self.type not in VOLUME_TYPES:
            problems.append(
                Problem("<volume>", f"type '{self.type}' is not one of " + ", ".join(VOLUME_TYPES))
            )
        if self.capacity is None:
            problems.append(Problem("<volume>/<capacity>", "a volume needs a capacity"))
        for where, tgt in (("<target>", self.target), ("<backingStore>", self.backing)):
            if tgt is not None and tgt.format is not None and tgt.format not in VOLUME_FORMATS:
                problems.append(
                    Problem(f"<volume>/{where}/<format>", f"format '{tgt.format}' is not known")
                )
        return problems


def new_volume(name: str, capacity: int, fmt: str, allocation: int | None = None) -> Volume:
    """A fresh ``<volume>`` definition (as ``vol-create-as`` builds it)."""
    root: Element = parse_xml(
        "<volume>\n  <name/>\n  <capacity/>\n  <target>\n    <format/>\n  </target>\n</volume>"
    )
    vol = Volume(root)
    vol.name = name
    vol.capacity = capacity
    if allocation is not None:
        vol.allocation = allocation
    assert vol.target is not None
    vol.target.format = fmt
    return vol
