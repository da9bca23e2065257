"""HA recovery: restart on another host the HA guests whose host died.

Every host's pyvirtd runs a :class:`RecoveryManager`; the one holding ``/pyvirt/leader`` (a
key bound to its lease, taken by a transaction) acts. Each round (once per renewal interval):

1. every host publishes where its own cluster domains run (``/pyvirt/placed/NAME``: ``running``
   or ``stopped``) and remembers which HA guests it runs — what its fencer kills. An HA guest
   its fencer killed while the lease lived on (etcd answered too late, but did not expire the
   lease: a leader election) is handed back instead: its ownership is dropped and it stays
   ``running`` in ``placed``, so the leader restarts it (step 3) rather than it staying off;
2. the leader looks for HA domains that were ``running`` and have no owner any more: their
   owner's lease ended, so the owner fenced them (its fence deadline comes
   :data:`~pyvirt.service.cluster.fence.FENCE_MARGIN` seconds before its lease can expire);
3. after :data:`GRACE` more seconds it places each (never on the host it ran on while that host
   is down) and has the chosen host's pyvirtd define and start it there; the start claims the
   ownership by a transaction, so two leaders (or a user) can never both start it.

Without a quorum, etcd answers nothing: no leader, no recovery, no new owner anywhere.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pyvirt.drivers.etcd import Compare, Delete, Entry, Etcd, Put, absent
from pyvirt.errors import PyvirtError
from pyvirt.service.cluster import keys
from pyvirt.service.cluster.config import ClusterConfig
from pyvirt.service.cluster.domains import ClusterDomain, placed_value
from pyvirt.service.cluster.fence import note_fenced, take_fenced
from pyvirt.service.cluster.membership import list_hosts
from pyvirt.service.cluster.placement import domain_checks, place

log = logging.getLogger(__name__)

#: seconds the leader waits after an HA domain lost its owner before restarting it elsewhere
GRACE = 1.0


@dataclass
class RecoveryManager:
    """One host's part in HA: publish its domains' states, and recover others' when leader.

    :param etcd: the cluster's etcd
    :param config: this host's membership
    :param running: the names of the domains running on this host now
    :param start_on: starts domain NAME on host HOST (through that host's pyvirtd)
    :param lease: this host's lease now (0: none)
    :param on_event: called with (event, domain, detail) for recoveries
    :param fenced_file: where the fencers note the guests they killed
        (:data:`~pyvirt.service.cluster.fence.FENCED_FILE` in the state's RUN directory)
    """

    etcd: Etcd
    config: ClusterConfig
    running: Callable[[], set[str]]
    start_on: Callable[[str, str], None]
    lease: Callable[[], int]
    on_event: Callable[[str, str, str], None] | None = None
    fenced_file: Path | None = None
    #: HA guests this host owns and runs (what the fencer kills)
    ha_here: list[str] = field(default_factory=list)
    #: every HA cluster domain's name (as of the last round): the fencer kills those running
    #: here at fence time, owned or not (a migration's destination runs one before the next
    #: round sees it owned here)
    ha_known: frozenset[str] = frozenset()
    leader: bool = False
    _missing_since: dict[str, float] = field(default_factory=dict)

    def round(self) -> None:
        """One round (see the module doc); etcd errors end it early, the next one retries."""
        lease = self.lease()
        if not lease:
            self.leader = False
            return
        domains = {
            e.key[len(keys.DOMAINS) :]: ClusterDomain.decode(e.value)
            for e in self.etcd.get_prefix(keys.DOMAINS)
        }
        owners = {
            e.key[len(keys.OWNERS) :]: json.loads(e.value)["host"]
            for e in self.etcd.get_prefix(keys.OWNERS)
        }
        placed = {e.key[len(keys.PLACED) :]: e for e in self.etcd.get_prefix(keys.PLACED)}
        self._publish(domains, owners, placed, lease)
        self.leader = self._elect(lease)
        if self.leader:
            self._recover(domains, owners, placed)

    # every host ----------------------------------------------------------------------------

    def _publish(self, domains: dict[str, ClusterDomain], owners: dict[str, str],
                 placed: dict[str, Entry], lease: int) -> None:  # fmt: skip
        # taken before looking at what runs: a guest fenced in between is seen stopped
        fenced = take_fenced(self.fenced_file) if self.fenced_file is not None else set()
        running = self.running()
        self.ha_known = frozenset(n for n, d in domains.items() if d.ha)
        mine = [n for n, h in owners.items() if h == self.config.host and n in domains]
        self.ha_here = sorted(n for n in mine if domains[n].ha and n in running)
        try:
            handed = self._hand_back((fenced & set(mine)) - running, lease)
        except BaseException:
            assert self.fenced_file is not None
            note_fenced(self.fenced_file, fenced)  # the next round tries again
            raise
        for name in mine:
            if name in handed:
                continue
            state = "running" if name in running else "stopped"
            entry = placed.get(name)
            current = json.loads(entry.value) if entry is not None else {}
            if current.get("host") == self.config.host and current.get("state") == state:
                continue
            # only while this host still owns it (a fenced host that lost it writes nothing)
            self.etcd.transaction(
                [Compare(keys.owner(name), "lease", "EQUAL", lease)],
                [Put(keys.placed(name), placed_value(self.config.host, state))],
            )

    def _hand_back(self, names: set[str], lease: int) -> set[str]:
        """Drop this host's ownership of fenced guests *names* (still ``running`` in
        ``placed``, so the leader restarts them); the names handed back."""
        handed: set[str] = set()
        for name in sorted(names):
            if self.etcd.transaction(
                [Compare(keys.owner(name), "lease", "EQUAL", lease)],
                [Delete(keys.owner(name)),
                 Put(keys.placed(name), placed_value(self.config.host, "running"))],
            ):  # fmt: skip
                log.warning("cluster: %s was fenced while the lease lived: handed back", name)
                self._event("HandedBack", name, "fenced while the lease lived on")
                handed.add(name)
        return handed

    # the leader ----------------------------------------------------------------------------

    def _elect(self, lease: int) -> bool:
        value = json.dumps({"host": self.config.host})
        if self.etcd.transaction([absent(keys.LEADER)], [Put(keys.LEADER, value, lease=lease)]):
            log.info("cluster: %s leads recovery", self.config.host)
            return True
        entry = self.etcd.get(keys.LEADER)
        return entry is not None and json.loads(entry.value).get("host") == self.config.host

    def _recover(self, domains: dict[str, ClusterDomain], owners: dict[str, str],
                 placed: dict[str, Entry]) -> None:  # fmt: skip
        now = time.monotonic()
        wanted: set[str] = set()
        for name, dom in domains.items():
            entry = placed.get(name)
            if not dom.ha or name in owners or entry is None:
                continue
            where = json.loads(entry.value)
            if where.get("state") != "running":
                continue
            wanted.add(name)
            first = self._missing_since.setdefault(name, now)
            if now - first < GRACE:
                continue
            self._restart(dom, str(where.get("host", "")))
        for name in list(self._missing_since):
            if name not in wanted:
                del self._missing_since[name]

    def _restart(self, dom: ClusterDomain, last: str) -> None:
        hosts = list_hosts(self.etcd)
        down = {h.name for h in hosts if h.state != "up"}
        try:
            avoid = [last] if last in down else []
            checks = domain_checks(self.etcd, dom)  # networks, pools, NUMA, affinity groups
            target = place(hosts, dom.memory_kib, avoid=avoid, checks=checks).host
        except PyvirtError as err:
            log.error("cluster: cannot recover %s: %s", dom.name, err.message)
            self._event("RecoveryFailed", dom.name, err.message)
            return
        log.warning("cluster: recovering HA domain %s (was on %s) on %s", dom.name, last, target)
        self._event("Recovering", dom.name, f"{last} -> {target}")
        try:
            self.start_on(dom.name, target)
        except PyvirtError as err:
            log.error("cluster: recovery of %s on %s failed: %s", dom.name, target, err.message)
            self._event("RecoveryFailed", dom.name, f"{target}: {err.message}")
            return
        self._missing_since.pop(dom.name, None)
        self._event("Recovered", dom.name, target)

    def _event(self, event: str, name: str, detail: str) -> None:
        if self.on_event is not None:
            self.on_event(event, name, detail)
