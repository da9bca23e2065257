"""Plain value types returned by the service API (no behaviour, safe to serialize)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any


class State(StrEnum):
    """Domain states, spelled as virsh prints them."""

    RUNNING = "running"
    PAUSED = "paused"
    SHUTOFF = "shut off"
    #: its runtime record cannot be read (:attr:`DomainStatus.problem` says why)
    UNKNOWN = "unknown"


class Reason(StrEnum):
    """Why a domain is in its state (virsh ``domstate --reason``)."""

    BOOTED = "booted"
    UNPAUSED = "unpaused"
    #: running again from a save image (``restore``, ``start`` after ``managedsave``)
    RESTORED = "restored"
    USER = "user"
    STARTING_UP = "starting up"
    SHUTDOWN = "shutdown"
    DESTROYED = "destroyed"
    CRASHED = "crashed"
    #: its state was saved to a file (``save``, ``managedsave``)
    SAVED = "saved"
    #: moved to or from another host (`migrate`)
    MIGRATED = "migrated"
    #: in a post-copy migration: paused on the source, running on the destination
    POSTCOPY = "post-copy"
    #: paused by a migration so that the rest goes at once (``--timeout-suspend``)
    MIGRATING = "migrating"
    #: paused on an I/O error of a disk (seen by ``migrate --abort-on-error``)
    IOERROR = "I/O error"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class DomainStatus:
    """What ``list`` and ``dominfo`` show about one domain."""

    name: str
    uuid: str
    id: int | None
    state: State
    reason: Reason
    persistent: bool
    autostart: bool
    pid: int | None = None
    #: why the domain's records cannot be read (state :attr:`State.UNKNOWN`), with the repair
    problem: str | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict with enum values as strings."""
        out = asdict(self)
        out["state"] = str(self.state)
        out["reason"] = str(self.reason)
        if self.problem is None:
            del out["problem"]
        return out
