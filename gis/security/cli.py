"""``gridgov audit …`` and ``gridgov users …``: the operator's tools on the server (run as the owner role)."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from gis import db
from gis.security import audit, roles, users
from gis.security.passwords import PasswordPolicyError
from gis.settings import Settings

audit_app = typer.Typer(help="审计 (the access log)", no_args_is_help=True)
users_app = typer.Typer(help="用户账户 (user accounts)", no_args_is_help=True)
console = Console()


def _fail(message: str) -> None:
    console.print(f"[red]{message}[/red]")
    raise typer.Exit(1)


@audit_app.command("verify")
def audit_verify() -> None:
    """校验访问日志哈希链 (recompute the hash chain; exit 1 at the first broken row)."""
    with db.owner_engine(Settings()).connect() as conn:
        report = audit.verify(conn)
    if not report.ok:
        _fail(str(report))
    console.print(f"[green]{report}[/green]")


@users_app.command("create")
def users_create(
    username: str = typer.Argument(..., help="用户名"),
    name: str = typer.Option(..., "--name", help="姓名"),
    role: str = typer.Option(..., "--role", help=f"角色: {', '.join(roles.ROLES)}"),
    scope: str = typer.Option(..., "--scope", help="辖区路径 (ltree path of the user's territory unit)"),
    department: str | None = typer.Option(None, "--department", help="所属部门"),
    password: str = typer.Option(..., prompt="初始密码", hide_input=True, confirmation_prompt=True),
) -> None:
    """创建用户；首次登录须修改密码 (create a user, who must change the password at first login)."""
    settings = Settings()
    try:
        with db.owner_engine(settings).begin() as conn:
            user_id = users.create_user(conn, settings, username=username, password=password, role=role,
                                        scope_path=scope, name=name, department=department)
    except (users.UserError, PasswordPolicyError, ValueError) as error:
        _fail(str(error))
    console.print(f"已创建用户 {username} (id {user_id})，角色 {roles.ROLES[role].zh}，"
                  f"辖区 {scope} (created)")


@users_app.command("list")
def users_list() -> None:
    """列出用户 (list the accounts)."""
    with db.owner_engine(Settings()).connect() as conn:
        rows = users.list_users(conn)
    table = Table("用户名", "姓名", "角色", "辖区", "部门", "状态")
    for row in rows:
        state = "已停用" if not row.active else ("已锁定" if row.locked else "正常")
        role_name = roles.ROLES[row.role].zh if row.role in roles.ROLES else row.role
        table.add_row(row.username, row.name, role_name, row.scope_path, row.department or "", state)
    console.print(table)


@users_app.command("unlock")
def users_unlock(username: str = typer.Argument(..., help="用户名")) -> None:
    """解除登录锁定 (lift a lockout after failed logins)."""
    with db.owner_engine(Settings()).begin() as conn:
        was_locked = users.unlock(conn, username)
        audit.record(conn, "unlock", target_table="users", target_id=username, client_addr="cli",
                     outcome="ok" if was_locked else "not_found")
    console.print(f"已解除 {username} 的锁定 (unlocked)" if was_locked
                  else f"{username} 未被锁定 (not locked)")
