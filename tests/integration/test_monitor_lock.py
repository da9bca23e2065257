"""One QEMU's monitor shared by several clients (verbs, the daemon's sampler, a migration's
perform loop): sessions take turns on ``qmp.sock.lock`` across processes, a held monitor
delays a verb instead of failing it, and a session that may not wait says who holds it."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from pyvirt.drivers.qemu.qmp import Monitor, MonitorBusyError
from tests.conftest import Pyvirt
from tests.daemonhelp import pyvirtd
from tests.integration.test_lifecycle import define

pytestmark = pytest.mark.qemu


def _qmp(pv: Pyvirt) -> Path:
    return pv.root / "run" / "qemu" / "t1" / "qmp.sock"


def test_sessions_take_turns_and_a_held_monitor_delays_a_verb(
    pyvirt: Pyvirt, tiny_image: Any
) -> None:
    define(pyvirt, tiny_image)
    pyvirt("start", "t1")
    sock = _qmp(pyvirt)
    # two concurrent sessions on one QEMU both succeed, one after the other
    spans: list[tuple[float, float, str]] = []
    errors: list[BaseException] = []

    def session(tag: str) -> None:
        try:
            with Monitor(sock, name="t1", purpose=tag) as mon:
                t0 = time.monotonic()
                status, _ = mon.query_status()
                time.sleep(0.3)
                spans.append((t0, time.monotonic(), status))
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=session, args=(f"s{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [s[2] for s in spans] == ["running", "running"]
    first, second = sorted(spans)
    assert second[0] >= first[1]  # never both at once

    # a verb in another process waits for a held monitor, then succeeds
    held = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with Monitor(sock, name="t1", purpose="test"):
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(10)
        # a session that may not wait, or waits too little, names the holder
        with pytest.raises(MonitorBusyError) as err:
            Monitor(sock, name="t1", wait=False).connect()
        assert err.value.message.startswith("the monitor of domain 't1' is busy: a test session")
        with pytest.raises(MonitorBusyError) as err:
            Monitor(sock, 0.3, name="t1").connect()
        assert "held it for 0.3 s" in err.value.message
        threading.Timer(1.5, release.set).start()
        t0 = time.monotonic()
        pyvirt("suspend", "t1")
        assert time.monotonic() - t0 >= 1.2
    finally:
        release.set()
        holder.join()
    assert pyvirt("domstate", "t1").out.strip() == "paused"
    pyvirt("resume", "t1")

    # through pyvirtd, whose statistics sampler (every 0.2 s) shares the monitor too: the
    # migration tuning verbs answer, a held monitor delays them, the sampler never stalls
    env = {"PYVIRTD_STATS_INTERVAL": "0.2"}
    with pyvirtd(pyvirt.root, env=env) as d:
        cli = ("-c", d.uri)
        pyvirt(*cli, "migrate-setmaxdowntime", "t1", "--downtime", "450")
        assert pyvirt(*cli, "migrate-getmaxdowntime", "t1").out == "450\n"
        pyvirt(*cli, "migrate-setspeed", "t1", "--bandwidth", "64")
        assert pyvirt(*cli, "migrate-getspeed", "t1").out == "64\n"
        pyvirt(*cli, "migrate-setspeed", "t1", "--postcopy", "--bandwidth", "5")
        assert pyvirt(*cli, "migrate-getspeed", "--postcopy", "t1").out == "5\n"
        assert pyvirt(*cli, "migrate-compcache", "t1").out.startswith("Compression cache: ")
        res = pyvirt(*cli, "migrate-postcopy", "t1", check=False)
        assert res.rc == 1 and "no migration of domain 't1' is running" in res.err
        assert pyvirt(*cli, "domjobinfo", "t1").out == "Job type:         None\n\n"
        release.clear()
        holder = threading.Thread(target=hold)
        held.clear()
        holder.start()
        try:
            assert held.wait(10)
            threading.Timer(1.0, release.set).start()
            t0 = time.monotonic()
            assert pyvirt(*cli, "migrate-getmaxdowntime", "t1").out == "450\n"
            assert time.monotonic() - t0 >= 0.8
        finally:
            release.set()
            holder.join()
        assert "statistics history" not in d.log_text()
    pyvirt("destroy", "t1")
