"""``send-key``, ``domblkerror`` and ``domcontrol``: what reaches or is read from a running
guest's QEMU without changing its definition."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pyvirt.errors import InvalidConfigError, OperationFailedError, PyvirtError

if TYPE_CHECKING:
    from pyvirt.service.domain.manager import DomainManager

#: the longest key hold ``send-key`` accepts (ms)
MAX_HOLD_MS = 60_000

# lazy: function-local imports marked ``# lazy`` keep CLI start-up fast (lxml, QMP).


def send_key(
    mgr: DomainManager, ident: str, codeset: str, keys: list[str], *, holdtime: int | None = None
) -> list[int]:
    """Press *keys* (in *codeset*) together on the running guest; returns their qnums.

    :raises InvalidConfigError: an unknown codeset or key, or a bad hold time
    """
    from pyvirt.drivers.qemu.keycodes import to_qnum  # lazy
    from pyvirt.drivers.qemu.qmp import Monitor  # lazy

    if holdtime is not None and not 0 <= holdtime <= MAX_HOLD_MS:
        raise InvalidConfigError(
            f"invalid hold time {holdtime} ms", hint=f"give 0 to {MAX_HOLD_MS} milliseconds"
        )
    qnums = to_qnum(codeset, keys)
    name, rec = mgr.running(ident)
    with Monitor(rec.qmp_socket, name=name) as mon:
        mon.send_key(qnums, hold_time=holdtime)
    return qnums


@dataclass(frozen=True)
class BlockError:
    """A drive whose last I/O failed (``domblkerror``): its target and QEMU's status."""

    target: str
    error: str

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"target": self.target, "error": self.error}


#: QEMU's io-status -> virsh's words
_IO_ERRORS = {"failed": "unspecified error", "nospace": "no space"}


def block_errors(mgr: DomainManager, ident: str) -> list[BlockError]:
    """The drives of the running domain in an I/O error state (empty: no errors)."""
    from pyvirt.drivers.qemu.qmp import Monitor  # lazy

    name, rec = mgr.running(ident)
    dom = mgr.definition(name)
    targets = {d.alias: d.target_dev for d in dom.devices.disks if d.alias}
    with Monitor(rec.qmp_socket, name=name) as mon:
        drives = mon.block_io_status()
    out = []
    for drive in drives:
        if drive.status == "ok":
            continue
        alias = drive.qdev.rstrip("/").split("/")[-1]
        if alias == "virtio-backend":
            alias = drive.qdev.rstrip("/").split("/")[-2]
        target = targets.get(alias) or alias
        out.append(BlockError(str(target), _IO_ERRORS.get(drive.status, drive.status)))
    return out


@dataclass(frozen=True)
class ControlInfo:
    """The state of pyvirt's control of a domain (``domcontrol``): ``ok``, ``occupied`` (a
    command holds the domain) or ``error`` (the monitor does not answer), with a reason."""

    state: str
    reason: str = ""
    #: seconds the state has lasted, when known
    duration: float | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"state": self.state, "reason": self.reason, "duration": self.duration}


def control_info(mgr: DomainManager, ident: str) -> ControlInfo:
    """Whether the domain can be controlled now (virsh ``domcontrol``)."""
    from pyvirt.drivers.qemu.qmp import Monitor  # lazy

    name = mgr.resolve(ident)
    rec = mgr.live_record(name, cleanup=False)
    if rec is None:
        return ControlInfo("ok")
    try:
        with mgr.locked(name, timeout=0.2):
            pass
    except OperationFailedError:
        return ControlInfo("occupied", "another command is working on the domain")
    try:
        with Monitor(rec.qmp_socket, name=name, timeout=5.0) as mon:
            mon.query_status()
    except PyvirtError:
        return ControlInfo("error", "monitor")
    return ControlInfo("ok")
