"""The kernel's watchdog (``/dev/watchdog``: the ``softdog`` module or a hardware timer) behind
the process watchdog (:mod:`pyvirt.service.cluster.watchdog`).

The process watchdog kills this host's HA guests at the fence deadline when pyvirtd stops
petting it. If the watchdog process itself cannot act — killed, or the whole of user space
hung (memory pressure, a stuck file system) — nothing would stop the guests before the lease
expires and the leader restarts them elsewhere. The kernel's timer closes that gap: while HA
guests run here, the process watchdog arms it and pets it every :data:`PET` seconds; when the
pets stop for :data:`TIMEOUT` seconds the kernel resets the host, guests and all.

:data:`TIMEOUT` is the fence margin: the process watchdog pets only before the fence deadline
(last renewal + TTL − margin) or after it fenced, so a hang at any moment resets the host no
later than the lease's expiry, before any recovery can start. It is disarmed with the
driver's "magic close" (a ``V`` before closing) when no HA guest runs here any more, after it
fenced them, and when the host leaves the cluster; a watchdog process killed while armed
resets the host, which is the point.

Where ``/dev/watchdog`` is missing (no ``softdog`` module, as on the machines pyvirt's tests
run on) or taken by another user (systemd's ``RuntimeWatchdogSec``), the process watchdog
alone fences, and says so once in its log. ``cluster init|join --no-kernel-watchdog`` turns
it off for a host (``"kernel_watchdog": false`` in its ``cluster.json``).
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import struct
from pathlib import Path

log = logging.getLogger(__name__)

DEVICE = Path("/dev/watchdog")
#: seconds without a pet before the kernel resets the host (the fence margin)
TIMEOUT = 2
#: seconds between pets while armed
PET = 0.25

# linux/watchdog.h: _IOWR('W', 6, int) and _IOR('W', 5, int)
_WDIOC_SETTIMEOUT = 0xC0045706
_WDIOC_KEEPALIVE = 0x80045705


class KernelWatchdog:
    """One armed-or-not ``/dev/watchdog``.

    :param device: the watchdog device (tests give a file of their own)
    :param timeout: seconds without a pet before the reset
    """

    def __init__(self, device: Path = DEVICE, timeout: int = TIMEOUT) -> None:
        self.device = device
        self.timeout = timeout
        self._fd: int | None = None
        self._said_missing = False

    @property
    def armed(self) -> bool:
        """Whether the device is open (the kernel's timer runs)."""
        return self._fd is not None

    def arm(self) -> bool:
        """Open the device and set its timeout (a no-op when armed); whether it is armed.
        A missing or busy device is said once in the log, and the process watchdog goes on
        alone."""
        if self._fd is not None:
            return True
        try:
            fd = os.open(self.device, os.O_WRONLY | os.O_CLOEXEC)
        except OSError as err:
            if not self._said_missing:
                why = {
                    errno.ENOENT: "no such device (the kernel's softdog module is not loaded)",
                    errno.EBUSY: "in use by another process (systemd's RuntimeWatchdogSec?)",
                }.get(err.errno or 0, err.strerror or str(err))
                log.warning("watchdog: %s: %s; the process watchdog fences alone",
                            self.device, why)  # fmt: skip
                self._said_missing = True
            return False
        try:
            fcntl.ioctl(fd, _WDIOC_SETTIMEOUT, struct.pack("i", self.timeout))
        except OSError as err:
            log.warning("watchdog: %s keeps its own timeout (cannot set %d s: %s)",
                        self.device, self.timeout, err.strerror)  # fmt: skip
        self._fd = fd
        self._said_missing = False
        log.info("watchdog: %s armed (%d s)", self.device, self.timeout)
        self.pet()
        return True

    def pet(self) -> None:
        """Restart the kernel's timer (when armed)."""
        if self._fd is None:
            return
        try:
            fcntl.ioctl(self._fd, _WDIOC_KEEPALIVE, struct.pack("i", 0))
        except OSError:  # a driver without the ioctl (or a test's file): any write pets it
            try:
                os.write(self._fd, b"\0")
            except OSError as err:
                log.error("watchdog: cannot pet %s: %s", self.device, err.strerror)

    def disarm(self) -> None:
        """Stop the kernel's timer: the magic close (a ``V``, then close)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.write(fd, b"V")
        except OSError as err:
            log.error("watchdog: cannot disarm %s: %s", self.device, err.strerror)
        finally:
            os.close(fd)
        log.info("watchdog: %s disarmed", self.device)
