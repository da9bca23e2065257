"""Per-process readers of /proc (CPU time, thread run time, the namespace's net/dev) on a
fake tree."""

from __future__ import annotations

from pathlib import Path

from pyvirt.host.procstats import NetDevCounters, net_dev, process_cpu, thread_run_ns

NET_DEV = """\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     100       2    0    0    0     0          0         0      100       2    0    0    0     0       0          0
pv1a2b3c: 5000 40 1 2 0 0 0 0 9000 70 3 4 0 0 0 0
"""  # noqa: E501


def _proc(tmp_path: Path) -> Path:
    pid = tmp_path / "42"
    (pid / "net").mkdir(parents=True)
    (pid / "task" / "43").mkdir(parents=True)
    # comm with spaces and a parenthesis, as QEMU threads may have
    fields = ["S"] + ["0"] * 10 + ["250", "50"] + ["0"] * 30
    (pid / "stat").write_text(f"42 (qemu) x) {' '.join(fields)}\n")
    (pid / "net" / "dev").write_text(NET_DEV)
    (pid / "task" / "43" / "schedstat").write_text("1234567890 5555 77\n")
    return tmp_path


def test_process_cpu_reads_user_and_system(tmp_path: Path) -> None:
    cpu = process_cpu(42, _proc(tmp_path), hz=100)
    assert cpu is not None
    assert (cpu.user_ns, cpu.system_ns, cpu.total_ns) == (2_500_000_000, 500_000_000, 3 * 10**9)


def test_gone_process_gives_nothing(tmp_path: Path) -> None:
    assert process_cpu(7, tmp_path) is None
    assert thread_run_ns(7, 8, tmp_path) is None
    assert net_dev(7, tmp_path) == {}


def test_thread_run_time_in_ns(tmp_path: Path) -> None:
    assert thread_run_ns(42, 43, _proc(tmp_path)) == 1234567890


def test_net_dev_parses_every_interface(tmp_path: Path) -> None:
    devs = net_dev(42, _proc(tmp_path))
    assert set(devs) == {"lo", "pv1a2b3c"}
    assert devs["pv1a2b3c"] == NetDevCounters(5000, 40, 1, 2, 9000, 70, 3, 4)
