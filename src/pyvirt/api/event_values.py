"""The values of the event stream: :class:`Event` and the event kinds (:data:`KINDS`);
used by the daemon, the remote API and the CLI alike."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pyvirt.errors import InvalidConfigError

__all__ = ["KINDS", "Event", "check_kinds"]

#: the event kinds, as ``virsh event --list`` names them (plus network/pool lifecycle and jobs)
KINDS: tuple[str, ...] = (
    "lifecycle", "device-added", "device-removed", "job", "network-lifecycle", "pool-lifecycle",
    "cluster",
)  # fmt: skip


@dataclass(frozen=True)
class Event:
    """One event. ``kind`` is one of :data:`KINDS`; ``object`` is ``domain``, ``network``,
    ``pool`` or ``job`` and ``name`` its name (a job's id); ``seq`` counts the daemon's events
    from 1 since it started; ``time`` is seconds since the epoch."""

    kind: str
    object: str
    name: str
    event: str
    detail: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    seq: int = 0
    time: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """The event as a JSON object (one ``data:`` line of the event stream)."""
        return {
            "seq": self.seq, "time": self.time, "kind": self.kind, "object": self.object,
            "name": self.name, "event": self.event, "detail": self.detail, "data": self.data,
        }  # fmt: skip

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Event:
        """The event of a JSON object made by :meth:`to_json`.

        :raises InvalidConfigError: not an event object
        """
        try:
            data = doc.get("data") or {}
            return cls(
                str(doc["kind"]), str(doc["object"]), str(doc["name"]), str(doc["event"]),
                str(doc.get("detail") or ""), dict(data), int(doc.get("seq") or 0),
                float(doc.get("time") or 0.0),
            )  # fmt: skip
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise InvalidConfigError(f"not an event: {err}") from None


def check_kinds(kinds: Iterable[str]) -> tuple[str, ...]:
    """``kinds`` checked against :data:`KINDS` (duplicates dropped, order kept).

    :raises InvalidConfigError: an unknown kind
    """
    out: list[str] = []
    for kind in kinds:
        if kind not in KINDS:
            raise InvalidConfigError(
                f"unknown event type '{kind}'", hint=f"use one of {', '.join(KINDS)}"
            )
        if kind not in out:
            out.append(kind)
    return tuple(out)
