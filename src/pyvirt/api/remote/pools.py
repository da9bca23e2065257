"""Storage pools and volumes through a pyvirtd: :class:`RemotePoolCollection`,
:class:`RemotePool` and :class:`RemoteVolume`, the same verbs and results as
:mod:`pyvirt.api.pools`.

Verbs the REST API does not carry here (``define_as``/``create_as``, ``find_sources``,
``vol-create``/``vol-create-from``; clone, upload, download and wipe, which are daemon jobs)
use ``service`` (the embedded implementation, for a daemon on this host) or raise
:class:`~pyvirt.errors.UnsupportedError`.
"""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING

from pyvirt.api.pools import Pool, PoolCollection, PoolStatus, Volume, VolumeInfo
from pyvirt.api.remote._resources import local_service, path, post_xml, precondition, query
from pyvirt.api.remote.volume_jobs import VolumeJobsMixin
from pyvirt.errors import InvalidStateError, PyvirtError

if TYPE_CHECKING:
    from pyvirt.client.transport import Client
    from pyvirt.service.connection import Connection as ServiceConnection
    from pyvirt.service.storage.pools import PoolManager
    from pyvirt.service.storage.volumes import VolumeManager

__all__ = ["RemotePool", "RemotePoolCollection", "RemoteVolume"]


class RemotePoolCollection(PoolCollection):
    """``conn.pools`` of a remote connection."""

    def __init__(self, client: Client, service: ServiceConnection | None = None) -> None:
        super().__init__(service)  # type: ignore[arg-type]
        self._client = client
        self._local = service

    @property
    def _mgr(self) -> PoolManager:
        return local_service(self._local, "this pool verb").pools

    def list(self, *, all: bool = False, inactive: bool = False) -> builtins.list[PoolStatus]:
        """``pool-list`` (see :meth:`PoolCollection.list`)."""
        rows = self._client.json("GET", query(path("pools"), all=all, inactive=inactive))
        return [PoolStatus(**row) for row in rows]

    def get(self, name_or_uuid: str) -> RemotePool:
        """The pool known by name or UUID.

        :raises NotFoundError: no such pool
        """
        info = self._client.json("GET", path("pools", name_or_uuid))
        return RemotePool(self._client, self._local, info["name"])

    def define(self, xml: str | bytes) -> tuple[RemotePool, builtins.list[str]]:
        """``pool-define`` (see :meth:`PoolCollection.define`)."""
        made = post_xml(self._client, path("pools"), xml)
        return RemotePool(self._client, self._local, made["name"]), list(made["warnings"])

    def create(
        self, xml: str | bytes, *, build: bool = False, overwrite: bool | None = None
    ) -> RemotePool:
        """``pool-create`` (see :meth:`PoolCollection.create`)."""
        url = query(path("pools"), create=True, build=build, overwrite=overwrite)
        made = post_xml(self._client, url, xml)
        return RemotePool(self._client, self._local, made["name"])


class RemotePool(Pool):
    """One storage pool of a remote connection."""

    def __init__(self, client: Client, service: ServiceConnection | None, name: str) -> None:
        super().__init__(service, name)  # type: ignore[arg-type]
        self._client = client
        self._local = service

    @property
    def _mgr(self) -> PoolManager:
        return local_service(self._local, "this pool verb").pools

    @property
    def _vols(self) -> VolumeManager:
        return local_service(self._local, "this volume verb").pools.volumes

    def _url(self, *rest: str) -> str:
        return path("pools", self._name, *rest)

    def info(self) -> PoolStatus:
        """``pool-info``."""
        return PoolStatus(**self._client.json("GET", self._url()))

    def xml_desc(self, *, inactive: bool = False) -> str:
        """``pool-dumpxml``."""
        return self._client.request("GET", query(self._url("xml"), inactive=inactive)).text()

    def revision(self) -> str:
        """The persistent definition's revision (the daemon's ``ETag``).

        :raises InvalidStateError: the pool is transient
        """
        tag = self._client.request("GET", self._url("xml")).headers.get("etag")
        if not tag:
            raise InvalidStateError(f"pool '{self._name}' is transient")
        return tag.strip('"')

    def redefine(self, xml: str | bytes, *, expect_revision: str | None = None) -> list[str]:
        """Replace the definition (``If-Match`` with ``expect_revision``)."""
        headers = {"If-Match": f'"{expect_revision}"'} if expect_revision else {}
        body = xml.encode() if isinstance(xml, str) else xml
        try:
            resp = self._client.request(
                "PUT", self._url("xml"), body=body, content_type="application/xml",
                headers=headers,
            )  # fmt: skip
        except PyvirtError as err:
            raise precondition(err) from None
        return list(resp.json()["warnings"])

    def start(self, *, build: bool = False, overwrite: bool | None = None) -> None:
        """``pool-start``."""
        self._client.json("POST", self._url("start"), {"build": build, "overwrite": overwrite})

    def build(self, *, overwrite: bool | None = None) -> None:
        """``pool-build``."""
        self._client.json("POST", self._url("build"), {"overwrite": overwrite})

    def destroy(self) -> None:
        """``pool-destroy``."""
        self._client.request("POST", self._url("destroy"))

    def delete(self) -> None:
        """``pool-delete``."""
        self._client.request("POST", self._url("delete"))

    def undefine(self) -> None:
        """``pool-undefine``."""
        self._client.request("DELETE", self._url())

    def refresh(self) -> None:
        """``pool-refresh``."""
        self._client.request("POST", self._url("refresh"))

    def set_autostart(self, enabled: bool) -> None:
        """``pool-autostart [--disable]``."""
        self._client.json("PUT", self._url("autostart"), {"enabled": enabled})

    def volumes(self) -> list[VolumeInfo]:
        """``vol-list``."""
        return [VolumeInfo(**row) for row in self._client.json("GET", self._url("volumes"))]

    def volume(self, name: str) -> RemoteVolume:
        """A volume of this pool by name.

        :raises NotFoundError: no such volume in this pool
        """
        info = VolumeInfo(**self._client.json("GET", self._url("volumes", name)))
        return RemoteVolume(self._client, self._local, self._name, info)

    def create_volume(
        self,
        name: str,
        capacity: int,
        *,
        format: str | None = None,
        allocation: int | None = None,
        prealloc_metadata: bool = False,
        backing_vol: str | None = None,
        backing_vol_format: str | None = None,
    ) -> RemoteVolume:
        """``vol-create-as`` (see :meth:`Pool.create_volume`)."""
        body = {
            "name": name, "capacity": capacity, "format": format, "allocation": allocation,
            "prealloc_metadata": prealloc_metadata, "backing_vol": backing_vol,
            "backing_vol_format": backing_vol_format,
        }  # fmt: skip
        info = VolumeInfo(**self._client.json("POST", self._url("volumes"), body))
        return RemoteVolume(self._client, self._local, self._name, info)


class RemoteVolume(VolumeJobsMixin, Volume):
    """One volume of a remote connection (clone, upload, download and wipe run as jobs of the
    daemon: :class:`~pyvirt.api.remote.volume_jobs.VolumeJobsMixin`)."""

    def __init__(
        self, client: Client, service: ServiceConnection | None, pool: str, info: VolumeInfo
    ) -> None:
        super().__init__(service, pool, info)  # type: ignore[arg-type]
        self._client = client
        self._local = service

    @property
    def _vols(self) -> VolumeManager:
        return local_service(self._local, "this volume verb").pools.volumes

    def _url(self, *rest: str) -> str:
        return path("pools", self._pool, "volumes", self._seen.name, *rest)

    def _job_volume(self, name: str) -> RemoteVolume:
        return self.pool.volume(name)

    @property
    def pool(self) -> RemotePool:
        """The pool holding the volume."""
        return RemotePool(self._client, self._local, self._pool)

    def info(self) -> VolumeInfo:
        """``vol-info``."""
        self._seen = VolumeInfo(**self._client.json("GET", self._url()))
        return self._seen

    def xml_desc(self) -> str:
        """``vol-dumpxml``."""
        return self._client.request("GET", self._url("xml")).text()

    def delete(self) -> None:
        """``vol-delete``."""
        self._client.request("DELETE", self._url())

    def resize(
        self, capacity: int, *, delta: bool = False, allocate: bool = False, shrink: bool = False
    ) -> VolumeInfo:
        """``vol-resize`` (see :meth:`Volume.resize`)."""
        body = {"capacity": capacity, "delta": delta, "allocate": allocate, "shrink": shrink}
        self._seen = VolumeInfo(**self._client.json("POST", self._url("resize"), body))
        return self._seen
