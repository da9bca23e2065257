"""``GET /health``: the one endpoint that needs no authentication."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from pyvirt import __version__

__all__ = ["router"]

router = APIRouter(tags=["health"])


class Health(BaseModel):
    """The daemon answers."""

    status: str
    version: str


@router.get("/health")
def health() -> Health:
    """The daemon is up (no authentication needed)."""
    return Health(status="ok", version=__version__)
