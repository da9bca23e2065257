"""``attach-device``/``detach-device``: a device given as libvirt XML, mapped onto the disk and
NIC verbs of :class:`~pyvirt.api.domains.Domain`.

Disks and NICs go to the disk and NIC verbs: ``<disk>`` (``<driver>``, ``<source>``,
``<target>``, ``<readonly/>``, ``<shareable/>``, ``<serial>``) and ``<interface>`` of type
network, bridge, ethernet or user (``<source>``, ``<mac>``, ``<model>``, ``<target>``); any other
child of those is refused with a clear error rather than dropped quietly. ``<controller>``,
``<input>``, ``<serial>``, ``<console>``, ``<hostdev>``, ``<rng>`` and ``<watchdog>`` go to
:mod:`pyvirt.service.device.generic` (kept whole in the definition; hot-plugged where QEMU can,
refused live with the reason where it cannot). The result names the device and, for a running
domain, its alias (``virtio-disk1``, ``net1``, ``rng0``), which the daemon's
``device-added``/``device-removed`` events carry as virsh's do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pyvirt.errors import InvalidConfigError, UnsupportedError

if TYPE_CHECKING:
    from pyvirt.api.domains import Domain

__all__ = ["GENERIC", "DeviceChange", "attach_device", "detach_device", "parse_device"]

# lazy: function-local imports marked ``# lazy`` keep CLI start-up fast (lxml, the model and the
# disk code load only when a device is attached).

#: child elements attach-device understands, per device
_DISK_CHILDREN = frozenset(
    {"driver", "source", "target", "readonly", "shareable", "serial", "alias", "address"}
)
_NIC_CHILDREN = frozenset({"source", "mac", "model", "target", "alias", "address"})
#: the kinds handled whole by :mod:`pyvirt.service.device.generic`
GENERIC = frozenset({"controller", "input", "serial", "console", "hostdev", "rng", "watchdog"})


@dataclass(frozen=True)
class DeviceChange:
    """What ``attach_device``/``detach_device`` did: the device (``disk``, ``interface``), its
    identity (disk target, NIC MAC), its alias in the running domain (None when the domain
    does not run or has none), and which sides changed."""

    device: str
    ident: str
    alias: str | None
    live: bool
    config: bool

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "device": self.device, "ident": self.ident, "alias": self.alias,
            "live": self.live, "config": self.config,
        }  # fmt: skip


def _sides(dom: Domain, live: bool, config: bool, persistent: bool) -> tuple[bool, bool]:
    """(live, config) as the verbs will resolve them (their own checks raise on a misfit)."""
    running = dom.is_active()
    if persistent:
        return running, True
    if live or config:
        return live, config
    return running, not running


def parse_device(xml: str | bytes) -> tuple[str, Any]:
    """The device's tag and its model (disk, NIC) or element (the generic kinds).

    :raises UnsupportedError: a kind or element attach-device does not handle
    """
    from pyvirt.model import Disk, Interface  # lazy
    from pyvirt.model.xmltree import parse_xml, tag_of  # lazy

    el = parse_xml(xml, what="device XML")
    tag = tag_of(el)
    if tag in GENERIC:
        return (tag or "", el)
    allowed = {"disk": _DISK_CHILDREN, "interface": _NIC_CHILDREN}.get(tag or "")
    if allowed is None:
        raise UnsupportedError(
            f"device <{tag}> cannot be attached or detached yet",
            hint="attach-device handles disk, interface, "
            + ", ".join(sorted(GENERIC))
            + "; edit the definition for others",
        )
    for child in el:
        ctag = tag_of(child)
        if ctag is not None and ctag not in allowed:
            raise UnsupportedError(
                f"<{tag}> element <{ctag}> is not supported by attach-device yet",
                hint=f"leave <{ctag}> out, or add the device with edit/define",
            )
    return (tag or "", Disk(el) if tag == "disk" else Interface(el))


def _disk_options(disk: Any) -> Any:
    from pyvirt.service.disk.options import DiskOptions  # lazy

    if not disk.target_dev:
        raise InvalidConfigError("the <disk> has no <target dev='...'/>", hint="add one (vdb)")
    kind = disk.type or "file"
    host = None
    if kind == "volume":
        source = f"{disk.source_pool}/{disk.source_volume}"
    elif kind == "network":
        source = disk.source_name or ""
        hosts = disk.source_hosts
        if hosts:
            name, port = hosts[0]
            host = f"{name}:{port}" if port else name
    else:
        source = disk.source_path or ""
    if not source:
        raise InvalidConfigError(
            f"disk '{disk.target_dev}' has no <source>", hint="name its file, device or volume"
        )
    mode = "readonly" if disk.readonly else "shareable" if disk.shareable else None
    return DiskOptions(
        source=source, target=disk.target_dev, driver=disk.driver_name, subdriver=disk.format,
        cache=disk.cache, io=disk.io, device=disk.device or "disk", bus=disk.target_bus,
        mode=mode, source_type=kind, source_protocol=disk.source_protocol, source_host=host,
        serial=disk.serial,
    )  # fmt: skip


def _nic_source(nic: Any) -> str:
    if nic.type not in ("network", "bridge", "ethernet", "user"):
        raise UnsupportedError(
            f"interface type '{nic.type}' cannot be attached with attach-device",
            hint="network, bridge, ethernet and user NICs can; "
            "add this one to the definition (edit) and restart",
        )
    source = {"network": nic.source_network, "bridge": nic.source_bridge}.get(nic.type or "")
    if nic.type == "ethernet":
        return str(nic.target_dev or "")
    if nic.type == "user":
        return ""  # user-mode networking has no source
    if not source:
        raise InvalidConfigError(
            f"the <interface type='{nic.type}'> has no <source>",
            hint="name its network (<source network='default'/>) or bridge",
        )
    return str(source)


def _alias(dom: Domain, device: str, ident: str) -> str | None:
    """The alias of a device of the running domain (``None``: not running or none)."""
    if "'" in ident or not dom.is_active():
        return None
    if device == "disk":
        expr = f"/domain/devices/disk[target/@dev='{ident}']/alias/@name"
    else:
        expr = f"/domain/devices/interface[mac/@address='{ident}']/alias/@name"
    found = dom.xpath(expr)
    return found[0] if found else None


def attach_device(
    dom: Domain,
    xml: str | bytes,
    *,
    live: bool = False,
    config: bool = False,
    current: bool = False,
    persistent: bool = False,
) -> DeviceChange:
    """Attach the device ``xml`` describes (``attach-device``).

    :param persistent: the definition, and the running domain if it runs
    :raises UnsupportedError: a device or element attach-device does not handle, or a live
        attach of a device QEMU cannot hot-plug (the reason is in the message)
    :raises InvalidConfigError: incomplete or invalid device XML
    """
    tag, dev = parse_device(xml)
    if tag in GENERIC:
        return dom.attach_device(xml, live=live, config=config, current=current,
                                 persistent=persistent)  # fmt: skip
    do_live, do_config = _sides(dom, live, config, persistent)
    if tag == "disk":
        opts = _disk_options(dev)
        dom.attach_disk(opts, live=live, config=config, current=current, persistent=persistent)
        ident = str(opts.target)
    else:
        ident = dom.attach_interface(
            str(dev.type), _nic_source(dev), model=dev.model, mac=dev.mac,
            target=dev.target_dev,
            live=live, config=config, current=current, persistent=persistent,
        )  # fmt: skip
    alias = _alias(dom, tag, ident) if do_live else None
    return DeviceChange(tag, ident, alias, do_live, do_config)


def detach_device(
    dom: Domain,
    xml: str | bytes,
    *,
    live: bool = False,
    config: bool = False,
    current: bool = False,
    persistent: bool = False,
) -> DeviceChange:
    """Detach the device ``xml`` names (``detach-device``): a disk by its target (or
    source), a NIC by its type and MAC, any other kind by matching its XML.

    :raises NotFoundError: the domain has no such device
    """
    tag, dev = parse_device(xml)
    if tag in GENERIC:
        return dom.detach_device(xml, live=live, config=config, current=current,
                                 persistent=persistent)  # fmt: skip
    do_live, do_config = _sides(dom, live, config, persistent)
    if tag == "disk":
        ident = dev.target_dev or dev.source_path
        if not ident:
            raise InvalidConfigError(
                "the <disk> names neither a target nor a source", hint="add <target dev='vdb'/>"
            )
        alias = _alias(dom, tag, ident) if do_live else None
        dom.detach_disk(ident, live=live, config=config, current=current, persistent=persistent)
    else:
        ident = (dev.mac or "").lower()
        alias = _alias(dom, tag, ident) if do_live and ident else None
        dom.detach_interface(
            str(dev.type),
            mac=dev.mac,
            live=live,
            config=config,
            current=current,
            persistent=persistent,
        )
    return DeviceChange(tag, str(ident), alias, do_live, do_config)
