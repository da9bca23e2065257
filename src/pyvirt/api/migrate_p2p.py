"""Peer-to-peer migration (virsh ``migrate --p2p``): the *source* host's pyvirtd drives both
halves of :func:`pyvirt.api.domain_migrate.migrate`, connecting to the destination itself.

>>> dest = destination_from_settings("pyvirt+tls://kvm2:16514/")   # token, CA: this client's
>>> migrate_p2p(conn, "web1", dest, persistent=True, undefine_source=True)

Through a connection to a pyvirtd, :func:`migrate_p2p` asks that daemon
(``POST /api/v1/domains/{name}/migrate``: a ``domain-migrate`` job with progress, cancelled by
``DELETE /api/v1/jobs/{id}`` or Ctrl-C, the guest then running on at the source); on an
embedded connection this process is the source host and runs it itself. The destination's
token and CA travel in the request body; the daemon keeps them in memory for the migration
only (never in its log, its job records, or a file other than a private CA file removed at
the end).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

if TYPE_CHECKING:
    from pyvirt.api.connection import Connection
    from pyvirt.client.transport import Client
    from pyvirt.progress import CancelToken, Progress
    from pyvirt.service.domain.migrate import MigrationResult, Policy

__all__ = ["Destination", "destination", "destination_from_settings", "migrate_p2p"]

# lazy: function-local imports marked ``# lazy`` load the client's TLS settings, the remote
# API and the migration code only for a migration.


@dataclass(frozen=True)
class Destination:
    """Where a peer-to-peer migration goes and how the source authenticates there."""

    uri: str
    #: the destination daemon's API token (a secret: not in ``repr``)
    token: str | None = field(default=None, repr=False)
    #: the PEM of the CA that signed the destination's certificate
    ca_pem: str | None = field(default=None, repr=False)
    #: do not verify the destination's certificate
    insecure: bool = False


def destination_from_settings(uri: str) -> Destination:
    """A :class:`Destination` with this client's settings for *uri* (the URI's ``?ca=``,
    ``$PYVIRT_TOKEN``, ``$PYVIRT_CA``, the client configuration file), so that the source
    daemon authenticates as this client would.

    :raises InvalidConfigError: an unknown URI, an unreadable CA or configuration file
    """
    from pyvirt.client.settings import settings_for  # lazy
    from pyvirt.client.uri import resolve  # lazy
    from pyvirt.errors import InvalidConfigError  # lazy

    target = resolve(uri)
    if target.kind != "tls":
        return Destination(uri)
    settings = settings_for(target)
    pem = None
    if settings.ca:
        try:
            pem = Path(settings.ca).read_text()
        except OSError as err:
            raise InvalidConfigError(f"cannot read the CA file {settings.ca}: "
                                     f"{err.strerror or err}") from None  # fmt: skip
    return Destination(uri, token=settings.token, ca_pem=pem, insecure=settings.insecure)


@contextmanager
def destination(dest: Destination) -> Iterator[Connection]:
    """A connection to the destination with *dest*'s token and CA (closed, and the CA's
    private temporary file removed, on exit)."""
    import pyvirt.api  # lazy
    from pyvirt.client.uri import Target, resolve  # lazy

    target = resolve(dest.uri)
    if target.kind != "tls":
        plain = pyvirt.api.open(dest.uri)
        try:
            yield plain
        finally:
            _close(plain)
        return
    from pyvirt.api.remote.connection import RemoteConnection, service_for  # lazy
    from pyvirt.client.transport import Client  # lazy

    with tempfile.TemporaryDirectory(prefix="pyvirt-p2p-") as tmp:
        params = dict(target.params)
        if dest.ca_pem:
            ca = Path(tmp) / "ca.pem"
            fd = os.open(ca, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(dest.ca_pem)
            params["ca"] = str(ca)
        if dest.insecure:
            params["insecure"] = "1"
        t = Target(target.kind, target.uri, target.path, target.host, target.port,
                   target.user, params)  # fmt: skip
        client = Client.for_target(t)
        if dest.token:
            client.headers["Authorization"] = f"Bearer {dest.token}"
        conn = RemoteConnection(client, service_for(t))
        try:
            yield conn
        finally:
            client.headers.pop("Authorization", None)
            _close(conn)


def _close(conn: Connection) -> None:
    close = getattr(conn, "close", None)  # remote connections hold a socket
    if close is not None:
        close()


def migrate_p2p(
    conn: Connection,
    name: str,
    dest: Destination,
    *,
    live: bool = True,
    offline: bool = False,
    persistent: bool = False,
    undefine_source: bool = False,
    suspend: bool = False,
    dname: str | None = None,
    migrate_uri: str | None = None,
    policy: Policy | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    tunnelled: bool = False,
    xml: str | None = None,
    persistent_xml: str | None = None,
    copy_storage_all: bool = False,
    copy_storage_inc: bool = False,
    migrate_disks: Sequence[str] | None = None,
    postcopy_resume: bool = False,
    tls: bool = False,
) -> MigrationResult | None:
    """Move domain *name* of *conn* (the source host) to *dest*, driven by the source host:
    its daemon when *conn* is remote, else this process.

    The options are :func:`pyvirt.api.domain_migrate.migrate`'s; *tunnelled* sends the
    stream through the destination daemon's channel (:mod:`pyvirt.api.migrate_tunnel`).
    *xml* and *persistent_xml* are the documents' text (the source host cannot read the
    client's files); with *tls* the source QEMU trusts *dest*'s CA.

    :raises CancelledError: cancelled; the guest runs on at the source
    :raises PyvirtError: the migration failed (the guest runs on at the source, nothing is
        left on the destination) or the destination refused the source's credentials
    """
    from pyvirt.api.remote.connection import RemoteConnection  # lazy

    if isinstance(conn, RemoteConnection):
        return _in_daemon(conn.client, name, dest, progress=progress, cancel=cancel, body={
            "live": live, "offline": offline, "persistent": persistent,
            "undefinesource": undefine_source, "suspend": suspend, "dname": dname,
            "migrate_uri": migrate_uri, "policy": _policy(policy),
            **({"tunnelled": True} if tunnelled else {}),
            # only what is asked: a daemon from before these options still takes the rest
            **{k: v for k, v in (
                ("xml", xml), ("persistent_xml", persistent_xml),
                ("copy_storage_all", copy_storage_all), ("copy_storage_inc", copy_storage_inc),
                ("migrate_disks", list(migrate_disks) if migrate_disks else None),
                ("postcopy_resume", postcopy_resume), ("tls", tls),
            ) if v},
        })  # fmt: skip
    from pyvirt.api.domain_migrate import migrate  # lazy

    src = conn.domains.get(name)
    with destination(dest) as target:
        return migrate(src, target, live=live, offline=offline, persistent=persistent,
                       undefine_source=undefine_source, suspend=suspend, dname=dname,
                       migrate_uri=migrate_uri, policy=policy, progress=progress,
                       cancel=cancel, tunnelled=tunnelled, xml=xml,
                       persistent_xml=persistent_xml, copy_storage_all=copy_storage_all,
                       copy_storage_inc=copy_storage_inc, migrate_disks=migrate_disks,
                       postcopy_resume=postcopy_resume, tls=tls)  # fmt: skip


def _policy(policy: Policy | None) -> dict[str, Any] | None:
    from dataclasses import asdict  # lazy

    return None if policy is None else asdict(policy)


def _in_daemon(
    client: Client,
    name: str,
    dest: Destination,
    *,
    body: dict[str, Any],
    progress: Progress | None,
    cancel: CancelToken | None,
) -> MigrationResult | None:
    from pyvirt.api.remote.jobs import JobInfo, wait_for  # lazy
    from pyvirt.client.transport import API  # lazy
    from pyvirt.service.domain.migrate import MigrationResult  # lazy

    doc = client.json("POST", f"{API}/domains/{quote(name, safe='')}/migrate", {
        **body, "dest_uri": dest.uri, "token": dest.token, "ca": dest.ca_pem,
        "insecure": dest.insecure,
    })  # fmt: skip
    job = wait_for(client, JobInfo.from_json(doc["job"]), progress=progress, cancel=cancel)
    measured = {k: v for k, v in (job.result or {}).items() if k != "destination"}
    return MigrationResult(**measured) if measured else None
