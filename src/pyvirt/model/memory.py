"""``<memoryBacking>`` and ``<numatune>``: how guest RAM is backed and placed on host nodes."""

from __future__ import annotations

from pyvirt.model.units import size
from pyvirt.model.xmlmap import XmlNode, attr, children, flag, int_attr

NUMA_MODES = ("interleave", "strict", "preferred", "restrictive")


class HugePage(XmlNode):
    """``<page size unit nodeset/>`` of ``<hugepages>``."""

    TAG = "page"
    size_kib = size("", "size")
    nodeset = attr("nodeset")


class MemoryBacking(XmlNode):
    """``<memoryBacking>``: hugepages, sharing, locking, source and access mode."""

    TAG = "memoryBacking"
    ORDER = ("hugepages", "nosharepages", "locked", "source", "access", "allocation", "discard")

    hugepages = children("hugepages/page", HugePage)
    hugepages_enabled = flag("hugepages")
    nosharepages = flag("nosharepages")
    locked = flag("locked")
    source_type = attr("type", "source", choices=("file", "anonymous", "memfd"))
    access_mode = attr("mode", "access", choices=("shared", "private"))
    allocation_mode = attr("mode", "allocation", choices=("immediate", "ondemand"))
    allocation_threads = int_attr("threads", "allocation")
    discard = flag("discard")


class MemNode(XmlNode):
    """``<memnode cellid mode nodeset/>``: placement of one guest NUMA cell."""

    TAG = "memnode"
    cellid = int_attr("cellid")
    mode = attr("mode", choices=NUMA_MODES)
    nodeset = attr("nodeset")


class Numatune(XmlNode):
    """``<numatune><memory mode nodeset placement/><memnode .../></numatune>``."""

    TAG = "numatune"
    ORDER = ("memory", "memnode")

    mode = attr("mode", "memory", choices=NUMA_MODES)
    nodeset = attr("nodeset", "memory")
    placement = attr("placement", "memory", choices=("static", "auto"))
    memnodes = children("memnode", MemNode)
