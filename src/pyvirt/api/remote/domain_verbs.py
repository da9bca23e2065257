"""The remote snapshot, save and device-XML verbs of a domain: thin requests to pyvirtd's
``routes/snapshots.py``, ``routes/saves.py``, ``routes/devices.py`` and
``routes/devupdate.py``, returning the embedded API's types.

:class:`RemoteDomainVerbs` is mixed into :class:`~pyvirt.api.remote.domains.RemoteDomain`
(the class provides ``_client`` and ``_name``), :class:`RemoteSaveImages` into the remote
collection. Long verbs (save, managed save, restore, a snapshot delete that merges) are the
daemon's jobs, waited for with the caller's ``progress`` and cancelled on Ctrl-C or
``cancel``. Paths (save files, memspecs, diskspecs) are paths on the daemon's host.
"""

from __future__ import annotations

import builtins
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from pyvirt.api.remote.jobs import JobInfo, wait_for
from pyvirt.client.transport import API
from pyvirt.errors import NotFoundError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pyvirt.api.device_xml import DeviceChange
    from pyvirt.client.transport import Client
    from pyvirt.progress import CancelToken, Progress
    from pyvirt.service.device.guest import BlockError, ControlInfo
    from pyvirt.service.snapshot.store import SnapshotInfo

__all__ = ["RemoteDomainVerbs", "RemoteSaveImages", "snapshot_from_json"]

XML = "application/xml"

# lazy: function-local imports marked ``# lazy`` load the value types (and lxml for
# snapshot-edit) only for the verbs that return them.


def _q(**params: Any) -> str:
    """``?k=v&...`` of the parameters that are not None (booleans as true/false)."""
    pairs = [(k, str(v).lower() if isinstance(v, bool) else str(v))
             for k, v in params.items() if v is not None]  # fmt: skip
    return "?" + urlencode(pairs) if pairs else ""


def _bytes(xml: str | bytes | None) -> bytes:
    if xml is None:
        return b""
    return xml.encode() if isinstance(xml, str) else xml


def snapshot_from_json(doc: dict[str, Any]) -> SnapshotInfo:
    """A :class:`SnapshotInfo` from its ``to_json()`` form."""
    from pyvirt.service.snapshot.store import SnapshotInfo  # lazy

    return SnapshotInfo(
        str(doc["name"]), str(doc["domain"]), int(doc["creation_time"]), str(doc["state"]),
        doc.get("parent"), str(doc["location"]), bool(doc["current"]), int(doc["children"]),
        int(doc["descendants"]),
    )  # fmt: skip


def _job_result(client: Client, resp_status: int, doc: dict[str, Any], **wait: Any) -> Any:
    """The result of a 202 job answer once the job completed (a 200 answer as it is)."""
    if resp_status != 202:
        return doc
    return wait_for(client, JobInfo.from_json(doc["job"]), **wait).result


class RemoteDomainVerbs:
    """Snapshot, save and device-XML verbs of a remote domain."""

    _client: Client
    _name: str

    def _url(self, *rest: str) -> str:
        parts = [quote(p, safe="") for p in rest]
        return "/".join((f"{API}/domains", quote(self._name, safe=""), *parts))

    # -- snapshots -----------------------------------------------------------------------
    def _snap(self, snapshot: str | None) -> str:
        """``snapshot``, or the current one's name (None: there is none)."""
        if snapshot is not None:
            return snapshot
        current = self.current_snapshot()
        if current is None:
            raise NotFoundError(f"domain '{self._name}' has no current snapshot")
        return current

    def snapshot_create(
        self,
        xml: str | bytes | None = None,
        *,
        disk_only: bool = False,
        atomic: bool = False,
        quiesce: bool = False,
        live: bool = False,
        no_metadata: bool = False,
        redefine: bool = False,
        current: bool = False,
    ) -> SnapshotInfo:
        """``snapshot-create`` on the daemon (see :meth:`Domain.snapshot_create`)."""
        query = _q(disk_only=disk_only or None, atomic=atomic or None, quiesce=quiesce or None,
                   live=live or None, no_metadata=no_metadata or None, redefine=redefine or None,
                   current=current or None)  # fmt: skip
        resp = self._client.request(
            "POST", self._url("snapshots") + query, body=_bytes(xml), content_type=XML
        )
        return snapshot_from_json(resp.json())

    def snapshot_create_as(
        self,
        name: str | None = None,
        description: str | None = None,
        *,
        memspec: str | None = None,
        diskspecs: Sequence[str] = (),
        disk_only: bool = False,
        atomic: bool = False,
        quiesce: bool = False,
        live: bool = False,
        no_metadata: bool = False,
    ) -> SnapshotInfo:
        """``snapshot-create-as`` on the daemon (see :meth:`Domain.snapshot_create_as`)."""
        body = {"name": name, "description": description, "memspec": memspec,
                "diskspecs": list(diskspecs), "disk_only": disk_only, "atomic": atomic,
                "quiesce": quiesce, "live": live, "no_metadata": no_metadata}  # fmt: skip
        return snapshot_from_json(
            self._client.json("POST", self._url("snapshots", "create-as"), body)
        )

    def snapshots(self) -> builtins.list[SnapshotInfo]:
        """Every snapshot, parents before children (``snapshot-list``)."""
        return [snapshot_from_json(d) for d in self._client.json("GET", self._url("snapshots"))]

    def snapshot_info(self, snapshot: str | None = None) -> SnapshotInfo:
        """One snapshot (None: the current one)."""
        doc = self._client.json("GET", self._url("snapshots", self._snap(snapshot)))
        return snapshot_from_json(doc)

    def snapshot_children(
        self, snapshot: str | None, *, descendants: bool = False
    ) -> builtins.list[str]:
        """The children (or all descendants) of *snapshot*; None: the roots."""
        if snapshot is None:
            return [s.name for s in self.snapshots() if s.parent is None]
        url = self._url("snapshots", snapshot, "children") + _q(descendants=descendants)
        return [str(n) for n in self._client.json("GET", url)]

    def snapshot_xml(self, snapshot: str | None = None) -> str:
        """The ``<domainsnapshot>`` XML of *snapshot* (None: the current one)."""
        return self._client.request(
            "GET", self._url("snapshots", self._snap(snapshot), "xml")
        ).text()

    def current_snapshot(self) -> str | None:
        """The current snapshot's name (None: none)."""
        name = self._client.json("GET", self._url("current-snapshot"))["name"]
        return None if name is None else str(name)

    def set_current_snapshot(self, snapshot: str) -> None:
        """Make *snapshot* the current one."""
        self._client.request(
            "PUT", self._url("current-snapshot"), body=_json({"name": snapshot}),
            content_type="application/json",
        )  # fmt: skip

    def snapshot_redefine(self, xml: str | bytes, *, current: bool = False) -> SnapshotInfo:
        """Replace a snapshot's metadata with *xml* (``snapshot-edit``)."""
        from pyvirt.model.snapshot import DomainSnapshot  # lazy

        name = DomainSnapshot.from_xml(xml).name or ""
        url = self._url("snapshots", name, "xml") + _q(current=current or None)
        resp = self._client.request("PUT", url, body=_bytes(xml), content_type=XML)
        return snapshot_from_json(resp.json())

    def snapshot_revert(
        self,
        snapshot: str | None = None,
        *,
        running: bool = False,
        paused: bool = False,
        force: bool = False,
    ) -> str:
        """Revert to *snapshot* (None: the current one); returns its name."""
        body = {"running": running, "paused": paused, "force": force}
        url = self._url("snapshots", self._snap(snapshot), "revert")
        return str(self._client.json("POST", url, body)["name"])

    def snapshot_delete(
        self,
        snapshot: str | None = None,
        *,
        children: bool = False,
        children_only: bool = False,
        metadata: bool = False,
    ) -> builtins.list[str]:
        """Delete *snapshot* (None: the current one); a merge is the daemon's job."""
        url = self._url("snapshots", self._snap(snapshot)) + _q(
            children=children or None, children_only=children_only or None,
            metadata=metadata or None,
        )  # fmt: skip
        resp = self._client.request("DELETE", url)
        doc = _job_result(self._client, resp.status, resp.json())
        return [str(n) for n in doc["deleted"]]

    # -- save ----------------------------------------------------------------------------
    def save(
        self,
        path: str | Path,
        *,
        xml: str | None = None,
        running: bool | None = None,
        bypass_cache: bool = False,
        progress: Progress | None = None,
        cancel: CancelToken | None = None,
    ) -> None:
        """``save`` to *path* on the daemon's host (a job)."""
        body = {"path": _abs(path), "xml": xml, "running": running, "bypass_cache": bypass_cache}
        doc = self._client.json("POST", self._url("save"), body)
        wait_for(self._client, JobInfo.from_json(doc["job"]), progress=progress, cancel=cancel)

    def managed_save(
        self,
        *,
        running: bool | None = None,
        bypass_cache: bool = False,
        progress: Progress | None = None,
        cancel: CancelToken | None = None,
    ) -> None:
        """``managedsave`` (a job)."""
        body = {"running": running, "bypass_cache": bypass_cache}
        doc = self._client.json("POST", self._url("managed-save"), body)
        wait_for(self._client, JobInfo.from_json(doc["job"]), progress=progress, cancel=cancel)

    def has_managed_save(self) -> bool:
        """Whether a managed save image waits for ``start``."""
        return bool(self._client.json("GET", self._url("managed-save"))["exists"])

    def managed_save_remove(self) -> bool:
        """``managedsave-remove``; whether there was one."""
        return bool(self._client.json("DELETE", self._url("managed-save"))["removed"])

    def managed_save_xml(self, *, security_info: bool = False) -> str:
        """``managedsave-dumpxml``."""
        url = self._url("managed-save", "xml") + _q(security_info=security_info or None)
        return self._client.request("GET", url).text()

    def managed_save_define(self, xml: str | None, *, running: bool | None = None) -> None:
        """``managedsave-define``."""
        url = self._url("managed-save", "xml") + _q(running=running)
        self._client.request("PUT", url, body=_bytes(xml), content_type=XML)

    # -- devices from XML, media, keys, descriptions -------------------------------------
    def _device(self, verb: str, xml: str | bytes, **flags: bool) -> DeviceChange:
        from pyvirt.api.device_xml import DeviceChange  # lazy

        url = self._url(*verb.split("/")) + _q(**{k: v or None for k, v in flags.items()})
        doc = self._client.request("POST", url, body=_bytes(xml), content_type=XML).json()
        return DeviceChange(str(doc["device"]), str(doc["ident"]), doc.get("alias"),
                            bool(doc["live"]), bool(doc["config"]))  # fmt: skip

    def attach_device(
        self,
        xml: str | bytes,
        *,
        live: bool = False,
        config: bool = False,
        current: bool = False,
        persistent: bool = False,
    ) -> DeviceChange:
        """``attach-device`` on the daemon."""
        return self._device("devices", xml, live=live, config=config, current=current,
                            persistent=persistent)  # fmt: skip

    def detach_device(
        self,
        xml: str | bytes,
        *,
        live: bool = False,
        config: bool = False,
        current: bool = False,
        persistent: bool = False,
    ) -> DeviceChange:
        """``detach-device`` on the daemon."""
        return self._device("devices/detach", xml, live=live, config=config, current=current,
                            persistent=persistent)  # fmt: skip

    def update_device(
        self,
        xml: str | bytes,
        *,
        live: bool = False,
        config: bool = False,
        current: bool = False,
        persistent: bool = False,
    ) -> None:
        """``update-device`` on the daemon."""
        url = self._url("devices", "update") + _q(
            live=live or None, config=config or None, current=current or None,
            persistent=persistent or None,
        )  # fmt: skip
        self._client.request("POST", url, body=_bytes(xml), content_type=XML)

    def change_media(
        self,
        path_or_target: str,
        source: str | None = None,
        *,
        action: str = "update",
        force: bool = False,
        live: bool = False,
        config: bool = False,
        current: bool = False,
        print_xml: bool = False,
    ) -> str:
        """``change-media`` on the daemon (``source`` is a path on its host)."""
        body = {"target": path_or_target, "source": source, "action": action, "force": force,
                "live": live, "config": config, "current": current,
                "print_xml": print_xml}  # fmt: skip
        doc = self._client.json("POST", self._url("media"), body)
        return str(doc["xml"] if print_xml else doc["action"])

    def send_key(
        self, keys: builtins.list[str], *, codeset: str = "linux", holdtime: int | None = None
    ) -> builtins.list[int]:
        """``send-key`` on the daemon."""
        body = {"keys": list(keys), "codeset": codeset, "holdtime": holdtime}
        return [int(n) for n in self._client.json("POST", self._url("keys"), body)["qnums"]]

    def desc(self, *, title: bool = False, config: bool = False) -> str:
        """``desc``: the description (``title``: the title)."""
        url = self._url("description") + _q(title=title or None, config=config or None)
        return str(self._client.json("GET", url)["text"])

    def set_desc(
        self,
        text: str,
        *,
        title: bool = False,
        live: bool = False,
        config: bool = False,
        current: bool = False,
    ) -> None:
        """``desc --new-desc``."""
        body = {"text": text, "title": title, "live": live, "config": config, "current": current}
        self._client.request("PUT", self._url("description"), body=_json(body),
                             content_type="application/json")  # fmt: skip

    def metadata(self, uri: str, *, config: bool = False) -> str:
        """``metadata``: the element of namespace ``uri``."""
        url = self._url("metadata") + _q(uri=uri, config=config or None)
        return self._client.request("GET", url).text()

    def set_metadata(
        self,
        uri: str,
        xml: str | None,
        *,
        key: str | None = None,
        live: bool = False,
        config: bool = False,
        current: bool = False,
    ) -> None:
        """``metadata --set`` (``xml`` None: ``--remove``)."""
        if xml is None:
            url = self._url("metadata") + _q(uri=uri, live=live or None, config=config or None,
                                             current=current or None)  # fmt: skip
            self._client.request("DELETE", url)
            return
        body = {"uri": uri, "key": key or "", "xml": xml, "live": live, "config": config,
                "current": current}  # fmt: skip
        self._client.request("PUT", self._url("metadata"), body=_json(body),
                             content_type="application/json")  # fmt: skip

    def blkerror(self) -> builtins.list[BlockError]:
        """``domblkerror``."""
        from pyvirt.service.device.guest import BlockError  # lazy

        rows = self._client.json("GET", self._url("blkerrors"))
        return [BlockError(str(r["target"]), str(r["error"])) for r in rows]

    def control_info(self) -> ControlInfo:
        """``domcontrol``."""
        from pyvirt.service.device.guest import ControlInfo  # lazy

        doc = self._client.json("GET", self._url("control"))
        return ControlInfo(str(doc["state"]), str(doc["reason"]), doc.get("duration"))


def _abs(path: str | Path) -> str:
    """``path`` made absolute against this process's directory (a local daemon's view)."""
    return str(Path(path).absolute())


def _json(doc: Any) -> bytes:
    import json  # lazy

    return json.dumps(doc).encode()


class RemoteSaveImages:
    """``restore`` and the ``save-image-*`` verbs of the remote domain collection (paths on
    the daemon's host)."""

    _client: Client

    def get(self, ident: str) -> Any:
        """A handle on a domain (the class provides it)."""
        raise NotImplementedError

    def restore(
        self,
        path: str | Path,
        *,
        xml: str | None = None,
        running: bool | None = None,
        bypass_cache: bool = False,
        progress: Progress | None = None,
        cancel: CancelToken | None = None,
    ) -> Any:
        """``restore`` from *path* on the daemon's host (a job); the restored domain."""
        body = {"path": _abs(path), "xml": xml, "running": running, "bypass_cache": bypass_cache}
        doc = self._client.json("POST", f"{API}/save-images/restore", body)
        info = wait_for(self._client, JobInfo.from_json(doc["job"]), progress=progress,
                        cancel=cancel)  # fmt: skip
        return self.get(str(info.result["name"]))

    def save_image_xml(self, path: str | Path, *, security_info: bool = False) -> str:
        """``save-image-dumpxml``."""
        url = f"{API}/save-images/xml" + _q(path=_abs(path), security_info=security_info or None)
        return self._client.request("GET", url).text()

    def save_image_define(
        self, path: str | Path, xml: str | None, *, running: bool | None = None
    ) -> None:
        """``save-image-define``."""
        url = f"{API}/save-images/xml" + _q(path=_abs(path), running=running)
        self._client.request("PUT", url, body=_bytes(xml), content_type=XML)

    def managed_save_names(self) -> builtins.set[str]:
        """The domains with a managed save image."""
        return {str(n) for n in self._client.json("GET", f"{API}/save-images/managed")}
