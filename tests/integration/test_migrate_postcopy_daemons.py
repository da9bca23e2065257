"""Post-copy runs the guest at the destination in the daemons' drivers too: two pyvirtd on
this machine (unix sockets), a ticking guest moved A → B by a client driving both halves (the
source's perform a job of A's daemon, watched between its polls), then back B → A by B's
daemon itself (``--p2p``), paused in post-copy (``domjobabort --postcopy``) and resumed by B's
daemon (``--p2p --postcopy-resume``). Each time, once the source is in ``postcopy-active`` the
destination says ``running (post-copy)`` and the source ``paused (post-copy)``, before the
migration completed; the guest counts on at the end."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import pyvirt.api as pyvirt_api
from tests.conftest import Pyvirt, kill_leftovers
from tests.daemonhelp import pyvirtd
from tests.integration.test_lifecycle import console_log, state, wait_for
from tests.integration.test_migrate_live import _migrating, _ticking
from tests.integration.test_migrate_nfs import _last_tick
from tests.integration.test_migrate_postcopy import _domstate, userfaultfd  # noqa: F401

pytestmark = pytest.mark.qemu

#: pre-copy crawls until migrate-postcopy; post-copy's background transfer lasts seconds
POLICY = {"bandwidth": 1 << 20, "postcopy": True, "postcopy_bandwidth": 8 << 20}


@pytest.fixture
def roots() -> Iterator[tuple[Path, Path]]:
    made = [Path(tempfile.mkdtemp(prefix=p, dir="/tmp")) for p in ("pcA", "pcB")]
    yield made[0], made[1]
    for root in made:
        kill_leftovers(root)
        shutil.rmtree(root, ignore_errors=True)


def _switch_and_watch(src: Pyvirt, dst: Pyvirt, status: Any, broken: Any) -> None:
    """Switch *src*'s migration to post-copy; the destination runs the guest while the
    source still sends the rest. *broken*: the migration's error once it ended, if any."""
    wait_for(lambda: status().transferred > 0 or bool(broken()), 60, "the start")
    assert not broken(), broken()
    src("migrate-postcopy", "t1")
    end = time.monotonic() + 60
    while _domstate(dst) != "running (post-copy)":
        assert time.monotonic() < end and not broken(), ("not on the destination", broken())
        time.sleep(0.05)
    assert status().status == "postcopy-active"
    assert _domstate(src) == "paused (post-copy)"


def test_postcopy_through_the_daemons(
    roots: tuple[Path, Path],
    tiny_image: Any,
    userfaultfd: None,  # noqa: F811
) -> None:
    root_a, root_b = roots
    with pyvirtd(root_a) as da, pyvirtd(root_b) as db:
        a, b = Pyvirt(root_a), Pyvirt(root_b)
        _ticking(a, tiny_image)
        # the client drives both halves, each in its host's daemon
        src = pyvirt_api.open(da.uri).domains.get("t1")
        policy = pyvirt_api.MigrationPolicy(**POLICY)
        thread, out = _migrating(src, pyvirt_api.open(db.uri), policy=policy,
                                 persistent=True, undefine_source=True)  # fmt: skip
        try:
            watch = pyvirt_api.open(da.uri).domains.get("t1")  # a connection of its own
            _switch_and_watch(a, b, watch.migration_status, lambda: out)
        finally:
            thread.join(120)
        assert not isinstance(out[0], BaseException), out
        assert out[0].postcopy
        assert state(b, "t1") == "running (migrated)"
        assert a("list", "--all", "--name").out.strip() == ""

        # back: B's daemon drives it (--p2p)
        back = pyvirt_api.open(db.uri).domains.get("t1")
        slow = {**POLICY, "postcopy_bandwidth": 1 << 20}  # in post-copy until it is paused
        r = db.request("POST", "/api/v1/domains/t1/migrate",
                       {"dest_uri": da.uri, "persistent": True, "undefinesource": True,
                        "policy": slow})  # fmt: skip
        assert r.status == 202, r.body
        job_id = r.json()["job"]["id"]

        def job_failed() -> Any:
            job = db.get(f"/api/v1/jobs/{job_id}")
            return job if job["state"] in ("failed", "cancelled") else None

        _switch_and_watch(b, a, back.migration_status, job_failed)
        # paused in post-copy: B's job ends with that, both hosts wait; B's daemon goes on
        # with it (--p2p --postcopy-resume), post-copy's bandwidth raised meanwhile
        b("domjobabort", "--postcopy", "t1")
        wait_for(lambda: db.get(f"/api/v1/jobs/{job_id}")["state"] != "running", 60, "the pause")
        job = db.get(f"/api/v1/jobs/{job_id}")
        assert job["state"] == "failed" and "paused in post-copy" in job["error"]["error"], job
        b("migrate-setspeed", "t1", "--postcopy", "--bandwidth", "64")
        assert b("migrate-getspeed", "--postcopy", "t1").out == "64\n"
        b("migrate", "--p2p", "--postcopy-resume", "--persistent", "--undefinesource", "t1",
          da.uri)  # fmt: skip
        assert state(a, "t1") == "running (migrated)"
        assert b("list", "--all", "--name").out.strip() == ""
        # the same guest counts on (its counter beyond B's last tick: no reboot)
        last = max(_last_tick(console_log(a, "t1")), _last_tick(console_log(b, "t1")))
        wait_for(lambda: _last_tick(console_log(a, "t1")) > last + 20, 30, "ticks on A")
