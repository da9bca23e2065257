"""The seam between the typed command mixins and the QMP session that sends them.

Every mixin of :class:`~pyvirt.drivers.qemu.qmp.Monitor` derives from :class:`Commands`
and sends its command through :meth:`Commands._call` (or :meth:`Commands._call_until`
for a command followed by an event); :class:`~pyvirt.drivers.qemu.qmp.Monitor` implements
them on a ``qemu.qmp`` session. The command names written in these modules are the only QMP
command names in pyvirt outside ``drivers/qemu`` (a unit test checks ``service/``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: A JSON argument value: :data:`pyvirt.drivers.qemu.argv.opts.JsonValue` plus floats (defined
#: here so that importing the monitor does not import the argv builder).
JsonValue = str | int | float | bool | None | list[int] | list[str] | Mapping[str, "JsonValue"]
#: Arguments of a QMP command: JSON values by (dashed) member name.
Args = Mapping[str, JsonValue]


def prune(props: Args) -> dict[str, JsonValue]:
    """*props* without ``None`` members (also in nested objects), as QMP wants them: the
    argv lowerings use ``None`` for "leave the property out"."""
    out: dict[str, JsonValue] = {}
    for key, value in props.items():
        if value is None:
            continue
        out[key] = prune(value) if isinstance(value, Mapping) else value
    return out


class Commands:
    """Base of the typed command mixins; the session supplies the two transport methods."""

    def _call(self, cmd: str, args: Args | None = None) -> Any:
        """Send *cmd* and return its ``return`` member (implemented by the session)."""
        raise NotImplementedError

    def _call_until(
        self, cmd: str, args: Args, *, event: str, match: Mapping[str, str], timeout: float
    ) -> dict[str, Any] | None:
        """Send *cmd*, then wait for *event* whose data contains *match* (implemented by the
        session); ``None`` when it did not come within *timeout* seconds."""
        raise NotImplementedError

    def _send_fd(self, fd: int) -> None:
        """Pass open *fd* to QEMU (``SCM_RIGHTS``) for the next command (``add-fd``)."""
        raise NotImplementedError
