"""The ``gridgov`` command line: database, demo district, server, and the tools that grow on them."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer
from rich.console import Console

from etl.cli import demo_app
from etl.load_cli import etl_app
from gis import backup, cluster, db, migrate
from gis.registries_cli import registries_app
from gis.security.cli import audit_app, users_app
from gis.settings import Settings

app = typer.Typer(help="gridgov 网格化服务管理平台", no_args_is_help=True, pretty_exceptions_enable=False)
db_app = typer.Typer(help="数据库 (the database: embedded cluster or DATABASE_URL)", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(audit_app, name="audit")
app.add_typer(users_app, name="users")
app.add_typer(registries_app, name="registries")
app.add_typer(demo_app, name="demo")
app.add_typer(etl_app, name="etl")
console = Console()


def _settings() -> Settings:
    return Settings()


def _fail(message: str) -> None:
    console.print(f"[red]{message}[/red]")
    raise typer.Exit(1)


@db_app.command("up")
def db_up() -> None:
    """初始化并启动本地 PostGIS 集群 (initialise and start the embedded cluster)."""
    try:
        for line in cluster.up(_settings()):
            console.print(line)
    except cluster.ClusterError as error:
        _fail(str(error))


@db_app.command("down")
def db_down() -> None:
    """停止本地集群 (stop the embedded cluster)."""
    console.print(cluster.down(_settings()))


@db_app.command("status")
def db_status() -> None:
    """集群状态与迁移版本 (cluster state and schema revision)."""
    settings = _settings()
    console.print(cluster.status(settings))


@db_app.command("url")
def db_url(role: str = typer.Option("owner", help="owner | app | backup")) -> None:
    """打印连接地址 (print the connection URL)."""
    settings = _settings()
    urls = {"owner": db.owner_url, "app": db.app_url, "backup": db.backup_url}
    if role not in urls:
        _fail(f"未知角色 {role}，可选 owner / app / backup (unknown role)")
    print(db.libpq_dsn(urls[role](settings)))


@db_app.command("migrate")
def db_migrate(revision: str = typer.Argument("heads"), down: bool = typer.Option(False, "--down")) -> None:
    """迁移数据库结构 (upgrade, or with --down downgrade, the schema)."""
    settings = _settings()
    console.print(migrate.downgrade(settings, revision if revision != "heads" else "base")
                  if down else migrate.upgrade(settings, revision))


@db_app.command("psql", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def db_psql(ctx: typer.Context) -> None:
    """打开 psql (open psql as the owner; extra arguments are passed on)."""
    dsn = db.libpq_dsn(db.owner_url(_settings()))
    os.execvp("psql", ["psql", dsn, *ctx.args])


@db_app.command("backup")
def db_backup(file: Path = typer.Argument(..., help="备份文件 (custom-format dump)")) -> None:
    """备份整个数据库 (pg_dump -Fc, as the backup role)."""
    try:
        console.print(backup.backup(_settings(), file))
    except backup.BackupError as error:
        _fail(f"备份失败 (backup failed): {error}")


@db_app.command("sweep-files")
def db_sweep_files(
    grace_hours: float = typer.Option(24.0, help="只清理早于此小时数的文件 (younger: uploads in flight)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="只列出，不删除 (list only)"),
) -> None:
    """清理共享文件目录中无记录引用的文件 (remove stored bytes no row names: uploads rolled back)."""
    from layers import file_store

    settings = _settings()
    with db.owner_engine(settings).connect() as conn:
        referenced = file_store.referenced_digests(conn)
    removed = file_store.sweep(settings, referenced, grace_seconds=grace_hours * 3600, dry_run=dry_run)
    for path in removed if dry_run else ():
        console.print(str(path))
    verb = "将删除" if dry_run else "已删除"
    console.print(f"{verb} {len(removed)} 个无引用文件，{len(referenced)} 个仍被引用 (unreferenced files)")


@db_app.command("restore")
def db_restore(file: Path = typer.Argument(..., exists=True, help="备份文件")) -> None:
    """从备份恢复，替换当前数据 (pg_restore --clean, one transaction)."""
    try:
        console.print(backup.restore(_settings(), file))
    except backup.BackupError as error:
        _fail(f"恢复失败，数据库未改变 (restore failed, nothing changed): {error}")


@app.command("serve")
def serve(host: str = typer.Option(None, help="监听地址 (default GRIDGOV_HOST)"),
          port: int = typer.Option(None, help="端口 (default GRIDGOV_PORT)"),
          ssl_certfile: Path = typer.Option(None, exists=True, help="HTTPS 证书 (PEM)"),
          ssl_keyfile: Path = typer.Option(None, exists=True, help="HTTPS 私钥 (PEM)")) -> None:
    """启动服务：地图与数据接口 (serve the dashboards and the REST API)."""
    from gis.server import serve as run_server

    given = (("host", host), ("port", port), ("ssl_certfile", ssl_certfile), ("ssl_keyfile", ssl_keyfile))
    overrides = {key: value for key, value in given if value is not None}
    run_server(_settings().model_copy(update=overrides), echo=console.print)


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
