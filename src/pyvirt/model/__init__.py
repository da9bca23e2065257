"""XML <-> typed objects for domains. Pure: no I/O, no subprocess.

``Domain.from_xml(text)`` parses (hardened, see :mod:`pyvirt.model.xmlmap`) and validates;
``Domain.to_xml()`` gives the XML back, unknown elements kept verbatim.
"""

from pyvirt.model.clock import Clock, Timer
from pyvirt.model.cpu import Cpu, CpuFeature, NumaCell, Topology, Vcpu
from pyvirt.model.devices import (
    Address,
    Channel,
    Chardev,
    Console,
    Controller,
    Device,
    Devices,
    Disk,
    Graphics,
    Hostdev,
    Input,
    Interface,
    Memballoon,
    Rng,
    Serial,
    Video,
)
from pyvirt.model.domain import Domain
from pyvirt.model.features import Features
from pyvirt.model.guestos import Loader, Os
from pyvirt.model.memory import HugePage, MemNode, MemoryBacking, Numatune
from pyvirt.model.xmlmap import parse_xml

__all__ = [
    "Address",
    "Channel",
    "Chardev",
    "Clock",
    "Console",
    "Controller",
    "Cpu",
    "CpuFeature",
    "Device",
    "Devices",
    "Disk",
    "Domain",
    "Features",
    "Graphics",
    "Hostdev",
    "HugePage",
    "Input",
    "Interface",
    "Loader",
    "MemNode",
    "Memballoon",
    "MemoryBacking",
    "NumaCell",
    "Numatune",
    "Os",
    "Rng",
    "Serial",
    "Timer",
    "Topology",
    "Vcpu",
    "Video",
    "parse_xml",
]
