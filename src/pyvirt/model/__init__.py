"""XML <-> typed objects for domains. Pure: no I/O, no subprocess.

``Domain.from_xml(text)`` parses (hardened, see :mod:`pyvirt.model.xmlmap`) and validates;
``Domain.to_xml()`` gives the XML back, unknown elements kept verbatim.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

#: where each name lives; submodules load on first use, so ``pyvirt.model.cpuset`` and
#: ``pyvirt.model.units`` (host probes, the start path) do not pull in lxml and the whole
#: model (~10 ms)
_WHERE = {
    "Clock": "clock",
    "Timer": "clock",
    "Cpu": "cpu",
    "CpuFeature": "cpu",
    "NumaCell": "cpu",
    "Topology": "cpu",
    "Vcpu": "cpu",
    "Address": "devices",
    "Channel": "devices",
    "Chardev": "devices",
    "Console": "devices",
    "Controller": "devices",
    "Device": "devices",
    "Devices": "devices",
    "Disk": "devices",
    "Graphics": "devices",
    "Hostdev": "devices",
    "Input": "devices",
    "Interface": "devices",
    "Memballoon": "devices",
    "Rng": "devices",
    "Serial": "devices",
    "Video": "devices",
    "Domain": "domain",
    "Features": "features",
    "Loader": "guestos",
    "Os": "guestos",
    "HugePage": "memory",
    "MemNode": "memory",
    "MemoryBacking": "memory",
    "Numatune": "memory",
    "parse_xml": "xmlmap",
}


def __getattr__(name: str) -> Any:
    """Load the submodule defining ``name`` on first use."""
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"pyvirt.model.{module}"), name)
    globals()[name] = value
    return value
