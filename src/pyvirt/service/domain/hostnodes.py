"""Define-time check of what a definition asks of this host's NUMA nodes: a ``<numatune>``
nodeset naming a node the host does not have is refused, as libvirt refuses it ("NUMA node
999 is unavailable"). Not part of ``validate``/``domxml-to-native``, which judge the XML
alone."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pyvirt.errors import InvalidConfigError, PyvirtError
from pyvirt.model.cpuset import parse_cpuset

if TYPE_CHECKING:
    from pyvirt.model.domain import Domain

__all__ = ["check_numatune", "host_nodes"]

NODES_ONLINE = Path("/sys/devices/system/node/online")


def host_nodes(path: Path = NODES_ONLINE) -> set[int] | None:
    """The host's online NUMA nodes (None when the kernel does not say)."""
    try:
        return parse_cpuset(path.read_text().strip(), "NUMA node list")
    except (OSError, PyvirtError):
        return None


def check_numatune(dom: Domain, nodes: set[int] | None = None) -> None:
    """Refuse a ``<numatune>`` nodeset naming a node this host lacks.

    :param nodes: the host's nodes (read from sysfs when None)
    :raises InvalidConfigError: names the element and the missing node
    """
    tune = dom.numatune
    if tune is None:
        return
    wanted: list[tuple[str, str]] = []
    if tune.nodeset:
        wanted.append(("<numatune>/<memory>", tune.nodeset))
    for i, mn in enumerate(tune.memnodes, 1):
        if mn.nodeset:
            wanted.append((f"<numatune>/<memnode>[{i}]", mn.nodeset))
    if not wanted:
        return
    have = host_nodes() if nodes is None else nodes
    if have is None:
        return
    for where, text in wanted:
        try:
            missing = sorted(parse_cpuset(text, "nodeset") - have)
        except PyvirtError:
            continue  # validation reports a malformed nodeset
        if missing:
            raise InvalidConfigError(
                f"{where}: NUMA node {missing[0]} is unavailable on this host",
                hint=f"this host has NUMA nodes {','.join(map(str, sorted(have)))}",
            )
