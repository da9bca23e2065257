"""Typed QMP commands of block jobs: commit, stream, mirror, and the job controls.

Jobs are started with ``auto-dismiss`` off, so a finished job stays visible (``concluded``,
with its error if it failed) until :meth:`BlockJobCommands.job_dismiss`: whoever looks next
learns how it ended. :meth:`BlockJobCommands.block_job_complete_wait` waits for QEMU's
``BLOCK_JOB_COMPLETED`` event after a pivot.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pyvirt.drivers.qemu.monitor.base import Commands


@dataclass(frozen=True)
class JobStatus:
    """One job of ``query-jobs``, with the speed and readiness ``query-block-jobs`` adds.

    :ivar id: the job id
    :ivar type: ``commit``, ``stream`` or ``mirror``
    :ivar status: ``created``, ``running``, ``paused``, ``ready``, ``concluded``...
    :ivar done: progress, in bytes (of ``total``)
    :ivar total: the work's size in bytes (it may grow while the guest writes)
    :ivar error: QEMU's error message of a failed job ("" when none)
    :ivar speed: the bandwidth limit in bytes per second (0: none)
    """

    id: str
    type: str
    status: str
    done: int
    total: int
    error: str = ""
    speed: int = 0

    @property
    def ready(self) -> bool:
        """Whether a mirror or active commit reached its synchronized phase."""
        return self.status in ("ready", "standby")

    @property
    def concluded(self) -> bool:
        """Whether the job ended (it waits for :meth:`BlockJobCommands.job_dismiss`)."""
        return self.status in ("concluded", "null")


@dataclass(frozen=True)
class ChainImage:
    """One image of a disk's backing chain as QEMU has it open (top first)."""

    filename: str
    format: str


def _chain(image: Mapping[str, Any] | None) -> list[ChainImage]:
    out: list[ChainImage] = []
    while isinstance(image, Mapping):
        out.append(ChainImage(str(image.get("filename", "")), str(image.get("format", ""))))
        image = image.get("backing-image")
    return out


class BlockJobCommands(Commands):
    """``block-commit``, ``block-stream``, ``drive-mirror``, ``blockdev-mirror`` and the block
    job controls."""

    def block_commit(
        self,
        job_id: str,
        device: str,
        *,
        top_node: str | None = None,
        base_node: str | None = None,
        speed: int | None = None,
        backing_file: str | None = None,
    ) -> None:
        """Start committing ``top_node`` (default: the active layer) down into ``base_node``
        (default: the bottom of the chain) of root node ``device``; ``backing_file``: the
        name the image above ``top_node`` gets for its new backing image."""
        self._call(
            "block-commit",
            {
                "job-id": job_id,
                "device": device,
                "top-node": top_node,
                "base-node": base_node,
                "backing-file": backing_file,
                "speed": speed or None,
                "auto-dismiss": False,
            },
        )

    def block_stream(
        self, job_id: str, device: str, *, base_node: str | None = None, speed: int | None = None
    ) -> None:
        """Start pulling the data above ``base_node`` (default: everything) into ``device``."""
        self._call(
            "block-stream",
            {
                "job-id": job_id,
                "device": device,
                "base-node": base_node,
                "speed": speed or None,
                "auto-dismiss": False,
            },
        )

    def drive_mirror(
        self,
        job_id: str,
        device: str,
        target: str,
        *,
        format: str,
        shallow: bool = False,
        speed: int | None = None,
        granularity: int | None = None,
        buf_size: int | None = None,
    ) -> None:
        """Start mirroring ``device`` into the existing image ``target`` (of ``format``);
        ``shallow``: the top image only (the target shares the backing chain);
        ``granularity``: the dirty bitmap's granularity (bytes, a power of two);
        ``buf_size``: the most data in flight (bytes)."""
        self._call(
            "drive-mirror",
            {
                "job-id": job_id,
                "device": device,
                "target": target,
                "format": format,
                "sync": "top" if shallow else "full",
                "mode": "existing",
                "speed": speed or None,
                "granularity": granularity,
                "buf-size": buf_size,
                "auto-dismiss": False,
            },
        )

    def blockdev_mirror(self, job_id: str, device: str, target: str, *, shallow: bool) -> None:
        """Start mirroring node *device* into the block node *target* (``blockdev-add``ed,
        e.g. an NBD client of a migration's destination); ``shallow``: the top image only."""
        self._call(
            "blockdev-mirror",
            {
                "job-id": job_id,
                "device": device,
                "target": target,
                "sync": "top" if shallow else "full",
                "auto-dismiss": False,
            },
        )

    def block_job_set_speed(self, job_id: str, speed: int) -> None:
        """Limit job ``job_id`` to ``speed`` bytes per second (0: no limit)."""
        self._call("block-job-set-speed", {"device": job_id, "speed": speed})

    def block_job_cancel(self, job_id: str, *, force: bool = False) -> None:
        """Cancel job ``job_id``; a ready mirror or active commit ends without a pivot
        (``force``: even while paused)."""
        self._call("block-job-cancel", {"device": job_id, "force": force})

    def block_job_complete(self, job_id: str) -> None:
        """Pivot a ready mirror or active commit (the device switches image)."""
        self._call("block-job-complete", {"device": job_id})

    def block_job_complete_wait(self, job_id: str, timeout: float) -> bool:
        """:meth:`block_job_complete` and wait for its ``BLOCK_JOB_COMPLETED`` event; False
        when it did not come in ``timeout`` seconds."""
        event = self._call_until(
            "block-job-complete",
            {"device": job_id},
            event="BLOCK_JOB_COMPLETED",
            match={"device": job_id},
            timeout=timeout,
        )
        return event is not None

    def wait_job_change(self, job_id: str, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for job ``job_id``'s next ``JOB_STATUS_CHANGE``
        event (running, ready, concluded...); False when none came. The listener is set up
        before a harmless ``query-jobs`` is sent, so the wait starts at once."""
        event = self._call_until(
            "query-jobs", {}, event="JOB_STATUS_CHANGE", match={"id": job_id}, timeout=timeout
        )
        return event is not None

    def job_dismiss(self, job_id: str) -> None:
        """Forget concluded job ``job_id``."""
        self._call("job-dismiss", {"id": job_id})

    def job_finalize(self, job_id: str) -> None:
        """Finalize pending job ``job_id`` (jobs started without ``auto-finalize``)."""
        self._call("job-finalize", {"id": job_id})

    def query_block_job_list(self) -> list[JobStatus]:
        """Every block job: ``query-jobs`` joined with ``query-block-jobs``' speeds."""
        speeds = {
            str(j.get("device")): int(j.get("speed") or 0) for j in self._call("query-block-jobs")
        }
        out = []
        for job in self._call("query-jobs"):
            jid = str(job.get("id", ""))
            out.append(
                JobStatus(
                    jid,
                    str(job.get("type", "")),
                    str(job.get("status", "")),
                    int(job.get("current-progress") or 0),
                    int(job.get("total-progress") or 0),
                    str(job.get("error") or ""),
                    speeds.get(jid, 0),
                )
            )
        return out

    def block_job(self, job_id: str) -> JobStatus | None:
        """Block job ``job_id`` (a concluded one too, with its error), or None: one
        ``query-block-jobs`` round trip (:meth:`query_block_job_list` takes two)."""
        for job in self._call("query-block-jobs"):
            if str(job.get("device", "")) == job_id:
                return JobStatus(
                    job_id,
                    str(job.get("type", "")),
                    str(job.get("status", "")),
                    int(job.get("offset") or 0),
                    int(job.get("len") or 0),
                    str(job.get("error") or ""),
                    int(job.get("speed") or 0),
                )
        return None

    def block_chains(self) -> dict[str, tuple[str, list[ChainImage]]]:
        """Per guest device (its qdev id or QOM path): the root node of its medium and the
        backing chain QEMU has open, top first (``query-block``)."""
        out: dict[str, tuple[str, list[ChainImage]]] = {}
        for dev in self._call("query-block"):
            inserted = dev.get("inserted")
            if not isinstance(inserted, Mapping):
                continue
            key = str(dev.get("qdev") or dev.get("device") or "")
            out[key] = (str(inserted.get("node-name", "")), _chain(inserted.get("image")))
        return out
