"""``pool-capabilities``: which pool types run here and what they accept, as libvirt's XML.

Built from the backends' :class:`~pyvirt.storage.base.PoolCapabilities` (data, not code):
every type libvirt's pool XML knows is listed, ``supported='yes'`` for registered backends.
"""

from __future__ import annotations

from lxml import etree

from pyvirt.model.pool import POOL_TYPES
from pyvirt.model.xmlmap import to_string
from pyvirt.storage.registry import backend_class, pool_types


def _enum(parent: etree._Element, name: str, values: tuple[str, ...]) -> None:
    enum = etree.SubElement(parent, "enum", name=name)
    for v in values:
        etree.SubElement(enum, "value").text = v


def capabilities_xml() -> str:
    """The ``<storagepoolCapabilities>`` document."""
    root = etree.Element("storagepoolCapabilities")
    registered = set(pool_types())
    for ptype in sorted(set(POOL_TYPES) | registered):
        el = etree.SubElement(root, "pool", type=ptype)
        el.set("supported", "yes" if ptype in registered else "no")
        if ptype not in registered:
            continue
        caps = backend_class(ptype).capabilities
        if caps.source_formats:
            opts = etree.SubElement(el, "poolOptions")
            etree.SubElement(opts, "defaultFormat", type=caps.source_formats[0])
            _enum(opts, "sourceFormatType", caps.source_formats)
        vol = etree.SubElement(el, "volOptions")
        etree.SubElement(vol, "defaultFormat", type=caps.default_format)
        _enum(vol, "targetFormatType", caps.formats)
        feats = etree.SubElement(el, "features")
        for flag in (
            "build", "build_overwrite", "delete", "create_volumes", "resize", "shrink",
            "backing", "thin", "upload", "find_sources",
        ):  # fmt: skip
            if getattr(caps, flag):
                etree.SubElement(feats, flag.replace("_", "-"))
    return to_string(root) + "\n"
