"""Post-copy runs the guest at the destination from the switch on: the driver of a migration
(:func:`pyvirt.api.domain_migrate.migrate`) has the source call the destination back once it
is in post-copy, keeps ``--suspend`` paused, and after post-copy never resumes the source's
stale copy; a remote source is watched between its job's polls. Without QEMU: the two halves
are fakes that record what they were asked."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pyvirt.api.domain_migrate import migrate
from pyvirt.api.remote.migration import RemoteMigrationVerbs
from pyvirt.errors import NotFoundError, OperationFailedError
from pyvirt.service.domain.migrate import Incoming, LiveStatus, MigrationResult, Policy
from pyvirt.service.domain.types import DomainStatus, Reason, State

UUID = "11111111-1111-1111-1111-111111111111"
XML = f"<domain type='qemu'><name>web1</name><uuid>{UUID}</uuid></domain>"


def _result(postcopy: bool) -> MigrationResult:
    return MigrationResult(1000, 10, 1 << 20, 3, 300, postcopy)


class Source:
    """The source half: perform goes into post-copy when the policy allows it."""

    name = "web1"

    def __init__(self, log: list[str]) -> None:
        self.log = log

    def xml_desc(self, *, inactive: bool = False, security_info: bool = False) -> str:
        return XML

    def status(self) -> DomainStatus:
        return DomainStatus("web1", "u", 1, State.RUNNING, Reason.BOOTED, True, False)

    def migration_perform(self, uri: str, policy: Policy, *,
                          on_postcopy: Callable[[], None] | None = None,
                          **kw: Any) -> MigrationResult:  # fmt: skip
        self.log.append("perform")
        if policy.postcopy and on_postcopy is not None:
            on_postcopy()
        return _result(policy.postcopy)

    def migration_confirm(
        self, *, undefine: bool = False, when: Callable[[], None] | None = None
    ) -> None:
        if when is not None:  # beside finish: once the guest runs there
            when()
        self.log.append("confirm")

    def migration_recover(self) -> None:
        self.log.append("source recover")

    def migration_status(self) -> LiveStatus:
        return LiveStatus("completed", 0, 0, 0, 0, 0, 0, None, 0, None)


class Domains:
    """The destination half."""

    def __init__(self, log: list[str], finish_fails: bool = False) -> None:
        self.log = log
        self.finish_fails = finish_fails

    def migration_prepare(self, xml: str, **kw: Any) -> Incoming:
        self.log.append("prepare")
        return Incoming("web1", "unix:/nonexistent/in.sock")

    def migration_postcopy_run(self, name: str) -> None:
        self.log.append("run there")

    def migration_finish(self, name: str, *, paused: bool = False,
                         persistent_xml: str | None = None,
                         on_running: Callable[[], None] | None = None) -> None:  # fmt: skip
        self.log.append("finish paused" if paused else "finish")
        if self.finish_fails:
            raise OperationFailedError("cannot define it", hint="h")
        if on_running is not None:
            on_running()

    def migration_abort(self, name: str) -> None:
        self.log.append("destination abort")

    def get(self, name: str) -> Any:
        raise NotFoundError(f"domain '{name}' not found")  # not there yet


class Target:
    uri = "pyvirt:///embed?root=/nonexistent"

    def __init__(self, domains: Domains) -> None:
        self.domains = domains


def _migrate(policy: Policy, *, suspend: bool = False, finish_fails: bool = False) -> list[str]:
    log: list[str] = []
    target = Target(Domains(log, finish_fails))
    migrate(Source(log), target, policy=policy, suspend=suspend)  # type: ignore[arg-type]
    return log


def test_postcopy_runs_the_guest_there_at_the_switch() -> None:
    log = _migrate(Policy(postcopy=True))
    assert log == ["prepare", "perform", "run there", "finish", "confirm"]


def test_suspend_and_precopy_do_not_run_it_early() -> None:
    assert _migrate(Policy(postcopy=True), suspend=True) == [
        "prepare", "perform", "finish paused", "confirm"]  # fmt: skip
    assert _migrate(Policy()) == ["prepare", "perform", "finish", "confirm"]


def test_a_failed_finish_after_postcopy_leaves_the_guest_at_the_destination() -> None:
    log: list[str] = []
    with pytest.raises(OperationFailedError):
        migrate(Source(log), Target(Domains(log, True)), policy=Policy(postcopy=True))  # type: ignore[arg-type]
    # the source's copy is stale: neither resumed nor is the destination stopped
    assert "source recover" not in log and "destination abort" not in log
    log.clear()
    with pytest.raises(OperationFailedError):
        migrate(Source(log), Target(Domains(log, True)), policy=Policy())  # type: ignore[arg-type]
    assert "source recover" in log and "destination abort" in log


class _Remote(RemoteMigrationVerbs):
    def __init__(self, statuses: list[str]) -> None:
        self.statuses = statuses

    def migration_status(self) -> LiveStatus:
        return LiveStatus(self.statuses.pop(0), 0, 0, 0, 0, 0, 0, None, 0, None)


def test_remote_source_is_watched_between_the_jobs_polls() -> None:
    seen: list[Any] = []
    src = _Remote(["active", "postcopy-active"])
    report = src._watch_postcopy(lambda d, t: seen.append((d, t)), lambda: seen.append("run"))
    for i in range(4):  # called back once, when the status says post-copy
        report(i, 10)
    assert seen == [(0, 10), (1, 10), "run", (2, 10), (3, 10)]


def test_the_destination_route(tmp_path: Path) -> None:
    """``POST /api/v1/migrations/incoming/{name}/run``: 404 without such a migration."""
    from fastapi.testclient import TestClient

    import pyvirt.api
    from pyvirt.daemon.app import create_app
    from pyvirt.daemon.context import Daemon, DaemonConfig
    from pyvirt.state.paths import StatePaths

    conn = pyvirt.api.open(f"pyvirt:///embed?root={tmp_path / 's'}")
    conn.domains.define(
        XML.replace("</uuid>", "</uuid><memory>65536</memory><os><type>hvm</type></os>")
    )
    daemon = Daemon(DaemonConfig(StatePaths.from_root(tmp_path / "s")), conn)
    with TestClient(create_app(daemon), raise_server_exceptions=False) as http:
        r = http.post("/api/v1/migrations/incoming/web1/run")
        assert r.status_code == 404, r.text
        assert r.json()["error"] == "no incoming migration of domain 'web1' runs here"
