"""Lowering of ``<memory model='dimm'>``: a ``pc-dimm`` on its guest NUMA node, backed like
that node's RAM (huge pages, shared access, host NUMA policy)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyvirt.drivers.qemu.argv.devices.controller import parse_num
from pyvirt.drivers.qemu.argv.memory import memory_backend
from pyvirt.drivers.qemu.argv.opts import JsonValue, json_opts
from pyvirt.drivers.qemu.argv.registry import lowers
from pyvirt.errors import InvalidConfigError, UnsupportedError
from pyvirt.model.devices.memory import MemoryDevice

if TYPE_CHECKING:
    from pyvirt.drivers.qemu.argv.builder import Build


@lowers(MemoryDevice)
def lower_memory_device(dev: MemoryDevice, b: Build) -> list[str]:
    """Lower one ``<memory model='dimm'>`` (``memdimmN`` backend, ``dimmN`` device, its
    ``<address type='dimm' slot base>`` or the next free slot)."""
    where = dev.xpath()
    if dev.model != "dimm":
        raise UnsupportedError(
            f"memory device model '{dev.model}' is not supported", hint="use model='dimm'"
        )
    d = b.domain
    if not d.max_memory_kib or not d.max_memory_slots:
        raise InvalidConfigError(
            f"{where}: a memory device needs <maxMemory slots='N'> (room to plug it into)"
        )
    if not dev.size_kib:
        raise InvalidConfigError(f"{where}: <target><size> is required")
    n = [m.element for m in d.devices.memories].index(dev.element)
    dimms = [m for m in d.devices.memories if m.model == "dimm"]  # those that take a slot
    taken = {parse_num(m.address.slot) for m in dimms
             if m.address is not None and m.address.slot is not None}  # fmt: skip
    addr = dev.address
    if addr is not None and addr.slot is not None:
        slot = parse_num(addr.slot)
    else:
        mine = [m.element for m in dimms].index(dev.element)
        auto = [m for m in dimms[:mine] if m.address is None or m.address.slot is None]
        free = [s for s in range(d.max_memory_slots) if s not in taken]
        if len(auto) >= len(free):
            raise InvalidConfigError(f"{where}: no free memory slot left", hint="raise slots")
        slot = free[len(auto)]
    if slot >= d.max_memory_slots:
        raise InvalidConfigError(f"{where}: slot {slot} is beyond <maxMemory slots>")
    memdev = f"memdimm{n}"
    backend = memory_backend(b, memdev, dev.size_kib, dev.node, access=dev.access)
    props: dict[str, JsonValue] = {"driver": "pc-dimm"}
    if dev.node is not None:
        props["node"] = dev.node
    props.update({"memdev": memdev, "id": b.alias(dev, "dimm", fixed=f"dimm{n}"), "slot": slot})
    if addr is not None and addr.base:
        props["addr"] = parse_num(addr.base)
    return ["-object", json_opts(backend), "-device", json_opts(props)]
