"""Password hashing (Argon2id) and the password policy.

The policy follows 等保 2.0 level 3 practice: a minimum length, at least three of the four character
classes, not the username, not a well-known password. Rotation (``password_max_age_days``) is checked at
login (see :mod:`gis.security.sessions`).

>>> problems("abc", Settings(), username="zhangsan")[0]
'密码长度至少 10 位'
"""

from __future__ import annotations

import string

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from gis.settings import Settings

# argon2-cffi's defaults are RFC 9106's low-memory recommendation for Argon2id (t=3, m=64 MiB, p=4).
_hasher = PasswordHasher()

# A dummy hash to verify against when the username is unknown, so an unknown name costs the same time
# as a wrong password and timing does not tell which it was.
_DUMMY_HASH = _hasher.hash("gridgov: no such user")

WELL_KNOWN = frozenset({
    "123456", "12345678", "123456789", "1234567890", "password", "password1", "p@ssw0rd", "admin",
    "admin123", "admin@123", "root", "qwerty", "abc123", "111111", "000000", "a123456", "passw0rd",
    "qwe123", "1qaz2wsx", "1qaz@wsx", "zaq12wsx", "woaini1314", "iloveyou", "gridgov", "demo",
})


class PasswordPolicyError(ValueError):
    """The password breaks the policy; the message lists every reason, in Chinese."""


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches; with ``None`` (no such user) checks a dummy hash and says no."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def _classes(password: str) -> int:
    return sum([
        any(c in string.ascii_lowercase for c in password),
        any(c in string.ascii_uppercase for c in password),
        any(c.isdigit() for c in password),
        any(not c.isalnum() for c in password),
    ])


def problems(password: str, settings: Settings, username: str | None = None) -> list[str]:
    """What is wrong with ``password`` under the policy (empty when it is acceptable)."""
    found = []
    if len(password) < settings.password_min_length:
        found.append(f"密码长度至少 {settings.password_min_length} 位")
    if len(password) > 128:
        found.append("密码长度不能超过 128 位")
    if _classes(password) < 3:
        found.append("密码须包含大写字母、小写字母、数字、特殊字符中的至少三类")
    if username and username.lower() in password.lower():
        found.append("密码不能包含用户名")
    if password.lower() in WELL_KNOWN:
        found.append("密码过于常见，请换一个")
    return found


def check_policy(password: str, settings: Settings, username: str | None = None) -> None:
    found = problems(password, settings, username)
    if found:
        raise PasswordPolicyError("；".join(found) + " (password policy)")
