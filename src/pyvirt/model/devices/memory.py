"""``<memory model>``: a memory device plugged into a guest NUMA node (``dimm`` today)."""

from __future__ import annotations

from pyvirt.model.devices.base import Device, register_device
from pyvirt.model.units import size
from pyvirt.model.xmlmap import attr, int_text, text

#: libvirt's memory device models
MEMORY_MODELS = ("dimm", "nvdimm", "virtio-pmem", "virtio-mem", "sgx-epc")


@register_device("memory")
class MemoryDevice(Device):
    """``<memory model access discard><target><size/><node/></target></memory>``."""

    ORDER = ("source", "target", "alias", "address")

    model = attr("model", choices=MEMORY_MODELS)
    access = attr("access", choices=("shared", "private"))
    discard = attr("discard", choices=("yes", "no"))
    size_kib = size("target/size")
    node = int_text("target/node")
    source_pagesize_kib = size("source/pagesize")
    source_nodemask = text("source/nodemask")
