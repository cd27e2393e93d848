"""Login, server-side sessions, logout: the one login the API, the dashboards and notebooks share.

- A session is an opaque random token handed to the client; the database keeps only its SHA-256, with
  the times it was created and last used, when it expires, and when it was revoked. A session ends after
  ``session_idle_minutes`` without use, ``session_absolute_hours`` after login, or at logout.
- ``lockout_failures`` failed logins within ``lockout_window_minutes`` lock the name for
  ``lockout_minutes``. The count is kept per name typed, whether or not such a user exists, and a wrong
  name and a wrong password get the same answer, so the login form tells nobody which names exist.
- Every login, failed login and logout is written to the access log.

>>> token, expires_at = login(settings, "wangge01", "…", client_addr="10.0.0.8")   # doctest: +SKIP
>>> resolve(settings, token).has("registry:person:read")                         # doctest: +SKIP
True
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass, field

from sqlalchemy import Connection, text

from gis.db import app_engine
from gis.security import audit, passwords, roles
from gis.security.users import is_demo_account, normalise_username, set_password
from gis.settings import Settings

COOKIE_NAME = "gridgov_session"

_INVALID = "用户名或密码错误"
_EXPIRED = "登录已失效，请重新登录 (session expired or revoked)"


class AuthError(Exception):
    """A refused login or session. ``code``: invalid | locked | expired | refused."""

    def __init__(self, message: str, code: str = "invalid") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class CurrentUser:
    id: int
    username: str
    name: str
    role: str
    scope_path: str
    department: str | None = None
    permissions: frozenset[str] = field(default_factory=frozenset)
    must_change_password: bool = False
    session_expires_at: dt.datetime | None = None

    def has(self, permission: str) -> bool:
        """Whether the user's role grants ``permission`` (granted patterns may use ``*``)."""
        return roles.has_permission(self.permissions, permission)

    @property
    def role_name(self) -> str:
        return roles.ROLES[self.role].zh if self.role in roles.ROLES else self.role

    # The names the server's page and route hooks read (gis.api.deps.ApiUser).
    @property
    def display_name(self) -> str:
        return self.name

    @property
    def scope(self) -> str:
        return self.scope_path


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _minutes(value: float) -> float:
    return float(value) * 60.0


def login(
    settings: Settings, username: str, password: str, client_addr: str | None = None
) -> tuple[str, dt.datetime]:
    """Check the password and open a session: ``(token, expires_at)``; raises :class:`AuthError`.

    The attempt and its outcome are committed before a refusal is raised, so failures are counted and
    logged even though the caller sees an exception.
    """
    name = normalise_username(username or "")
    with app_engine(settings).begin() as conn:
        outcome = _attempt(conn, settings, name, password or "", client_addr)
    if isinstance(outcome, AuthError):
        raise outcome
    return outcome


def _attempt(
    conn: Connection, settings: Settings, name: str, password: str, client_addr: str | None
) -> tuple[str, dt.datetime] | AuthError:
    # One row per name typed, locked for the attempt: parallel guesses queue instead of racing the count.
    conn.execute(text("INSERT INTO login_lock (username) VALUES (:u) ON CONFLICT DO NOTHING"), {"u": name})
    lock = conn.execute(text(
        "SELECT locked_until, locked_until > now() AS locked FROM login_lock WHERE username = :u FOR UPDATE"
    ), {"u": name}).one()
    user = conn.execute(text(
        "SELECT id, password_hash, active FROM users WHERE username = :u"
    ), {"u": name}).first()
    user_id = user.id if user else None
    log = {"username": name, "user_id": user_id, "client_addr": client_addr}

    if lock.locked:
        _note_attempt(conn, name, False, client_addr)
        audit.record(conn, "login_failed", outcome="denied", reason="locked", **log)
        return _locked_error(lock.locked_until)

    ok = passwords.verify_password(user.password_hash if user and user.active else None, password)
    if not ok:
        _note_attempt(conn, name, False, client_addr)
        failures = conn.execute(text(
            "SELECT count(*) FROM login_attempt a JOIN login_lock l ON l.username = a.username"
            " WHERE a.username = :u AND NOT a.succeeded"
            "   AND a.at > now() - make_interval(secs => :window)"
            "   AND a.at > coalesce(l.reset_at, '-infinity') AND a.at > coalesce(l.locked_until, '-infinity')"
        ), {"u": name, "window": _minutes(settings.lockout_window_minutes)}).scalar_one()
        if failures >= settings.lockout_failures:
            locked_until = conn.execute(text(
                "UPDATE login_lock SET locked_until = now() + make_interval(secs => :lockout)"
                " WHERE username = :u RETURNING locked_until"
            ), {"u": name, "lockout": _minutes(settings.lockout_minutes)}).scalar_one()
            audit.record(conn, "login_failed", outcome="denied", reason="locked now",
                         detail={"failures": failures}, **log)
            return _locked_error(locked_until)
        audit.record(conn, "login_failed", outcome="failed", detail={"failures": failures}, **log)
        left = settings.lockout_failures - failures
        return AuthError(f"{_INVALID}，再失败 {left} 次账户将被锁定 (wrong username or password)")

    if settings.production and is_demo_account(name, password):
        audit.record(conn, "login_failed", outcome="denied", reason="demo account in production", **log)
        return AuthError("生产模式下禁止使用默认或演示账户，请联系安全管理员 (demo account refused)",
                         "refused")

    _note_attempt(conn, name, True, client_addr)
    conn.execute(text("UPDATE login_lock SET locked_until = NULL, reset_at = now() WHERE username = :u"),
                 {"u": name})
    if passwords.needs_rehash(user.password_hash):
        conn.execute(text("UPDATE users SET password_hash = :h WHERE id = :id"),
                     {"h": passwords.hash_password(password), "id": user.id})
    token = secrets.token_urlsafe(32)
    expires_at = conn.execute(text(
        "INSERT INTO user_session (token_hash, user_id, expires_at, client_addr)"
        " VALUES (:h, :id, now() + make_interval(secs => :ttl), :addr) RETURNING expires_at"
    ), {"h": token_hash(token), "id": user.id, "ttl": settings.session_absolute_hours * 3600.0,
        "addr": client_addr}).scalar_one()
    conn.execute(text("UPDATE users SET last_login_at = now() WHERE id = :id"), {"id": user.id})
    audit.record(conn, "login", outcome="ok", **log)
    return token, expires_at


def _note_attempt(conn: Connection, name: str, succeeded: bool, client_addr: str | None) -> None:
    conn.execute(text(
        "INSERT INTO login_attempt (username, succeeded, client_addr) VALUES (:u, :ok, :addr)"
    ), {"u": name, "ok": succeeded, "addr": client_addr})


def _locked_error(locked_until: dt.datetime) -> AuthError:
    return AuthError(
        f"登录失败次数过多，账户已锁定至 {locked_until:%H:%M}，请稍后再试或联系安全管理员解锁"
        " (account locked)",
        "locked",
    )


def resolve(settings: Settings, token: str | None) -> CurrentUser:
    """The user behind a session token, marking the session used; raises :class:`AuthError` when the
    token is unknown, revoked, expired or idle too long, or the account was deactivated."""
    if not token:
        raise AuthError(_EXPIRED, "expired")
    with app_engine(settings).begin() as conn:
        row = conn.execute(text(
            "UPDATE user_session s SET last_seen_at = now() FROM users u"
            " WHERE s.token_hash = :h AND u.id = s.user_id AND u.active AND s.revoked_at IS NULL"
            "   AND s.expires_at > now() AND s.last_seen_at > now() - make_interval(secs => :idle)"
            " RETURNING u.id, u.username, u.name, u.role, u.scope_path::text AS scope_path, u.department,"
            "   u.must_change_password OR (:max_age > 0 AND u.password_changed_at"
            "     < now() - make_interval(days => :max_age)) AS must_change_password,"
            "   s.expires_at AS session_expires_at"
        ), {"h": token_hash(token), "idle": _minutes(settings.session_idle_minutes),
            "max_age": settings.password_max_age_days}).first()
    if row is None:
        raise AuthError(_EXPIRED, "expired")
    permissions = roles.ROLES[row.role].permissions if row.role in roles.ROLES else frozenset()
    return CurrentUser(permissions=permissions, **row._mapping)


def logout(settings: Settings, token: str | None, client_addr: str | None = None) -> bool:
    """Revoke the session; returns whether there was one to revoke."""
    if not token:
        return False
    with app_engine(settings).begin() as conn:
        row = conn.execute(text(
            "UPDATE user_session s SET revoked_at = now() FROM users u"
            " WHERE s.token_hash = :h AND s.revoked_at IS NULL AND u.id = s.user_id"
            " RETURNING u.id, u.username"
        ), {"h": token_hash(token)}).first()
        if row:
            audit.record(conn, "logout", user_id=row.id, username=row.username, client_addr=client_addr)
    return row is not None


def change_password(
    settings: Settings,
    user: CurrentUser,
    old_password: str,
    new_password: str,
    client_addr: str | None = None,
) -> None:
    """Change the user's own password (the old one must be right; the new one must meet the policy)."""
    with app_engine(settings).begin() as conn:
        current = conn.execute(text("SELECT password_hash FROM users WHERE id = :id"),
                               {"id": user.id}).scalar()
        if not passwords.verify_password(current, old_password):
            raise AuthError("原密码错误 (wrong current password)")
        if old_password == new_password:
            raise passwords.PasswordPolicyError("新密码不能与原密码相同 (new password equals the old one)")
        set_password(conn, settings, user.id, user.username, new_password)
        audit.record(conn, "password_change", user_id=user.id, username=user.username,
                     client_addr=client_addr)
