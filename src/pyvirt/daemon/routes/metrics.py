"""``GET /metrics``: Prometheus text exposition of the host, its domains and the daemon's jobs.

The figures come from the same collector as ``pyvirt domstats`` (:mod:`pyvirt.api.stats`),
read at scrape time by a custom ``prometheus_client`` collector (nothing is cached between
scrapes). Shut-off domains only get ``pyvirt_domain_state``: their definitions are not read,
so a scrape stays cheap with thousands of them.

Series (counters end in ``_total``):

- ``pyvirt_domain_state{domain}``: libvirt's state number (1 running, 3 paused, 5 shut off)
- ``pyvirt_domain_cpu_seconds_total{domain}``, ``pyvirt_domain_vcpu_seconds_total{domain,vcpu}``
- ``pyvirt_domain_memory_bytes{domain,kind}``: ``maximum``, ``current`` (balloon), ``rss`` and
  the guest's balloon statistics (``unused``, ``available``, ``usable``, ``disk_caches``)
- ``pyvirt_domain_block_{read,write}_{bytes,requests,seconds}_total{domain,dev}``,
  ``pyvirt_domain_block_flush_requests_total{domain,dev}``
- ``pyvirt_domain_net_{receive,transmit}_{bytes,packets,errors,drops}_total{domain,dev}``
  (as the guest sees them, like ``domifstat``)
- ``pyvirt_host_cpu_seconds_total{mode}``, ``pyvirt_host_memory_bytes{kind}``
- ``pyvirt_jobs{state}``: the daemon's jobs by state (when the daemon keeps jobs)

The records themselves, for ``pyvirt domstats`` through the daemon:
``GET /api/v1/stats/domains?name=A&name=B&group=block`` (``DomainStats.to_json()`` each; no
``name``: every domain; no ``group``: every group) and ``GET /api/v1/stats/host``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from pyvirt.api.stats import StatsGroup, host_stats
from pyvirt.daemon.context import daemon_of

__all__ = ["CONTENT_TYPE", "router"]

router = APIRouter(tags=["metrics"])

#: ``prometheus_client.CONTENT_TYPE_PLAIN_0_0_4`` (not imported before the first scrape)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus text"}},
)
def metrics(request: Request) -> Response:
    """Host, domain and job metrics in the Prometheus text format."""
    from pyvirt.daemon.promexport import render  # lazy: prometheus_client on the first scrape

    body, content_type = render(daemon_of(request), request.headers.get("accept", ""))
    return Response(body, media_type=content_type)


@router.get("/api/v1/stats/domains", tags=["stats"])
def domain_stats(
    request: Request,
    name: Annotated[list[str] | None, Query(description="domains (none: all)")] = None,
    group: Annotated[list[StatsGroup] | None, Query(description="groups (none: all)")] = None,
) -> list[dict[str, Any]]:
    """Statistics records of domains, as ``pyvirt domstats --json`` prints them."""
    records = daemon_of(request).conn.domains.stats(name, group)
    return [r.to_json() for r in records]


@router.get("/api/v1/stats/host", tags=["stats"])
def host(request: Request) -> dict[str, Any]:
    """The host's CPU time by mode (ns) and memory by kind (bytes)."""
    return host_stats().to_json()
