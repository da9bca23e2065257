"""The remote halves of a live migration: thin requests to pyvirtd's
``routes/migrations.py``, returning the embedded API's types. :class:`RemoteMigrationVerbs`
is mixed into :class:`~pyvirt.api.remote.domains.RemoteDomain` (the source half; ``perform``
is the daemon's job, waited for with the caller's ``progress`` and cancelled on Ctrl-C or
``cancel``), :class:`RemoteMigrationHost` into the remote collection (the destination half).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from pyvirt.api.remote.jobs import JobInfo, wait_for
from pyvirt.client.transport import API

if TYPE_CHECKING:
    from pyvirt.api.domain import Domain
    from pyvirt.client.transport import Client
    from pyvirt.progress import CancelToken, Progress
    from pyvirt.service.domain.migrate import (
        Incoming,
        LiveStatus,
        MigrationResult,
        Policy,
        Tuning,
    )
    from pyvirt.service.domain.migrate_storage import DiskCopy, StorageCopy
    from pyvirt.service.domain.migrate_tls import TlsClient

__all__ = ["RemoteMigrationHost", "RemoteMigrationVerbs"]

# lazy: function-local imports marked ``# lazy`` load the value types and json only for the
# verbs that use them.


def _policy(policy: Policy | None) -> dict[str, Any] | None:
    if policy is None:
        return None
    return asdict(policy)


class RemoteMigrationVerbs:
    """The source half of a migration, in the daemon of the source host."""

    _client: Client
    _name: str

    def _murl(self, verb: str) -> str:
        return f"{API}/domains/{quote(self._name, safe='')}/migration/{verb}"

    def migration_perform(
        self,
        uri: str | Callable[[], str],
        policy: Policy,
        *,
        progress: Progress | None = None,
        cancel: CancelToken | None = None,
        storage: StorageCopy | None = None,
        tls: TlsClient | None = None,
        tunnel_fd: int | None = None,
        on_postcopy: Callable[[], None] | None = None,
    ) -> MigrationResult:
        """Send the guest's state to *uri* (a job of the source's daemon); *on_postcopy* is
        called once the job's polls find it in post-copy."""
        from pyvirt.service.domain.migrate import MigrationResult  # lazy

        if tunnel_fd is not None:  # a socket of this process: the daemon cannot write to it
            from pyvirt.errors import InvalidConfigError  # lazy

            raise InvalidConfigError(
                "--tunnelled requires --p2p", hint="the source host's daemon carries the stream"
            )

        if callable(uri):  # the daemon sets the source up once it has the URI
            uri = uri()
        body: dict[str, Any] = {"uri": uri, "policy": _policy(policy)}
        if storage is not None:
            body["storage"] = storage.to_json()
        if tls is not None:
            body["tls"] = tls.to_json()
        doc = self._client.json("POST", self._murl("perform"), body)
        if on_postcopy is not None:
            progress = self._watch_postcopy(progress, on_postcopy)
        job = wait_for(self._client, JobInfo.from_json(doc["job"]), progress=progress,
                       cancel=cancel)  # fmt: skip
        return MigrationResult(**job.result)

    def _watch_postcopy(
        self, progress: Progress | None, on_postcopy: Callable[[], None]
    ) -> Progress:
        """*progress*, also asking between the job's polls (this connection serves one
        request at a time) whether the migration is in post-copy: then *on_postcopy*."""
        from pyvirt.errors import PyvirtError  # lazy

        pending: list[Callable[[], None]] = [on_postcopy]

        def report(done: int, total: int) -> None:
            if progress is not None:
                progress(done, total)
            if not pending:
                return
            try:
                status = self.migration_status().status
            except PyvirtError:
                return
            if status == "postcopy-active":
                pending.pop()()

        return report

    def migration_disks(
        self, targets: Sequence[str] | None = None, *, incremental: bool = False
    ) -> list[DiskCopy]:
        """The disks a ``--copy-storage-*`` migration copies, read by the source's daemon."""
        from pyvirt.service.domain.migrate_storage import DiskCopy  # lazy

        body = {"targets": list(targets) if targets else None, "incremental": incremental}
        doc = self._client.json("POST", self._murl("disks"), body)
        return [DiskCopy(**d) for d in doc["disks"]]

    def migration_confirm(
        self, *, undefine: bool = False, when: Callable[[], None] | None = None
    ) -> None:
        """Stop the source QEMU after the destination took the guest over (*when* is
        called first, here)."""
        if when is not None:
            when()
        self._client.request("POST", self._murl("confirm"), body=_json({"undefine": undefine}),
                             content_type="application/json")  # fmt: skip

    def migration_recover(self, *, running: bool = True) -> None:
        """Run the guest on the source again (*running* False: keep it paused)."""
        self._client.request("POST", self._murl("recover"), body=_json({"running": running}),
                             content_type="application/json")  # fmt: skip

    def migration_tuning(self) -> Tuning:
        """The running domain's migration parameters."""
        from pyvirt.service.domain.migrate import Tuning  # lazy

        return Tuning(**self._client.json("GET", self._murl("tuning")))

    def set_migration_tuning(
        self,
        *,
        downtime_ms: int | None = None,
        bandwidth: int | None = None,
        compcache: int | None = None,
        postcopy_bandwidth: int | None = None,
    ) -> Tuning:
        """Change them, also while a migration runs."""
        from pyvirt.service.domain.migrate import Tuning  # lazy

        body: dict[str, int | None] = {
            "downtime_ms": downtime_ms, "bandwidth": bandwidth, "compcache": compcache,
        }  # fmt: skip
        if postcopy_bandwidth is not None:  # a daemon before it knew it still answers the rest
            body["postcopy_bandwidth"] = postcopy_bandwidth
        return Tuning(**self._client.json("PATCH", self._murl("tuning"), body))

    def migration_start_postcopy(self) -> None:
        """Switch the running migration to post-copy."""
        self._client.request("POST", self._murl("postcopy"))

    def migration_status(self) -> LiveStatus:
        """Where the running (or last) outgoing migration is."""
        from pyvirt.service.domain.migrate import LiveStatus  # lazy

        return LiveStatus(**self._client.json("GET", self._murl("status")))

    def migration_completed(self) -> LiveStatus | None:
        """What the last completed outgoing migration measured (None: none)."""
        from pyvirt.service.domain.migrate import LiveStatus  # lazy

        doc = self._client.json("GET", self._murl("completed"))
        return LiveStatus(**doc) if doc else None

    def migration_cancel(self) -> None:
        """Cancel the outgoing migration (refused in post-copy)."""
        self._client.request("POST", self._murl("cancel"))

    def migration_pause_postcopy(self) -> None:
        """Pause the outgoing migration in post-copy (``domjobabort --postcopy``)."""
        self._client.request("POST", self._murl("postcopy/pause"))

    def migration_resume(
        self, uri: str, *, progress: Progress | None = None, cancel: CancelToken | None = None
    ) -> MigrationResult:
        """Go on with the migration paused in post-copy, to *uri* (a job of the source's
        daemon)."""
        from pyvirt.service.domain.migrate import MigrationResult  # lazy

        doc = self._client.json("POST", self._murl("resume"), {"uri": uri})
        job = wait_for(self._client, JobInfo.from_json(doc["job"]), progress=progress,
                       cancel=cancel)  # fmt: skip
        return MigrationResult(**job.result)


class RemoteMigrationHost:
    """The destination half of a migration, in the daemon of the destination host."""

    _client: Client

    def _handle(self, name: str) -> Domain:
        raise NotImplementedError

    def migration_prepare(
        self,
        xml: str,
        *,
        listen: str | None = None,
        tcp_host: str | None = None,
        policy: Policy | None = None,
        copy: Sequence[DiskCopy] = (),
        incremental: bool = False,
        tls: bool = False,
        tls_files: tuple[str, str, str | None] | None = None,
        run_on_arrival: bool = False,
        on_listening: Callable[[str], None] | None = None,
        on_spawning: Callable[[], None] | None = None,
    ) -> Incoming:
        """Start a QEMU on the daemon's host waiting for the state (after its checks); *tls*
        with the daemon's own certificate (*tls_files* are the daemon's business);
        *on_listening* is called with the URI once the daemon answered, *on_spawning* at
        once (the daemon's work takes no lock of this process)."""
        if on_spawning is not None:
            on_spawning()
        from pyvirt.service.domain.migrate import Incoming  # lazy
        from pyvirt.service.domain.migrate_storage import StorageCopy  # lazy

        body: dict[str, Any] = {"xml": xml, "listen": listen, "tcp_host": tcp_host,
                                "policy": _policy(policy)}  # fmt: skip
        if copy:
            body["disks"] = [c.to_json() for c in copy]
            body["incremental"] = incremental
        if tls:
            body["tls"] = True
        if run_on_arrival:
            body["run_on_arrival"] = True
        doc = self._client.json("POST", f"{API}/migrations/incoming", body)
        st = doc.get("storage")
        storage = StorageCopy(str(st["nbd"]), {str(k): str(v) for k, v in st["exports"].items()},
                              bool(st.get("incremental"))) if st else None  # fmt: skip
        incoming = Incoming(str(doc["name"]), str(doc["uri"]), storage,
                            tuple(str(w) for w in doc.get("warnings") or ()))  # fmt: skip
        if on_listening is not None and not copy:
            on_listening(incoming.uri)
        return incoming

    def migration_finish(
        self,
        name: str,
        *,
        paused: bool = False,
        persistent_xml: str | None = None,
        on_running: Callable[[], None] | None = None,
    ) -> Domain:
        """Run the migrated domain on the daemon's host; *on_running* is called once the
        daemon answered."""
        url = f"{API}/migrations/incoming/{quote(name, safe='')}/finish"
        body = {"paused": paused, "persistent_xml": persistent_xml}
        self._client.request("POST", url, body=_json(body), content_type="application/json")
        if on_running is not None:
            on_running()
        return self._handle(name)

    def migration_postcopy_run(self, name: str) -> None:
        """Run the guest of the incoming migration, switched to post-copy, there."""
        url = f"{API}/migrations/incoming/{quote(name, safe='')}/run"
        self._client.request("POST", url)

    def migration_abort(self, name: str) -> None:
        """Stop the incoming QEMU of a failed migration."""
        self._client.request("DELETE", f"{API}/migrations/incoming/{quote(name, safe='')}")

    def migration_recover_incoming(
        self, name: str, *, listen: str | None = None, tcp_host: str | None = None
    ) -> str:
        """Let the incoming QEMU of a migration paused in post-copy listen again; the URI."""
        url = f"{API}/migrations/incoming/{quote(name, safe='')}/recover"
        doc = self._client.json("POST", url, {"listen": listen, "tcp_host": tcp_host})
        return str(doc["uri"])


def _json(doc: dict[str, Any]) -> bytes:
    import json  # lazy

    return json.dumps(doc).encode()
