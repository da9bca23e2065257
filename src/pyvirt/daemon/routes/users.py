"""``/api/v1/users``: the web console's users (add, list, delete).

Like the API tokens, only callers on the unix socket may manage users; over TLS (a token or a
web session) these routes answer 403.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from pyvirt.api import users
from pyvirt.daemon.auth import identity_of, is_local
from pyvirt.daemon.context import daemon_of
from pyvirt.daemon.routes.tokens import ForbiddenError

__all__ = ["router"]


def _local_only(request: Request) -> None:
    if not is_local(request):
        raise ForbiddenError(
            f"{identity_of(request)} may not manage web console users",
            hint="run 'pyvirt user-*' on the daemon's host (its unix socket)",
        )


router = APIRouter(prefix="/api/v1/users", tags=["users"], dependencies=[Depends(_local_only)])


class User(BaseModel):
    """A web console user (its password hash is never shown)."""

    name: str
    created: str


class UserCreate(BaseModel):
    """A user to add."""

    model_config = {"extra": "forbid"}
    name: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=users.MAX_PASSWORD)


@router.get("")
def user_list(request: Request) -> list[User]:
    """The web console users (names and creation times)."""
    return [User(**u.to_json()) for u in users.list_users(daemon_of(request).paths)]


@router.post("", status_code=201)
def user_add(request: Request, body: UserCreate) -> User:
    """Add a user; the password is stored only as a salted scrypt hash."""
    info = users.add_user(body.name, body.password, daemon_of(request).paths)
    return User(**info.to_json())


@router.delete("/{name}", status_code=204)
def user_delete(request: Request, name: str) -> Response:
    """Delete a user; its web sessions end at their next request."""
    users.delete_user(name, daemon_of(request).paths)
    return Response(status_code=204)
