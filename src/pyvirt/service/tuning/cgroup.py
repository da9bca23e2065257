"""The domain's own cgroup: made at start by the tuning hook
(:mod:`pyvirt.service.tuning.hooks`), or on demand by live tuning
(:func:`pyvirt.service.tuning.cpu.domain_cgroup`) for a domain started without one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyvirt.host.cgroups import DomainCgroup
    from pyvirt.service.domain.manager import DomainManager

# lazy: function-local imports marked ``# lazy`` keep CLI start-up fast: cgroup code loads only
# when a domain gets its cgroup.

#: the tuning hook's name; its data records the domain's cgroup (``cgroup``, made at start or
#: on demand by a live tuning command) for ``after_stop``
HOOK_NAME = "tuning"


def place_in_cgroup(mgr: DomainManager, name: str, pid: int) -> DomainCgroup:
    """Create the domain's cgroup, move QEMU (all its threads) in, and record it for cleanup."""
    from pyvirt.host.cgroups import CgroupLayout, DomainCgroup  # lazy

    cg = DomainCgroup.create(CgroupLayout.detect(), name)
    recorded = cg.to_json()
    mgr.rundir(name).update_hooks(HOOK_NAME, lambda old: {**old, "cgroup": recorded})
    cg.attach(pid)
    return cg
