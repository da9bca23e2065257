""":class:`virDomain` and :class:`virDomainSnapshot`: libvirt-python's domain objects over
:class:`pyvirt.api.domain.Domain`.

Methods return what libvirt-python returns (``0`` for done, lists where it returns lists) and
raise :class:`~pyvirt.libvirt.errors.libvirtError`. Flags are libvirt's: ``AFFECT_LIVE`` and
``AFFECT_CONFIG`` become pyvirt's ``live=``/``config=`` (neither: the current state).
"""

from __future__ import annotations

import uuid as uuidlib
from typing import TYPE_CHECKING, Any

from pyvirt.libvirt import constants as c
from pyvirt.libvirt.errors import error, wrap

if TYPE_CHECKING:
    from pyvirt.api.domain import Domain
    from pyvirt.libvirt.connect import virConnect

__all__ = ["state_code", "virDomain", "virDomainSnapshot"]

_RUNNING_REASON = {"booted": 1, "restored": 3, "unpaused": 5}
_PAUSED_REASON = {"user": 1, "saved": 3, "starting up": 11}
_SHUTOFF_REASON = {"shutdown": 1, "destroyed": 2, "crashed": 3, "saved": 5}


def state_code(state: str, reason: str) -> tuple[int, int]:
    """libvirt's ``(virDomainState, reason)`` numbers of pyvirt's state and reason words."""
    if state == "running":
        return c.VIR_DOMAIN_RUNNING, _RUNNING_REASON.get(reason, 0)
    if state == "paused":
        return c.VIR_DOMAIN_PAUSED, _PAUSED_REASON.get(reason, 0)
    if state == "shut off":
        return c.VIR_DOMAIN_SHUTOFF, _SHUTOFF_REASON.get(reason, 0)
    return c.VIR_DOMAIN_NOSTATE, 0


def _affect(flags: int) -> dict[str, bool]:
    return {"live": bool(flags & c.VIR_DOMAIN_AFFECT_LIVE),
            "config": bool(flags & c.VIR_DOMAIN_AFFECT_CONFIG)}  # fmt: skip


class virDomain:
    """One domain; get it from ``conn.lookupByName(name)`` and the like."""

    def __init__(self, conn: virConnect, name: str, dom: Domain | None = None) -> None:
        self._conn = conn
        self._name = name
        self._handle = dom

    @property
    def _dom(self) -> Domain:
        """pyvirt's handle, looked up on first use (an event can name a domain that is gone:
        its methods then raise ``VIR_ERR_NO_DOMAIN``)."""
        if self._handle is None:
            self._handle = self._conn._api.domains.get(self._name)
        return self._handle

    def __repr__(self) -> str:
        return f"<virDomain {self._name!r}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, virDomain) and (other._conn, other._name) == (
            self._conn,
            self._name,
        )

    def __hash__(self) -> int:
        return hash(self._name)

    # -- identity ---------------------------------------------------------------------------
    def connect(self) -> virConnect:
        """The connection."""
        return self._conn

    def name(self) -> str:
        """The name."""
        return self._name

    @wrap("domain")
    def UUIDString(self) -> str:
        """The UUID as text."""
        return self._dom.status().uuid

    def UUID(self) -> bytes:
        """The UUID as 16 bytes."""
        return uuidlib.UUID(self.UUIDString()).bytes

    @wrap("domain")
    def ID(self) -> int:
        """The id while it runs, else -1."""
        st = self._dom.status()
        return st.id if st.id is not None else -1

    @wrap("domain")
    def OSType(self) -> str:
        """The OS type (``hvm``)."""
        return self._dom.info().os_type

    # -- inspection -------------------------------------------------------------------------
    @wrap("domain")
    def info(self) -> list[int]:
        """``[state, max memory KiB, memory KiB, vCPUs, CPU time ns]``."""
        i = self._dom.info()
        state, _ = state_code(str(i.status.state), str(i.status.reason))
        cpu_ns = int((i.cpu_time or 0) * 1_000_000_000)
        return [state, i.max_memory_kib, i.used_memory_kib, i.vcpus, cpu_ns]

    @wrap("domain")
    def state(self, flags: int = 0) -> list[int]:
        """``[state, reason]`` (``VIR_DOMAIN_*`` numbers)."""
        st, why = self._dom.state()
        return list(state_code(str(st), str(why)))

    @wrap("domain")
    def maxMemory(self) -> int:
        """The maximum memory in KiB."""
        return self._dom.info().max_memory_kib

    @wrap("domain")
    def maxVcpus(self) -> int:
        """The most vCPUs it can have."""
        n = self._dom.vcpu_count()
        return n.maximum_live or n.maximum_config or 0

    @wrap("domain")
    def vcpusFlags(self, flags: int = 0) -> int:
        """The vCPU count (``VCPU_MAXIMUM``: the maximum) of the live domain or definition."""
        n = self._dom.vcpu_count()
        live = flags & c.VIR_DOMAIN_AFFECT_LIVE or (
            not flags & c.VIR_DOMAIN_AFFECT_CONFIG and n.current_live is not None
        )
        if flags & c.VIR_DOMAIN_VCPU_MAXIMUM:
            got = n.maximum_live if live else n.maximum_config
        else:
            got = n.current_live if live else n.current_config
        if got is None:
            raise error(c.VIR_ERR_OPERATION_INVALID, "domain is not running", "domain")
        return got

    @wrap("domain")
    def XMLDesc(self, flags: int = 0) -> str:
        """The definition (``VIR_DOMAIN_XML_INACTIVE``: the persistent one)."""
        return self._dom.xml_desc(
            inactive=bool(flags & c.VIR_DOMAIN_XML_INACTIVE),
            security_info=bool(flags & c.VIR_DOMAIN_XML_SECURE),
        )

    @wrap("domain")
    def isActive(self) -> int:
        """1 while it runs (or is paused)."""
        return int(self._dom.is_active())

    @wrap("domain")
    def isPersistent(self) -> int:
        """1 when it has a persistent definition."""
        return int(self._dom.status().persistent)

    def isUpdated(self) -> int:
        """0: pyvirt applies a definition at the next start only as a whole."""
        return 0

    @wrap("domain")
    def autostart(self) -> int:
        """1 when it starts with the host."""
        return int(self._dom.status().autostart)

    @wrap("domain", writes=True)
    def setAutostart(self, autostart: int) -> int:
        """Start it (or not) with the host."""
        self._dom.set_autostart(bool(autostart))
        return 0

    # -- lifecycle --------------------------------------------------------------------------
    def create(self) -> int:
        """Start it."""
        return self.createWithFlags(0)

    @wrap("domain", writes=True)
    def createWithFlags(self, flags: int = 0) -> int:
        """Start it (``VIR_DOMAIN_START_PAUSED``, ``_FORCE_BOOT``)."""
        self._dom.start(
            paused=bool(flags & c.VIR_DOMAIN_START_PAUSED),
            force_boot=bool(flags & c.VIR_DOMAIN_START_FORCE_BOOT),
        )
        return 0

    def shutdown(self) -> int:
        """Ask the guest to power off (returns at once)."""
        return self.shutdownFlags(0)

    @wrap("domain", writes=True)
    def shutdownFlags(self, flags: int = 0) -> int:
        """Ask the guest to power off: ``SHUTDOWN_ACPI_POWER_BTN`` and/or ``_GUEST_AGENT``."""
        modes = []
        if flags & c.VIR_DOMAIN_SHUTDOWN_GUEST_AGENT:
            modes.append("agent")
        if flags & c.VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN:
            modes.append("acpi")
        if flags & ~(c.VIR_DOMAIN_SHUTDOWN_GUEST_AGENT | c.VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN):
            raise error(
                c.VIR_ERR_ARGUMENT_UNSUPPORTED, "only ACPI and guest agent shutdown", "domain"
            )
        self._dom.shutdown(modes or None)
        return 0

    def destroy(self) -> int:
        """Stop it at once."""
        return self.destroyFlags(0)

    @wrap("domain", writes=True)
    def destroyFlags(self, flags: int = 0) -> int:
        """Stop it at once (``VIR_DOMAIN_DESTROY_GRACEFUL``: give QEMU longer)."""
        self._dom.destroy(graceful=bool(flags & c.VIR_DOMAIN_DESTROY_GRACEFUL))
        return 0

    @wrap("domain", writes=True)
    def reboot(self, flags: int = 0) -> int:
        """Reboot the guest."""
        self._dom.reboot()
        return 0

    @wrap("domain", writes=True)
    def reset(self, flags: int = 0) -> int:
        """Press the reset button."""
        self._dom.reset()
        return 0

    @wrap("domain", writes=True)
    def suspend(self) -> int:
        """Pause the vCPUs."""
        self._dom.suspend()
        return 0

    @wrap("domain", writes=True)
    def resume(self) -> int:
        """Run paused vCPUs again."""
        self._dom.resume()
        return 0

    def undefine(self) -> int:
        """Remove the persistent definition (refused with snapshots or a managed save)."""
        return self.undefineFlags(0)

    @wrap("domain", writes=True)
    def undefineFlags(self, flags: int = 0) -> int:
        """Remove the definition; ``UNDEFINE_MANAGED_SAVE``, ``_SNAPSHOTS_METADATA`` and
        ``_CHECKPOINTS_METADATA`` also drop those, ``_NVRAM`` deletes the UEFI variables file,
        ``_KEEP_NVRAM`` keeps it (without either a domain with one is refused, as libvirt
        does); ``_TPM`` deletes the TPM state even when persistent, ``_KEEP_TPM`` keeps it."""
        self._dom.undefine(
            nvram=bool(flags & c.VIR_DOMAIN_UNDEFINE_NVRAM),
            keep_nvram=bool(flags & c.VIR_DOMAIN_UNDEFINE_KEEP_NVRAM),
            tpm=bool(flags & c.VIR_DOMAIN_UNDEFINE_TPM),
            keep_tpm=bool(flags & c.VIR_DOMAIN_UNDEFINE_KEEP_TPM),
            managed_save=bool(flags & c.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE),
            snapshots_metadata=bool(flags & c.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA),
            checkpoints_metadata=bool(flags & c.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA),
        )
        return 0

    @wrap("domain", writes=True)
    def managedSave(self, flags: int = 0) -> int:
        """Save the state and stop; the next start resumes it."""
        running = None
        if flags & c.VIR_DOMAIN_SAVE_RUNNING:
            running = True
        elif flags & c.VIR_DOMAIN_SAVE_PAUSED:
            running = False
        self._dom.managed_save(
            running=running, bypass_cache=bool(flags & c.VIR_DOMAIN_SAVE_BYPASS_CACHE)
        )
        return 0

    @wrap("domain")
    def hasManagedSaveImage(self, flags: int = 0) -> int:
        """1 when a managed save image waits."""
        return int(self._dom.has_managed_save())

    @wrap("domain", writes=True)
    def managedSaveRemove(self, flags: int = 0) -> int:
        """Discard the managed save image."""
        self._dom.managed_save_remove()
        return 0

    # -- devices and tuning -----------------------------------------------------------------
    def attachDevice(self, xml: str) -> int:
        """Hot-plug a device into the running domain."""
        return self.attachDeviceFlags(xml, c.VIR_DOMAIN_AFFECT_LIVE)

    @wrap("domain", xml=True, writes=True)
    def attachDeviceFlags(self, xml: str, flags: int = 0) -> int:
        """Attach a device to the running domain and/or the definition."""
        self._dom.attach_device(xml, **_affect(flags))
        return 0

    def detachDevice(self, xml: str) -> int:
        """Unplug a device from the running domain."""
        return self.detachDeviceFlags(xml, c.VIR_DOMAIN_AFFECT_LIVE)

    @wrap("domain", xml=True, writes=True)
    def detachDeviceFlags(self, xml: str, flags: int = 0) -> int:
        """Detach a device from the running domain and/or the definition."""
        self._dom.detach_device(xml, **_affect(flags))
        return 0

    @wrap("domain", xml=True, writes=True)
    def updateDeviceFlags(self, xml: str, flags: int = 0) -> int:
        """Change a device in place (media, link state, graphics password)."""
        self._dom.update_device(xml, **_affect(flags))
        return 0

    def setMemory(self, memory: int) -> int:
        """Set the running domain's memory (KiB) through the balloon."""
        return self.setMemoryFlags(memory, c.VIR_DOMAIN_AFFECT_LIVE)

    def setMaxMemory(self, memory: int) -> int:
        """Set the maximum memory (KiB) of the definition."""
        return self.setMemoryFlags(memory, c.VIR_DOMAIN_MEM_MAXIMUM)

    @wrap("domain", writes=True)
    def setMemoryFlags(self, memory: int, flags: int = 0) -> int:
        """Set the memory (``VIR_DOMAIN_MEM_MAXIMUM``: the maximum) in KiB."""
        if flags & c.VIR_DOMAIN_MEM_MAXIMUM:
            self._dom.set_max_memory(memory, **_affect(flags))
        else:
            self._dom.set_memory(memory, **_affect(flags))
        return 0

    def setVcpus(self, nvcpus: int) -> int:
        """Set the running domain's vCPU count (CPU hot-plug)."""
        return self.setVcpusFlags(nvcpus, c.VIR_DOMAIN_AFFECT_LIVE)

    @wrap("domain", writes=True)
    def setVcpusFlags(self, nvcpus: int, flags: int = 0) -> int:
        """Set the vCPU count (``VIR_DOMAIN_VCPU_MAXIMUM``: the maximum, definition only)."""
        if flags & (c.VIR_DOMAIN_VCPU_GUEST | c.VIR_DOMAIN_VCPU_HOTPLUGGABLE):
            raise error(c.VIR_ERR_ARGUMENT_UNSUPPORTED, "guest vCPU changes", "domain")
        self._dom.set_vcpus(
            nvcpus, maximum=bool(flags & c.VIR_DOMAIN_VCPU_MAXIMUM), **_affect(flags)
        )
        return 0

    # -- statistics -------------------------------------------------------------------------
    @wrap("domain")
    def blockStats(self, path: str) -> tuple[int, int, int, int, int]:
        """``(rd_req, rd_bytes, wr_req, wr_bytes, errs)`` of a disk (target or source path);
        ``errs`` is -1 (QEMU does not count errors)."""
        stats = self._dom.blkstat()
        target = path
        if target not in stats:
            target = next((d.target for d in self._dom.blklist() if d.source == path), path)
        if target not in stats:
            raise error(c.VIR_ERR_INVALID_ARG, f"invalid path: {path}", "domain")
        s = stats[target]
        return (s.get("rd_req", 0), s.get("rd_bytes", 0), s.get("wr_req", 0),
                s.get("wr_bytes", 0), -1)  # fmt: skip

    @wrap("domain")
    def interfaceStats(self, path: str) -> tuple[int, int, int, int, int, int, int, int]:
        """``(rx_bytes, rx_packets, rx_errs, rx_drop, tx_bytes, ...)`` of a NIC."""
        s = self._dom.ifstat(path)
        return (s.rx_bytes, s.rx_packets, s.rx_errs, s.rx_drop,
                s.tx_bytes, s.tx_packets, s.tx_errs, s.tx_drop)  # fmt: skip

    @wrap("domain")
    def memoryStats(self) -> dict[str, int]:
        """Balloon statistics in KiB (``actual``, ``rss``, the guest's ``unused`` ...)."""
        return dict(self._dom.memory_stats())

    @wrap("domain")
    def interfaceAddresses(self, source: int, flags: int = 0) -> dict[str, dict[str, Any]]:
        """``{name: {"hwaddr": mac, "addrs": [{"type", "addr", "prefix"}]}}`` from DHCP
        leases (``..._SRC_LEASE``), the guest agent (``_SRC_AGENT``) or ARP (``_SRC_ARP``)."""
        how = {c.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT: "agent",
               c.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_ARP: "arp"}.get(source, "lease")  # fmt: skip
        out: dict[str, dict[str, Any]] = {}
        for row in self._dom.ifaddr(source=how):
            entry = out.setdefault(row.target, {"hwaddr": row.mac, "addrs": []})
            if not row.address:
                continue
            addr, _, prefix = row.address.partition("/")
            kind = c.VIR_IP_ADDR_TYPE_IPV6 if row.protocol == "ipv6" else c.VIR_IP_ADDR_TYPE_IPV4
            entry["addrs"].append({"type": kind, "addr": addr, "prefix": int(prefix or 0)})
        return out

    # -- snapshots --------------------------------------------------------------------------
    @wrap("snapshot", xml=True, writes=True)
    def snapshotCreateXML(self, xmlDesc: str | None, flags: int = 0) -> virDomainSnapshot:
        """Take a snapshot (``SNAPSHOT_CREATE_DISK_ONLY``, ``_ATOMIC``, ``_QUIESCE``,
        ``_NO_METADATA``, ``_REDEFINE``, ``_CURRENT``, ``_HALT`` as in libvirt)."""

        def has(flag: int) -> bool:
            return bool(flags & flag)

        info = self._dom.snapshot_create(
            xmlDesc or None, disk_only=has(c.VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY),
            atomic=has(c.VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC),
            quiesce=has(c.VIR_DOMAIN_SNAPSHOT_CREATE_QUIESCE),
            live=has(c.VIR_DOMAIN_SNAPSHOT_CREATE_LIVE),
            no_metadata=has(c.VIR_DOMAIN_SNAPSHOT_CREATE_NO_METADATA),
            redefine=has(c.VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE),
            current=has(c.VIR_DOMAIN_SNAPSHOT_CREATE_CURRENT),
        )  # fmt: skip
        if has(c.VIR_DOMAIN_SNAPSHOT_CREATE_HALT) and self._dom.is_active():
            self._dom.destroy()
        return virDomainSnapshot(self, info.name)

    @wrap("snapshot")
    def snapshotListNames(self, flags: int = 0) -> list[str]:
        """The snapshots' names."""
        return [s.name for s in self._dom.snapshots()]

    def listAllSnapshots(self, flags: int = 0) -> list[virDomainSnapshot]:
        """The snapshots."""
        return [virDomainSnapshot(self, n) for n in self.snapshotListNames()]

    def snapshotNum(self, flags: int = 0) -> int:
        """How many snapshots it has."""
        return len(self.snapshotListNames())

    @wrap("snapshot")
    def snapshotLookupByName(self, name: str, flags: int = 0) -> virDomainSnapshot:
        """The snapshot called ``name``."""
        return virDomainSnapshot(self, self._dom.snapshot_info(name).name)

    @wrap("snapshot")
    def hasCurrentSnapshot(self, flags: int = 0) -> int:
        """1 when it has a current snapshot."""
        return int(self._dom.current_snapshot() is not None)

    @wrap("snapshot")
    def snapshotCurrent(self, flags: int = 0) -> virDomainSnapshot:
        """The current snapshot."""
        return virDomainSnapshot(self, self._dom.snapshot_info(None).name)

    @wrap("snapshot", writes=True)
    def revertToSnapshot(self, snap: virDomainSnapshot, flags: int = 0) -> int:
        """Go back to ``snap`` (``SNAPSHOT_REVERT_RUNNING``, ``_PAUSED``, ``_FORCE``)."""
        self._dom.snapshot_revert(
            snap.getName(),
            running=bool(flags & c.VIR_DOMAIN_SNAPSHOT_REVERT_RUNNING),
            paused=bool(flags & c.VIR_DOMAIN_SNAPSHOT_REVERT_PAUSED),
            force=bool(flags & c.VIR_DOMAIN_SNAPSHOT_REVERT_FORCE),
        )
        return 0


class virDomainSnapshot:
    """One snapshot of a domain."""

    def __init__(self, dom: virDomain, name: str) -> None:
        self._domain = dom
        self._conn = dom.connect()
        self._name = name

    def __repr__(self) -> str:
        return f"<virDomainSnapshot {self._domain.name()}/{self._name}>"

    def getName(self) -> str:
        """The snapshot's name."""
        return self._name

    def getDomain(self) -> virDomain:
        """Its domain."""
        return self._domain

    def domain(self) -> virDomain:
        """Its domain."""
        return self._domain

    def getConnect(self) -> virConnect:
        """The connection."""
        return self._conn

    @wrap("snapshot")
    def getXMLDesc(self, flags: int = 0) -> str:
        """Its ``<domainsnapshot>`` XML."""
        return self._domain._dom.snapshot_xml(self._name)

    @wrap("snapshot")
    def isCurrent(self, flags: int = 0) -> int:
        """1 when it is the current snapshot."""
        return int(self._domain._dom.snapshot_info(self._name).current)

    def hasMetadata(self, flags: int = 0) -> int:
        """1: pyvirt keeps a record of every snapshot it lists."""
        return 1

    @wrap("snapshot")
    def getParent(self, flags: int = 0) -> virDomainSnapshot:
        """The snapshot it was taken on top of."""
        parent = self._domain._dom.snapshot_info(self._name).parent
        if parent is None:
            raise error(
                c.VIR_ERR_NO_DOMAIN_SNAPSHOT, f"snapshot '{self._name}' has no parent", "snapshot"
            )
        return virDomainSnapshot(self._domain, parent)

    @wrap("snapshot")
    def listAllChildren(self, flags: int = 0) -> list[virDomainSnapshot]:
        """Its children."""
        names = self._domain._dom.snapshot_children(self._name)
        return [virDomainSnapshot(self._domain, n) for n in names]

    def numChildren(self, flags: int = 0) -> int:
        """How many children it has."""
        return len(self.listAllChildren())

    @wrap("snapshot", writes=True)
    def delete(self, flags: int = 0) -> int:
        """Delete it (``SNAPSHOT_DELETE_CHILDREN``, ``_CHILDREN_ONLY``, ``_METADATA_ONLY``)."""
        self._domain._dom.snapshot_delete(
            self._name,
            children=bool(flags & c.VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN),
            children_only=bool(flags & c.VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN_ONLY),
            metadata=bool(flags & c.VIR_DOMAIN_SNAPSHOT_DELETE_METADATA_ONLY),
        )
        return 0
