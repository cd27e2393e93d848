"""Login, lockout, sessions and their timeouts, logout, passwords -- through the services and the API."""

from __future__ import annotations

import hashlib
import time

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from gis import db
from gis.cli import app as cli
from gis.security import passwords, users
from gis.security.sessions import AuthError, login, logout, resolve
from gis.settings import Settings
from tests.access_helpers import PASSWORD, add_district, add_user, client_for, wipe


@pytest.fixture(scope="module")
def world(fresh_db):
    wipe(fresh_db)
    with db.owner_engine(fresh_db).begin() as conn:
        district = add_district(conn)
    return fresh_db, district


def new_user(world, username: str, role: str = "grid_worker") -> int:
    settings, district = world
    with db.owner_engine(settings).begin() as conn:
        return add_user(conn, username, role, district)


def access_rows(settings, username: str) -> list[tuple[str, str, str | None]]:
    with db.owner_engine(settings).connect() as conn:
        return [tuple(row) for row in conn.execute(text(
            "SELECT action, outcome, client_addr FROM access_log WHERE username = :u ORDER BY id"
        ), {"u": username})]


def test_login_returns_a_session_stored_only_as_a_hash(world):
    settings, district = world
    user_id = new_user(world, "Zhang_Wei")  # names are case-insensitive
    token, expires_at = login(settings, "zhang_wei", PASSWORD, client_addr="10.1.2.3")
    user = resolve(settings, token)
    assert (user.id, user.username, user.scope_path, user.role) == (user_id, "zhang_wei", district.path,
                                                                     "grid_worker")
    assert user.has("registry:person:read") and not user.has("pii:reveal")
    with db.owner_engine(settings).connect() as conn:
        stored = conn.execute(text("SELECT token_hash FROM user_session WHERE user_id = :id"),
                              {"id": user_id}).scalar_one()
        password_hash = conn.execute(text("SELECT password_hash FROM users WHERE id = :id"),
                                     {"id": user_id}).scalar_one()
    assert stored == hashlib.sha256(token.encode()).hexdigest() and token not in stored
    assert password_hash.startswith("$argon2id$")
    assert access_rows(settings, "zhang_wei") == [("login", "ok", "10.1.2.3")]


def test_wrong_password_and_unknown_user_answer_alike(world):
    settings, _ = world
    new_user(world, "li_na")
    answers = []
    for username in ("li_na", "nobody_here"):
        with pytest.raises(AuthError) as refused:
            login(settings, username, "Wrong#Password1")
        answers.append((refused.value.code, str(refused.value)))
    assert answers[0] == answers[1]
    assert "用户名或密码错误" in answers[0][1]
    assert access_rows(settings, "li_na") == [("login_failed", "failed", None)]


def test_lockout_after_five_failures_then_unlock(world):
    settings, _ = world
    new_user(world, "wang_fang")
    for attempt in range(1, 6):
        with pytest.raises(AuthError) as refused:
            login(settings, "wang_fang", "Wrong#Password1")
        assert refused.value.code == ("locked" if attempt == 5 else "invalid")
    with pytest.raises(AuthError) as refused:  # the right password no longer helps
        login(settings, "wang_fang", PASSWORD)
    assert refused.value.code == "locked" and "锁定" in str(refused.value)
    # A name that does not exist locks the same way, so locking tells nothing about existence.
    for _ in range(5):
        with pytest.raises(AuthError):
            login(settings, "ghost_user", "Wrong#Password1")
    with pytest.raises(AuthError) as ghost:
        login(settings, "ghost_user", "Wrong#Password1")
    assert ghost.value.code == "locked"
    with db.owner_engine(settings).begin() as conn:
        assert users.unlock(conn, "wang_fang")
    token, _ = login(settings, "wang_fang", PASSWORD)
    assert resolve(settings, token).username == "wang_fang"
    outcomes = [outcome for action, outcome, _ in access_rows(settings, "wang_fang")]
    assert outcomes == ["failed"] * 4 + ["denied", "denied", "ok"]


def test_lockout_expires(world):
    base, _ = world
    new_user(world, "zhao_lei")
    settings = base.model_copy(update={"lockout_minutes": 0.02})
    for _ in range(5):
        with pytest.raises(AuthError):
            login(settings, "zhao_lei", "Wrong#Password1")
    with pytest.raises(AuthError, match="锁定"):
        login(settings, "zhao_lei", PASSWORD)
    time.sleep(1.5)  # the lock (1.2 s) is over
    login(settings, "zhao_lei", PASSWORD)


def test_failures_outside_the_window_do_not_count(world):
    base, _ = world
    new_user(world, "zheng_bo")
    settings = base.model_copy(update={"lockout_window_minutes": 0.02})
    for _ in range(4):
        with pytest.raises(AuthError):
            login(settings, "zheng_bo", "Wrong#Password1")
    time.sleep(1.5)  # those four are now older than the window (1.2 s)
    for _ in range(4):
        with pytest.raises(AuthError) as refused:
            login(settings, "zheng_bo", "Wrong#Password1")
        assert refused.value.code == "invalid"
    login(settings, "zheng_bo", PASSWORD)


def test_idle_session_expires(world):
    base, _ = world
    new_user(world, "chen_jing")
    # 3 s idle allowed: uses 0.5 s apart keep it alive even on a loaded machine, 4 s of silence ends it.
    settings = base.model_copy(update={"session_idle_minutes": 0.05})
    token, _ = login(settings, "chen_jing", PASSWORD)
    for _ in range(3):  # use keeps it alive
        time.sleep(0.5)
        resolve(settings, token)
    time.sleep(4)
    with pytest.raises(AuthError) as refused:
        resolve(settings, token)
    assert refused.value.code == "expired"
    response = client_for(settings).get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401 and "登录" in response.json()["detail"]


def test_absolute_timeout_ends_even_a_busy_session(world):
    base, _ = world
    new_user(world, "sun_li")
    settings = base.model_copy(update={"session_absolute_hours": 1.0 / 3600})
    token, expires_at = login(settings, "sun_li", PASSWORD)
    resolve(settings, token)
    time.sleep(1.2)
    with pytest.raises(AuthError):
        resolve(settings, token)


def test_logout_revokes_and_a_revoked_token_is_refused(world):
    settings, _ = world
    new_user(world, "zhou_min")
    token, _ = login(settings, "zhou_min", PASSWORD)
    assert logout(settings, token)
    with pytest.raises(AuthError):
        resolve(settings, token)
    assert not logout(settings, token)
    assert [action for action, _, _ in access_rows(settings, "zhou_min")] == ["login", "logout"]


def test_deactivated_account_loses_its_sessions(world):
    settings, _ = world
    new_user(world, "wu_gang")
    token, _ = login(settings, "wu_gang", PASSWORD)
    with db.owner_engine(settings).begin() as conn:
        users.set_active(conn, "wu_gang", False)
    with pytest.raises(AuthError):
        resolve(settings, token)
    with pytest.raises(AuthError):
        login(settings, "wu_gang", PASSWORD)


def test_api_login_cookie_bearer_me_and_logout(world):
    settings, district = world
    new_user(world, "huang_yan", role="community_staff")
    client = client_for(settings)
    assert client.get("/api/v1/auth/me").status_code == 401
    response = client.post("/api/v1/auth/login", json={"username": "huang_yan", "password": PASSWORD})
    assert response.status_code == 200
    body = response.json()
    assert body["user"]["scope_path"] == district.path and "pii:reveal" in body["user"]["permissions"]
    cookie = response.headers["set-cookie"].lower()
    assert "gridgov_session=" in cookie and "httponly" in cookie and "samesite=strict" in cookie
    assert "secure" not in cookie  # not production: plain http on localhost still works
    # The cookie alone authenticates (the browser), and so does the bearer token (API clients).
    assert client.get("/api/v1/auth/me").json()["username"] == "huang_yan"
    bare = client_for(settings)
    with_token = {"Authorization": f"Bearer {body['token']}"}
    assert bare.get("/api/v1/auth/me", headers=with_token).status_code == 200
    assert bare.get("/api/v1/auth/me", headers={"Authorization": "Bearer not-a-token"}).status_code == 401
    assert client.post("/api/v1/auth/logout").status_code == 204
    assert bare.get("/api/v1/auth/me", headers=with_token).status_code == 401
    assert access_rows(settings, "huang_yan")[0] == ("login", "ok", "testclient")


def test_api_lockout_is_423_and_wrong_password_401(world):
    settings, _ = world
    new_user(world, "ma_chao")
    client = client_for(settings)
    codes = [client.post("/api/v1/auth/login", json={"username": "ma_chao", "password": "x"}).status_code
             for _ in range(6)]
    assert codes == [401] * 4 + [423, 423]


def test_secure_cookie_in_production(world):
    base, _ = world
    new_user(world, "qian_hui")
    client = client_for(base.model_copy(update={"production": True}))
    response = client.post("/api/v1/auth/login", json={"username": "qian_hui", "password": PASSWORD})
    assert response.status_code == 200
    assert "secure" in response.headers["set-cookie"].lower()


def test_password_policy():
    settings = Settings(password_min_length=10)
    assert passwords.problems("Abcdef#123", settings, "zhangsan") == []
    assert "密码长度至少 10 位" in passwords.problems("Ab#1", settings)
    assert any("三类" in p for p in passwords.problems("abcdefghijkl", settings))
    assert any("用户名" in p for p in passwords.problems("Zhangsan#2024", settings, "zhangsan"))
    assert any("常见" in p for p in passwords.problems("P@ssw0rd", settings))


def test_first_login_must_change_password(world):
    settings, district = world
    with db.owner_engine(settings).begin() as conn:
        with pytest.raises(passwords.PasswordPolicyError):
            users.create_user(conn, settings, username="new_one", password="short", role="analyst",
                              scope_path=district.path, name="新用户")
        users.create_user(conn, settings, username="new_one", password="Initial#Pass1", role="analyst",
                          scope_path=district.path, name="新用户")
    client = client_for(settings)
    token = client.post("/api/v1/auth/login",
                        json={"username": "new_one", "password": "Initial#Pass1"}).json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/auth/me", headers=headers).json()["must_change_password"] is True
    assert client.get("/api/v1/people", headers=headers).status_code == 403
    weak = client.post("/api/v1/auth/password", headers=headers,
                       json={"old_password": "Initial#Pass1", "new_password": "weak"})
    assert weak.status_code == 400 and "密码" in weak.json()["detail"]
    wrong = client.post("/api/v1/auth/password", headers=headers,
                        json={"old_password": "Nope#Nope123", "new_password": "Better#Pass22"})
    assert wrong.status_code == 403
    changed = client.post("/api/v1/auth/password", headers=headers,
                          json={"old_password": "Initial#Pass1", "new_password": "Better#Pass22"})
    assert changed.status_code == 204
    assert client.get("/api/v1/people", headers=headers).status_code == 200


def test_expired_password_must_be_changed(world):
    settings, _ = world
    user_id = new_user(world, "old_hand")
    with db.owner_engine(settings).begin() as conn:
        conn.execute(text("UPDATE users SET password_changed_at = now() - interval '91 days' WHERE id = :id"),
                     {"id": user_id})
    token, _ = login(settings, "old_hand", PASSWORD)
    assert resolve(settings, token).must_change_password
    assert not resolve(settings.model_copy(update={"password_max_age_days": 0}), token).must_change_password


def test_production_refuses_demo_accounts(world):
    base, district = world
    production = base.model_copy(update={"production": True})
    new_user(world, "demo_grid")
    with pytest.raises(AuthError) as refused:
        login(production, "demo_grid", PASSWORD)
    assert refused.value.code == "refused"
    login(base, "demo_grid", PASSWORD)  # fine outside production
    with db.owner_engine(base).begin() as conn:
        for username in ("admin", "demo_street"):
            with pytest.raises(users.UserError):
                users.create_user(conn, production, username=username, password="Strong#Pass99", role="admin",
                                  scope_path=district.path, name="管理员")


def test_cli_creates_lists_and_unlocks_users(world):
    settings, district = world
    env = {"GRIDGOV_VAR_DIR": str(settings.var_dir), "GRIDGOV_PG_PORT": str(settings.pg_port),
           "GRIDGOV_PG_DATABASE": settings.pg_database}
    runner = CliRunner()
    created = runner.invoke(cli, ["users", "create", "lin_tao", "--name", "林涛", "--role", "auditor",
                                  "--scope", district.path], input="Audit#Pass2024\n" * 2, env=env)
    assert created.exit_code == 0 and "已创建用户 lin_tao" in created.output, created.output
    weak = runner.invoke(cli, ["users", "create", "lin_tao2", "--name", "林涛", "--role", "auditor",
                               "--scope", district.path], input="weak\nweak\n", env=env)
    assert weak.exit_code == 1 and "密码长度" in weak.output
    for _ in range(5):
        with pytest.raises(AuthError):
            login(settings, "lin_tao", "Wrong#Password1")
    listed = runner.invoke(cli, ["users", "list"], env=env)
    assert listed.exit_code == 0 and "lin_tao" in listed.output and "已锁定" in listed.output
    unlocked = runner.invoke(cli, ["users", "unlock", "lin_tao"], env=env)
    assert unlocked.exit_code == 0 and "已解除" in unlocked.output
    token, _ = login(settings, "lin_tao", "Audit#Pass2024")
    assert resolve(settings, token).permissions == frozenset({"audit:read"})
