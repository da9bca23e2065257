"""Typed QMP commands about devices: hot-plug, network backends, QOM, PCI, links."""

from __future__ import annotations

from pyvirt.drivers.qemu.monitor.base import Args, Commands, prune
from pyvirt.drivers.qemu.monitor.types import Json, PciBus, QomProperty

#: Where ``-device`` / ``device_add`` devices with an ``id`` live in the QOM tree.
PERIPHERAL = "/machine/peripheral"


class DeviceCommands(Commands):
    """``device_add``/``device_del``, ``netdev_add``/``netdev_del``, QOM, PCI and links."""

    def device_add(self, props: Args) -> None:
        """Plug a device; *props* are those of ``-device`` in JSON form (``driver``, ``id``,
        ``bus``...; ``None`` members are left out), e.g. from an argv lowering.

        :raises QmpCommandError: QEMU refused the device
        """
        if "driver" not in props:
            raise TypeError("device_add needs a 'driver' property")
        self._call("device_add", prune(props))

    def device_del(self, id: str) -> None:
        """Ask for device *id* to be unplugged (the guest may take its time)."""
        self._call("device_del", {"id": id})

    def device_del_wait(self, id: str, timeout: float) -> bool:
        """``device_del`` *id* and wait up to *timeout* seconds for ``DEVICE_DELETED``.

        :returns: whether the device was deleted in time
        """
        event = self._call_until(
            "device_del", {"id": id}, event="DEVICE_DELETED", match={"device": id},
            timeout=timeout,
        )  # fmt: skip
        return event is not None

    def netdev_add(self, props: Args) -> None:
        """Add a network backend; *props* as ``-netdev`` in JSON form (``type``, ``id``...)."""
        if "type" not in props or "id" not in props:
            raise TypeError("netdev_add needs 'type' and 'id' properties")
        self._call("netdev_add", prune(props))

    def getfd(self, fd: int, fdname: str) -> None:
        """Pass open *fd* to QEMU under the name *fdname* (``getfd``), for ``fd=`` and
        ``vhostfd=`` of a tap backend."""
        self._send_fd(fd)
        self._call("getfd", {"fdname": fdname})

    def netdev_del(self, id: str) -> None:
        """Remove network backend *id*."""
        self._call("netdev_del", {"id": id})

    def set_link(self, name: str, up: bool) -> None:
        """Set the link of NIC (or backend) *name* up or down."""
        self._call("set_link", {"name": name, "up": up})

    # QOM -----------------------------------------------------------------------------------
    def qom_list(self, path: str) -> list[QomProperty]:
        """The properties (and children) of the QOM object at *path*."""
        return [QomProperty.from_wire(p) for p in self._call("qom-list", {"path": path})]

    def peripheral_ids(self) -> set[str]:
        """The ids of every device with an id (the children of ``/machine/peripheral``)."""
        return {p.name for p in self.qom_list(PERIPHERAL) if p.type.startswith("child<")}

    def qom_get(self, path: str, prop: str) -> Json:
        """The value of property *prop* of the QOM object at *path*."""
        value: Json = self._call("qom-get", {"path": path, "property": prop})
        return value

    def qom_set(self, path: str, prop: str, value: str | int | float | bool) -> None:
        """Set property *prop* of the QOM object at *path* to a scalar *value*."""
        self._call("qom-set", {"path": path, "property": prop, "value": value})

    # character devices ---------------------------------------------------------------------
    def query_ptys(self) -> dict[str, str]:
        """``query-chardev``'s pseudo-terminals: chardev id -> ``/dev/pts/N``."""
        out: dict[str, str] = {}
        for c in self._call("query-chardev"):
            filename = str(c.get("filename", ""))
            if filename.startswith("pty:"):
                out[str(c["label"])] = filename[4:]
        return out

    # PCI -----------------------------------------------------------------------------------
    def query_pci(self) -> list[PciBus]:
        """The PCI buses and the devices on them (bridges include theirs)."""
        return [PciBus.from_wire(b) for b in self._call("query-pci")]
