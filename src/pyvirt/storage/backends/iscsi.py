"""``iscsi`` pools: the LUNs of one iSCSI target, reached from user space.

This works like libvirt's ``iscsi-direct`` pool type (registered under both names): there is no
kernel session and no ``/dev/disk/by-path`` node. ``pool-start`` checks that the portal offers
the target, ``pool-refresh`` lists its disk LUNs with ``iscsi-ls`` and reads each exact size with
``iscsi-readcapacity16``, and a volume is handed to QEMU as ``<disk type='network'>`` with
``protocol='iscsi'`` and name ``IQN/LUN`` (QEMU's libiscsi driver logs in by itself).

Volumes are named ``unit:0:0:LUN`` as libvirt names them. LUNs are made on the target's side,
so this pool type cannot create, delete or resize volumes. The ``<target><path>`` (libvirt's
``/dev/disk/by-path``) is accepted and not used.
"""

from __future__ import annotations

from typing import ClassVar
from xml.sax.saxutils import quoteattr

from pyvirt.errors import InvalidConfigError, NotFoundError, UnsupportedError
from pyvirt.storage import libiscsi, qemu_modules
from pyvirt.storage.base import DiskSource, PoolBackend, PoolCapabilities, PoolInfo, VolumeInfo
from pyvirt.storage.registry import register_pool_backend

DISK_TYPES = ("DIRECT_ACCESS",)


def volume_name(lun: int) -> str:
    """libvirt's name for a LUN volume: ``unit:0:0:LUN``."""
    return f"unit:0:0:{lun}"


@register_pool_backend("iscsi")
class IscsiPool(PoolBackend):
    """The disk LUNs of one target; QEMU opens them with its libiscsi driver."""

    capabilities: ClassVar[PoolCapabilities] = PoolCapabilities(
        formats=("raw",),
        source_fields=("host", "device"),
        create_volumes=False,
        resize=False,
        shrink=False,
        thin=False,
        upload=False,
        find_sources=True,
        target_is_dir=False,
        remote=True,
    )

    @property
    def host(self) -> str:
        """The portal's address."""
        src = self.pool.source
        return (src.host if src is not None else None) or ""

    @property
    def port(self) -> int | None:
        """The portal's port (3260 when absent)."""
        src = self.pool.source
        hosts = src.hosts if src is not None else []
        return hosts[0].port if hosts else None

    @property
    def iqn(self) -> str:
        """The target's IQN (``<source><device path>``)."""
        src = self.pool.source
        return (src.device if src is not None else None) or ""

    @property
    def initiator(self) -> str | None:
        """``<source><initiator><iqn name>``, when set."""
        src = self.pool.source
        return src.initiator_iqn if src is not None else None

    def check(self) -> None:
        """Needs ``<source><host>`` and ``<source><device path='IQN'>``; CHAP not yet."""
        if not self.host:
            raise InvalidConfigError(
                f"pool '{self.name}': an iscsi pool needs <source><host name=...>",
                hint="give --source-host",
            )
        if not self.iqn:
            raise InvalidConfigError(
                f"pool '{self.name}': an iscsi pool needs the target IQN in "
                "<source><device path=...>",
                hint="give --source-dev",
            )
        src = self.pool.source
        if src is not None and src.auth_type:
            raise UnsupportedError(
                f"pool '{self.name}': iSCSI authentication ({src.auth_type}) is not supported yet",
                hint="remove <source><auth> or allow the initiator without CHAP on the target",
            )

    def _luns(self) -> list[libiscsi.Lun]:
        found = libiscsi.luns(self.host, self.port, self.iqn, self.initiator)
        if found is None:
            where = f"{self.host}:{self.port or libiscsi.DEFAULT_PORT}"
            raise NotFoundError(
                f"pool '{self.name}': the portal {where} does not offer target '{self.iqn}'",
                hint=f"list the targets with 'find-storage-pool-sources iscsi --host {self.host}'",
            )
        return [lun for lun in found if lun.type in DISK_TYPES]

    def start(self) -> None:
        """Check that QEMU can open the LUNs, the portal answers and offers the target."""
        qemu_modules.require_block_driver(f"pool '{self.name}'", "iscsi")
        self._luns()

    def info(self) -> PoolInfo:
        """Capacity is the sum of the LUNs, all of it allocated."""
        total = sum(v.capacity for v in self.refresh())
        return PoolInfo(capacity=total, allocation=total, available=0)

    def _volume(self, lun: int) -> VolumeInfo:
        size = libiscsi.capacity(self.host, self.port, self.iqn, lun, self.initiator)
        url = libiscsi.lun_url(self.host, self.port, self.iqn, lun)
        return VolumeInfo(
            name=volume_name(lun),
            key=url,
            path=url,
            type="network",
            format="raw",
            capacity=size,
            allocation=size,
            physical=size,
        )

    def refresh(self) -> list[VolumeInfo]:
        """Every disk LUN of the target with its exact size."""
        return sorted((self._volume(lun.number) for lun in self._luns()), key=lambda v: v.name)

    def disk_source(self, vol: VolumeInfo) -> DiskSource:
        """``network``/``iscsi``, name ``IQN/LUN``."""
        lun = vol.name.rpartition(":")[2]
        options = {"initiator-name": self.initiator} if self.initiator else {}
        return DiskSource(
            kind="network",
            format="raw",
            protocol="iscsi",
            host=self.host,
            port=self.port or libiscsi.DEFAULT_PORT,
            name=f"{self.iqn}/{lun}",
            options=options,
        )

    @classmethod
    def find_sources(cls, host: str | None, spec: object | None) -> str:
        """The targets the portal at ``host`` (``HOST[:PORT]``) offers."""
        if not host:
            raise InvalidConfigError(
                "find-storage-pool-sources for iscsi needs a host", hint="give --host"
            )
        name, _, port_text = host.partition(":") if host.count(":") == 1 else (host, "", "")
        port = int(port_text) if port_text.isdigit() else None
        lines = ["<sources>"]
        for iqn in libiscsi.targets(name, port):
            port_attr = f" port='{port}'" if port else ""
            lines += [
                "  <source>",
                f"    <host name={quoteattr(name)}{port_attr}/>",
                f"    <device path={quoteattr(iqn)}/>",
                "  </source>",
            ]
        lines.append("</sources>")
        return "\n".join(lines) + "\n"


@register_pool_backend("iscsi-direct")
class IscsiDirectPool(IscsiPool):
    """libvirt's name for the same user-space iSCSI pool."""
