"""ArgvContext: everything about the host and the run the argv builder needs, passed in.

The builder is pure, so it never looks at the host: the paths of the per-domain run and log
directories, the emulator binary, the chosen VNC display, where hugetlbfs is mounted and the
current time (for ``<clock offset='variable'>``) all come from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

#: Where pyvirt keeps per-domain runtime files (sockets, pid file): ``RUN_BASE/NAME``.
RUN_BASE = Path("/run/pyvirt/qemu")
#: Where per-domain logs (QEMU stderr, serial console log) go: ``LOG_BASE/NAME``.
LOG_BASE = Path("/var/log/pyvirt/qemu")
#: The emulator used when neither the context nor ``<emulator>`` names one.
DEFAULT_EMULATOR = "/usr/bin/qemu-system-x86_64"
#: hugetlbfs mount point per page size in KiB (the usual systemd/distribution layout).
DEFAULT_HUGEPAGE_DIRS: Mapping[int, str] = {2048: "/dev/hugepages", 1048576: "/dev/hugepages1G"}


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ArgvContext:
    """Host- and run-specific inputs of :func:`~pyvirt.drivers.qemu.argv.build_argv`.

    Files the command line refers to (all created by the driver, not by the builder):

    * ``run_dir/qmp.sock``, ``run_dir/events.sock``: the two QMP sockets (QEMU creates them);
    * ``run_dir/qemu.pid``: ``-pidfile``;
    * ``log_dir/console.log`` (serial port 0) or ``log_dir/serial<N>.log``: the log of a
      ``pty`` character device without a ``<log>`` (QEMU allocates the pty itself);
    * ``run_dir/vnc.sock``: VNC listening on a socket without a path;
    * ``run_dir/vnc<N>.secret``: the VNC password (see :func:`~.builder.required_files`).

    :ivar run_dir: per-domain runtime directory (e.g. ``/run/pyvirt/qemu/web1``)
    :ivar log_dir: per-domain log directory
    :ivar emulator: QEMU binary; overrides ``<emulator>``
    :ivar daemonize: add ``-daemonize``
    :ivar qemu_version: (major, minor) of the emulator, for version-dependent syntax
    :ivar vnc_display: display number the driver picked for ``autoport`` VNC; when ``None``
        QEMU searches a free one itself (``-vnc HOST:0,to=99``)
    :ivar hugepage_dirs: hugetlbfs mount point per page size in KiB
    :ivar default_hugepage_kib: page size used by ``<hugepages/>`` without a ``<page>``
    :ivar now: the current time, for ``<clock offset='variable'>``
    """

    run_dir: Path
    log_dir: Path
    emulator: str | None = None
    daemonize: bool = False
    qemu_version: tuple[int, int] = (7, 2)
    vnc_display: int | None = None
    hugepage_dirs: Mapping[int, str] = field(default_factory=lambda: dict(DEFAULT_HUGEPAGE_DIRS))
    default_hugepage_kib: int = 2048
    now: datetime = field(default_factory=_utc_now)

    @classmethod
    def for_domain(
        cls,
        name: str,
        *,
        run_base: Path = RUN_BASE,
        log_base: Path = LOG_BASE,
        **kwargs: object,
    ) -> ArgvContext:
        """Return the default context for domain *name*: ``run_base/name`` and ``log_base/name``.

        :param name: the domain name
        :param run_base: parent of the per-domain run directories
        :param log_base: parent of the per-domain log directories
        :param kwargs: any other :class:`ArgvContext` field
        :returns: the context
        """
        return cls(run_dir=run_base / name, log_dir=log_base / name, **kwargs)  # type: ignore[arg-type]
