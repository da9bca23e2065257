""":class:`virConnect` and the functions that open one (:func:`open`, :func:`openReadOnly`,
:func:`openAuth`).

``qemu:///system`` and ``qemu:///session`` (and no URI) are the local pyvirt: its pyvirtd when
one answers on this state directory (``$PYVIRT_STATE_DIR``), else the embedded, in-process
connection; ``pyvirt:///...`` and ``pyvirt+unix|tls|ssh://...`` URIs are used as they are.
"""

from __future__ import annotations

import builtins
import os
import socket
import uuid as uuidlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pyvirt.api
from pyvirt.errors import NotFoundError
from pyvirt.libvirt import constants as c
from pyvirt.libvirt.callbacks import ConnectEvents
from pyvirt.libvirt.domain import virDomain
from pyvirt.libvirt.errors import error, translated, wrap
from pyvirt.libvirt.network import virNetwork
from pyvirt.libvirt.storage import virStoragePool, virStorageVol

if TYPE_CHECKING:
    from pyvirt.api.domains import DomainStatus

__all__ = ["LIBVIR_VERSION", "getVersion", "open", "openAuth", "openReadOnly", "virConnect"]

#: the libvirt release whose API this module follows (``getLibVersion()``: 9.0.0)
LIBVIR_VERSION = 9_000_000


def _api_uri(name: str | None) -> str | None:
    """The :func:`pyvirt.api.open` URI of a libvirt URI."""
    if not name:
        return None
    base = name.split("?", 1)[0]
    if base in ("qemu:///system", "qemu:///session"):
        return "qemu:///system" + name[len(base) :]
    if name.startswith(("pyvirt:", "pyvirt+")):
        return name
    raise error(
        c.VIR_ERR_NO_CONNECT,
        name,
        hint="pyvirt serves qemu:///system, qemu:///session and pyvirt URIs",
    )


def open(name: str | None = None) -> virConnect:
    """A connection to ``name`` (None: ``$LIBVIRT_DEFAULT_URI``, then the local pyvirt)."""
    return virConnect(name, readonly=False)


def openReadOnly(name: str | None = None) -> virConnect:
    """A connection that refuses every change with ``VIR_ERR_OPERATION_DENIED``."""
    return virConnect(name, readonly=True)


def openAuth(uri: str | None, auth: Any = None, flags: int = 0) -> virConnect:
    """As :func:`open` (pyvirt asks no credentials; ``VIR_CONNECT_RO`` opens read-only)."""
    return virConnect(uri, readonly=bool(flags & c.VIR_CONNECT_RO))


def getVersion(name: str | None = None) -> int:
    """The libvirt version this module follows, as ``major * 1000000 + minor * 1000``."""
    return LIBVIR_VERSION


def _has_any(flags: int, *bits: int) -> bool:
    return any(flags & b for b in bits)


def _either(flags: int, yes: int, no: int, value: bool) -> bool:
    """Whether ``value`` passes a pair of filter flags (neither or both: everything)."""
    if bool(flags & yes) == bool(flags & no):
        return True
    return value if flags & yes else not value


class virConnect(ConnectEvents):
    """A connection to one host, as libvirt-python's; get one from :func:`open`."""

    def __init__(self, uri: str | None, *, readonly: bool = False) -> None:
        if not uri and not os.environ.get("PYVIRT_DEFAULT_URI"):
            uri = os.environ.get("LIBVIRT_DEFAULT_URI") or None
        self._uri = uri or "qemu:///system"
        self._api_uri = _api_uri(uri)
        with translated("connect"):
            self._api = pyvirt.api.open(self._api_uri)
        self._readonly = readonly
        self._closed = False
        self._init_events()

    def __repr__(self) -> str:
        return f"<virConnect {self._uri!r}>"

    # -- the connection ---------------------------------------------------------------------
    def close(self) -> int:
        """Close it (stops its events)."""
        self._closed = True
        self._close_events()
        return 0

    def isAlive(self) -> int:
        """1 until closed."""
        return 0 if self._closed else 1

    def isSecure(self) -> int:
        """1: a local socket or TLS."""
        return 1

    def isEncrypted(self) -> int:
        """1 for a TLS or ssh connection."""
        return int(
            self._api_uri is not None and self._api_uri.startswith(("pyvirt+tls", "pyvirt+ssh"))
        )

    def getURI(self) -> str:
        """The URI it was opened with."""
        return self._uri

    def getType(self) -> str:
        """``QEMU``."""
        return "QEMU"

    def getHostname(self) -> str:
        """The host's name."""
        return socket.gethostname()

    @wrap("connect")
    def getVersion(self) -> int:
        """QEMU's version as ``major * 1000000 + minor * 1000 + micro``."""
        text = self._api.host.versions().qemu or "0"
        nums = [int("".join(ch for ch in p if ch.isdigit()) or 0) for p in text.split(".")[:3]]
        nums += [0] * (3 - len(nums))
        return nums[0] * 1_000_000 + nums[1] * 1_000 + nums[2]

    def getLibVersion(self) -> int:
        """The libvirt version whose API pyvirt follows (:data:`LIBVIR_VERSION`)."""
        return LIBVIR_VERSION

    @wrap("connect")
    def getCapabilities(self) -> str:
        """The host's capabilities XML."""
        return self._api.host.capabilities()

    @wrap("connect")
    def getInfo(self) -> list[Any]:
        """``[arch, memory MiB, CPUs, MHz, NUMA nodes, sockets, cores, threads]``."""
        n = self._api.host.nodeinfo()
        return [n.cpu_model, n.memory_kib // 1024, n.cpus, n.mhz, n.numa_cells, n.sockets,
                n.cores_per_socket, n.threads_per_core]  # fmt: skip

    @wrap("connect")
    def getDomainCapabilities(
        self,
        emulatorbin: str | None = None,
        arch: str | None = None,
        machine: str | None = None,
        virttype: str | None = None,
        flags: int = 0,
    ) -> str:
        """The ``<domainCapabilities>`` XML of one emulator (``domcapabilities``)."""
        return self._api.host.domain_capabilities(
            virttype=virttype, emulatorbin=emulatorbin, arch=arch, machine=machine
        )

    @wrap("connect")
    def getCPUModelNames(self, arch: str, flags: int = 0) -> builtins.list[str]:
        """The names of the CPU models QEMU offers for ``arch``."""
        return [m.name for m in self._api.host.cpu_models(arch)]

    @wrap("connect")
    def getFreeMemory(self) -> int:
        """The host's free memory in bytes."""
        return self._api.host.memstats().free * 1024

    def registerCloseCallback(self, cb: Callable[..., object], opaque: Any) -> int:
        """Accepted; pyvirt connections do not drop."""
        return 0

    def unregisterCloseCallback(self) -> int:
        """Accepted."""
        return 0

    def setKeepAlive(self, interval: int, count: int) -> int:
        """Accepted (pyvirt's client keeps its own connection alive)."""
        return 0

    # -- domains ----------------------------------------------------------------------------
    def _domain(self, name: str) -> virDomain:
        return virDomain(self, name, self._api.domains.get(name))

    def _rows(self) -> builtins.list[DomainStatus]:
        return self._api.domains.list()

    @wrap("domain")
    def listAllDomains(self, flags: int = 0) -> builtins.list[virDomain]:
        """The domains, filtered by ``VIR_CONNECT_LIST_DOMAINS_*`` flags."""
        rows = self._rows()
        managed: set[str] = set()
        if _has_any(flags, c.VIR_CONNECT_LIST_DOMAINS_MANAGEDSAVE,
                    c.VIR_CONNECT_LIST_DOMAINS_NO_MANAGEDSAVE):  # fmt: skip
            managed = self._api.domains.managed_save_names()
        states = {
            "running": c.VIR_CONNECT_LIST_DOMAINS_RUNNING,
            "paused": c.VIR_CONNECT_LIST_DOMAINS_PAUSED,
            "shut off": c.VIR_CONNECT_LIST_DOMAINS_SHUTOFF,
        }
        state_mask = flags & sum(states.values(), c.VIR_CONNECT_LIST_DOMAINS_OTHER)
        out = []
        for s in rows:
            active = str(s.state) != "shut off"
            if not (
                _either(flags, c.VIR_CONNECT_LIST_DOMAINS_ACTIVE,
                        c.VIR_CONNECT_LIST_DOMAINS_INACTIVE, active)
                and _either(flags, c.VIR_CONNECT_LIST_DOMAINS_PERSISTENT,
                            c.VIR_CONNECT_LIST_DOMAINS_TRANSIENT, s.persistent)
                and _either(flags, c.VIR_CONNECT_LIST_DOMAINS_AUTOSTART,
                            c.VIR_CONNECT_LIST_DOMAINS_NO_AUTOSTART, s.autostart)
                and _either(flags, c.VIR_CONNECT_LIST_DOMAINS_MANAGEDSAVE,
                            c.VIR_CONNECT_LIST_DOMAINS_NO_MANAGEDSAVE, s.name in managed)
            ):  # fmt: skip
                continue
            if state_mask and not state_mask & states.get(
                str(s.state), c.VIR_CONNECT_LIST_DOMAINS_OTHER
            ):
                continue
            dom = virDomain(self, s.name)
            if _has_any(flags, c.VIR_CONNECT_LIST_DOMAINS_HAS_SNAPSHOT,
                        c.VIR_CONNECT_LIST_DOMAINS_NO_SNAPSHOT) and not _either(
                flags, c.VIR_CONNECT_LIST_DOMAINS_HAS_SNAPSHOT,
                c.VIR_CONNECT_LIST_DOMAINS_NO_SNAPSHOT, bool(dom._dom.snapshots()),
            ):  # fmt: skip
                continue
            out.append(dom)
        return out

    @wrap("domain")
    def listDomainsID(self) -> builtins.list[int]:
        """The ids of the running (and paused) domains."""
        return [s.id for s in self._rows() if s.id is not None and str(s.state) != "shut off"]

    @wrap("domain")
    def listDefinedDomains(self) -> builtins.list[str]:
        """The names of the shut-off persistent domains."""
        return [s.name for s in self._rows() if str(s.state) == "shut off" and s.persistent]

    def numOfDomains(self) -> int:
        """How many domains run."""
        return len(self.listDomainsID())

    def numOfDefinedDomains(self) -> int:
        """How many persistent domains are shut off."""
        return len(self.listDefinedDomains())

    @wrap("domain")
    def lookupByName(self, name: str) -> virDomain:
        """The domain called ``name``."""
        dom = self._api.domains.get(name)
        if dom.name != name:  # found by UUID or id, not by name
            raise NotFoundError(f"no domain with matching name '{name}'")
        return virDomain(self, name, dom)

    @wrap("domain")
    def lookupByUUIDString(self, uuidstr: str) -> virDomain:
        """The domain with this UUID."""
        want = str(uuidlib.UUID(uuidstr)) if _is_uuid(uuidstr) else ""
        if not want:
            raise NotFoundError(f"no domain with matching uuid '{uuidstr}'")
        dom = self._api.domains.get(want)
        return virDomain(self, dom.name, dom)

    def lookupByUUID(self, uuid: bytes) -> virDomain:
        """The domain with this UUID (16 bytes)."""
        return self.lookupByUUIDString(str(uuidlib.UUID(bytes=bytes(uuid))))

    @wrap("domain")
    def lookupByID(self, id: int) -> virDomain:
        """The running domain with this id."""
        for s in self._rows():
            if s.id == id and str(s.state) != "shut off":
                return virDomain(self, s.name)
        raise NotFoundError(f"no domain with matching id {id}")

    def defineXML(self, xml: str) -> virDomain:
        """Define (or redefine) a persistent domain."""
        return self.defineXMLFlags(xml, 0)

    @wrap("domain", xml=True, writes=True)
    def defineXMLFlags(self, xml: str, flags: int = 0) -> virDomain:
        """Define (or redefine) a persistent domain (``VIR_DOMAIN_DEFINE_VALIDATE`` is
        always done)."""
        dom, _ = self._api.domains.define(xml)
        return virDomain(self, dom.name, dom)

    @wrap("domain", xml=True, writes=True)
    def createXML(self, xmlDesc: str, flags: int = 0) -> virDomain:
        """Create and start a domain (transient unless defined already;
        ``VIR_DOMAIN_START_PAUSED``)."""
        dom = self._api.domains.create(xmlDesc, paused=bool(flags & c.VIR_DOMAIN_START_PAUSED))
        return virDomain(self, dom.name, dom)

    def createLinux(self, xmlDesc: str, flags: int = 0) -> virDomain:
        """The old name of :meth:`createXML`."""
        return self.createXML(xmlDesc, flags)

    # -- networks ---------------------------------------------------------------------------
    @wrap("network")
    def listAllNetworks(self, flags: int = 0) -> builtins.list[virNetwork]:
        """The networks, filtered by ``VIR_CONNECT_LIST_NETWORKS_*`` flags."""
        return [
            virNetwork(self, self._api.networks.get(n.name))
            for n in self._api.networks.list(active=None)
            if _either(flags, c.VIR_CONNECT_LIST_NETWORKS_ACTIVE,
                       c.VIR_CONNECT_LIST_NETWORKS_INACTIVE, n.active)
            and _either(flags, c.VIR_CONNECT_LIST_NETWORKS_PERSISTENT,
                        c.VIR_CONNECT_LIST_NETWORKS_TRANSIENT, n.persistent)
            and _either(flags, c.VIR_CONNECT_LIST_NETWORKS_AUTOSTART,
                        c.VIR_CONNECT_LIST_NETWORKS_NO_AUTOSTART, n.autostart)
        ]  # fmt: skip

    @wrap("network")
    def listNetworks(self) -> builtins.list[str]:
        """The names of the active networks."""
        return [n.name for n in self._api.networks.list(active=True)]

    @wrap("network")
    def listDefinedNetworks(self) -> builtins.list[str]:
        """The names of the inactive networks."""
        return [n.name for n in self._api.networks.list(active=False)]

    def numOfNetworks(self) -> int:
        """How many networks are active."""
        return len(self.listNetworks())

    def numOfDefinedNetworks(self) -> int:
        """How many networks are inactive."""
        return len(self.listDefinedNetworks())

    @wrap("network")
    def networkLookupByName(self, name: str) -> virNetwork:
        """The network called ``name``."""
        return virNetwork(self, self._api.networks.get(name))

    @wrap("network")
    def networkLookupByUUIDString(self, uuidstr: str) -> virNetwork:
        """The network with this UUID."""
        return virNetwork(self, self._api.networks.get(uuidstr))

    @wrap("network", xml=True, writes=True)
    def networkDefineXML(self, xml: str) -> virNetwork:
        """Define (or redefine) a persistent network."""
        net, _ = self._api.networks.define(xml)
        return virNetwork(self, net)

    @wrap("network", xml=True, writes=True)
    def networkCreateXML(self, xmlDesc: str) -> virNetwork:
        """Create and start a transient network."""
        return virNetwork(self, self._api.networks.create(xmlDesc))

    # -- storage ----------------------------------------------------------------------------
    @wrap("pool")
    def listAllStoragePools(self, flags: int = 0) -> builtins.list[virStoragePool]:
        """The pools, filtered by ``VIR_CONNECT_LIST_STORAGE_POOLS_*`` flags (types: all)."""
        return [
            virStoragePool(self, self._api.pools.get(p.name))
            for p in self._api.pools.list(all=True)
            if _either(flags, c.VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE,
                       c.VIR_CONNECT_LIST_STORAGE_POOLS_INACTIVE, p.state == "running")
            and _either(flags, c.VIR_CONNECT_LIST_STORAGE_POOLS_PERSISTENT,
                        c.VIR_CONNECT_LIST_STORAGE_POOLS_TRANSIENT, p.persistent)
            and _either(flags, c.VIR_CONNECT_LIST_STORAGE_POOLS_AUTOSTART,
                        c.VIR_CONNECT_LIST_STORAGE_POOLS_NO_AUTOSTART, p.autostart)
        ]  # fmt: skip

    @wrap("pool")
    def listStoragePools(self) -> builtins.list[str]:
        """The names of the active pools."""
        return [p.name for p in self._api.pools.list(all=True) if p.state == "running"]

    @wrap("pool")
    def listDefinedStoragePools(self) -> builtins.list[str]:
        """The names of the inactive pools."""
        return [p.name for p in self._api.pools.list(all=True) if p.state != "running"]

    def numOfStoragePools(self) -> int:
        """How many pools are active."""
        return len(self.listStoragePools())

    def numOfDefinedStoragePools(self) -> int:
        """How many pools are inactive."""
        return len(self.listDefinedStoragePools())

    @wrap("pool")
    def storagePoolLookupByName(self, name: str) -> virStoragePool:
        """The pool called ``name``."""
        return virStoragePool(self, self._api.pools.get(name))

    @wrap("pool")
    def storagePoolLookupByUUIDString(self, uuidstr: str) -> virStoragePool:
        """The pool with this UUID."""
        return virStoragePool(self, self._api.pools.get(uuidstr))

    @wrap("pool", xml=True, writes=True)
    def storagePoolDefineXML(self, xml: str, flags: int = 0) -> virStoragePool:
        """Define (or redefine) a persistent pool."""
        pool, _ = self._api.pools.define(xml)
        return virStoragePool(self, pool)

    @wrap("pool", xml=True, writes=True)
    def storagePoolCreateXML(self, xmlDesc: str, flags: int = 0) -> virStoragePool:
        """Create and start a transient pool (``STORAGE_POOL_CREATE_WITH_BUILD``)."""
        pool = self._api.pools.create(xmlDesc, build=bool(flags & 7))
        return virStoragePool(self, pool)

    @wrap("volume")
    def storageVolLookupByPath(self, path: str) -> virStorageVol:
        """The volume at ``path``, in whichever active pool holds it."""
        return virStorageVol(self, self._api.pools.volume(path))

    @wrap("volume")
    def storageVolLookupByKey(self, key: str) -> virStorageVol:
        """The volume with this key."""
        return virStorageVol(self, self._api.pools.volume(key))


def _is_uuid(text: str) -> bool:
    try:
        uuidlib.UUID(text)
    except ValueError:
        return False
    return True
