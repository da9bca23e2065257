"""pyvirt's keys in etcd, all under one prefix so a cluster can share etcd with others.

::

    /pyvirt/cluster              the cluster record (name, timings, created); written once
    /pyvirt/hosts/NAME           a member's registration (capabilities, address); stays while
                                 the host is a member, even when it is down
    /pyvirt/alive/NAME           bound to the host's lease: present while the host is alive
    /pyvirt/domains/NAME         a cluster domain's definition (XML, HA flag); names are
                                 unique in the cluster
    /pyvirt/owners/NAME          the host that owns domain NAME, bound to that host's lease:
                                 only the owner may run it
    /pyvirt/placed/NAME          where domain NAME last ran and whether it was running (not
                                 leased: what recovery reads once the owner's lease is gone)
    /pyvirt/leader               the host whose recovery manager acts, bound to its lease
    /pyvirt/maintenance/NAME     host NAME is in maintenance (``cluster evacuate``): placement
                                 and recovery never choose it, cluster domains do not start on
                                 it; not leased (it outlives daemon restarts) until ``restore``
    /pyvirt/res/KIND/NAME        a cluster network (KIND ``network``) or shared pool
                                 (``pool``): its XML, defined on every member
    /pyvirt/groups/KIND/GROUP/DOMAIN
                                 cluster domain DOMAIN is in affinity group GROUP (KIND
                                 ``affinity`` or ``anti-affinity``): placement reads one group
    /pyvirt/inventory/NAME       bound to host NAME's lease: the networks and pools it can
                                 use now, its NUMA nodes, and which cluster networks/pools its
                                 running domains use (what placement and undefine read)
    /pyvirt/events/HOST/SEQ      an event of host HOST for every member's event stream
                                 (fencing, recovery, evacuation), bound to a short lease
"""

from __future__ import annotations

PREFIX = "/pyvirt/"
CLUSTER = PREFIX + "cluster"
HOSTS = PREFIX + "hosts/"
ALIVE = PREFIX + "alive/"


def host(name: str) -> str:
    """The registration key of host *name*."""
    return HOSTS + name


def alive(name: str) -> str:
    """The liveness key of host *name* (bound to its lease)."""
    return ALIVE + name


DOMAINS = PREFIX + "domains/"
OWNERS = PREFIX + "owners/"


def domain(name: str) -> str:
    """The definition key of cluster domain *name*."""
    return DOMAINS + name


def owner(name: str) -> str:
    """The ownership key of cluster domain *name* (bound to the owner's lease)."""
    return OWNERS + name


PLACED = PREFIX + "placed/"
LEADER = PREFIX + "leader"


def placed(name: str) -> str:
    """Where cluster domain *name* last ran, and its state there."""
    return PLACED + name


MAINTENANCE = PREFIX + "maintenance/"


def maintenance(name: str) -> str:
    """The maintenance mark of host *name* (present while it is in maintenance)."""
    return MAINTENANCE + name


RESOURCES = PREFIX + "res/"
INVENTORY = PREFIX + "inventory/"


def resource(kind: str, name: str) -> str:
    """The key of cluster network or pool *name* (*kind*: ``network`` or ``pool``)."""
    return f"{RESOURCES}{kind}/{name}"


def inventory(name: str) -> str:
    """Host *name*'s inventory key (bound to its lease)."""
    return INVENTORY + name


GROUPS = PREFIX + "groups/"


def group(kind: str, name: str) -> str:
    """The prefix of affinity group *name* (*kind*: ``affinity`` or ``anti-affinity``)."""
    return f"{GROUPS}{kind}/{name}/"


def group_member(kind: str, name: str, domain: str) -> str:
    """The key saying cluster domain *domain* is in group *name* of *kind*."""
    return group(kind, name) + domain


EVENTS = PREFIX + "events/"


def event(host: str, seq: str) -> str:
    """The key of host *host*'s relayed event *seq* (sortable: time and counter)."""
    return f"{EVENTS}{host}/{seq}"
