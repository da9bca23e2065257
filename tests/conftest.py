"""Fixtures shared by all tests: an isolated pyvirt state root and a CLI runner.

Also how the suite runs in parallel (``pytest -n 2 --dist loadgroup``, pytest-xdist, what
``scripts/test.sh`` does): :func:`xdist_scope` says which tests may run beside which.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

PYVIRT = [sys.executable, "-m", "pyvirt.cli"]

#: Integration files whose tests use something host-wide: bridges, nftables and namespaces with
#: fixed names, storage servers on fixed ports, VNC ports (picked by probing), host tuning
#: (hugepages, KSM, cgroups) or timing benchmarks. Under xdist they all run in one worker, one
#: after another ("host" group); they may still run beside tests of other files.
# A suite started in the background by a shell without job control inherits SIGINT ignored,
# and Python then never raises KeyboardInterrupt: the tests that press Ctrl-C on a CLI (its
# job is cancelled, its event loop ends) would see nothing. Handle SIGINT here, so that the
# processes the tests start get the default disposition whatever launched the suite.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


HOST_FILES = frozenset({
    "test_affect.py", "test_api_docs.py", "test_api_docs_net.py", "test_argv_qemu.py",
    "test_clone.py", "test_daemon_fuzz.py", "test_daemon_resources.py",
    "test_daemon_supervision.py", "test_disks_bench.py", "test_domstats.py",
    "test_eager_stop.py", "test_host_facts.py", "test_host_real.py", "test_hostile_input.py",
    "test_install.py", "test_ksm.py", "test_lifecycle.py", "test_local_users.py",
    "test_net_direct.py", "test_net_guests.py", "test_net_lifecycle.py",
    "test_net_scenarios.py", "test_nic_alias.py", "test_node_real.py", "test_screenshot.py",
    "test_sriov.py", "test_storage_dir.py", "test_storage_disk.py", "test_storage_fs.py",
    "test_storage_iscsi.py", "test_storage_logical.py", "test_storage_netfs.py",
    "test_storage_volumes.py", "test_tuning.py", "test_tuning_hugepages.py",
    # VNC displays on TCP ports (a free port is checked, then QEMU binds it)
    "test_console_relay.py", "test_web_console.py", "test_web_details.py",
    # a user-space tgtd on a free port of this machine's loopback
    "test_web_iscsi.py",
    # a veth address in this machine's own namespace (10.231.9.1)
    "test_web_migrate.py",
    # a bridge in this machine's own namespace; etcd members on fixed ports in namespaces
    "test_cluster_partition.py",
    # rpcbind's files in /run (nfs-ganesha serving both hosts' pool)
    "test_migrate_nfs.py",
    # vm.unprivileged_userfaultfd, allowed while post-copy runs
    "test_migrate_postcopy.py",
})  # fmt: skip
#: Integration files whose tests are independent of each other (own state root, nothing
#: host-wide, no module-scoped guest): spread test by test over the workers.
SPREAD_FILES = frozenset({"test_crash_points.py"})


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Under xdist, a short base temp directory: workers add ``popen-gwN/`` to every
    ``tmp_path`` and unix socket paths under it must stay below 108 bytes."""
    controller = not hasattr(config, "workerinput")
    if controller and getattr(config.option, "numprocesses", None) and not config.option.basetemp:
        config.option.basetemp = tempfile.mkdtemp(prefix="pvt", dir="/tmp")
        config.add_cleanup(lambda: shutil.rmtree(config.option.basetemp, ignore_errors=True))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A failed test runs once more: on a loaded 2-core machine running guests under TCG a
    timing race in a test (or in pyvirt) shows now and then. The run's summary lists every
    rerun with its first failure (``-r R`` in scripts/test.sh), so that each one is seen and
    chased; a test that fails twice fails the run."""
    for item in items:
        if not item.get_closest_marker("flaky"):
            item.add_marker(pytest.mark.flaky(reruns=1))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Why each rerun test failed the first time (its error lines), so that CI's log says
    which race to chase."""
    reports = terminalreporter.stats.get("rerun", [])
    if not reports:
        return
    terminalreporter.section("first failures of the rerun tests")
    for rep in reports:
        lines = [ln for ln in rep.longreprtext.splitlines() if ln.startswith("E ")]
        terminalreporter.write_line(f"{rep.nodeid}:")
        for line in lines[:6] or rep.longreprtext.splitlines()[-3:]:
            terminalreporter.write_line(f"    {line[:300]}")


def xdist_scope(nodeid: str) -> str:
    """The group of a test under ``--dist loadgroup``: its tests run in one worker, in order.

    An integration file is one group (its tests share module fixtures), :data:`HOST_FILES`
    together are one group, each test of :data:`SPREAD_FILES` and each unit test is a group
    of its own (it goes to whichever worker is free).
    """
    path = nodeid.split("::", 1)[0]
    name = path.rsplit("/", 1)[-1]
    if not path.startswith("tests/integration/") or name in SPREAD_FILES:
        return nodeid
    return "host" if name in HOST_FILES else path


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadgroup`` with the groups of :func:`xdist_scope` (pytest 9 ignores the node
    id suffix xdist's own ``xdist_group`` marks rely on)."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling  # only when xdist runs the tests

    class GroupScheduling(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return xdist_scope(nodeid)

    return GroupScheduling(config, log)


@dataclass
class Result:
    """Outcome of one CLI run."""

    rc: int
    out: str
    err: str


class Pyvirt:
    """Runs the real ``pyvirt`` CLI in a subprocess against its own state root."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.env = {**os.environ, "PYVIRT_STATE_DIR": str(root)}

    def __call__(self, *args: str, check: bool = True, input: str | None = None) -> Result:
        proc = subprocess.run(
            [*PYVIRT, *args],
            env=self.env,
            capture_output=True,
            text=True,
            input=input,
            timeout=120,
        )
        res = Result(proc.returncode, proc.stdout, proc.stderr)
        if check and proc.returncode != 0:
            raise AssertionError(
                f"pyvirt {' '.join(args)} failed ({proc.returncode}): {proc.stderr}"
            )
        return res

    def snapshot(self) -> dict[str, bytes]:
        """Every file under the config root, for 'nothing changed' assertions."""
        out = {}
        lib = self.root / "lib"
        if lib.exists():
            for p in sorted(lib.rglob("*")):
                if p.is_file():
                    out[str(p.relative_to(lib))] = p.read_bytes()
        return out


@contextlib.contextmanager
def in_background(argv: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    """*argv* (a CLI verb that runs a while: a slow migration) started in the background,
    its output captured; killed on the way out if the test left it running."""
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def kill_leftovers(root: Path) -> None:
    """SIGKILL every QEMU whose runtime record lives under ``root`` (a failed test's guests)."""
    for record in (root / "run" / "qemu").glob("*/runtime.json"):
        try:
            pid = int(json.loads(record.read_text())["pid"])
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError, KeyError):
            continue
        if str(root).encode() in cmdline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def state_root() -> Iterator[Path]:
    """A short temporary state root (unix socket paths are limited to 107 bytes)."""
    root = Path(tempfile.mkdtemp(prefix="pv", dir="/tmp"))
    yield root
    kill_leftovers(root)
    shutil.rmtree(root, ignore_errors=True)


def destroy_leftovers(runner: Pyvirt) -> None:
    """Destroy every domain still running under *runner*'s state root, then kill what its
    QEMUs left (a test's teardown)."""
    run = runner.root / "run" / "qemu"
    if run.is_dir():
        for entry in run.iterdir():
            if entry.is_dir() and not entry.name.startswith("."):
                runner("destroy", entry.name, check=False)
    kill_leftovers(runner.root)


@pytest.fixture
def pyvirt(state_root: Path) -> Iterator[Pyvirt]:
    """The CLI bound to a fresh state root; destroys leftover domains afterwards."""
    runner = Pyvirt(state_root)
    yield runner
    destroy_leftovers(runner)
