"""A domain's NICs and their addresses (``domiflist``, ``domifaddr``), for the web console's
overview and NIC pages.

- ``GET /api/v1/domains/{name}/interfaces?inactive=``: the NICs (target, type, source, model,
  MAC); ``inactive`` reads the definition instead of the running domain.
- ``GET /api/v1/domains/{name}/interfaces/addresses?source=lease|arp|agent``: their addresses.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from pyvirt.daemon.context import daemon_of

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/domains", tags=["domains"])


@router.get("/{name}/interfaces", summary="domiflist")
def interfaces(request: Request, name: str, inactive: bool = False) -> list[dict[str, Any]]:
    """The domain's NICs: ``target``, ``type``, ``source``, ``model``, ``mac``."""
    dom = daemon_of(request).conn.domains.get(name)
    return [nic.to_json() for nic in dom.iflist(inactive=inactive)]


@router.get("/{name}/interfaces/addresses", summary="domifaddr")
def addresses(
    request: Request,
    name: str,
    source: Annotated[str, Query(pattern="^(lease|arp|agent)$")] = "lease",
) -> list[dict[str, Any]]:
    """Addresses of the running domain's NICs: ``target``, ``mac``, ``protocol``,
    ``address`` (CIDR)."""
    dom = daemon_of(request).conn.domains.get(name)
    return [a.to_json() for a in dom.ifaddr(source=source)]
