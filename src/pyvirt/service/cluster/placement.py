"""Where a cluster domain should run: the up host with room for it, least loaded.

A host fits when it is ``up``, not in maintenance (``cluster evacuate``), and its free memory
(MemAvailable, published with its lease) minus :data:`RESERVE_KIB` holds the domain's memory.
Among those that fit, the score prefers the host left with the largest share of its memory
free, minus its load per CPU (a busy host loses even with free memory). A host named in
``avoid`` (anti-affinity, or the host being evacuated) is skipped; ``prefer`` wins when it
fits. Pure: it reads the host list it is given.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pyvirt.errors import InvalidStateError
from pyvirt.service.cluster.membership import HostStatus

#: KiB a host keeps free for itself beyond what its guests take
RESERVE_KIB = 256 * 1024


@dataclass(frozen=True)
class Candidate:
    """A host considered for a domain: whether it fits, its score, and why (when not)."""

    host: str
    fits: bool
    score: float
    why: str


@dataclass(frozen=True)
class Placement:
    """The chosen host and every host considered."""

    host: str
    candidates: tuple[Candidate, ...]


def _consider(h: HostStatus, need_kib: int, avoid: set[str]) -> Candidate:
    if h.name in avoid:
        return Candidate(h.name, False, 0.0, "avoided")
    if h.maintenance:
        return Candidate(h.name, False, 0.0, "maintenance")
    if h.state != "up" or h.liveness is None:
        return Candidate(h.name, False, 0.0, "down")
    free_after = h.liveness.free_kib - RESERVE_KIB - need_kib
    if free_after < 0:
        return Candidate(h.name, False, 0.0, f"{h.liveness.free_kib // 1024} MiB free")
    share = free_after / max(1, h.record.memory_kib)
    busy = h.liveness.load / max(1, h.record.cpus)
    return Candidate(h.name, True, share - busy, "")


def place(
    hosts: Sequence[HostStatus],
    need_kib: int,
    *,
    avoid: Iterable[str] = (),
    prefer: str | None = None,
) -> Placement:
    """The best host for a domain of *need_kib*.

    :raises InvalidStateError: no host fits (each host's reason is named)
    """
    candidates = tuple(_consider(h, need_kib, set(avoid)) for h in hosts)
    fitting = [c for c in candidates if c.fits]
    if not fitting:
        reasons = ", ".join(f"{c.host}: {c.why}" for c in candidates) or "no hosts"
        raise InvalidStateError(
            f"no cluster host can take {need_kib // 1024} MiB ({reasons})",
            hint="free memory on a host, bring a host up, or lower the domain's memory",
        )
    chosen = next((c for c in fitting if c.host == prefer), None)
    if chosen is None:
        chosen = max(fitting, key=lambda c: (c.score, c.host))
    return Placement(chosen.host, candidates)
