"""Regenerate ``seed-2x8/``: the seed's example host (2 sockets x 8 cores, 128 GiB, 2 nodes).

Run from this directory: ``python make_seed_host.py``. The tree is committed; this script only
documents how it was made.
"""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).parent / "seed-2x8"
FLAGS = (
    "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr "
    "sse sse2 ss ht syscall nx pdpe1gb rdtscp lm constant_tsc nopl xtopology nonstop_tsc cpuid "
    "pni pclmulqdq vmx ssse3 cx16 pcid sse4_1 sse4_2 x2apic popcnt tsc_deadline_timer aes "
    "xsave avx f16c rdrand lahf_lm fsgsbase smep erms"
)
NODE_KIB = 64 * 1024 * 1024


def write(rel: str, text: str) -> None:
    path = ROOT / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def main() -> None:
    shutil.rmtree(ROOT, ignore_errors=True)
    blocks = []
    for cpu in range(16):
        socket, core = divmod(cpu, 8)
        blocks.append(
            f"processor\t: {cpu}\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 62\n"
            "model name\t: Intel(R) Xeon(R) CPU E5-2650 v2 @ 2.60GHz\nstepping\t: 4\n"
            f"microcode\t: 0x42e\ncpu MHz\t\t: 2600.000\nphysical id\t: {socket}\n"
            f"siblings\t: 8\ncore id\t\t: {core}\ncpu cores\t: 8\nflags\t\t: {FLAGS}\n"
            "vmx flags\t: vnmi preemption_timer invvpid ept_x_only ept_ad ept_1gb "
            "flexpriority tsc_offset vtpr mtf vapic ept vpid unrestricted_guest\n"
        )
        topo = f"sys/devices/system/cpu/cpu{cpu}/topology"
        write(f"{topo}/physical_package_id", f"{socket}\n")
        write(f"{topo}/die_id", "0\n")
        write(f"{topo}/core_id", f"{core}\n")
        write(f"{topo}/thread_siblings_list", f"{cpu}\n")
    write("proc/cpuinfo", "\n".join(blocks))
    write("sys/devices/system/cpu/online", "0-15\n")
    stat = ["cpu  16000 400 8000 150000 1600 0 200 0 0 0"]
    stat += [f"cpu{c} 1000 25 500 9375 100 0 12 0 0 0" for c in range(16)]
    write("proc/stat", "\n".join(stat) + "\nctxt 1000\n")
    total = 2 * NODE_KIB
    write(
        "proc/meminfo",
        f"MemTotal:       {total} kB\nMemFree:        {total - 8388608} kB\n"
        f"MemAvailable:   {total - 4194304} kB\nBuffers:          524288 kB\n"
        "Cached:          3145728 kB\nHugePages_Total:    1024\nHugePages_Free:      512\n"
        "Hugepagesize:       2048 kB\n",
    )
    write(
        "proc/mounts",
        "sysfs /sys sysfs rw 0 0\nproc /proc proc rw 0 0\n"
        "hugetlbfs /dev/hugepages hugetlbfs rw,relatime,pagesize=2M 0 0\n",
    )
    write("sys/devices/system/node/online", "0-1\n")
    free = {0: (NODE_KIB - 4194304, 256), 1: (NODE_KIB - 4194304, 256)}
    for node in (0, 1):
        base = f"sys/devices/system/node/node{node}"
        write(f"{base}/cpulist", f"{node * 8}-{node * 8 + 7}\n")
        write(f"{base}/distance", "10 21\n" if node == 0 else "21 10\n")
        write(
            f"{base}/meminfo",
            f"Node {node} MemTotal:       {NODE_KIB} kB\n"
            f"Node {node} MemFree:        {free[node][0]} kB\n"
            f"Node {node} MemUsed:        {NODE_KIB - free[node][0]} kB\n",
        )
        for size, nr, fr in ((2048, 512, free[node][1]), (1048576, 0, 0)):
            hp = f"{base}/hugepages/hugepages-{size}kB"
            write(f"{hp}/nr_hugepages", f"{nr}\n")
            write(f"{hp}/free_hugepages", f"{fr}\n")
            write(f"{hp}/surplus_hugepages", "0\n")
    for size, nr, fr in ((2048, 1024, 512), (1048576, 0, 0)):
        hp = f"sys/kernel/mm/hugepages/hugepages-{size}kB"
        write(f"{hp}/nr_hugepages", f"{nr}\n")
        write(f"{hp}/free_hugepages", f"{fr}\n")
        write(f"{hp}/surplus_hugepages", "0\n")
    ksm = {
        "pages_to_scan": 100,
        "sleep_millisecs": 20,
        "merge_across_nodes": 1,
        "run": 1,
        "pages_shared": 1200,
        "pages_sharing": 5400,
        "pages_unshared": 300,
        "pages_volatile": 40,
        "full_scans": 7,
    }
    for name, value in ksm.items():
        write(f"sys/kernel/mm/ksm/{name}", f"{value}\n")
    write("etc/machine-id", "5eed2a8c0de24b51a6f1c0ffee000128\n")


if __name__ == "__main__":
    main()
