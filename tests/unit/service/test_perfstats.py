"""perf.* figures from the kernel's per-task accounting, the events a definition enables, and
the perf_event_open probe (on this process)."""

from __future__ import annotations

import os
from pathlib import Path

from pyvirt.model.domain import Domain
from pyvirt.service import perfstats

XML = """<domain type='qemu'><name>p</name><memory>65536</memory><vcpu>1</vcpu>
<os><type>hvm</type></os><perf>{events}</perf><devices/></domain>"""


def test_enabled_events_in_libvirts_order() -> None:
    events = (
        "<event name='page_faults' enabled='yes'/><event name='cmt' enabled='no'/>"
        "<event name='task_clock' enabled='yes'/><event name='nonsense' enabled='yes'/>"
    )
    dom = Domain.from_xml(XML.format(events=events))
    assert perfstats.enabled_events(dom) == ["task_clock", "page_faults"]
    assert perfstats.enabled_events(Domain.from_xml(XML.replace("<perf>{events}</perf>", ""))) == []


def test_read_this_process() -> None:
    pid = os.getpid()
    sum(range(200_000))  # some CPU time
    got = perfstats.read(pid, ["task_clock", "page_faults", "page_faults_min", "cpu_cycles",
                               "context_switches", "alignment_faults"])  # fmt: skip
    assert set(got) == {"task_clock", "page_faults", "page_faults_min", "context_switches"}
    assert got["task_clock"] > 0 and got["page_faults"] >= got["page_faults_min"] > 0
    assert perfstats.read(pid, ["cpu_cycles"]) == {}


def test_read_fake_proc_and_a_gone_process(tmp_path: Path) -> None:
    base = tmp_path / "42"
    (base / "task" / "42").mkdir(parents=True)
    (base / "task" / "43").mkdir()
    (base / "stat").write_text("42 (qemu system) S 1 2 3 4 5 6 100 0 7 0 1 2 3 4\n")
    for tid, run in (("42", 1000), ("43", 500)):
        (base / "task" / tid / "schedstat").write_text(f"{run} 0 3\n")
        (base / "task" / tid / "status").write_text(
            "Name:\tqemu\nvoluntary_ctxt_switches:\t5\nnonvoluntary_ctxt_switches:\t2\n"
        )
        (base / "task" / tid / "sched").write_text("se.nr_migrations  :  4\n")
    got = perfstats.read(42, list(perfstats.EVENTS), proc=tmp_path)
    assert got == {"cpu_clock": 1500, "task_clock": 1500, "page_faults": 107,
                   "context_switches": 14, "cpu_migrations": 8, "page_faults_min": 100,
                   "page_faults_maj": 7}  # fmt: skip
    (base / "task" / "43" / "sched").unlink()  # a kernel without sched debug: no migrations
    assert "cpu_migrations" not in perfstats.read(42, ["cpu_migrations"], proc=tmp_path)
    assert perfstats.read(99, ["task_clock"], proc=tmp_path) == {}


def test_perf_allowed_on_this_process_when_the_kernel_allows_it() -> None:
    # the answer depends on the host; it must be a clean bool either way, and no fd leaks
    before = len(os.listdir("/proc/self/fd"))
    assert perfstats.perf_allowed(os.getpid()) in (True, False)
    assert perfstats.perf_allowed(2**22 + 12345) is False  # no such process
    assert len(os.listdir("/proc/self/fd")) == before
