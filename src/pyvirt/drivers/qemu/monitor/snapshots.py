"""Typed QMP commands about snapshots: internal snapshots as jobs (``snapshot-save``,
``snapshot-load``, ``snapshot-delete``), external overlays (``transaction`` of
``blockdev-snapshot-sync``) and the job bookkeeping they need."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pyvirt.drivers.qemu.monitor.base import Commands, JsonValue
from pyvirt.errors import MonitorError

#: seconds an internal snapshot job may take (RAM of a large guest goes to the disk)
JOB_TIMEOUT = 600.0


@dataclass(frozen=True)
class ActiveImage:
    """The top of one guest block device's backing chain (``query-block``).

    :ivar qdev: the guest device's id or QOM path
    :ivar node_name: its top block node
    :ivar file: the file name QEMU reports for that node
    :ivar driver: the top node's format driver (``qcow2``, ``raw``)
    """

    qdev: str
    node_name: str
    file: str
    driver: str


@dataclass(frozen=True)
class OverlaySpec:
    """One external overlay to put on top of node *node_name* (``blockdev-snapshot-sync``)."""

    node_name: str
    file: str
    overlay_node: str
    format: str = "qcow2"


class SnapshotCommands(Commands):
    """Internal snapshot jobs and external overlays."""

    def active_images(self) -> list[ActiveImage]:
        """The top node of every guest block device with a medium."""
        out = []
        for raw in self._call("query-block"):
            ins = raw.get("inserted")
            if not isinstance(ins, dict) or not ins.get("node-name"):
                continue
            out.append(
                ActiveImage(
                    str(raw.get("qdev") or raw.get("device") or ""),
                    str(ins["node-name"]),
                    str(ins.get("file") or ""),
                    str(ins.get("drv") or ""),
                )
            )
        return out

    def _job(self, cmd: str, job_id: str, args: dict[str, JsonValue], timeout: float) -> None:
        """Run a job command and wait until it concludes; dismiss it; raise its error."""
        done = self._call_until(
            cmd,
            {"job-id": job_id, **args},
            event="JOB_STATUS_CHANGE",
            match={"id": job_id, "status": "concluded"},
            timeout=timeout,
        )
        if done is None:
            raise MonitorError(
                f"QMP job '{job_id}' ({cmd}) did not finish within {timeout:g} s",
                hint="QEMU may still be working; check 'qemu-monitor-command' query-jobs",
            )
        error = ""
        jobs: list[dict[str, Any]] = self._call("query-jobs")
        for job in jobs:
            if job.get("id") == job_id:
                error = str(job.get("error") or "")
        self._call("job-dismiss", {"id": job_id})
        if error:
            raise MonitorError(f"QMP '{cmd}' failed: {error}")

    def snapshot_save(
        self,
        tag: str,
        vmstate: str,
        devices: Sequence[str],
        *,
        job_id: str = "pyvirt-snapshot",
        timeout: float = JOB_TIMEOUT,
    ) -> None:
        """Save an internal snapshot *tag* of the nodes *devices* with the VM state in node
        *vmstate* (one of them); QEMU pauses the vCPUs meanwhile and resumes them after."""
        args: dict[str, JsonValue] = {"tag": tag, "vmstate": vmstate, "devices": list(devices)}
        self._job("snapshot-save", job_id, args, timeout)

    def snapshot_load(
        self,
        tag: str,
        vmstate: str,
        devices: Sequence[str],
        *,
        job_id: str = "pyvirt-snapshot",
        timeout: float = JOB_TIMEOUT,
    ) -> None:
        """Load internal snapshot *tag* (disks and VM state); stop the vCPUs first."""
        args: dict[str, JsonValue] = {"tag": tag, "vmstate": vmstate, "devices": list(devices)}
        self._job("snapshot-load", job_id, args, timeout)

    def snapshot_delete(
        self,
        tag: str,
        devices: Sequence[str],
        *,
        job_id: str = "pyvirt-snapshot",
        timeout: float = JOB_TIMEOUT,
    ) -> None:
        """Delete internal snapshot *tag* from the nodes *devices*."""
        args: dict[str, JsonValue] = {"tag": tag, "devices": list(devices)}
        self._job("snapshot-delete", job_id, args, timeout)

    def snapshot_overlays(self, specs: Sequence[OverlaySpec]) -> None:
        """Create the overlay files of *specs* and switch each node's users to its overlay,
        all or none (one ``transaction``)."""
        actions: list[dict[str, Any]] = [
            {
                "type": "blockdev-snapshot-sync",
                "data": {
                    "node-name": s.node_name,
                    "snapshot-file": s.file,
                    "snapshot-node-name": s.overlay_node,
                    "format": s.format,
                    "mode": "existing",
                },
            }
            for s in specs
        ]
        self._call("transaction", {"actions": actions})  # type: ignore[dict-item]
