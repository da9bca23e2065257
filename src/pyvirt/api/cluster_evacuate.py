"""``cluster evacuate HOST`` and ``cluster restore HOST``: maintenance mode (issue 16).

:func:`evacuate` puts the host in maintenance (placement, HA recovery and cluster starts
leave it alone; :mod:`pyvirt.service.cluster.maintenance`), then moves every cluster domain
it owns to the host placement picks: a running one by live migration, a shut-off one by
moving its ownership only. A live move drives the migration's halves itself, each on its
host's pyvirtd (reached at its published address), and moves the ownership between them:

1. the target prepares an incoming QEMU, the source sends the guest's state (it runs on at
   the source meanwhile, and a failure here leaves it running there, owned there);
2. with the source paused and the whole state sent, the owner key moves to the target by a
   transaction (the source still owns it, the target is alive and not in maintenance);
   when that fails, the source runs the guest again;
3. the target runs the guest; the source stops its QEMU. Should the target fail to run it,
   the ownership moves back first and then the source runs it again.

At no moment do two hosts run the guest, and the owner is always the host that may run it.

When the target's pyvirtd has a ``pyvirt+tls://`` address (the cluster runs TLS between its
daemons), the QEMUs' migration stream is TLS too (the ``migrate --tls`` channel of
:mod:`pyvirt.service.domain.migrate_tls`): the target's QEMU gets its daemon's identity, and
the source's trusts the certificate that daemon's listener presents once its SHA-256 matches
the fingerprint the host published in etcd.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pyvirt.errors import InvalidStateError, PyvirtError
from pyvirt.service.cluster.maintenance import Evacuated, EvacuationReport

if TYPE_CHECKING:
    from pyvirt.api.connection import Connection
    from pyvirt.drivers.etcd import Etcd
    from pyvirt.progress import CancelToken, Progress
    from pyvirt.service.cluster.domains import ClusterDomain
    from pyvirt.service.cluster.membership import HostStatus
    from pyvirt.service.cluster.records import HostRecord
    from pyvirt.service.connection import Connection as ServiceConnection
    from pyvirt.service.domain.migrate_tls import TlsClient

__all__ = ["Evacuated", "EvacuationReport", "evacuate", "restore"]

log = logging.getLogger("pyvirt.cluster")

# lazy: function-local imports marked ``# lazy``: etcd's client and the migration code load
# only when a host is evacuated


def evacuate(
    service: ServiceConnection,
    host: str,
    *,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> EvacuationReport:
    """Put *host* in maintenance and move its cluster domains off it (see the module doc).

    :param progress: called with (percent done, 100)
    :raises NotFoundError: the cluster has no such host
    :raises InvalidStateError: it owns domains and no other host is up and out of
        maintenance (nothing is marked or moved then)
    :raises CancelledError: cancelled (the domains moved so far stay moved; the host stays
        in maintenance)
    """
    from pyvirt.service.cluster import maintenance, placement  # lazy
    from pyvirt.service.cluster.membership import list_hosts, open_etcd, require_config  # lazy

    config = require_config(service)
    etcd = open_etcd(config)
    try:
        hosts = list_hosts(etcd)
        source = maintenance.require_host(hosts, host)
        owned = maintenance.owned_by(etcd, host)
        maintenance.check_room(hosts, host, [d.name for d in owned])
        if maintenance.mark(etcd, host, by=config.host):
            log.warning("cluster: host %s is in maintenance (evacuated by %s)", host, config.host)
        owned = maintenance.owned_by(etcd, host)  # a start may have won the race to the mark
        moves = maintenance.plan(
            list_hosts(etcd), owned, host,
            groups=placement.group_members(etcd, owned), owners=placement.owners_of(etcd),
            checks={d.name: placement.resource_checks(etcd, d) for d in owned},
        )  # fmt: skip
        known = {h.name: h for h in hosts}
        done: list[Evacuated] = []
        src: Connection | None = None
        try:
            for i, (record, target, why) in enumerate(moves):
                if cancel is not None:
                    cancel.check("evacuation")
                if not target:
                    done.append(Evacuated(record.name, "failed", "", why))
                    continue
                step = _step(progress, i, len(moves))
                try:
                    if src is None:
                        src = _connect(service, config.host, source)
                    done.append(_move(etcd, src, service, config.host, record, host,
                                      known[target], step, cancel))  # fmt: skip
                except PyvirtError as err:
                    if err.code == "cancelled":
                        raise
                    log.error("cluster: evacuating %s to %s: %s", record.name, target, err.message)
                    done.append(Evacuated(record.name, "failed", target, err.message))
                if progress is not None:
                    progress(100 * (i + 1) // len(moves), 100)
        finally:
            _close(src)
    finally:
        etcd.close()
    if progress is not None:
        progress(100, 100)
    return EvacuationReport(host, tuple(done))


def restore(service: ServiceConnection, host: str) -> bool:
    """End *host*'s maintenance; whether it was in maintenance. No guest moves back by
    itself.

    :raises NotFoundError: the cluster has no such host
    """
    from pyvirt.service.cluster import maintenance  # lazy
    from pyvirt.service.cluster.membership import list_hosts, open_etcd, require_config  # lazy

    config = require_config(service)
    etcd = open_etcd(config)
    try:
        maintenance.require_host(list_hosts(etcd), host)
        ended = maintenance.unmark(etcd, host)
    finally:
        etcd.close()
    if ended:
        log.warning("cluster: host %s is out of maintenance", host)
    return ended


def _step(progress: Progress | None, i: int, n: int) -> Progress | None:
    """The progress of domain *i* of *n*'s migration (bytes) as the whole's percent."""
    if progress is None:
        return None

    def report(sent: int, total: int) -> None:
        frac = min(1.0, sent / total) if total > 0 else 0.0
        progress(int(100 * (i + frac) / n), 100)

    return report


def _connect(service: ServiceConnection, here: str, h: HostStatus) -> Connection:
    """A connection to host *h*'s pyvirtd (this process's own service when *h* is here)."""
    import pyvirt.api  # lazy
    from pyvirt.api.cluster_peers import open_peer  # lazy

    if h.name == here:
        return pyvirt.api.Connection(service)
    return open_peer(service, here, h.record)


def _close(conn: Connection | None) -> None:
    close: Callable[[], None] | None = getattr(conn, "close", None)
    if close is not None:
        _quietly(close)


def _move(
    etcd: Etcd,
    src: Connection,
    service: ServiceConnection,
    here: str,
    record: ClusterDomain,
    source: str,
    target: HostStatus,
    progress: Progress | None,
    cancel: CancelToken | None,
) -> Evacuated:
    """Move one domain: live when it runs on *source*, else only its ownership."""
    from pyvirt.service.cluster.maintenance import hand_over  # lazy
    from pyvirt.service.domain.types import State  # lazy

    name = record.name
    try:
        dom = src.domains.get(name)
        running = dom.status().state is not State.SHUTOFF
    except PyvirtError as err:
        if err.code != "not_found":
            raise
        running = False  # owned but not even defined there: nothing runs
    if not running:
        hand_over(etcd, name, source, target.name, state="stopped")
        return Evacuated(name, "owner moved", target.name)
    tls = _tls_trust(target.record)  # the daemons talk TLS: so do the QEMUs
    # over TLS the destination's prepare goes through its daemon even when it is this host
    # (that daemon gives its QEMU the listener's identity, which the fingerprint pins)
    if tls is not None:
        log.info("cluster: evacuating %s to %s over QEMU's TLS (certificate SHA256 %s)",
                 name, target.name, target.record.tls_fingerprint)  # fmt: skip
        dst = _open_peer_tls(service, here, target)
    else:
        dst = _connect(service, here, target)
    try:
        _live(etcd, record, dom, dst, source, target, progress, cancel, tls)
    finally:
        if dst is not src:
            _close(dst)
    return Evacuated(name, "moved", target.name)


def _live(
    etcd: Etcd,
    record: ClusterDomain,
    dom: Any,
    dst: Connection,
    source: str,
    target: HostStatus,
    progress: Progress | None,
    cancel: CancelToken | None,
    tls: TlsClient | None = None,
) -> None:
    """Live-migrate *dom* to *dst*, moving its ownership while the source is paused with
    the whole state sent (the module doc's steps); with *tls*, the QEMUs' stream is TLS
    (the destination's QEMU has its daemon's identity, the source trusts *tls*)."""
    from pyvirt.service.cluster.maintenance import hand_over  # lazy
    from pyvirt.service.domain.migrate import Policy  # lazy

    name = record.name
    policy = Policy(cluster_handover=True)  # the ownership moves here, at the switch
    incoming = dst.domains.migration_prepare(
        dom.xml_desc(security_info=True), tcp_host=_tcp_host(target.record.address),
        policy=policy, tls=tls is not None,
    )  # fmt: skip

    def abort() -> None:
        dst.domains.migration_abort(incoming.name)

    try:
        dom.migration_perform(incoming.uri, policy, progress=progress, cancel=cancel, tls=tls)
    except BaseException:
        _quietly(abort)
        raise
    try:
        hand_over(etcd, name, source, target.name, state="running")
    except BaseException:
        _quietly(dom.migration_recover)
        _quietly(abort)
        raise
    try:
        dst.domains.migration_finish(incoming.name, persistent_xml=record.xml)
    except BaseException:
        _quietly(abort)
        try:
            hand_over(etcd, name, target.name, source, state="running", back=True)
        except PyvirtError as err:
            raise InvalidStateError(
                f"domain {name!r} could not run on {target.name!r}, and its ownership could "
                f"not come back to {source!r} ({err.message}): it stays paused on {source!r}",
                hint="see 'pyvirt cluster domains'; resume it on its owner",
            ) from None
        _quietly(dom.migration_recover)
        raise
    _quietly(dom.migration_confirm)


def _open_peer_tls(service: ServiceConnection, here: str, h: HostStatus) -> Connection:
    """A connection to host *h*'s pyvirtd over its TLS address (this host's too)."""
    from pyvirt.api.cluster_peers import open_peer  # lazy

    return open_peer(service, here, h.record)


def _tls_trust(record: HostRecord) -> TlsClient | None:
    """What the source QEMU trusts for a migration to the host of *record* when its daemon
    has a ``pyvirt+tls://`` address (None otherwise: a unix socket, on this machine): the
    certificate its listener presents, checked against the fingerprint the host published
    in etcd, and the address's host name.

    :raises InvalidStateError: no fingerprint published, or the listener presents another
        certificate (nothing moves)
    """
    import hashlib  # lazy
    import ssl  # lazy

    from pyvirt.client.uri import TLS_PORT, resolve  # lazy
    from pyvirt.service.domain.migrate_tls import TlsClient  # lazy

    t = resolve(record.address)
    if t.kind != "tls" or not t.host:
        return None
    if not record.tls_fingerprint:
        raise InvalidStateError(
            f"cluster host {record.name!r} published no TLS certificate fingerprint: its "
            "migration stream cannot be secured",
            hint=f"restart pyvirtd on {record.name!r} (it publishes its certificate's)",
        )
    host = t.host.strip("[]")
    try:
        pem = ssl.get_server_certificate((host, t.port or TLS_PORT), timeout=10)
    except OSError as err:
        raise InvalidStateError(
            f"cannot read the TLS certificate of cluster host {record.name!r} at "
            f"{record.address}: {err}",
            hint="check that its pyvirtd runs and listens there",
        ) from None
    got = hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()
    if got != record.tls_fingerprint:
        raise InvalidStateError(
            f"cluster host {record.name!r} presents another TLS certificate at "
            f"{record.address} (SHA256 {got}) than it published ({record.tls_fingerprint})",
            hint="restart its pyvirtd so that it publishes its certificate again",
        )
    return TlsClient(pem, host)


def _tcp_host(address: str) -> str | None:
    """Where the target's QEMU listens for the state: the host of its published
    ``pyvirt+tls://``/``+ssh://`` address; None (a unix socket) for a ``pyvirt+unix://``
    one, i.e. a host on this machine."""
    from pyvirt.client.uri import resolve  # lazy

    t = resolve(address)
    return t.host if t.kind in ("tls", "ssh") and t.host else None


def _quietly(step: Callable[[], object]) -> None:
    """A clean-up step of a failed move; its own failure must not hide the first."""
    try:
        step()
    except PyvirtError as err:
        log.warning("evacuation clean-up: %s", err.message)
