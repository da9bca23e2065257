"""The remote checkpoint verbs of a domain (``checkpoint-create``, ``-create-as``, ``-list``,
``-info``, ``-parent``, ``-dumpxml``, ``-edit``, ``-delete``): requests to pyvirtd's
``routes/checkpoints.py``, mixed into :class:`~pyvirt.api.remote.domains.RemoteDomain` (the
class provides ``_client`` and ``_name``). ``checkpoint_xml_for`` (``--print-xml``) needs no
daemon: it only builds the XML from the options."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from pyvirt.client.transport import API

if TYPE_CHECKING:
    from pyvirt.client.transport import Client
    from pyvirt.service.checkpoint.store import CheckpointInfo

__all__ = ["RemoteCheckpoints", "checkpoint_from_json"]

XML = "application/xml"

# lazy: function-local imports marked ``# lazy`` load the checkpoint value type only for these
# verbs.


def checkpoint_from_json(doc: dict[str, Any]) -> CheckpointInfo:
    """A :class:`CheckpointInfo` from its ``to_json()`` form."""
    from pyvirt.service.checkpoint.store import CheckpointInfo  # lazy

    return CheckpointInfo(
        str(doc["name"]), str(doc["domain"]), int(doc["creation_time"]), doc.get("parent"),
        int(doc["children"]), int(doc["descendants"]),
        {str(k): str(v) for k, v in dict(doc.get("disks") or {}).items()},
    )  # fmt: skip


def _q(**params: bool) -> str:
    """``?k=true&...`` of the flags that are set."""
    pairs = [(k, "true") for k, v in params.items() if v]
    return "?" + urlencode(pairs) if pairs else ""


def _bytes(xml: str | bytes | None) -> bytes:
    if xml is None:
        return b""
    return xml.encode() if isinstance(xml, str) else xml


class RemoteCheckpoints:
    """Checkpoint verbs of a remote domain."""

    _client: Client
    _name: str

    def _cp_url(self, *rest: str) -> str:
        parts = [quote(p, safe="") for p in rest]
        return "/".join((f"{API}/domains", quote(self._name, safe=""), "checkpoints", *parts))

    def checkpoint_create(self, xml: str | bytes | None = None, *, redefine: bool = False) -> str:
        """``checkpoint-create`` on the daemon (see :meth:`Domain.checkpoint_create`)."""
        resp = self._client.request(
            "POST", self._cp_url() + _q(redefine=redefine), body=_bytes(xml), content_type=XML
        )
        return str(resp.json()["name"])

    def checkpoint_create_as(
        self,
        name: str | None = None,
        description: str | None = None,
        *,
        diskspecs: Sequence[str] = (),
    ) -> str:
        """``checkpoint-create-as`` on the daemon; returns the checkpoint's name."""
        body = {"name": name, "description": description, "diskspecs": list(diskspecs)}
        return str(self._client.json("POST", self._cp_url("create-as"), body)["name"])

    def checkpoints(self) -> builtins.list[CheckpointInfo]:
        """Every checkpoint, parents before children (``checkpoint-list``)."""
        return [checkpoint_from_json(d) for d in self._client.json("GET", self._cp_url())]

    def checkpoint_info(self, checkpoint: str) -> CheckpointInfo:
        """One checkpoint (``checkpoint-info``)."""
        return checkpoint_from_json(self._client.json("GET", self._cp_url(checkpoint)))

    def checkpoint_xml(
        self, checkpoint: str, *, size: bool = False, no_domain: bool = False
    ) -> str:
        """``checkpoint-dumpxml`` (*size*: bytes written since, from the running QEMU)."""
        url = self._cp_url(checkpoint, "xml") + _q(size=size, no_domain=no_domain)
        return self._client.request("GET", url).text()

    def checkpoint_edit(self, checkpoint: str, xml: str | bytes) -> str:
        """``checkpoint-edit``: the description may change; returns the name."""
        resp = self._client.request(
            "PUT", self._cp_url(checkpoint, "xml"), body=_bytes(xml), content_type=XML
        )
        return str(resp.json()["name"])

    def checkpoint_children(
        self, checkpoint: str | None, *, descendants: bool = False
    ) -> builtins.list[str]:
        """The children (or all descendants) of *checkpoint*; None: the roots."""
        if checkpoint is None:
            return [c.name for c in self.checkpoints() if c.parent is None]
        url = self._cp_url(checkpoint, "children") + _q(descendants=descendants)
        return [str(n) for n in self._client.json("GET", url)]

    def checkpoint_delete(
        self,
        checkpoint: str,
        *,
        children: bool = False,
        children_only: bool = False,
        metadata: bool = False,
    ) -> builtins.list[str]:
        """``checkpoint-delete`` on the daemon; returns what was deleted."""
        url = self._cp_url(checkpoint) + _q(
            children=children, children_only=children_only, metadata=metadata
        )
        return [str(n) for n in self._client.json("DELETE", url)["deleted"]]
