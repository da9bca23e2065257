"""The network benchmark use case behind ``pyvirt bench net`` (needs root: namespaces)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from pyvirt.errors import UnsupportedError
from pyvirt.netbench.report import rows, table
from pyvirt.netbench.scenarios import Bench, Result, leftovers, scenarios

# lazy: function-local imports marked ``# lazy`` keep CLI start-up fast: the network benchmark
# image builder loads only when the benchmark runs.

__all__ = ["rows", "run", "table"]


def run(
    *,
    seconds: int = 3,
    numbers: Sequence[int] = (1, 2, 3, 4),
    baseline: bool = True,
    cache_dir: Path | None = None,
) -> tuple[list[Result], float | None]:
    """Run the scenarios ``numbers``; returns their results and the host-to-host baseline.

    :raises UnsupportedError: not root, or ip/iperf3 missing
    :raises OperationFailedError: a scenario did not finish (everything is torn down anyway)
    """
    if os.geteuid() != 0:
        raise UnsupportedError("bench net needs root (it creates network namespaces)")
    for tool in ("ip", "iperf3"):
        if shutil.which(tool) is None:
            raise UnsupportedError(
                f"bench net needs '{tool}'", hint="apt-get install iproute2 iperf3"
            )
    from pyvirt.images import net as net_image  # lazy

    image = net_image.default_image(cache_dir)
    bench = Bench(image, seconds=seconds)
    try:
        base = bench.baseline() if baseline else None
        all_scenarios = scenarios()
        results = [bench.run(all_scenarios[n]) for n in numbers]
    finally:
        shutil.rmtree(bench.workdir, ignore_errors=True)
        left = leftovers(bench.tag)
        if left:
            raise UnsupportedError(f"bench net left namespaces behind: {', '.join(left)}")
    return results, base
