"""User accounts: one role, one territory (the scope), optionally a department.

Users live in the ``users`` table; their passwords as Argon2id hashes. Accounts are deactivated, never
deleted, so the access log keeps pointing at someone. In production mode the well-known demo and default
account names and passwords are refused (no shared or default administrator, 等保 2.0).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, text

from gis.security import passwords, roles
from gis.settings import Settings

# Names a default install or the demo district might have: never real accounts in production.
DEMO_USERNAMES = frozenset({
    "admin", "administrator", "root", "sa", "system", "test", "guest", "user", "demo", "gridgov",
    "security", "auditor", "operator",
})
DEMO_PREFIXES = ("demo", "test")


class UserError(ValueError):
    """A user could not be created or changed; the message says why, in Chinese."""


@dataclass(frozen=True)
class UserRow:
    id: int
    username: str
    name: str
    role: str
    scope_path: str
    department: str | None
    active: bool
    locked: bool


def normalise_username(username: str) -> str:
    return username.strip().lower()


def is_demo_account(username: str, password: str | None = None) -> bool:
    """A well-known default or demo account name, or a well-known password."""
    name = normalise_username(username)
    if name in DEMO_USERNAMES or name.startswith(DEMO_PREFIXES):
        return True
    return password is not None and password.lower() in passwords.WELL_KNOWN


def _check_scope(conn: Connection, scope_path: str) -> None:
    found = conn.execute(
        text("SELECT 1 FROM territory_unit WHERE path = CAST(:p AS ltree)"), {"p": scope_path}
    ).first()
    if not found:
        raise UserError(f"辖区 {scope_path} 不存在，请先导入行政区划 (no territory unit at this path)")


def upsert_user(
    conn: Connection,
    username: str,
    password: str,
    role: str,
    scope_path: str,
    name: str,
    department: str | None = None,
) -> int:
    """Create or reset an account (the demo accounts): password set as given, no policy check, active,
    unlocked. Use :func:`create_user` for real accounts."""
    roles.role(role)
    username = normalise_username(username)
    _check_scope(conn, scope_path)
    user_id = conn.execute(text(
        "INSERT INTO users (username, name, password_hash, role, scope_path, department)"
        " VALUES (:username, :name, :hash, :role, CAST(:scope AS ltree), :department)"
        " ON CONFLICT (username) DO UPDATE SET name = EXCLUDED.name, password_hash = EXCLUDED.password_hash,"
        "  role = EXCLUDED.role, scope_path = EXCLUDED.scope_path, department = EXCLUDED.department,"
        "  active = true, must_change_password = false, password_changed_at = now(), updated_at = now()"
        " RETURNING id"
    ), {"username": username, "name": name, "hash": passwords.hash_password(password), "role": role,
        "scope": scope_path, "department": department}).scalar_one()
    unlock(conn, username)
    return user_id


def create_user(
    conn: Connection,
    settings: Settings,
    *,
    username: str,
    password: str,
    role: str,
    scope_path: str,
    name: str,
    department: str | None = None,
    must_change_password: bool = True,
) -> int:
    """Create a real account: the password policy applies, and in production no demo names or passwords.
    The user must change the password at first login unless ``must_change_password`` is False."""
    roles.role(role)
    username = normalise_username(username)
    if settings.production and is_demo_account(username, password):
        raise UserError(f"生产模式下不允许使用默认或演示账户名/密码：{username} (demo account refused)")
    passwords.check_policy(password, settings, username)
    _check_scope(conn, scope_path)
    if conn.execute(text("SELECT 1 FROM users WHERE username = :u"), {"u": username}).first():
        raise UserError(f"用户名 {username} 已存在 (username taken)")
    return conn.execute(text(
        "INSERT INTO users (username, name, password_hash, role, scope_path, department,"
        " must_change_password)"
        " VALUES (:username, :name, :hash, :role, CAST(:scope AS ltree), :department, :must) RETURNING id"
    ), {"username": username, "name": name, "hash": passwords.hash_password(password), "role": role,
        "scope": scope_path, "department": department, "must": must_change_password}).scalar_one()


def set_password(conn: Connection, settings: Settings, user_id: int, username: str, password: str) -> None:
    """Change a password under the policy; the new one is not due for change."""
    if settings.production and is_demo_account(username, password):
        raise UserError("生产模式下不允许使用常见密码 (well-known password refused)")
    passwords.check_policy(password, settings, username)
    conn.execute(text(
        "UPDATE users SET password_hash = :hash, must_change_password = false, password_changed_at = now(),"
        " updated_at = now() WHERE id = :id"
    ), {"hash": passwords.hash_password(password), "id": user_id})


def set_active(conn: Connection, username: str, active: bool) -> bool:
    """Deactivate (or reactivate) an account; a deactivated account's sessions end with it."""
    found = conn.execute(text(
        "UPDATE users SET active = :active, updated_at = now() WHERE username = :u RETURNING id"
    ), {"active": active, "u": normalise_username(username)}).scalar()
    if found and not active:
        conn.execute(text("UPDATE user_session SET revoked_at = now()"
                          " WHERE user_id = :id AND revoked_at IS NULL"), {"id": found})
    return found is not None


def unlock(conn: Connection, username: str) -> bool:
    """Lift a lockout: earlier failures no longer count. Returns whether the name was locked."""
    was_locked = conn.execute(text(
        "WITH old AS (SELECT username, locked_until FROM login_lock WHERE username = :u FOR UPDATE)"
        " UPDATE login_lock l SET locked_until = NULL, reset_at = now() FROM old"
        " WHERE l.username = old.username RETURNING coalesce(old.locked_until > now(), false)"
    ), {"u": normalise_username(username)}).scalar()
    return bool(was_locked)


def list_users(conn: Connection) -> list[UserRow]:
    rows = conn.execute(text(
        "SELECT u.id, u.username, u.name, u.role, u.scope_path::text AS scope_path, u.department, u.active,"
        "  coalesce(l.locked_until > now(), false) AS locked"
        " FROM users u LEFT JOIN login_lock l ON l.username = u.username ORDER BY u.scope_path, u.username"
    ))
    return [UserRow(**row._mapping) for row in rows]
