"""Progress reports and cancellation of long operations (copies, uploads, wipes, clones).

A long operation takes two optional arguments, both no-ops when ``None`` (the embedded CLI's
behaviour stays unchanged):

- ``progress``: a callable ``(done, total)`` called as work advances (bytes, or ``total`` 100
  for a percentage when only that is known);
- ``cancel``: a :class:`CancelToken` another thread may set; the operation checks it between
  steps, removes what it had half-made and raises :class:`CancelledError`.

>>> token = CancelToken()
>>> token.cancel()
>>> checkpoint(None, token, 0, 10)
Traceback (most recent call last):
...
pyvirt.progress.CancelledError: operation cancelled

This module sits next to :mod:`pyvirt.errors` at the bottom of the layers: every layer may use
it, and the daemon's job registry hands its tokens down through :mod:`pyvirt.api`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from pyvirt.errors import OperationFailedError

__all__ = ["CancelToken", "CancelledError", "Progress", "checkpoint", "scaled"]

#: progress callback: (units done, units total); total 0 when unknown
Progress = Callable[[int, int], None]


class CancelledError(OperationFailedError):
    """The operation was cancelled on request; what it had half-made is removed."""

    code = "cancelled"


class CancelToken:
    """A cancel flag set from any thread and checked by the worker doing the operation."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        """Ask the operation to stop at its next check."""
        self._event.set()

    @property
    def cancelled(self) -> bool:
        """Whether :meth:`cancel` was called."""
        return self._event.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``, waking early when cancelled; True when cancelled."""
        return self._event.wait(seconds)

    def check(self, what: str = "operation") -> None:
        """Raise :class:`CancelledError` when cancelled.

        :raises CancelledError: the operation must stop
        """
        if self._event.is_set():
            raise CancelledError(f"{what} cancelled")


def checkpoint(
    progress: Progress | None, cancel: CancelToken | None, done: int, total: int
) -> None:
    """Check ``cancel`` and then report ``done``/``total`` to ``progress`` (either may be None).

    :raises CancelledError: the token was set
    """
    if cancel is not None:
        cancel.check()
    if progress is not None:
        progress(done, total)
    if cancel is not None:
        cancel.check()


def scaled(progress: Progress | None, total: int) -> Progress | None:
    """``progress`` fed by a percentage reporter (``(percent, 100)``), translated to units of
    ``total`` (bytes), so one operation reports in one unit whatever copies it."""
    if progress is None or total <= 0:
        return progress
    report = progress

    def by_percent(done: int, whole: int) -> None:
        report(min(total, done * total // max(whole, 1)), total)

    return by_percent
