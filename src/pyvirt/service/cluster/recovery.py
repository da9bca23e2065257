"""HA recovery: restart on another host the HA guests whose host died.

Every host's pyvirtd runs a :class:`RecoveryManager`; the one holding ``/pyvirt/leader`` (a
key bound to its lease, taken by a transaction) acts. Each round (once per renewal interval):

1. every host publishes where its own cluster domains run (``/pyvirt/placed/NAME``: ``running``
   or ``stopped``) and remembers which HA guests it runs — what its fencer kills, with those
   it claimed since (:func:`~pyvirt.service.cluster.domains.recent_ha_claims`); an HA guest
   it fenced while keeping its lease (see :mod:`~pyvirt.service.cluster.fence`) it gives up,
   left ``running`` in ``placed``, so that the leader restarts it;
2. the leader looks for HA domains that were ``running`` and have no owner any more: their
   owner's lease ended, so the owner fenced them (its fence deadline comes
   :data:`~pyvirt.service.cluster.fence.FENCE_MARGIN` seconds before its lease can expire);
3. after :data:`GRACE` more seconds it places each (never on the host it ran on while that host
   is down) and has the chosen host's pyvirtd define and start it there; the start claims the
   ownership by a transaction, so two leaders (or a user) can never both start it;
4. a start that fails gives the ownership back (the chosen host does, when the guest does not
   run there: :func:`~pyvirt.service.cluster.domains.give_up_failed_start`), and the leader
   tries again after a back-off (:data:`BACKOFF` seconds, doubling up to :data:`BACKOFF_MAX`),
   on another host while one fits (a host where it failed is avoided for
   :data:`FAILED_AVOID` seconds), or on the same one.

Without a quorum, etcd answers nothing: no leader, no recovery, no new owner anywhere.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pyvirt.drivers.etcd import Compare, Delete, Entry, Etcd, Put, absent
from pyvirt.errors import PyvirtError
from pyvirt.service.cluster import fence, keys
from pyvirt.service.cluster.config import ClusterConfig
from pyvirt.service.cluster.domains import ClusterDomain, placed_value, recent_ha_claims
from pyvirt.service.cluster.membership import HostStatus, list_hosts
from pyvirt.service.cluster.placement import domain_checks, domain_preferences, place

if TYPE_CHECKING:
    from pyvirt.state.paths import StatePaths

log = logging.getLogger(__name__)

#: seconds the leader waits after an HA domain lost its owner before restarting it elsewhere
GRACE = 1.0
#: seconds a fenced mark is kept while the guest still shows a run directory here
FENCED_KEEP = 30.0
#: seconds after its claim during which a guest that does not run yet is still starting
STARTING = 60.0
#: seconds the leader waits before it retries a recovery whose start failed (doubling)
BACKOFF = 2.0
#: the longest back-off between two attempts
BACKOFF_MAX = 30.0
#: seconds a host where a recovery's start failed is avoided for that domain (while another fits)
FAILED_AVOID = 60.0


@dataclass
class Attempts:
    """A domain's failed recovery starts: how many, when to try again, and the hosts where
    they failed (host → monotonic time)."""

    count: int = 0
    retry_at: float = 0.0
    failed_on: dict[str, float] = field(default_factory=dict)

    def failed(self, host: str, now: float) -> float:
        """Count a failure on *host* at *now*; the back-off before the next attempt."""
        self.count += 1
        if host:
            self.failed_on[host] = now
        backoff: float = min(BACKOFF_MAX, BACKOFF * 2.0 ** (self.count - 1))
        self.retry_at = now + backoff
        return backoff

    def avoid(self, now: float) -> list[str]:
        """The hosts where a start failed within :data:`FAILED_AVOID` seconds."""
        return sorted(h for h, t in self.failed_on.items() if now - t < FAILED_AVOID)


@dataclass
class RecoveryManager:
    """One host's part in HA: publish its domains' states, and recover others' when leader.

    :param etcd: the cluster's etcd
    :param config: this host's membership
    :param running: the names of the domains running on this host now
    :param start_on: starts domain NAME on host HOST (through that host's pyvirtd)
    :param lease: this host's lease now (0: none)
    :param on_event: called with (event, domain, detail) for recoveries
    :param paths: this host's state (where the fencers mark the guests they killed)
    """

    etcd: Etcd
    config: ClusterConfig
    running: Callable[[], set[str]]
    start_on: Callable[[str, str], None]
    lease: Callable[[], int]
    on_event: Callable[[str, str, str], None] | None = None
    paths: StatePaths | None = None
    #: HA guests this host owns and runs (what the fencer kills)
    ha_here: list[str] = field(default_factory=list)
    #: every HA cluster domain's name (as of the last round): the fencer kills those running
    #: here at fence time, owned or not (a migration's destination runs one before the next
    #: round sees it owned here)
    ha_known: frozenset[str] = frozenset()
    leader: bool = False
    #: whether a round has published (and :attr:`ha_here` is known) since this manager began
    ready: bool = False
    #: when (monotonic) the last round that published began
    _published: float = 0.0
    _missing_since: dict[str, float] = field(default_factory=dict)
    #: the recoveries whose start failed (domain → :class:`Attempts`), until one succeeds
    _attempts: dict[str, Attempts] = field(default_factory=dict)

    def round(self) -> None:
        """One round (see the module doc); etcd errors end it early, the next one retries."""
        began = time.monotonic()
        lease = self.lease()
        if not lease:
            self.leader = False
            return
        # before the owners: a guest running by now was claimed before they are read
        running = self.running()
        domains = {
            e.key[len(keys.DOMAINS) :]: ClusterDomain.decode(e.value)
            for e in self.etcd.get_prefix(keys.DOMAINS)
        }
        owners = {
            e.key[len(keys.OWNERS) :]: json.loads(e.value)["host"]
            for e in self.etcd.get_prefix(keys.OWNERS)
        }
        placed = {e.key[len(keys.PLACED) :]: e for e in self.etcd.get_prefix(keys.PLACED)}
        self._publish(domains, owners, placed, running, lease, began)
        self._published = began
        self.leader = self._elect(lease)
        if self.leader:
            self._recover(domains, owners, placed)

    def fence_names(self) -> list[str]:
        """What the fencers kill: :attr:`ha_here` and the HA guests claimed here since the
        last round (a guest started just now is not in :attr:`ha_here` yet)."""
        return sorted(set(self.ha_here) | recent_ha_claims(self._published))

    # every host ----------------------------------------------------------------------------

    def _publish(self, domains: dict[str, ClusterDomain], owners: dict[str, str],
                 placed: dict[str, Entry], running: set[str], lease: int,
                 began: float) -> None:  # fmt: skip
        self.ha_known = frozenset(n for n, d in domains.items() if d.ha)
        self._kill_unowned(domains, owners, running, began)
        if not self.ready:
            self._give_up_interrupted(domains, owners, placed, running, lease)
        if self.paths is not None:
            self._give_up_fenced(owners, running, lease)
        mine = [n for n, h in owners.items() if h == self.config.host and n in domains]
        self.ha_here = sorted(n for n in mine if domains[n].ha and n in running)
        starting = recent_ha_claims(time.monotonic() - STARTING)
        for name in mine:
            state = "running" if name in running else "stopped"
            if state == "stopped" and name in starting:
                continue  # claimed here, QEMU not up yet: the claim said "running"
            entry = placed.get(name)
            current = json.loads(entry.value) if entry is not None else {}
            if current.get("host") == self.config.host and current.get("state") == state:
                continue
            # only while this host still owns it (a fenced host that lost it writes nothing)
            self.etcd.transaction(
                [Compare(keys.owner(name), "lease", "EQUAL", lease)],
                [Put(keys.placed(name), placed_value(self.config.host, state))],
            )
        self.ready = True

    def _give_up_fenced(self, owners: dict[str, str], running: set[str], lease: int) -> None:
        """Give up the HA guests fenced here while this host kept its lease: the fence
        deadline passed but the lease lived on (a hang or an etcd outage between the two).
        Their ``placed`` stays ``running``, so the leader restarts them."""
        assert self.paths is not None
        for name, when in fence.fenced(self.paths).items():
            if name in running:  # not reaped yet (or started here again since)
                if time.time() - when > FENCED_KEEP:
                    fence.forget_fenced(self.paths, name)
                continue
            if owners.get(name) == self.config.host:
                log.warning("cluster: giving up fenced HA domain %s for recovery", name)
                self._give_up(name, owners, lease)
                if name not in owners:  # the transaction took: no owner, placed "running"
                    self._event("HandedBack", name, "fenced while the lease lived on")
            fence.forget_fenced(self.paths, name)

    def _kill_unowned(self, domains: dict[str, ClusterDomain], owners: dict[str, str],
                      running: set[str], began: float) -> None:  # fmt: skip
        """Kill the HA guests running here that this host does not own: a start that went on
        after this host's lease ended (a daemon frozen in the middle of it), while another
        host took the guest over. Not those claimed here since this round began, nor either
        end of a migration still going on (``cluster evacuate`` moves the ownership at the
        hand-over, before the destination's QEMU resumes and the source's is stopped)."""
        if self.paths is None:
            return
        fresh = recent_ha_claims(began)
        paths = self.paths
        stray = [
            n for n in sorted(running)
            if n in domains and domains[n].ha and owners.get(n) != self.config.host
            and n not in fresh and not fence.incoming(paths, n)
            and not fence.outgoing(paths, n)
        ]  # fmt: skip
        for name in fence.kill_now(self.paths, stray):
            log.warning("cluster: killed HA domain %s: it runs here, but %s owns it", name,
                        owners.get(name) or "no host")  # fmt: skip
            fence.forget_fenced(self.paths, name)  # another host runs it, or will

    def _give_up_interrupted(self, domains: dict[str, ClusterDomain], owners: dict[str, str],
                             placed: dict[str, Entry], running: set[str],
                             lease: int) -> None:  # fmt: skip
        """At a daemon's first round: give up the HA guests this host owns, published as
        running here, that do not run — a start the previous daemon did not finish, or a guest
        its watchdog fenced while no daemon ran."""
        for name, host in list(owners.items()):
            if host != self.config.host or name in running or name not in domains:
                continue
            entry = placed.get(name)
            where = json.loads(entry.value) if entry is not None else {}
            if domains[name].ha and (where.get("host"), where.get("state")) == (host, "running"):
                log.warning("cluster: HA domain %s is not running here: giving it up", name)
                self._give_up(name, owners, lease)

    def _give_up(self, name: str, owners: dict[str, str], lease: int) -> None:
        """Drop this host's ownership of *name*, leaving ``placed`` ``running`` (the leader
        restarts it after the grace)."""
        if self.etcd.transaction(
            [Compare(keys.owner(name), "lease", "EQUAL", lease)],
            [
                Delete(keys.owner(name)),
                Put(keys.placed(name), placed_value(self.config.host, "running")),
            ],
        ):
            del owners[name]

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
        due: list[tuple[ClusterDomain, str]] = []
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
            tried = self._attempts.get(name)
            if tried is not None and now < tried.retry_at:
                continue  # its last start failed: wait for the back-off
            due.append((dom, str(where.get("host", ""))))
        for name in list(self._missing_since):
            if name not in wanted:
                del self._missing_since[name]
        for name in list(self._attempts):
            if name not in wanted:
                del self._attempts[name]  # running (or stopped by a user) since
        if not due:
            return
        hosts = list_hosts(self.etcd)
        # the guests of a dead host start at once, each on its own thread (one after the
        # other, the last of three waited for the first two starts)
        threads = [
            threading.Thread(target=self._restart, args=(dom, last, hosts),
                             name=f"cluster-recover-{dom.name}", daemon=True)
            for dom, last in due
        ]  # fmt: skip
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def _restart(self, dom: ClusterDomain, last: str, hosts: list[HostStatus]) -> None:
        down = {h.name for h in hosts if h.state != "up"}
        tried = self._attempts.get(dom.name)
        now = time.monotonic()
        try:
            avoid = [last] if last in down else []
            checks = domain_checks(self.etcd, dom)  # networks, pools, NUMA, affinity groups
            soft = domain_preferences(self.etcd, dom)  # soft affinity groups
            failed = tried.avoid(now) if tried is not None else []
            try:  # first away from the hosts where its start failed lately
                target = place(hosts, dom.memory_kib, avoid=avoid + failed, checks=checks,
                               preferences=soft).host  # fmt: skip
            except PyvirtError:
                if not failed:
                    raise
                target = place(hosts, dom.memory_kib, avoid=avoid, checks=checks,
                               preferences=soft).host  # fmt: skip
        except PyvirtError as err:
            backoff = self._attempts.setdefault(dom.name, Attempts()).failed("", now)
            log.error("cluster: cannot recover %s: %s", dom.name, err.message)
            self._event("RecoveryFailed", dom.name, f"{err.message}; again in {backoff:g} s")
            return
        log.warning("cluster: recovering HA domain %s (was on %s) on %s", dom.name, last, target)
        self._event("Recovering", dom.name, f"{last} -> {target}")
        try:
            self.start_on(dom.name, target)
        except PyvirtError as err:
            backoff = self._attempts.setdefault(dom.name, Attempts()).failed(target, now)
            log.error("cluster: recovery of %s on %s failed: %s (again in %g s)", dom.name,
                      target, err.message, backoff)  # fmt: skip
            self._event("RecoveryFailed", dom.name,
                        f"{target}: {err.message}; again in {backoff:g} s")  # fmt: skip
            return
        self._missing_since.pop(dom.name, None)
        self._attempts.pop(dom.name, None)
        self._event("Recovered", dom.name, target)

    def _event(self, event: str, name: str, detail: str) -> None:
        if self.on_event is not None:
            self.on_event(event, name, detail)
