"""The QMP monitor's typed commands, grouped by subject, and the values they return.

:class:`pyvirt.drivers.qemu.qmp.Monitor` (the session) mixes in
:class:`~.machine.MachineCommands`, :class:`~.devices.DeviceCommands`,
:class:`~.block.BlockCommands` and :class:`~.cpu_models.CpuModelCommands`; every QMP
command pyvirt sends is written in one of those modules (or in ``qmp.py`` itself), never in
``service/``.
"""

from pyvirt.drivers.qemu.monitor.types import (
    BalloonStats,
    BlockDevice,
    BlockNode,
    BlockStats,
    CpuInfo,
    HotpluggableCpu,
    IOThreadInfo,
    Json,
    PciBus,
    PciDevice,
    QomProperty,
)

__all__ = [
    "BalloonStats",
    "BlockDevice",
    "BlockNode",
    "BlockStats",
    "CpuInfo",
    "HotpluggableCpu",
    "IOThreadInfo",
    "Json",
    "PciBus",
    "PciDevice",
    "QomProperty",
]
