"""Domain device verbs: disks (``attach-disk``, ``domblklist``, ``blockresize``, ...), network
interfaces (``attach-interface``, ``domiflist``, ``domifaddr``, ...) and the display
(``screenshot``, ``update-device``).

Verbs that change a domain take keyword-only ``live`` and ``config`` (both False: the running
domain if it runs, else its definition) and ``persistent`` where virsh has ``--persistent``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyvirt.api.domain_base import DomainHandle

if TYPE_CHECKING:
    from pyvirt.api.domain_values import Screenshot
    from pyvirt.service.disk.attach import DiskManager
    from pyvirt.service.disk.info import BlkEntry, BlkInfo
    from pyvirt.service.disk.options import DiskOptions
    from pyvirt.service.network.types import DomainNic, NicAddress, NicStats

__all__ = [
    "BlkEntry",
    "BlkInfo",
    "DiskOptions",
    "DomainDevices",
    "DomainNic",
    "NicAddress",
    "NicStats",
    "Screenshot",
    "disk_xml",
]

# lazy: function-local imports marked ``# lazy`` keep CLI start-up fast: disk and NIC code loads
# QMP, netlink (pyroute2, ~150 ms) and lxml, which ``pyvirt list``/``start``/``dominfo`` do not
# need.


def __getattr__(name: str) -> Any:
    """Re-export the service's value types without importing them at start-up."""
    if name == "DiskOptions":
        from pyvirt.service.disk.options import DiskOptions  # lazy

        return DiskOptions
    if name in ("BlkEntry", "BlkInfo"):
        from pyvirt.service.disk import info  # lazy

        return getattr(info, name)
    if name in ("DomainNic", "NicAddress", "NicStats"):
        from pyvirt.service.network import types  # lazy

        return getattr(types, name)
    if name == "Screenshot":
        from pyvirt.api.domain_values import Screenshot  # lazy

        return Screenshot
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def disk_xml(spec: DiskOptions) -> str:
    """The ``<disk>`` element ``attach_disk(spec)`` would add (``attach-disk --print-xml``).

    :raises InvalidConfigError: options that do not fit together
    """
    from pyvirt.service.disk.options import build_disk  # lazy
    from pyvirt.service.disk.options import disk_xml as to_xml  # lazy

    return to_xml(build_disk(spec))


class DomainDevices(DomainHandle):
    """Disk, network interface and display verbs of :class:`~pyvirt.api.domains.Domain`."""

    # -- disks --------------------------------------------------------------------------
    def _disks(self) -> DiskManager:
        from pyvirt.service.disk.attach import DiskManager  # lazy

        return DiskManager(self._domains)

    def attach_disk(
        self,
        spec: DiskOptions,
        *,
        live: bool = False,
        config: bool = False,
        current: bool = False,
        persistent: bool = False,
    ) -> None:
        """Attach a disk (``attach-disk``): hot-plugged live and/or added to the definition.

        :param spec: source, target and options, as :class:`DiskOptions`
        :param persistent: the definition, and the running domain if it runs
        :raises AlreadyExistsError: the target is taken
        :raises InvalidStateError: the source is in use, or the flags do not fit the state
        :raises UnsupportedError: live on a bus without hotplug (IDE, SATA)
        """
        self._disks().attach(
            self._name, spec, live=live, config=config, current=current, persistent=persistent
        )

    def detach_disk(
        self,
        target: str,
        *,
        live: bool = False,
        config: bool = False,
        current: bool = False,
        persistent: bool = False,
        timeout: float = 30.0,
    ) -> None:
        """Detach a disk by target (``vdb``), source path or ``POOL/VOLUME``.

        :param timeout: seconds the guest gets to release a hot-plugged disk
        :raises NotFoundError: no such disk
        :raises OperationFailedError: the guest did not release it in time
        """
        self._disks().detach(
            self._name, target, live=live, config=config, current=current, persistent=persistent,
            timeout=timeout,
        )  # fmt: skip

    def blklist(self, *, inactive: bool = False) -> list[BlkEntry]:
        """The domain's disks (``domblklist``), of the definition with ``inactive``."""
        from pyvirt.service.disk import info  # lazy

        return info.blklist(self._domains, self._name, inactive=inactive)

    def blkinfo(self, target: str | None = None) -> list[BlkInfo]:
        """Capacity, allocation and physical size in bytes of one disk (or every disk)."""
        from pyvirt.service.disk import info  # lazy

        return info.blkinfo(self._domains, self._name, target)

    def blkstat(self, target: str | None = None) -> dict[str, dict[str, int]]:
        """I/O counters per disk target of the running domain (``domblkstat``)."""
        from pyvirt.service.disk import info  # lazy

        return info.blkstat(self._domains, self._name, target)

    def block_resize(self, disk: str, size: int) -> int:
        """Grow a running domain's disk to ``size`` bytes (``blockresize``); returns the size
        (rounded up to 512).

        :raises InvalidConfigError: the size would shrink the disk
        """
        from pyvirt.service.disk import info  # lazy

        return info.blockresize(self._domains, self._name, disk, size)

    # -- network interfaces -------------------------------------------------------------
    def attach_interface(
        self,
        type: str,
        source: str,
        *,
        model: str | None = None,
        mac: str | None = None,
        target: str | None = None,
        live: bool = False,
        config: bool = False,
        current: bool = False,
        persistent: bool = False,
    ) -> str:
        """Add a NIC (``attach-interface``): ``type`` network, bridge or ethernet.

        :param source: the network or bridge name
        :param mac: its MAC (None: a free one in 52:54:00)
        :param persistent: the definition, and the running domain if it runs
        :returns: its MAC address
        """
        from pyvirt.service.nic import attach  # lazy

        return attach.attach(
            self._service.networks, self._name, type, source, model=model, mac=mac,
            target=target, live=live, config=config, current=current, persistent=persistent,
        )  # fmt: skip

    def detach_interface(
        self,
        type: str,
        *,
        mac: str | None = None,
        live: bool = False,
        config: bool = False,
        current: bool = False,
        persistent: bool = False,
    ) -> None:
        """Remove the NIC of ``type`` (and ``mac`` when several match).

        :param persistent: the definition, and the running domain if it runs
        """
        from pyvirt.service.nic import attach  # lazy

        attach.detach(
            self._service.networks, self._name, type, mac=mac, live=live, config=config,
            current=current, persistent=persistent,
        )  # fmt: skip

    def iflist(self, *, inactive: bool = False) -> list[DomainNic]:
        """The domain's NICs (``domiflist``), of the definition with ``inactive``."""
        from pyvirt.service.nic import ops  # lazy

        return ops.iflist(self._service.networks, self._name, inactive=inactive)

    def ifaddr(
        self, *, source: str = "lease", interface: str | None = None, timeout: float = 10.0
    ) -> list[NicAddress]:
        """Addresses of the running domain's NICs (``domifaddr``).

        :param source: ``lease`` (DHCP leases of pyvirt networks), ``arp`` (the host's
            neighbour table) or ``agent`` (the guest agent)
        :param interface: only this NIC (host device, alias or MAC; with ``agent``, the guest
            name)
        :param timeout: seconds for the guest agent (``agent`` only)
        """
        from pyvirt.service.nic import ops  # lazy

        if source == "agent":
            return ops.interface_addresses(self._domains, self._name, interface, timeout=timeout)
        return ops.ifaddr(self._service.networks, self._name, source=source, interface=interface)

    def ifstat(self, interface: str) -> NicStats:
        """Traffic counters of a NIC as the guest sees them (``domifstat``)."""
        from pyvirt.service.nic import ops  # lazy

        return ops.ifstat(self._service.networks, self._name, interface)

    def set_link(
        self, interface: str, state: str, *, live: bool = False, config: bool = False
    ) -> None:
        """Set a NIC's link ``up`` or ``down`` (``domif-setlink``); as in virsh, ``config``
        changes only the definition and no flag means the running domain (the definition of
        a shut-off one).
        """
        from pyvirt.service.nic import ops  # lazy

        ops.set_link(self._service.networks, self._name, interface, state, live=live, config=config)

    # -- display ------------------------------------------------------------------------
    def screenshot(self, path: str | Path, *, screen: int = 0) -> Screenshot:
        """Save the running guest's screen as PNG.

        :param screen: the display head
        :raises InvalidStateError: it is not running or has no display
        """
        from pyvirt.api.domain_values import Screenshot  # lazy
        from pyvirt.service.domain import display  # lazy

        out = Path(path).absolute()
        width, height = display.screenshot(self._domains, self._name, out, screen=screen)
        return Screenshot(str(out), width, height)

    def update_device(
        self,
        xml: str | bytes,
        *,
        live: bool = False,
        config: bool = False,
        current: bool = False,
        persistent: bool = False,
    ) -> None:
        """Change a device in place (``update-device``): graphics password or keymap, CD-ROM
        media, a NIC's link state; the definition of a NIC, controller, input, serial/console,
        hostdev, RNG or watchdog.

        :param persistent: the definition, and the running domain if it runs
        """
        from pyvirt.service.device import update  # lazy
        from pyvirt.service.domain import display  # lazy

        fn = update.update_device if update.handles(xml) else display.update_device
        fn(
            self._domains, self._name, xml, live=live, config=config, current=current,
            persistent=persistent,
        )  # fmt: skip
