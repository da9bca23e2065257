"""Domains through pyvirtd: :class:`RemoteDomainCollection` and :class:`RemoteDomain`.

They subclass the embedded :class:`~pyvirt.api.domains.DomainCollection` and
:class:`~pyvirt.api.domains.Domain` and override the verbs of ``/api/v1/domains`` with REST
calls, returning the same typed results (rebuilt from the JSON by :func:`status_from_json`
and :func:`info_from_json`). Other verbs are inherited (see :mod:`pyvirt.api.remote.connection`).
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from pyvirt.api.domains import Domain, DomainCollection, DomainInfo, DomainStatus, Reason, State
from pyvirt.api.remote.backups import RemoteBackups
from pyvirt.api.remote.block_jobs import RemoteBlockJobs
from pyvirt.api.remote.checkpoints import RemoteCheckpoints
from pyvirt.api.remote.domain_verbs import RemoteDomainVerbs, RemoteSaveImages
from pyvirt.api.remote.migration import RemoteMigrationHost, RemoteMigrationVerbs
from pyvirt.api.remote.volume_jobs import DomainCloneMixin
from pyvirt.client.transport import API
from pyvirt.errors import InvalidStateError, UnsupportedError

if TYPE_CHECKING:
    from pyvirt.client.transport import Client
    from pyvirt.service.connection import Connection as ServiceConnection

__all__ = ["RemoteDomain", "RemoteDomainCollection", "info_from_json", "status_from_json"]

XML = "application/xml"


def status_from_json(doc: Mapping[str, Any]) -> DomainStatus:
    """A :class:`DomainStatus` from its ``to_json()`` form."""
    return DomainStatus(
        name=str(doc["name"]),
        uuid=str(doc.get("uuid") or ""),
        id=doc.get("id"),
        state=State(doc["state"]),
        reason=Reason(doc["reason"]),
        persistent=bool(doc["persistent"]),
        autostart=bool(doc["autostart"]),
        pid=doc.get("pid"),
        problem=doc.get("problem"),
    )


def info_from_json(doc: Mapping[str, Any]) -> DomainInfo:
    """A :class:`DomainInfo` from its ``to_json()`` form."""
    return DomainInfo(
        status=status_from_json(doc),
        os_type=str(doc["os_type"]),
        vcpus=int(doc["vcpus"]),
        cpu_time=doc.get("cpu_time"),
        max_memory_kib=int(doc["max_memory_kib"]),
        used_memory_kib=int(doc["used_memory_kib"]),
        title=doc.get("title"),
        managed_save=bool(doc.get("managed_save", False)),
    )


def domain_path(name: str, *rest: str) -> str:
    """``/api/v1/domains/NAME[/REST...]`` with the name quoted."""
    return "/".join((f"{API}/domains", quote(name, safe=""), *rest))


def _query(**params: Any) -> str:
    """``?k=v&...`` of the parameters that are not None (booleans as true/false)."""
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        if value is None:
            continue
        for item in value if isinstance(value, list | tuple) else [value]:
            pairs.append((key, str(item).lower() if isinstance(item, bool) else str(item)))
    return "?" + urlencode(pairs) if pairs else ""


def _body(xml: str | bytes) -> bytes:
    return xml.encode() if isinstance(xml, str) else xml


class RemoteDomainCollection(
    DomainCloneMixin, RemoteSaveImages, RemoteMigrationHost, DomainCollection
):
    """``conn.domains`` of a :class:`~pyvirt.api.remote.connection.RemoteConnection`."""

    def __init__(self, service: ServiceConnection, client: Client) -> None:
        super().__init__(service)
        self._client = client

    def _handle(self, name: str) -> RemoteDomain:
        return RemoteDomain(self._service, name, self._client)

    def get(self, ident: str) -> RemoteDomain:
        """The domain known by name, UUID or numeric id (asks the daemon).

        :raises NotFoundError: no domain matches
        """
        doc = self._client.json("GET", domain_path(ident, "state"))
        return self._handle(str(doc["name"]))

    def list(
        self,
        *,
        states: Iterable[State] | None = None,
        persistent: bool | None = None,
        autostart: bool | None = None,
        with_uuids: bool = True,
    ) -> builtins.list[DomainStatus]:
        """Every domain's status (see :meth:`DomainCollection.list`)."""
        wanted = [str(s) for s in states] if states is not None else None
        query = _query(
            all=True if wanted is None else None,
            state=wanted or None,
            persistent=persistent,
            autostart=autostart,
            uuids=with_uuids,
        )
        if wanted == []:
            return []
        rows = self._client.json("GET", f"{API}/domains{query}")
        return [status_from_json(r) for r in rows]

    def define(
        self, xml: str | bytes, *, force: bool = False, expect_revision: str | bool | None = False
    ) -> tuple[RemoteDomain, builtins.list[str]]:
        """Define (or redefine) a persistent domain (see :meth:`DomainCollection.define`);
        ``expect_revision`` travels as ``If-Match`` (``None``: ``If-None-Match: *``).

        :raises PreconditionFailedError: (an :class:`InvalidStateError`) the revision is stale
        """
        headers = {}
        if expect_revision is None:
            headers["If-None-Match"] = "*"
        elif isinstance(expect_revision, str):
            headers["If-Match"] = f'"{expect_revision}"'
        resp = self._client.request(
            "POST", f"{API}/domains{_query(force=force or None)}",
            body=_body(xml), content_type=XML, headers=headers,
        )  # fmt: skip
        doc = resp.json()
        return self._handle(str(doc["name"])), [str(w) for w in doc["warnings"]]

    def create(self, xml: str | bytes, *, paused: bool = False) -> RemoteDomain:
        """Create and start a domain from XML (see :meth:`DomainCollection.create`)."""
        query = _query(create=True, paused=paused or None)
        resp = self._client.request(
            "POST", f"{API}/domains{query}", body=_body(xml), content_type=XML
        )
        return self._handle(str(resp.json()["name"]))


class RemoteDomain(
    RemoteDomainVerbs,
    RemoteBlockJobs,
    RemoteBackups,
    RemoteCheckpoints,
    RemoteMigrationVerbs,
    Domain,
):
    """A :class:`~pyvirt.api.domains.Domain` whose lifecycle, inspection, snapshot, save,
    device-XML, block job, checkpoint and backup verbs are requests to the daemon."""

    def __init__(self, service: ServiceConnection, name: str, client: Client) -> None:
        super().__init__(service, name)
        self._client = client

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RemoteDomain) and (other._name, other._client.target) == (
            self._name,
            self._client.target,
        )

    def __hash__(self) -> int:
        return hash(self._name)

    def _post(self, verb: str, payload: Any = None) -> DomainStatus:
        return status_from_json(self._client.json("POST", domain_path(self._name, verb), payload))

    # -- lifecycle -----------------------------------------------------------------------
    def start(self, *, paused: bool = False, force_boot: bool = False) -> DomainStatus:
        """Start the shut-off, defined domain (``start``; a managed save is resumed)."""
        return self._post("start", {"paused": paused, "force_boot": force_boot})

    def shutdown(self, mode: str | Sequence[str] | None = None) -> None:
        """Ask the guest to power off (``shutdown``); returns at once."""
        modes = mode.split(",") if isinstance(mode, str) else mode
        payload = {"mode": [m.strip() for m in modes if m.strip()]} if modes else {}
        self._post("shutdown", payload)

    def destroy(self, *, graceful: bool = False, stop_work: bool = True) -> None:
        """Stop QEMU at once (``destroy``); ``stop_work`` is the daemon's choice (it leaves
        the stop work to its supervisor when that watches the domain)."""
        del stop_work
        self._post("destroy", {"graceful": graceful})

    def reboot(self) -> None:
        """Reboot the guest (``reboot``)."""
        self._post("reboot")

    def reset(self) -> None:
        """Reset the machine (``reset``)."""
        self._post("reset")

    def suspend(self) -> None:
        """Pause the vCPUs (``suspend``)."""
        self._post("suspend")

    def resume(self) -> None:
        """Run the vCPUs again (``resume``)."""
        self._post("resume")

    def undefine(
        self,
        *,
        remove_all_storage: bool = False,
        storage: Sequence[str] = (),
        force: bool = False,
        snapshots_metadata: bool = False,
        managed_save: bool = False,
        checkpoints_metadata: bool = False,
        nvram: bool = False,
        keep_nvram: bool = False,
        tpm: bool = False,
        keep_tpm: bool = False,
    ) -> builtins.list[str]:
        """Remove the persistent definition (see :meth:`Domain.undefine`)."""
        if checkpoints_metadata:
            raise UnsupportedError("--checkpoints-metadata is not supported through pyvirtd yet",
                                   hint="delete the checkpoints first")  # fmt: skip
        query = _query(
            remove_all_storage=remove_all_storage or None,
            storage=list(storage) or None,
            force=force or None,
            snapshots_metadata=snapshots_metadata or None,
            managed_save=managed_save or None,
            nvram=nvram or None,
            keep_nvram=keep_nvram or None,
            tpm=tpm or None,
            keep_tpm=keep_tpm or None,
        )
        doc = self._client.json("DELETE", domain_path(self._name) + query)
        return [str(x) for x in doc["removed"]]

    def rename(self, new_name: str) -> None:
        """Rename the shut-off, persistent domain (``domrename``); the handle follows."""
        st = self._post("rename", {"new_name": new_name})
        self._name = st.name

    def set_autostart(self, enabled: bool) -> None:
        """Start (or not) the domain when the host starts."""
        self._client.json("PUT", domain_path(self._name, "autostart"), {"enabled": enabled})

    def revision(self) -> str:
        """The persistent definition's revision (the ``ETag`` of its XML).

        :raises InvalidStateError: the domain is transient
        """
        resp = self._client.request("GET", domain_path(self._name, "xml") + "?inactive=true")
        etag = resp.headers.get("etag")
        if not etag:
            raise InvalidStateError(f"domain '{self._name}' is transient; it has no definition")
        return etag.removeprefix("W/").strip('"')

    def redefine(
        self, xml: str | bytes, *, expect_revision: str | None = None
    ) -> builtins.list[str]:
        """Replace the definition (``PUT .../xml``, ``If-Match`` when ``expect_revision``).

        :raises PreconditionFailedError: (an :class:`InvalidStateError`) the revision is stale
        """
        headers = {"If-Match": f'"{expect_revision}"'} if expect_revision is not None else {}
        resp = self._client.request(
            "PUT", domain_path(self._name, "xml"), body=_body(xml), content_type=XML,
            headers=headers,
        )  # fmt: skip
        return [str(w) for w in resp.json()["warnings"]]

    # -- inspection ----------------------------------------------------------------------
    def status(self) -> DomainStatus:
        """State, reason, id, UUID, persistence and autostart."""
        return status_from_json(self._client.json("GET", domain_path(self._name, "state")))

    def info(self) -> DomainInfo:
        """``dominfo``."""
        return info_from_json(self._client.json("GET", domain_path(self._name)))

    def xml_desc(self, *, inactive: bool = False, security_info: bool = False) -> str:
        """The definition as XML (``dumpxml``)."""
        query = _query(inactive=inactive or None, security_info=security_info or None)
        return self._client.request("GET", domain_path(self._name, "xml") + query).text()
