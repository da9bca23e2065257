"""Lowering of ``<watchdog>``: the device, and ``-action watchdog=`` for its action."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyvirt.drivers.qemu.argv.opts import JsonValue, json_opts
from pyvirt.drivers.qemu.argv.registry import lowers
from pyvirt.errors import UnsupportedError
from pyvirt.model.devices.watchdog import Watchdog

if TYPE_CHECKING:
    from pyvirt.drivers.qemu.argv.builder import Build

#: libvirt's action -> QEMU's ``-action watchdog=`` value (``dump`` has no QEMU equivalent)
ACTIONS = {
    "reset": "reset", "shutdown": "shutdown", "poweroff": "poweroff", "pause": "pause",
    "none": "none", "inject-nmi": "inject-nmi",
}  # fmt: skip


def watchdog_action(dev: Watchdog) -> str:
    """QEMU's watchdog action for *dev* (libvirt's default is ``reset``)."""
    action = ACTIONS.get(dev.action or "reset")
    if action is None:
        raise UnsupportedError(f"watchdog action '{dev.action}' is not supported")
    return action


@lowers(Watchdog)
def lower_watchdog(dev: Watchdog, b: Build) -> list[str]:
    """Lower one ``<watchdog model='i6300esb|ib700|itco'>``."""
    model = dev.model or "i6300esb"
    if model == "itco":  # the TCO watchdog built into q35's ICH9 LPC bridge
        if not b.q35:
            raise UnsupportedError("watchdog model 'itco' needs a q35 machine")
        return ["-global", "ICH9-LPC.noreboot=off", "-action", f"watchdog={watchdog_action(dev)}"]
    if model not in ("i6300esb", "ib700"):
        raise UnsupportedError(f"watchdog model '{model}' is not supported on x86")
    props: dict[str, JsonValue] = {"driver": model, "id": b.alias(dev, "watchdog")}
    if model == "i6300esb":
        props.update(b.pci(dev.address))
    return ["-device", json_opts(props), "-action", f"watchdog={watchdog_action(dev)}"]
