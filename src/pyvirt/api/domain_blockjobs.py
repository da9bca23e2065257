"""Block job verbs of a domain: ``blockcommit``, ``blockpull``, ``blockcopy``, ``blockjob``.

The long verbs wait by default and take ``progress`` and ``cancel``
(:mod:`pyvirt.progress`), so the daemon runs them as jobs; ``wait=False`` starts QEMU's job
and returns (``block_job_info`` follows it, ``block_job_abort``/``block_job_pivot`` end it).
Bandwidths are bytes per second. See :mod:`pyvirt.service.disk.blockjobs`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pyvirt.api.domain_base import DomainHandle

if TYPE_CHECKING:
    from pyvirt.progress import CancelToken, Progress
    from pyvirt.service.disk.blockjobs import BlockJobInfo, BlockJobResult

__all__ = ["BlockJobInfo", "BlockJobResult", "DomainBlockJobs"]

# lazy: function-local imports marked ``# lazy`` keep CLI start-up fast: the block job service
# loads QMP and lxml, which ``pyvirt list`` does not need.


def __getattr__(name: str) -> Any:
    """Re-export the service's value types without importing them at start-up."""
    if name in ("BlockJobInfo", "BlockJobResult"):
        from pyvirt.service.disk import blockjobs  # lazy

        return getattr(blockjobs, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class DomainBlockJobs(DomainHandle):
    """Block jobs of :class:`~pyvirt.api.domain.Domain`'s disks."""

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
        """Merge ``top`` (default: the active layer, with ``active``) down into ``base``
        (default: the bottom; ``shallow``: right below ``top``) (``blockcommit``). An active
        commit pivots to ``base`` with ``pivot``; a shut-off domain's images are committed
        with ``qemu-img``.

        :param disk: the disk's target (``vda``) or source path
        :raises InvalidConfigError: contradicting options or images not in the chain
        :raises InvalidStateError: no backing image, or a job runs on the disk
        :raises CancelledError: cancelled or timed out (the job was aborted)
        """
        from pyvirt.service.disk import blockjobs  # lazy

        return blockjobs.commit(
            self._domains,
            self._name,
            disk,
            top=top,
            base=base,
            active=active,
            pivot=pivot,
            keep_overlay=keep_overlay,
            shallow=shallow,
            delete=delete,
            keep_relative=keep_relative,
            bandwidth=bandwidth,
            wait=wait,
            timeout=timeout,
            progress=progress,
            cancel=cancel,
        )

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
        """Pull the backing data above ``base`` (default: all) into the active layer
        (``blockpull``).

        :raises InvalidConfigError: ``base`` is not in the chain
        :raises CancelledError: cancelled or timed out
        """
        from pyvirt.service.disk import blockjobs  # lazy

        return blockjobs.stream(
            self._domains,
            self._name,
            disk,
            base=base,
            bandwidth=bandwidth,
            wait=wait,
            timeout=timeout,
            progress=progress,
            cancel=cancel,
        )

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
        """Copy a running domain's disk to ``dest`` (``blockcopy``), then pivot to it
        (``pivot``), end with a full copy (``finish``) or stay mirroring. A cancelled copy
        removes the partial ``dest`` it created; the source is untouched.

        :raises InvalidStateError: not running, or a job runs on the disk
        :raises AlreadyExistsError: ``dest`` exists (without ``reuse_external``)
        :param granularity: the mirror's dirty bitmap granularity (bytes, a power of two)
        :param buf_size: the most data in flight (bytes)
        :param dest_xml: a ``<disk>`` describing the destination (``--xml``): its source and
            format replace ``dest`` and ``format``; ``type='block'`` means ``blockdev``
        :raises CancelledError: cancelled or timed out
        """
        from pyvirt.service.disk import blockjobs  # lazy

        if dest_xml is not None:
            dest, fmt, is_block = blockjobs.copy_dest_of(dest_xml)
            format, blockdev = format or fmt, blockdev or is_block
        return blockjobs.copy(
            self._domains,
            self._name,
            disk,
            dest,
            format=format,
            pivot=pivot,
            finish=finish,
            shallow=shallow,
            reuse_external=reuse_external,
            transient_job=transient_job,
            blockdev=blockdev,
            bandwidth=bandwidth,
            granularity=granularity,
            buf_size=buf_size,
            wait=wait,
            timeout=timeout,
            progress=progress,
            cancel=cancel,
        )

    def block_job_info(self, disk: str) -> BlockJobInfo | None:
        """The disk's running block job (``blockjob --info``), or None."""
        from pyvirt.service.disk import blockjobs  # lazy

        return blockjobs.info(self._domains, self._name, disk)

    def block_job_abort(self, disk: str, *, pivot: bool = False, wait: bool = True) -> None:
        """Abort the disk's block job (``blockjob --abort``; ``pivot``: pivot it instead).

        :raises InvalidStateError: no job runs on the disk
        """
        from pyvirt.service.disk import blockjobs  # lazy

        blockjobs.abort(self._domains, self._name, disk, pivot=pivot, wait=wait)

    def block_job_pivot(self, disk: str) -> BlockJobResult:
        """Pivot the disk's ready copy or active commit (``blockjob --pivot``).

        :raises InvalidStateError: no job, or not ready yet
        """
        from pyvirt.service.disk import blockjobs  # lazy

        return blockjobs.pivot(self._domains, self._name, disk)

    def block_job_set_speed(self, disk: str, bandwidth: int) -> None:
        """Limit the disk's block job to ``bandwidth`` bytes per second (0: no limit)."""
        from pyvirt.service.disk import blockjobs  # lazy

        blockjobs.set_speed(self._domains, self._name, disk, bandwidth)
