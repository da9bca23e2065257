"""Lowering of ``<rng>``: an ``rng-random``/``rng-builtin`` object and ``virtio-rng-pci``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyvirt.drivers.qemu.argv.opts import JsonValue, json_opts
from pyvirt.drivers.qemu.argv.registry import lowers
from pyvirt.errors import UnsupportedError
from pyvirt.model import Rng

if TYPE_CHECKING:
    from pyvirt.drivers.qemu.argv.builder import Build


@lowers(Rng)
def lower_rng(dev: Rng, b: Build) -> list[str]:
    """Lower one ``<rng model='virtio'>``."""
    if dev.model not in (None, "virtio"):
        raise UnsupportedError(f"rng model '{dev.model}' is not supported")
    alias = b.alias(dev, "rng")
    obj: dict[str, JsonValue]
    backend = dev.backend_model or "random"
    if backend == "random":
        path = (dev.backend_path or "").strip() or "/dev/urandom"
        obj = {"qom-type": "rng-random", "id": f"obj{alias}", "filename": path}
    elif backend == "builtin":
        obj = {"qom-type": "rng-builtin", "id": f"obj{alias}"}
    else:
        raise UnsupportedError(f"rng backend '{backend}' is not supported")
    props: dict[str, JsonValue] = {"driver": "virtio-rng-pci", "rng": f"obj{alias}", "id": alias}
    if dev.rate_bytes:
        props["max-bytes"] = dev.rate_bytes
        props["period"] = dev.rate_period or 1000
    props.update(b.pci(dev.address))
    return ["-object", json_opts(obj), "-device", json_opts(props)]
