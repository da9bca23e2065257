"""The fast path's snapshot and block job forms: ``snapshot-create-as DOMAIN NAME``,
``snapshot-revert DOMAIN SNAPSHOT`` and a waiting ``blockcommit DOMAIN DISK`` through a daemon,
without click, pyvirt.api or lxml (loaded by :func:`pyvirt.cli.fast.run` only for these
commands).

Through pyvirtd these commands are one request (a block commit: the job's request and a long
poll for its end); click and the remote API's imports cost the CLI ~130 ms more than the
request, as much as a whole revert of a small guest takes. The forms print exactly what the
click commands print; anything else (other options, ``--verbose``, a blockcommit that does not
wait, contradicting options) is left to click. An embedded connection runs the click
commands (:func:`pyvirt.cli.embedded.run` does not know these forms).
"""

from __future__ import annotations

import sys

from pyvirt.cli.fast import Form as SimpleForm
from pyvirt.cli.fast import _domain as _url
from pyvirt.cli.fast import _quote

# no typing at run time (see pyvirt.cli.fast)
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from pyvirt.cli.fast import Args, Client, Handler

__all__ = ["FORMS", "commit_outcome"]

#: seconds each long poll of a block commit's daemon job waits for its end (the daemon's limit)
POLL = 30.0


class Form(SimpleForm):
    """A simple form that also leaves argument sets the click command must see to click
    (``accept`` says False)."""

    def __init__(
        self,
        handler: Handler,
        nargs: int,
        flags: frozenset[str],
        opts: frozenset[str] = frozenset(),
        accept: Callable[[Args], bool] | None = None,
    ) -> None:
        super().__init__(handler, nargs, flags, opts)
        self.accept = accept

    def parse(self, argv: list[str]) -> Args | None:
        """``argv`` parsed, or ``None`` when it is not this simple form (click decides)."""
        args = super().parse(argv)
        if args is None or (self.accept is not None and not self.accept(args)):
            return None
        return args


def _snapshot_create_as(client: Client, a: Args) -> None:
    domain, name = a.pos
    f = a.flags
    body: dict[str, Any] = {"name": name, "description": None, "memspec": None, "diskspecs": [],
            "disk_only": "--disk-only" in f, "atomic": "--atomic" in f,
            "quiesce": "--quiesce" in f, "live": "--live" in f,
            "no_metadata": "--no-metadata" in f}  # fmt: skip
    doc = client.json("POST", _url(domain, "snapshots", "create-as"), body)
    sys.stdout.write(f"Domain snapshot {doc['name']} created\n")


def _snapshot_revert(client: Client, a: Args) -> None:
    domain, snap = a.pos
    f = a.flags
    body = {"running": "--running" in f, "paused": "--paused" in f, "force": "--force" in f}
    client.json("POST", _url(domain, "snapshots", _quote(snap), "revert"), body)


# -- blockcommit ---------------------------------------------------------------------------
def _commit_accept(a: Args) -> bool:
    f, o = a.flags, a.opts
    blocking = bool({"--wait", "--pivot", "--keep-overlay"} & f)
    clash = {"--pivot", "--keep-overlay"} <= f or ("--base" in o and "--shallow" in f)
    return blocking and not clash


def commit_outcome(kind: str, outcome: str) -> str:
    """virsh's closing line of a waited-for commit (as
    :func:`pyvirt.cli.commands.blockjob.outcome_text`)."""
    if outcome == "pivoted":
        return "\nSuccessfully pivoted"
    if outcome == "ready":
        return "\nNow in synchronized phase"
    if outcome == "kept-overlay":
        return "\nCommit complete, overlay image kept"
    if outcome == "started":
        return "Active Block Commit started" if kind == "active-commit" else "Block Commit started"
    return "\nCommit complete"


def _cancelled(job: dict[str, Any]) -> bool:
    """Whether the daemon job was cancelled (``JobInfo.raise_for_state`` raises
    :class:`~pyvirt.progress.CancelledError` then)."""
    code = (job.get("error") or {}).get("code")
    return job["state"] == "cancelled" or (job["state"] == "failed" and code == "cancelled")


def _failure(job: dict[str, Any]) -> Exception:
    """The error of a failed daemon job, rebuilt as ``JobInfo.raise_for_state`` does."""
    from pyvirt.errors import error_class  # lazy: only on failure

    err = job.get("error") or {}
    cls = error_class(str(err.get("code", "")))
    return cls(str(err.get("error", f"job '{job['id']}' failed")), hint=err.get("hint"))


def _blockcommit(client: Client, a: Args) -> None:
    f, o = a.flags, a.opts
    domain, disk = a.pos
    pivot, keep = "--pivot" in f, "--keep-overlay" in f
    active = "--active" in f or pivot or keep
    body = {"top": o.get("--top"), "base": o.get("--base"), "active": active, "pivot": pivot,
            "keep_overlay": keep, "shallow": "--shallow" in f, "delete": "--delete" in f,
            "bandwidth": None, "timeout": None}  # fmt: skip
    job = client.json("POST", _url(domain, "disks", _quote(disk), "commit"), body)["job"]
    path = f"/api/v1/jobs/{_quote(str(job['id']))}"
    interrupted = asked = False
    while job["state"] == "running":  # Ctrl-C: cancel the job, wait for its end, as click
        try:
            if interrupted and not asked:
                asked = True
                _cancel(client, path)
            job = client.json("GET", f"{path}?wait={POLL:g}")
        except KeyboardInterrupt:
            interrupted = True
    if interrupted or _cancelled(job):
        sys.stdout.write("\nCommit aborted\n")
        raise SystemExit(1)
    if job["state"] != "completed":
        raise _failure(job)
    result = job["result"]
    sys.stdout.write(commit_outcome(str(result["kind"]), str(result["outcome"])) + "\n")


def _cancel(client: Client, path: str) -> None:
    import contextlib  # lazy: only on Ctrl-C

    from pyvirt.errors import PyvirtError  # lazy

    with contextlib.suppress(PyvirtError):  # it ended meanwhile
        client.json("DELETE", path)


FORMS = {
    "snapshot-create-as": Form(_snapshot_create_as, 2, frozenset(
        {"--disk-only", "--no-metadata", "--atomic", "--live", "--quiesce"})),
    "snapshot-revert": Form(_snapshot_revert, 2, frozenset({"--running", "--paused", "--force"})),
    "blockcommit": Form(_blockcommit, 2, frozenset(
        {"--active", "--pivot", "--keep-overlay", "--wait", "--delete", "--shallow"}),
        frozenset({"--base", "--top"}), _commit_accept),
}  # fmt: skip
