"""What a migration's policy sets in the source QEMU goes when the migration ends there: a
cancelled migration with ``--bandwidth``, a downtime, multifd, XBZRLE and auto-converge (and a
``migrate-setspeed`` while it ran) leaves the bandwidth, downtime and capabilities as they were
before, so a later save (an fd migration, which multifd would break) or migration is neither
throttled nor changed."""

from __future__ import annotations

import json

import pytest

import pyvirt.api as pyvirt_api
from pyvirt.drivers.qemu.qmp import Monitor
from pyvirt.progress import CancelledError
from tests.conftest import Pyvirt
from tests.integration.migratehelp import Before, kept, source
from tests.integration.test_lifecycle import state, wait_for
from tests.integration.test_migrate_live import _migrating, _uri, other

__all__ = ["other", "source"]  # fixtures

pytestmark = pytest.mark.qemu

CAPS = ("auto-converge", "xbzrle", "multifd", "postcopy-ram", "pause-before-switchover")


def _capabilities(pv: Pyvirt) -> dict[str, bool]:
    rec = json.loads((pv.root / "run" / "qemu" / "t1" / "runtime.json").read_text())
    with Monitor(rec["qmp_socket"], name="t1") as mon:
        caps = mon.query_migration_capabilities()
    return {k: caps[k] for k in CAPS}


def test_a_cancelled_migration_leaves_no_setting_behind(
    pyvirt: Pyvirt, other: Pyvirt, source: Before
) -> None:
    assert _capabilities(pyvirt) == dict.fromkeys(CAPS, False)

    src = pyvirt_api.open(_uri(pyvirt)).domains.get("t1")
    policy = pyvirt_api.MigrationPolicy(bandwidth=1 << 20, downtime_ms=50, parallel=2,
                                        compressed=True, auto_converge=True)  # fmt: skip
    thread, out = _migrating(src, pyvirt_api.open(_uri(other)), policy=policy)
    try:
        wait_for(lambda: src.migration_status().transferred > 0 or bool(out), 30, "the start")
        assert not out, out
        assert pyvirt("migrate-getspeed", "t1").out == "1\n"
        assert _capabilities(pyvirt)["multifd"]
        pyvirt("migrate-setspeed", "t1", "--bandwidth", "2")
        pyvirt("domjobabort", "t1")
    finally:
        thread.join(60)
    assert isinstance(out[0], CancelledError), out
    assert state(pyvirt, "t1") == "running (booted)"
    # as before the migration
    assert pyvirt("migrate-getspeed", "t1").out == source.speed
    assert pyvirt("migrate-getmaxdowntime", "t1").out == source.downtime
    assert _capabilities(pyvirt) == dict.fromkeys(CAPS, False)
    # a save works (multifd left on would break it) and the guest comes back
    image = pyvirt.root / "t1.save"
    pyvirt("save", "t1", str(image))
    pyvirt("restore", str(image))
    assert kept(pyvirt)
