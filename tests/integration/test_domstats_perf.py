"""``domstats --perf`` and ``--memory`` on a real tiny guest: the software perf events its
``<perf>`` enables are reported (non-zero, growing, task_clock close to cpu.time), hardware
events and a guest without ``<perf>`` print nothing, and ``--memory`` prints nothing (no
resctrl monitors), as virsh does when those are unavailable."""

from __future__ import annotations

import os
import re
from typing import Any

import pytest

from pyvirt.service.perfstats import perf_allowed
from tests.conftest import Pyvirt
from tests.integration.test_lifecycle import domain_xml, wait_marker

pytestmark = pytest.mark.qemu

PERF = ("<perf><event name='task_clock' enabled='yes'/><event name='page_faults' enabled='yes'/>"
        "<event name='context_switches' enabled='yes'/><event name='cpu_cycles' enabled='yes'/>"
        "<event name='alignment_faults' enabled='yes'/></perf>")  # fmt: skip


def stats(pv: Pyvirt, *args: str) -> dict[str, str]:
    out = pv("domstats", *args).out
    return dict(line.strip().split("=", 1) for line in out.splitlines() if "=" in line)


def test_perf_and_memory_groups(pyvirt: Pyvirt, tiny_image: Any) -> None:
    for name, perf in (("p", PERF), ("q", "")):
        xml = domain_xml(tiny_image, name).replace("<devices>", perf + "<devices>")
        (pyvirt.root / f"{name}.xml").write_text(xml)
        pyvirt("define", str(pyvirt.root / f"{name}.xml"))
        pyvirt("start", name)
    wait_marker(pyvirt, "p")
    assert "<event name='task_clock' enabled='yes'/>" in pyvirt("dumpxml", "p").out
    lines = pyvirt("domstats", "--perf", "p").out.splitlines()
    assert lines[0] == "Domain: 'p'" and lines[-1] == ""  # virsh's layout
    assert all(re.fullmatch(r"  perf\.[a-z_]+=\d+", line) for line in lines[1:-1]), lines
    first = stats(pyvirt, "--perf", "--cpu-total", "p")
    if not perf_allowed(os.getpid()):  # a kernel or container that refuses perf events
        assert not [k for k in first if k.startswith("perf.")]
        return
    perf = [k for k in first if k.startswith("perf.")]
    # libvirt's order; no hardware event (no PMU counters), no alignment_faults (perf-only)
    assert perf == ["perf.task_clock", "perf.page_faults", "perf.context_switches"]
    assert int(first["perf.task_clock"]) > 0 and int(first["perf.page_faults"]) > 0
    assert int(first["perf.context_switches"]) > 0
    # the same CPU time as cpu.time (ticks there, nanoseconds here), within scheduling noise
    assert 0.5 < int(first["perf.task_clock"]) / int(first["cpu.time"]) < 2.0
    later = stats(pyvirt, "--perf", "p")
    assert int(later["perf.task_clock"]) >= int(first["perf.task_clock"])
    # no <perf>: nothing; --memory: nothing (no resctrl monitors)
    assert pyvirt("domstats", "--perf", "q").out == "Domain: 'q'\n\n"
    assert pyvirt("domstats", "--memory", "p", "q").out == "Domain: 'p'\n\nDomain: 'q'\n\n"
    for name in ("p", "q"):
        pyvirt("destroy", name)
    assert pyvirt("domstats", "--perf", "p").out == "Domain: 'p'\n\n"
