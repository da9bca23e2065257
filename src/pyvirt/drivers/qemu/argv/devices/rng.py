"""Lowering of ``<rng>``: an ``rng-random``/``rng-builtin``/``rng-egd`` object and
``virtio-rng-pci``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyvirt.drivers.qemu.argv.opts import JsonValue, OptValue, json_opts, qemu_opts
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
    elif backend == "egd":
        chardev = egd_chardev(dev, alias)
        obj = {"qom-type": "rng-egd", "id": f"obj{alias}", "chardev": f"char{alias}"}
    else:
        raise UnsupportedError(f"rng backend '{backend}' is not supported")
    props: dict[str, JsonValue] = {"driver": "virtio-rng-pci", "rng": f"obj{alias}", "id": alias}
    if dev.rate_bytes:
        props["max-bytes"] = dev.rate_bytes
        props["period"] = dev.rate_period or 1000
    props.update(b.pci(dev.address))
    pre = ["-chardev", chardev] if backend == "egd" else []
    return [*pre, "-object", json_opts(obj), "-device", json_opts(props)]


def egd_chardev(dev: Rng, alias: str) -> str:
    """The socket an EGD backend talks to: ``<backend type='tcp|unix'><source .../>``."""
    backend = dev.element.find("backend")
    src = backend.find("source") if backend is not None else None
    kind = backend.get("type") if backend is not None else None
    if src is None or kind not in ("tcp", "unix"):
        raise UnsupportedError(
            f"{dev.xpath('backend')}: an egd backend needs type='tcp' or 'unix' and a <source>"
        )
    server = src.get("mode") == "bind"
    where: dict[str, OptValue]
    if kind == "tcp":
        where = {"host": src.get("host"), "port": src.get("service")}
    else:
        where = {"path": src.get("path")}
    return qemu_opts(
        "socket", id=f"char{alias}", **where, server=server or None, wait=False if server else None
    )
