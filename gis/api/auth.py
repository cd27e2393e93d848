"""``/api/v1/auth``: log in, log out, who am I, change my password -- and the ``current_user`` dependency.

One login for everything: ``POST /auth/login`` answers with a token for API clients (``Authorization:
Bearer <token>``) and sets the same token as an HttpOnly, SameSite=Strict cookie (``Secure`` in
production) for the browser, which the dashboards read. Either way the session is the server-side one of
:mod:`gis.security.sessions`.
"""

# No `from __future__ import annotations`: FastAPI must evaluate the route signatures, whose
# dependencies are closures over the settings.
import datetime as dt
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from pydantic import BaseModel, Field

from gis.security import sessions
from gis.security.passwords import PasswordPolicyError
from gis.security.sessions import COOKIE_NAME, AuthError, CurrentUser
from gis.security.users import UserError
from gis.settings import Settings

NOT_LOGGED_IN = "未登录或登录已失效，请先登录 (not logged in)"
CHANGE_PASSWORD_FIRST = "密码为初始密码或已过期，请先修改密码 (change your password first)"


class Problem(BaseModel):
    detail: str


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f]+$", description="用户名")
    password: str = Field(min_length=1, max_length=256, description="密码")


class Me(BaseModel):
    id: int
    username: str
    name: str
    role: str
    role_name: str
    scope_path: str
    department: str | None = None
    permissions: list[str]
    must_change_password: bool


class LoginResponse(BaseModel):
    token: str
    expires_at: dt.datetime
    user: Me


class PasswordChange(BaseModel):
    old_password: str = Field(min_length=1, max_length=256)
    new_password: str = Field(min_length=1, max_length=256)


def me(user: CurrentUser) -> Me:
    return Me(id=user.id, username=user.username, name=user.name, role=user.role, role_name=user.role_name,
              scope_path=user.scope_path, department=user.department, permissions=sorted(user.permissions),
              must_change_password=user.must_change_password)


def client_addr(request: Any) -> str | None:
    """The client's address, from a Starlette request or a Bokeh/Tornado one."""
    client = getattr(request, "client", None)
    if client is not None:
        return client.host
    return getattr(request, "remote_ip", None)


def session_token(request: Any) -> str | None:
    """The session token of a request: ``Authorization: Bearer …`` first, else the login cookie."""
    authorization = request.headers.get("authorization") or ""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    cookie = request.cookies.get(COOKIE_NAME)
    # Bokeh hands cookies over as plain strings, Tornado as Morsels.
    return getattr(cookie, "value", cookie) or None


def current_user_hook(settings: Settings) -> Callable[[Any], CurrentUser | None]:
    """``(request) -> user or None``: the login check the dashboards' page factory and ``create_app`` use."""

    def current_user(request: Any) -> CurrentUser | None:
        try:
            return sessions.resolve(settings, session_token(request))
        except AuthError:
            return None

    return current_user


def _unauthorised(message: str = NOT_LOGGED_IN) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, message, headers={"WWW-Authenticate": "Bearer"})


def require_login(settings: Settings) -> Callable[[Request], CurrentUser]:
    """A dependency: the logged-in user, or 401. Lets a user whose password is due through (to change it)."""

    def logged_in_user(request: Request) -> CurrentUser:
        try:
            return sessions.resolve(settings, session_token(request))
        except AuthError as error:
            raise _unauthorised(str(error) if session_token(request) else NOT_LOGGED_IN) from None

    return logged_in_user


def require_user(settings: Settings) -> Callable[..., CurrentUser]:
    """A dependency: the logged-in user, 401 when there is none, 403 while the password must be changed."""
    logged_in_user = require_login(settings)

    def current_user(user: Annotated[CurrentUser, Depends(logged_in_user)]) -> CurrentUser:
        if user.must_change_password:
            raise HTTPException(status.HTTP_403_FORBIDDEN, CHANGE_PASSWORD_FIRST)
        return user

    return current_user


AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {401: {"model": Problem, "description": "未登录"}}


def router(settings: Settings) -> APIRouter:
    routes = APIRouter(prefix="/auth", tags=["auth"])
    LoggedIn = Annotated[CurrentUser, Depends(require_login(settings))]

    @routes.post("/login", response_model=LoginResponse, responses={
        401: {"model": Problem, "description": "用户名或密码错误"},
        423: {"model": Problem, "description": "账户已锁定"},
    })
    def login(body: LoginRequest, request: Request, response: Response) -> LoginResponse:
        """登录：返回令牌，并设置会话 Cookie (log in: a bearer token, and the session cookie)."""
        try:
            token, expires_at = sessions.login(settings, body.username, body.password, client_addr(request))
        except AuthError as error:
            code = status.HTTP_423_LOCKED if error.code == "locked" else status.HTTP_401_UNAUTHORIZED
            raise HTTPException(code, str(error)) from None
        user = sessions.resolve(settings, token)
        response.set_cookie(
            COOKIE_NAME, token, max_age=int((expires_at - dt.datetime.now(dt.UTC)).total_seconds()),
            httponly=True, samesite="strict", secure=settings.production, path="/",
        )
        response.headers["Cache-Control"] = "no-store"
        return LoginResponse(token=token, expires_at=expires_at, user=me(user))

    @routes.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
    def logout(request: Request) -> Response:
        """退出登录：注销会话 (log out: the session is revoked, the cookie cleared)."""
        sessions.logout(settings, session_token(request), client_addr(request))
        response = Response(status_code=status.HTTP_204_NO_CONTENT)
        response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="strict",
                               secure=settings.production)
        return response

    @routes.get("/me", response_model=Me, responses=AUTH_RESPONSES)
    def who_am_i(user: LoggedIn) -> Me:
        """当前用户、角色、辖区与权限 (the logged-in user, their role, scope and permissions)."""
        return me(user)

    @routes.post("/password", status_code=status.HTTP_204_NO_CONTENT, responses={
        **AUTH_RESPONSES, 400: {"model": Problem, "description": "新密码不符合密码策略"},
        403: {"model": Problem, "description": "原密码错误"},
    })
    def change_password(body: PasswordChange, user: LoggedIn, request: Request) -> Response:
        """修改本人密码 (change your own password)."""
        try:
            sessions.change_password(settings, user, body.old_password, body.new_password,
                                     client_addr(request))
        except AuthError as error:
            raise HTTPException(status.HTTP_403_FORBIDDEN, str(error)) from None
        except (PasswordPolicyError, UserError) as error:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, str(error)) from None
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    return routes
