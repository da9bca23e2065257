"""Lowering of ``<memballoon>``: ``virtio-balloon-pci`` (``model='none'`` adds nothing)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyvirt.drivers.qemu.argv.opts import JsonValue, json_opts
from pyvirt.drivers.qemu.argv.registry import lowers
from pyvirt.errors import UnsupportedError
from pyvirt.model import Memballoon

if TYPE_CHECKING:
    from pyvirt.drivers.qemu.argv.builder import Build


@lowers(Memballoon)
def lower_memballoon(dev: Memballoon, b: Build) -> list[str]:
    """Lower the ``<memballoon>``; the stats period is a property of the device."""
    if dev.model == "none":
        return []
    if dev.model not in (None, "virtio"):
        raise UnsupportedError(f"memballoon model '{dev.model}' is not supported")
    props: dict[str, JsonValue] = {"driver": "virtio-balloon-pci", "id": b.alias(dev, "balloon")}
    props["guest-stats-polling-interval"] = dev.period or None
    if dev.autodeflate is not None:
        props["deflate-on-oom"] = dev.autodeflate == "on"
    if dev.free_page_reporting is not None:
        props["free-page-reporting"] = dev.free_page_reporting == "on"
    props.update(b.pci(dev.address))
    return ["-device", json_opts(props)]
