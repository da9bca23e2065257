"""The lease that says "this host is alive", kept by pyvirtd (and by its watchdog process).

:class:`Heartbeat` grants a lease of the cluster's TTL, writes ``/pyvirt/alive/HOST`` bound
to it and renews it every ``renew`` seconds from its own thread (a slow request handler or a
busy event loop cannot starve it). Every few renewals it rewrites the liveness record with the
host's free memory and load (what placement reads).

When etcd stops answering, the lease's own clock keeps running: :attr:`Heartbeat.expires_at`
(monotonic) is the last moment the lease is known to live, counted from the *start* of the last
successful renewal. That deadline is what fencing (a host stopping its HA guests before
another host may restart them) is measured against; the watchdog process renews the same
lease while HA guests run here (:mod:`pyvirt.service.cluster.watchdog`), and the later of the
two deadlines counts (:attr:`Heartbeat.fence_deadline`). A lease found expired is replaced by a new
one (the host re-appears as ``up``) and :attr:`Heartbeat.on_lost` is called first.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from pyvirt.drivers.etcd import Etcd, EtcdUnavailableError
from pyvirt.errors import PyvirtError
from pyvirt.service.cluster import keys
from pyvirt.service.cluster.config import ClusterConfig
from pyvirt.service.cluster.fence import FENCE_MARGIN
from pyvirt.service.cluster.records import Liveness, current_load

log = logging.getLogger(__name__)

# lazy: the atomic-write helper loads only when a lease is granted

#: renewals between two rewrites of the liveness record's free memory and load
FIGURES_EVERY = 5


class Heartbeat:
    """Keeps this host's lease alive while it runs.

    :param etcd: the cluster's etcd
    :param config: this host's membership
    :param on_lost: called (from the heartbeat thread) when the lease was found expired
    :param on_change: called with ``"up"`` or ``"down"`` when the host's own view changes
    """

    def __init__(
        self,
        etcd: Etcd,
        config: ClusterConfig,
        *,
        on_lost: Callable[[], None] | None = None,
        on_change: Callable[[str], None] | None = None,
        on_fence: Callable[[], None] | None = None,
        on_tick: Callable[[float | None], None] | None = None,
        host_root: Path = Path("/"),
        lease_file: Path | None = None,
        held_file: Path | None = None,
    ) -> None:
        self.etcd = etcd
        self.config = config
        self.on_lost = on_lost
        self.on_change = on_change
        #: kills this host's HA guests (called by the fence timer at the fence deadline)
        self.on_fence = on_fence
        #: called by the fence timer every tick with the fence deadline (None: no lease);
        #: pyvirtd pets its watchdog process there
        self.on_tick = on_tick
        #: the fence deadline last acted on (a renewal moves the deadline: fence again)
        self._fenced_deadline = 0.0
        self.host_root = host_root
        #: where the lease id is kept, so a restarted daemon goes on with a live lease
        self.lease_file = lease_file
        #: where the watchdog process publishes the fence deadline its own renewals of the
        #: lease reached (it renews too: see :mod:`pyvirt.service.cluster.watchdog`)
        self.held_file = held_file
        self.lease = 0
        self.since = 0.0
        #: monotonic time until which the lease is known to live (0: no lease)
        self.expires_at = 0.0
        self.state = "down"
        self.last_error = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._fencer: threading.Thread | None = None
        self._renewals = 0

    # lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Start the heartbeat thread (the first lease is taken there, not here)."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(
            target=self._run, name=f"cluster-heartbeat-{self.config.host}", daemon=True
        )
        self._thread.start()
        self._fencer = threading.Thread(target=self._fence_timer, name="cluster-fence", daemon=True)
        self._fencer.start()

    def stop(self, *, revoke: bool = True) -> None:
        """Stop renewing; with *revoke*, end the lease at once (the host shows ``down``)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.etcd.timeout * len(self.etcd.endpoints) + 1)
            self._thread = None
        if self._fencer is not None:
            self._fencer.join(timeout=2)
            self._fencer = None
        if revoke and self.lease:
            try:
                self.etcd.lease_revoke(self.lease)
            except PyvirtError as err:
                log.warning("cluster: could not revoke lease %x: %s", self.lease, err.message)
            if self.lease_file is not None:
                self.lease_file.unlink(missing_ok=True)
        self.lease = 0
        self.expires_at = 0.0

    def wait_up(self, timeout: float) -> bool:
        """Wait until the host holds a live lease; whether it does."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.state == "up":
                return True
            time.sleep(0.02)
        return self.state == "up"

    @property
    def fence_deadline(self) -> float | None:
        """Monotonic time at which this host fences its HA guests (None: holds no lease)."""
        if not self.lease or not self.expires_at:
            return None
        own = self.expires_at - FENCE_MARGIN
        if self.held_file is None:
            return own
        from pyvirt.service.cluster.watchdog import read_held  # lazy

        held = read_held(self.held_file, self.lease)  # after a hang: the watchdog renewed
        return own if held is None else max(own, held)

    # the fence timer -----------------------------------------------------------------------

    def _fence_timer(self) -> None:
        """Every 100 ms: past the fence deadline without a renewal, fence (once per deadline:
        a lease that outlived a fence and is renewed, then lost again, is fenced again);
        hand the deadline to :attr:`on_tick` (the watchdog's pet)."""
        while not self._stop.wait(0.1):
            deadline = self.fence_deadline
            if self.on_tick is not None:
                try:
                    self.on_tick(deadline)
                except Exception:
                    log.exception("cluster: fence tick failed")
            if deadline is None or time.monotonic() < deadline:
                continue
            if self._fenced_deadline == deadline:
                continue
            self._fenced_deadline = deadline
            log.warning(
                "cluster: lease %x not renewed for %.1f s: fencing this host's HA guests",
                self.lease,
                self.config.ttl - FENCE_MARGIN,
            )
            if self.on_fence is not None:
                try:
                    self.on_fence()
                except Exception:
                    log.exception("cluster: fencing failed")

    # the loop ------------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self._beat(started)
            except EtcdUnavailableError as err:
                self._set_error(err.message)
            except PyvirtError as err:
                self._set_error(err.message)
            except Exception as err:
                log.exception("cluster: heartbeat failed")
                self._set_error(str(err))
            if self.expires_at and time.monotonic() >= self.expires_at and self.state == "up":
                self._set_state("down")
            self._stop.wait(max(0.0, self.config.renew - (time.monotonic() - started)))

    def _beat(self, started: float) -> None:
        if not self.lease and self._resume(started):
            return
        if not self.lease:
            self._grant(started)
            return
        ttl = self.etcd.lease_keepalive(self.lease)
        if ttl <= 0:
            log.warning(
                "cluster: lease %x of %s expired; taking a new one", self.lease, self.config.host
            )
            self.lease = 0
            self.expires_at = 0.0
            self._set_state("down")
            if self.on_lost is not None:
                self.on_lost()
            self._grant(time.monotonic())
            return
        self.expires_at = started + ttl
        self._renewals += 1
        if self._renewals % FIGURES_EVERY == 0:
            self._publish()
        self.last_error = ""
        self._set_state("up")

    def _resume(self, started: float) -> bool:
        """Go on with the lease a previous daemon left in :attr:`lease_file`, if still alive."""
        if self.lease_file is None:
            return False
        try:
            lease_text, since_text = self.lease_file.read_text().split()
            lease, since = int(lease_text, 16), float(since_text)
        except (OSError, ValueError):
            return False
        ttl = self.etcd.lease_keepalive(lease)
        if ttl <= 0:
            return False
        log.info("cluster: going on with lease %x of the previous daemon", lease)
        self.lease, self.since = lease, since
        self.expires_at = started + ttl
        self._publish()
        self._set_state("up")
        return True

    def _grant(self, started: float) -> None:
        lease = self.etcd.lease_grant(self.config.ttl)
        self.lease = lease
        self.since = time.time()
        self.expires_at = started + self.config.ttl
        if self.lease_file is not None:
            from pyvirt.state.atomic import atomic_write  # lazy

            atomic_write(self.lease_file, f"{lease:x} {self.since}\n".encode(), sync=False)
        self._publish()
        self.last_error = ""
        self._set_state("up")

    def _publish(self) -> None:
        free, load = current_load(self.host_root)
        record = Liveness(
            lease=self.lease, since=self.since, pid=os.getpid(), free_kib=free, load=load
        )
        self.etcd.put(keys.alive(self.config.host), record.encode(), lease=self.lease)

    def _set_error(self, message: str) -> None:
        if message != self.last_error:
            log.warning("cluster: heartbeat of %s: %s", self.config.host, message)
        self.last_error = message

    def _set_state(self, state: str) -> None:
        if state == self.state:
            return
        self.state = state
        log.info("cluster: host %s is %s", self.config.host, state)
        if self.on_change is not None:
            self.on_change(state)
