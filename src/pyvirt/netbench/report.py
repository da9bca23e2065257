"""The comparison table of ``pyvirt bench net`` (the seed's table plus ratios)."""

from __future__ import annotations

from typing import Any

from pyvirt.netbench.scenarios import SEED_GBPS, TITLES, Result


def rows(results: list[Result], baseline: float | None) -> list[dict[str, Any]]:
    """One JSON-able row per scenario: throughput, ratio to the baseline and to scenario 1."""
    first = next((r.mbits for r in results if r.number == 1), None)
    out = []
    for r in results:
        out.append(
            {
                "scenario": r.number,
                "title": TITLES[r.number],
                "mbits": round(r.mbits, 1),
                "vs_host_link": round(r.mbits / baseline, 4) if baseline else None,
                "vs_scenario_1": round(r.mbits / first, 2) if first else None,
                "seed_gbps": SEED_GBPS[r.number],
                "seed_vs_scenario_1": round(SEED_GBPS[r.number] / SEED_GBPS[1], 2),
                "seconds": round(r.seconds, 1),
            }
        )
    return out


def table(results: list[Result], baseline: float | None, seconds: int) -> str:
    """The human-readable table."""
    lines = [
        f"iperf3 -t {seconds}, TCP, guest to guest (tiny-net guests, virtio-net, TCG)",
        "",
        f" {'#':<2} {'scenario':<36} {'Mbit/s':>9} {'/ host link':>11} {'/ sc. 1':>8}"
        f" {'seed GB/s':>10} {'seed / sc. 1':>12} {'time':>6}",
        " " + "-" * 101,
    ]
    for row in rows(results, baseline):
        ratio = f"{row['vs_host_link']:.4f}" if row["vs_host_link"] is not None else "-"
        first = f"{row['vs_scenario_1']:.2f}" if row["vs_scenario_1"] is not None else "-"
        lines.append(
            f" {row['scenario']:<2} {row['title']:<36} {row['mbits']:>9.1f} {ratio:>11}"
            f" {first:>8} {row['seed_gbps']:>10.1f} {row['seed_vs_scenario_1']:>12.2f}"
            f" {row['seconds']:>5.0f}s"
        )
    if baseline is not None:
        lines.append("")
        lines.append(f" host to host over the same veth (physical baseline): {baseline:.1f} Mbit/s")
    return "\n".join(lines)
