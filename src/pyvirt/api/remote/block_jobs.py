"""The remote block job verbs of a domain (``blockcommit``, ``blockpull``, ``blockcopy``,
``blockjob``): requests to pyvirtd's ``routes/blockjobs.py``, mixed into
:class:`~pyvirt.api.remote.domains.RemoteDomain` (the class provides ``_client`` and
``_name``).

``block_commit``, ``block_pull`` and ``block_copy`` are the daemon's jobs: with ``wait`` the
call waits for the job with the caller's ``progress`` (Ctrl-C or ``cancel`` cancels it, which
aborts QEMU's job); without ``wait`` it returns ``started`` once QEMU's job exists (or the
daemon's job already ended), as the embedded verb does. Paths are the daemon host's.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from pyvirt.api.remote.jobs import JobInfo, Jobs, wait_for
from pyvirt.client.transport import API

if TYPE_CHECKING:
    from pyvirt.client.transport import Client
    from pyvirt.progress import CancelToken, Progress
    from pyvirt.service.disk.blockjobs import BlockJobInfo, BlockJobResult

__all__ = ["RemoteBlockJobs"]

# lazy: function-local imports marked ``# lazy`` load the block job value types only for
# these verbs.

#: seconds a call without ``wait`` waits for QEMU's job to appear, at most
START_TIMEOUT = 30.0


class RemoteBlockJobs:
    """Block job verbs of a remote domain."""

    _client: Client
    _name: str

    def _disk_url(self, disk: str, *rest: str) -> str:
        parts = (quote(self._name, safe=""), "disks", quote(disk, safe=""), *rest)
        return f"{API}/domains/" + "/".join(parts)

    def _block_job(
        self,
        disk: str,
        verb: str,
        kind: str,
        body: dict[str, Any],
        *,
        wait: bool,
        progress: Progress | None,
        cancel: CancelToken | None,
    ) -> BlockJobResult:
        from pyvirt.service.disk.blockjobs import BlockJobResult  # lazy

        doc = self._client.json("POST", self._disk_url(disk, verb), body)
        job = JobInfo.from_json(doc["job"])
        if wait:
            done = wait_for(self._client, job, progress=progress, cancel=cancel)
            return BlockJobResult(**done.result)
        jobs = Jobs(self._client)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            job = jobs.get(job.id)
            if not job.running:
                job.raise_for_state()
                return BlockJobResult(**job.result)
            if self.block_job_info(disk) is not None:
                break
            time.sleep(0.05)
        return BlockJobResult(disk, kind, "started")

    def block_commit(
        self,
        disk: str,
        *,
        top: str | None = None,
        base: str | None = None,
        active: bool = False,
        pivot: bool = True,
        keep_overlay: bool = False,
        shallow: bool = False,
        delete: bool = False,
        keep_relative: bool = False,
        bandwidth: int | None = None,
        wait: bool = True,
        timeout: float | None = None,
        progress: Progress | None = None,
        cancel: CancelToken | None = None,
    ) -> BlockJobResult:
        """``blockcommit`` as a daemon job (see :meth:`Domain.block_commit`)."""
        body = {"top": top, "base": base, "active": active, "pivot": pivot,
                "keep_overlay": keep_overlay, "shallow": shallow, "delete": delete,
                "keep_relative": keep_relative,
                "bandwidth": bandwidth, "timeout": timeout}  # fmt: skip
        kind = "active-commit" if active else "commit"
        return self._block_job(disk, "commit", kind, body, wait=wait, progress=progress,
                               cancel=cancel)  # fmt: skip

    def block_pull(
        self,
        disk: str,
        *,
        base: str | None = None,
        bandwidth: int | None = None,
        wait: bool = True,
        timeout: float | None = None,
        progress: Progress | None = None,
        cancel: CancelToken | None = None,
    ) -> BlockJobResult:
        """``blockpull`` as a daemon job."""
        body = {"base": base, "bandwidth": bandwidth, "timeout": timeout}
        return self._block_job(disk, "pull", "pull", body, wait=wait, progress=progress,
                               cancel=cancel)  # fmt: skip

    def block_copy(
        self,
        disk: str,
        dest: str,
        *,
        format: str | None = None,
        pivot: bool = False,
        finish: bool = False,
        shallow: bool = False,
        reuse_external: bool = False,
        transient_job: bool = False,
        blockdev: bool = False,
        bandwidth: int | None = None,
        granularity: int | None = None,
        buf_size: int | None = None,
        dest_xml: str | None = None,
        wait: bool = True,
        timeout: float | None = None,
        progress: Progress | None = None,
        cancel: CancelToken | None = None,
    ) -> BlockJobResult:
        """``blockcopy`` as a daemon job (``dest`` on the daemon's host)."""
        body = {"dest": dest, "format": format, "pivot": pivot, "finish": finish,
                "shallow": shallow, "reuse_external": reuse_external,
                "transient_job": transient_job, "blockdev": blockdev, "bandwidth": bandwidth,
                "granularity": granularity, "buf_size": buf_size, "dest_xml": dest_xml,
                "timeout": timeout}  # fmt: skip
        return self._block_job(disk, "copy", "copy", body, wait=wait, progress=progress,
                               cancel=cancel)  # fmt: skip

    def block_job_info(self, disk: str) -> BlockJobInfo | None:
        """``blockjob --info``: QEMU's job on the disk (None: none)."""
        from pyvirt.service.disk.blockjobs import BlockJobInfo  # lazy

        doc = self._client.json("GET", self._disk_url(disk, "blockjob"))["job"]
        return None if doc is None else BlockJobInfo(**doc)

    def block_job_abort(self, disk: str, *, pivot: bool = False, wait: bool = True) -> None:
        """``blockjob --abort`` (``pivot``: ``--pivot``); the daemon waits for the end."""
        query = "?pivot=true" if pivot else ""
        self._client.request("DELETE", self._disk_url(disk, "blockjob") + query)

    def block_job_pivot(self, disk: str) -> BlockJobResult:
        """``blockjob --pivot``."""
        from pyvirt.service.disk.blockjobs import BlockJobResult  # lazy

        return BlockJobResult(
            **self._client.json("POST", self._disk_url(disk, "blockjob", "pivot"))
        )

    def block_job_set_speed(self, disk: str, bandwidth: int) -> None:
        """``blockjob --bandwidth``."""
        self._client.json("PUT", self._disk_url(disk, "blockjob", "bandwidth"),
                          {"bandwidth": bandwidth})  # fmt: skip
