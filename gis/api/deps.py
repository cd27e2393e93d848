"""What routes depend on: the user behind a request and a connection to read through."""

# No ``from __future__ import annotations``: FastAPI must resolve the route-local Annotated aliases.

from collections.abc import Callable, Iterator
from typing import Annotated, Any, Protocol

from fastapi import Depends, HTTPException, Request
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from gis.api.auth import client_addr
from gis.errors import ServiceError
from gis.security.scope import scoped_connection
from gis.settings import Settings


class ApiUser(Protocol):
    display_name: str
    scope: str | None  # ltree path of the territory the user may see


CurrentUser = Callable[[Any], ApiUser | None]  # (request) -> user, or None when not logged in


def user_dependency(current_user: CurrentUser):
    def require_user(request: Request) -> ApiUser:
        user = current_user(request)
        if user is None:
            raise HTTPException(401, "未登录或登录已过期，请先登录 (not logged in)")
        if not user.scope:
            raise HTTPException(403, "您的账号尚未分配辖区 (no territory assigned)")
        return user

    return require_user


def connection_dependency(settings: Settings, current_user: CurrentUser):
    """A connection as the app role, in a transaction scoped to the request's user (row-level security)."""
    require_user = user_dependency(current_user)

    def connection(request: Request, user: Annotated[ApiUser, Depends(require_user)]) -> Iterator[Connection]:
        with scoped_connection(settings, user, client_addr(request)) as conn:
            yield conn

    return connection


def run_scoped(settings: Settings, user: Any, request: Request, work: Callable[[Connection], Any], *,
               refused: str = "记录不在您的辖区内") -> Any:
    """``work(conn)`` in the user's scoped transaction. A service's refusal becomes its HTTP status with
    its Chinese message; a write that row-level security refuses (the service allowed it: a bug, but
    still a refusal) a 403 saying ``refused``."""
    try:
        with scoped_connection(settings, user, client_addr(request)) as conn:
            return work(conn)
    except ServiceError as error:
        raise HTTPException(error.status, str(error)) from None
    except DBAPIError as error:
        if getattr(error.orig, "sqlstate", None) == "42501":
            raise HTTPException(403, f"{refused} (refused by row-level security)") from None
        raise
