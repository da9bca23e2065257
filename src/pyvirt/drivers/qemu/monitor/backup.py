"""Typed QMP commands of checkpoints and backups: persistent dirty bitmaps, backup jobs and
the NBD export of a pull-mode backup.

Bitmap changes and the start of backup jobs are grouped in one ``transaction`` (all or
nothing, at one point in time of the guest's writes): build its actions with the
``tx_*`` functions and pass them to :meth:`BackupCommands.transaction`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pyvirt.drivers.qemu.monitor.base import Commands, JsonValue

#: One ``transaction`` action: ``{"type": ..., "data": {...}}``.
TxAction = dict[str, Any]


@dataclass(frozen=True)
class DirtyBitmap:
    """One dirty bitmap of a block node (``query-named-block-nodes``).

    :ivar count: bytes marked dirty
    :ivar recording: whether it records writes (enabled)
    :ivar inconsistent: QEMU found it in use when it opened the image (QEMU was killed):
        it cannot be trusted or used, only removed
    """

    name: str
    count: int
    granularity: int
    recording: bool
    persistent: bool
    inconsistent: bool
    busy: bool

    @classmethod
    def from_wire(cls, raw: Mapping[str, Any]) -> DirtyBitmap:
        """From QEMU's ``BlockDirtyInfo``."""
        return cls(
            str(raw.get("name", "")),
            int(raw.get("count") or 0),
            int(raw.get("granularity") or 0),
            bool(raw.get("recording", False)),
            bool(raw.get("persistent", False)),
            bool(raw.get("inconsistent", False)),
            bool(raw.get("busy", False)),
        )


def tx_bitmap_add(
    node: str, name: str, *, persistent: bool = True, disabled: bool = False
) -> TxAction:
    """Action: add bitmap *name* to *node* (recording unless *disabled*)."""
    data = {"node": node, "name": name, "persistent": persistent, "disabled": disabled}
    return {"type": "block-dirty-bitmap-add", "data": data}


def tx_bitmap_remove(node: str, name: str) -> TxAction:
    """Action: remove bitmap *name* of *node* (from the image too when persistent)."""
    return {"type": "block-dirty-bitmap-remove", "data": {"node": node, "name": name}}


def tx_bitmap_merge(node: str, target: str, sources: Sequence[str]) -> TxAction:
    """Action: OR the bitmaps *sources* of *node* into its bitmap *target*."""
    data = {"node": node, "target": target, "bitmaps": list(sources)}
    return {"type": "block-dirty-bitmap-merge", "data": data}


def tx_bitmap_enable(node: str, name: str) -> TxAction:
    """Action: make bitmap *name* of *node* record writes."""
    return {"type": "block-dirty-bitmap-enable", "data": {"node": node, "name": name}}


def tx_bitmap_disable(node: str, name: str) -> TxAction:
    """Action: make bitmap *name* of *node* stop recording writes."""
    return {"type": "block-dirty-bitmap-disable", "data": {"node": node, "name": name}}


def tx_backup(
    job_id: str,
    device: str,
    target: str,
    *,
    sync: str,
    bitmap: str | None = None,
    speed: int | None = None,
) -> TxAction:
    """Action: start ``blockdev-backup`` job *job_id* of node *device* into node *target*.

    :param sync: ``full``, ``incremental`` (the clusters of *bitmap*, cleared on success) or
        ``none`` (copy-before-write only: the fleecing of a pull-mode backup)
    :param speed: bytes per second, at most (None: no limit)
    """
    data: dict[str, JsonValue] = {
        "job-id": job_id,
        "device": device,
        "target": target,
        "sync": sync,
        "auto-dismiss": False,
    }
    if bitmap is not None:
        data["bitmap"] = bitmap
    if speed:
        data["speed"] = speed
    return {"type": "blockdev-backup", "data": data}


class BackupCommands(Commands):
    """Dirty bitmaps, backup transactions, the NBD server and its exports."""

    def transaction(self, actions: Sequence[TxAction]) -> None:
        """Run *actions* (from the ``tx_*`` functions) all or none."""
        self._call("transaction", {"actions": list(actions)})  # type: ignore[dict-item]

    def dirty_bitmaps(self) -> dict[str, list[DirtyBitmap]]:
        """The dirty bitmaps of every named block node, by node name."""
        out: dict[str, list[DirtyBitmap]] = {}
        for node in self._call("query-named-block-nodes", {"flat": True}):
            raw = node.get("dirty-bitmaps") or []
            out[str(node.get("node-name", ""))] = [DirtyBitmap.from_wire(b) for b in raw]
        return out

    def bitmap_remove(self, node: str, name: str) -> None:
        """Remove bitmap *name* of *node* (also an inconsistent one)."""
        self._call("block-dirty-bitmap-remove", {"node": node, "name": name})

    def job_cancel(self, job_id: str) -> None:
        """Cancel job *job_id* (any kind; a backup job ends without completing)."""
        self._call("job-cancel", {"id": job_id})

    def nbd_server_start_unix(self, path: str, *, tls_creds: str | None = None) -> None:
        """Start QEMU's NBD server on the unix socket *path* (TLS with the ``tls-creds-x509``
        object *tls_creds*)."""
        addr: JsonValue = {"type": "unix", "data": {"path": path}}  # SocketAddressLegacy
        self._call("nbd-server-start", {"addr": addr, "tls-creds": tls_creds})

    def nbd_server_start_tcp(self, host: str, port: int) -> None:
        """Start QEMU's NBD server on TCP *host*:*port*."""
        addr: JsonValue = {"type": "inet", "data": {"host": host, "port": str(port)}}
        self._call("nbd-server-start", {"addr": addr})

    def nbd_server_start_fd(self, fdname: str, *, tls_creds: str | None = None) -> None:
        """Start QEMU's NBD server on the listening socket passed as *fdname* (:meth:`getfd`):
        the caller bound it, so it knows the port (no check-then-bind); TLS with the
        ``tls-creds-x509`` object *tls_creds*."""
        addr: JsonValue = {"type": "fd", "data": {"str": fdname}}
        self._call("nbd-server-start", {"addr": addr, "tls-creds": tls_creds})

    def nbd_server_stop(self) -> None:
        """Stop QEMU's NBD server (its exports go with it)."""
        self._call("nbd-server-stop")

    def nbd_export_add(
        self,
        export_id: str,
        node: str,
        name: str,
        *,
        bitmaps: Sequence[str] = (),
        writable: bool = False,
    ) -> None:
        """Export *node* as NBD export *name* (read-only unless *writable*: the target of
        a migration's disk mirror), with the (disabled) dirty bitmaps *bitmaps* found on it
        or its backing chain as ``qemu:dirty-bitmap:NAME``."""
        args: dict[str, JsonValue] = {
            "type": "nbd",
            "id": export_id,
            "node-name": node,
            "name": name,
            "writable": writable,
        }
        if bitmaps:
            args["bitmaps"] = list(bitmaps)
        self._call("block-export-add", args)

    def block_export_del(self, export_id: str) -> None:
        """Remove export *export_id* at once (its clients are disconnected)."""
        self._call("block-export-del", {"id": export_id, "mode": "hard"})
