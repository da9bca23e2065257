"""``/api/v1/tokens``: create, list and delete the API tokens TLS clients authenticate with.

Only callers on the unix socket may manage tokens (a token must not be able to mint or
revoke tokens); over TLS these routes answer 403.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from pyvirt.api import tokens
from pyvirt.daemon.auth import identity_of, is_local
from pyvirt.daemon.context import daemon_of
from pyvirt.errors import PyvirtError

__all__ = ["router"]


class ForbiddenError(PyvirtError):
    """The caller is authenticated but may not do this."""

    code = "forbidden"
    status = 403


def _local_only(request: Request) -> None:
    if not is_local(request):
        raise ForbiddenError(
            f"{identity_of(request)} may not manage API tokens",
            hint="run 'pyvirt token-*' on the daemon's host (its unix socket)",
        )


router = APIRouter(prefix="/api/v1/tokens", tags=["tokens"], dependencies=[Depends(_local_only)])


class Token(BaseModel):
    """A stored token (its secret is never shown again)."""

    name: str
    created: str


class TokenCreate(BaseModel):
    """A token to create."""

    model_config = {"extra": "forbid"}
    name: str = Field(min_length=1, max_length=64)


class TokenCreated(Token):
    """A new token, with its secret: shown this once."""

    token: str


@router.get("")
def token_list(request: Request) -> list[Token]:
    """The API tokens (names and creation times)."""
    return [Token(**t.to_json()) for t in tokens.list_tokens(daemon_of(request).paths)]


@router.post("", status_code=201)
def token_create(request: Request, body: TokenCreate) -> TokenCreated:
    """Create a token; the answer holds its secret, which is stored only hashed."""
    info, secret = tokens.create_token(body.name, daemon_of(request).paths)
    return TokenCreated(name=info.name, created=info.created, token=secret)


@router.delete("/{name}", status_code=204)
def token_delete(request: Request, name: str) -> Response:
    """Delete (revoke) a token; requests carrying it fail from now on."""
    tokens.delete_token(name, daemon_of(request).paths)
    return Response(status_code=204)
