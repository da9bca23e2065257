"""``cpu-stats``' readers on fake ``/proc`` and cgroup trees."""

from __future__ import annotations

import os
from pathlib import Path

from pyvirt.host.cpu_usage import read_cpu_usage

PID = 4242
HZ = os.sysconf("SC_CLK_TCK")


def stat_line(pid: int, cpu: int, utime: int = 0, stime: int = 0) -> str:
    # fields 3.. after "(comm)": state ppid pgrp session tty tpgid flags minflt cminflt majflt
    # cmajflt utime stime ... field 39 is the processor
    rest = ["S", "1", "1", "1", "0", "-1", "0", "0", "0", "0", "0", str(utime), str(stime)]
    rest += ["0"] * (39 - 3 - len(rest)) + [str(cpu), "0", "0"]
    return f"{pid} (qemu-system-x86) " + " ".join(rest) + "\n"


def fake_proc(root: Path, cgroup: str = "2:cpuacct:/\n") -> Path:
    proc = root / "proc"
    base = proc / str(PID)
    base.mkdir(parents=True)
    (base / "stat").write_text(stat_line(PID, 0, utime=3 * HZ, stime=HZ))
    (base / "cgroup").write_text(cgroup)
    threads = {PID: (0, 1_000, "qemu-system-x86"), 4243: (1, 5_000, "CPU 0/TCG"),
               4244: (1, 700, "worker")}  # fmt: skip
    for tid, (cpu, run_ns, comm) in threads.items():
        task = base / "task" / str(tid)
        task.mkdir(parents=True)
        (task / "stat").write_text(stat_line(tid, cpu))
        (task / "schedstat").write_text(f"{run_ns} 0 0\n")
        (task / "comm").write_text(comm + "\n")
    (proc / "self").mkdir()
    (proc / "self/mountinfo").write_text(
        "30 25 0:26 / /sys/fs/cgroup/cpuacct rw - cgroup cgroup rw,cpuacct\n"
    )
    return proc


def test_total_from_stat_and_per_cpu_from_threads(tmp_path: Path) -> None:
    usage = read_cpu_usage(PID, 2, proc=fake_proc(tmp_path), cgroup_root=tmp_path)
    assert usage is not None
    assert (usage.user_ns, usage.system_ns, usage.cpu_ns) == (3 * 10**9, 10**9, 4 * 10**9)
    assert usage.source == "threads"
    assert usage.per_cpu == (1_000, 5_700)
    assert usage.vcpu_per_cpu == (0, 5_000)


def test_per_cpu_from_the_domains_own_cpuacct_cgroup(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path, cgroup="2:cpuacct:/pyvirt/web\n1:cpu:/\n")
    group = tmp_path / "sys/fs/cgroup/cpuacct/pyvirt/web"
    group.mkdir(parents=True)
    (group / "cpuacct.usage_percpu").write_text("111 222 \n")
    (group / "cgroup.procs").write_text(f"{PID}\n")
    usage = read_cpu_usage(PID, 2, proc=proc, cgroup_root=tmp_path)
    assert usage is not None and usage.source == "cgroup" and usage.per_cpu == (111, 222)
    # a cgroup shared with other processes is not this domain's time
    (group / "cgroup.procs").write_text(f"{PID}\n99\n")
    shared = read_cpu_usage(PID, 2, proc=proc, cgroup_root=tmp_path)
    assert shared is not None and shared.source == "threads"


def test_a_gone_process_is_none(tmp_path: Path) -> None:
    assert read_cpu_usage(1, 2, proc=tmp_path, cgroup_root=tmp_path) is None
