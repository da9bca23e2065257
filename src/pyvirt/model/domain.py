"""``<domain>``: the whole guest definition, parsed from and serialized back to XML."""

from __future__ import annotations

from pyvirt.errors import Problem
from pyvirt.model.clock import Clock
from pyvirt.model.cpu import Cpu, Vcpu
from pyvirt.model.devices import Devices
from pyvirt.model.features import Features
from pyvirt.model.guestos import Os
from pyvirt.model.memory import MemoryBacking, Numatune
from pyvirt.model.sysinfo import Sysinfo
from pyvirt.model.tune import Cputune, IothreadId, Memtune
from pyvirt.model.units import size
from pyvirt.model.xmlmap import (
    XmlDocument,
    attr,
    child,
    children,
    int_attr,
    int_text,
    required_child,
    text,
)

DOMAIN_TYPES = ("kvm", "qemu")
LIFECYCLE_ACTIONS = (
    "destroy",
    "restart",
    "preserve",
    "rename-restart",
    "coredump-destroy",
    "coredump-restart",
)


class Domain(XmlDocument):
    """A guest definition: a typed, lossless view over a ``<domain>`` element tree.

    Build one with :meth:`from_xml` (parse and validate) or ``Domain(type="kvm", name=...)``.
    Fields read and write the tree directly; :meth:`to_xml` serializes it, keeping every
    element pyvirt does not understand (listed in :attr:`warnings`). A missing ``<uuid>`` is
    generated when the object is created.
    """

    TAG = "domain"
    WHAT = "XML"
    GENERATE_UUID = True
    ORDER = (
        "name", "uuid", "genid", "title", "description", "metadata", "maxMemory", "memory",
        "currentMemory", "blkiotune", "memtune", "memoryBacking", "vcpu", "vcpus", "iothreads",
        "iothreadids", "cputune", "numatune", "resource", "sysinfo", "bootloader",
        "bootloader_args", "os", "idmap", "features", "cpu", "clock", "on_poweroff",
        "on_reboot", "on_crash", "pm", "perf", "devices", "seclabel",
    )  # fmt: skip
    EXTRA_KNOWN = ("@id",)

    type = attr("type")
    name = text("name", default="")
    uuid = text("uuid", default="")
    title = text("title")
    description = text("description")
    _memory = size("memory")
    _current_memory = size("currentMemory")
    max_memory_kib = size("maxMemory")
    max_memory_slots = int_attr("slots", "maxMemory")
    vcpu = required_child("vcpu", Vcpu)
    cpu = child("cpu", Cpu)
    os = required_child("os", Os)
    features = required_child("features", Features)
    clock = required_child("clock", Clock)
    on_poweroff = text("on_poweroff", default="destroy", choices=LIFECYCLE_ACTIONS)
    on_reboot = text("on_reboot", default="restart", choices=LIFECYCLE_ACTIONS)
    on_crash = text("on_crash", default="destroy", choices=LIFECYCLE_ACTIONS)
    memory_backing = child("memoryBacking", MemoryBacking)
    numatune = child("numatune", Numatune)
    cputune = child("cputune", Cputune)
    memtune = child("memtune", Memtune)
    sysinfo = child("sysinfo", Sysinfo)
    iothreads = int_text("iothreads")
    iothreadids = children("iothreadids/iothread", IothreadId)
    devices = required_child("devices", Devices)

    def validate(self) -> list[Problem]:
        """Every problem found in this definition (empty when valid)."""
        from pyvirt.model.validate import validate_domain

        return validate_domain(self)

    @property
    def memory_kib(self) -> int:
        """``<memory>`` in KiB (0 when absent, which validation refuses)."""
        return self._memory or 0

    @memory_kib.setter
    def memory_kib(self, value: int) -> None:
        self._memory = value

    @property
    def current_memory_kib(self) -> int:
        """``<currentMemory>`` in KiB; defaults to :attr:`memory_kib`."""
        current = self._current_memory
        return self.memory_kib if current is None else current

    @current_memory_kib.setter
    def current_memory_kib(self, value: int | None) -> None:
        self._current_memory = value
