"""The remote backup verbs of a domain (``backup-begin``, ``backup-dumpxml``, ``backup-end``,
``domjobinfo`` of a backup): requests to pyvirtd's ``routes/backups.py``, mixed into
:class:`~pyvirt.api.remote.domains.RemoteDomain` (the class provides ``_client`` and
``_name``).

A backup begun through the daemon runs as its job of kind ``backup``: :meth:`backup_wait`
waits for that job with the caller's ``progress`` (Ctrl-C or ``cancel`` cancels it, which
aborts the backup and removes its partial targets). Paths are the daemon host's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from pyvirt.api.remote.jobs import JobInfo, wait_for
from pyvirt.client.transport import API
from pyvirt.errors import InvalidStateError

if TYPE_CHECKING:
    from pyvirt.client.transport import Client
    from pyvirt.progress import CancelToken, Progress
    from pyvirt.service.checkpoint.backup import BackupJobInfo, BackupStarted

__all__ = ["RemoteBackups"]

# lazy: function-local imports marked ``# lazy`` load the backup value types only for these
# verbs.


def _text(xml: str | bytes | None) -> str | None:
    return xml.decode() if isinstance(xml, bytes) else xml


class RemoteBackups:
    """Backup verbs of a remote domain."""

    _client: Client
    _name: str

    def _backup_url(self, *rest: str) -> str:
        return "/".join((f"{API}/domains", quote(self._name, safe=""), "backup", *rest))

    def _backup_state(self, completed: bool = False) -> dict[str, Any]:
        query = "?completed=true" if completed else ""
        return dict(self._client.json("GET", self._backup_url() + query))

    def backup_begin(
        self,
        backup_xml: str | bytes | None = None,
        checkpoint_xml: str | bytes | None = None,
        *,
        reuse_external: bool = False,
        bandwidth: int | None = None,
    ) -> BackupStarted:
        """``backup-begin`` as a daemon job (see :meth:`Domain.backup_begin`)."""
        from pyvirt.service.checkpoint.backup import BackupStarted  # lazy

        body = {"backup_xml": _text(backup_xml), "checkpoint_xml": _text(checkpoint_xml),
                "reuse_external": reuse_external, "bandwidth": bandwidth}  # fmt: skip
        doc = self._client.json("POST", self._backup_url(), body)
        return BackupStarted(str(doc["xml"]), [str(w) for w in doc["warnings"]],
                             doc.get("checkpoint"))  # fmt: skip

    def backup_xml(self) -> str:
        """``backup-dumpxml``."""
        return self._client.request("GET", self._backup_url("xml")).text()

    def backup_job_info(self, *, completed: bool = False) -> BackupJobInfo | None:
        """The active backup (None: none), or with *completed* the last finished one."""
        from pyvirt.service.checkpoint.backup import BackupJobInfo  # lazy

        info = self._backup_state(completed)["info"]
        return None if info is None else BackupJobInfo.from_json(info)

    def backup_wait(
        self,
        *,
        progress: Progress | None = None,
        cancel: CancelToken | None = None,
        timeout: float | None = None,
    ) -> BackupJobInfo:
        """Wait for the daemon's backup job to end (a pull backup: return at once).

        :raises InvalidStateError: no backup job was begun through the daemon
        :raises CancelledError: cancelled (the partial targets are removed)
        """
        from pyvirt.service.checkpoint.backup import BackupJobInfo  # lazy

        del timeout  # the daemon's job has none; Ctrl-C or ``cancel`` end it
        state = self._backup_state()
        if state["job"] is None:
            raise InvalidStateError(f"no backup job is active on domain '{self._name}'")
        info = state["info"]
        if info is not None and info["mode"] == "pull":
            return BackupJobInfo.from_json(info)
        done = wait_for(self._client, JobInfo.from_json(state["job"]), progress=progress,
                        cancel=cancel)  # fmt: skip
        if done.result is None:
            raise InvalidStateError(f"the backup job of domain '{self._name}' left no result")
        return BackupJobInfo.from_json(done.result)

    def backup_end(self) -> BackupJobInfo:
        """End the backup (``backup-end``, ``domjobabort``): a pull backup's export stops, a
        push backup is cancelled and its partial targets are removed.

        :raises InvalidStateError: no backup job is active
        """
        from pyvirt.service.checkpoint.backup import BackupJobInfo  # lazy

        return BackupJobInfo.from_json(self._client.json("DELETE", self._backup_url()))

    def has_backup_job(self) -> bool:
        """Whether a backup is active on the domain."""
        return self._backup_state()["info"] is not None
