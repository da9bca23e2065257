"""``<vcpu>`` and ``<cpu>``: virtual CPU count, CPU model, topology and guest NUMA cells."""

from __future__ import annotations

from pyvirt.model.units import size
from pyvirt.model.xmlmap import (
    XmlNode,
    attr,
    bool_attr,
    child,
    children,
    int_attr,
    parse_uint,
    text,
)

CPU_MODES = ("custom", "host-model", "host-passthrough", "maximum")


class Vcpu(XmlNode):
    """``<vcpu placement cpuset current>COUNT</vcpu>``; ``count`` defaults to 1."""

    TAG = "vcpu"
    current = int_attr("current")
    placement = attr("placement", choices=("static", "auto"))
    cpuset = attr("cpuset")

    @property
    def count(self) -> int:
        """The maximum number of vCPUs."""
        raw = (self.element.text or "").strip()
        return parse_uint(raw) if raw else 1

    @count.setter
    def count(self, value: int) -> None:
        self.attach()
        self.element.text = str(value)


class CpuFeature(XmlNode):
    """``<feature policy name/>`` of ``<cpu>``."""

    TAG = "feature"
    policy = attr("policy", choices=("force", "require", "optional", "disable", "forbid"))
    name = attr("name")


class Topology(XmlNode):
    """``<topology sockets dies clusters cores threads/>``; absent counts are 1."""

    TAG = "topology"
    sockets = int_attr("sockets", default=1)
    dies = int_attr("dies", default=1)
    clusters = int_attr("clusters", default=1)
    cores = int_attr("cores", default=1)
    threads = int_attr("threads", default=1)

    @property
    def total(self) -> int:
        """sockets * dies * clusters * cores * threads."""
        return self.sockets * self.dies * self.clusters * self.cores * self.threads


class NumaCell(XmlNode):
    """``<numa><cell id cpus memory unit memAccess discard/></numa>``."""

    TAG = "cell"
    id = int_attr("id")
    cpus = attr("cpus")
    memory_kib = size("", "memory")
    mem_access = attr("memAccess", choices=("shared", "private"))
    discard = bool_attr("discard")


class Cpu(XmlNode):
    """``<cpu mode match check>``: model, vendor, features, topology and NUMA cells."""

    TAG = "cpu"
    ORDER = ("model", "vendor", "topology", "cache", "maxphysaddr", "feature", "numa")

    mode = attr("mode", choices=CPU_MODES)
    match = attr("match", choices=("minimum", "exact", "strict"))
    check = attr("check", choices=("none", "partial", "full"))
    migratable = attr("migratable", choices=("on", "off"))
    model = text("model")
    vendor = text("vendor")
    model_fallback = attr("fallback", "model", choices=("allow", "forbid"))
    vendor_id = attr("vendor_id", "model")
    features = children("feature", CpuFeature)
    topology = child("topology", Topology)
    numa_cells = children("numa/cell", NumaCell)
