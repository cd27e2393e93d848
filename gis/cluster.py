"""The embedded PostgreSQL + PostGIS cluster under ``var/``.

With no ``DATABASE_URL`` the platform runs its own cluster: ``initdb`` into ``var/pg``, its own port and
a Unix socket in ``var/run``, listening on loopback only. ``initdb`` and ``postgres`` refuse to run as
root, so when we are root every cluster command is run as an unprivileged system user
(``settings.cluster_os_user``). Every function here is idempotent and returns a sentence saying what it did.
"""

from __future__ import annotations

import fcntl
import os
import pwd
import shutil
import subprocess
from pathlib import Path

from gis.settings import Settings

EXTENSIONS = ("postgis", "ltree", "pg_trgm", "btree_gist")
# PostGIS's bounding-box operators (``&&``, ``~`` and ``@`` on geometry, ``&&`` on geography) compare two
# boxes of floats and raise no error whatever the rows hold (mixed SRIDs and empty geometries included),
# but PostGIS does not declare them LEAKPROOF (its ticket 3676). Under row-level security PostgreSQL uses
# only leakproof operators as index conditions ahead of the policy, so without this every spatial query
# of the app role read its whole territory through the org_path index and tested footprints one by one.
# Only a superuser may mark a function leakproof: done here, beside the extensions.
LEAKPROOF_BOX_OPERATORS = (
    "geometry_overlaps(geometry, geometry)", "geometry_within(geometry, geometry)",
    "geometry_contains(geometry, geometry)", "geography_overlaps(geography, geography)",
)
DEBIAN_PACKAGES = "postgresql postgresql-15-postgis-3"


class ClusterError(RuntimeError):
    """Raised with a message that tells the user what to do."""


def pg_bin(name: str) -> str:
    """Find a PostgreSQL server binary: on PATH (conda), else Debian's versioned folder."""
    found = shutil.which(name)
    if found:
        return found
    for version_dir in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (version_dir / name).exists():
            return str(version_dir / name)
    raise ClusterError(
        f"PostgreSQL 的 {name} 未找到。请安装 Debian 软件包: apt-get install {DEBIAN_PACKAGES}，"
        "或使用 conda: conda env create -f environment.yml"
        f" (PostgreSQL server binary {name} not found)"
    )


def postgis_available() -> bool:
    try:
        sharedir = subprocess.run(
            [pg_bin("pg_config"), "--sharedir"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (ClusterError, subprocess.CalledProcessError):
        return False
    return Path(sharedir, "extension", "postgis.control").exists()


def _as_cluster_user(settings: Settings) -> str | None:
    """The system user to run cluster binaries as, or None to run as ourselves."""
    if os.geteuid() != 0:
        return None
    user = settings.cluster_os_user
    try:
        pwd.getpwnam(user)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", user],
                       check=True)
    return user


def superuser(settings: Settings) -> str:
    return _as_cluster_user(settings) or pwd.getpwuid(os.geteuid()).pw_name


def _run(settings: Settings, argv: list[str], check: bool = True) -> subprocess.CompletedProcess:
    user = _as_cluster_user(settings)
    if user:
        # runuser keeps our environment out of the way and needs no password (we are root).
        argv = ["runuser", "-u", user, "--", *argv]
    return subprocess.run(argv, capture_output=True, text=True, check=check)


def _prepare_dirs(settings: Settings) -> None:
    for path in (settings.pg_data_dir, settings.pg_socket_dir):
        path.mkdir(parents=True, exist_ok=True)
        user = _as_cluster_user(settings)
        if user:
            shutil.chown(path, user=user, group=pwd.getpwnam(user).pw_gid)
        path.chmod(0o700)
    if _as_cluster_user(settings):
        _let_cluster_user_traverse(settings.var_dir.resolve())


def _let_cluster_user_traverse(path: Path) -> None:
    """Running as root for another user: that user must be able to walk down to ``var/``.

    Directories on the way that others cannot enter (a home of 0700, a 0700 temp dir) get the search bit
    only (o+x: enter by name, not list), which is the least that makes the data directory reachable.
    """
    for directory in [path, *path.parents]:
        mode = directory.stat().st_mode
        if not mode & 0o001:
            directory.chmod(mode | 0o001)


def is_initialised(settings: Settings) -> bool:
    return (settings.pg_data_dir / "PG_VERSION").exists()


def is_running(settings: Settings) -> bool:
    if not is_initialised(settings):
        return False
    result = _run(settings, [pg_bin("pg_ctl"), "status", "-D", str(settings.pg_data_dir)], check=False)
    return result.returncode == 0


def _psql_super(settings: Settings, sql: str, database: str = "postgres") -> str:
    result = _run(settings, [
        pg_bin("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-At",
        "-h", str(settings.pg_socket_dir), "-p", str(settings.pg_port),
        "-U", superuser(settings), "-d", database, "-c", sql,
    ], check=False)
    if result.returncode != 0:
        raise ClusterError(f"psql 执行失败 (psql failed): {result.stderr.strip()}")
    return result.stdout.strip()


def up(settings: Settings) -> list[str]:
    """Initialise (once), start (if stopped) and provision the embedded cluster."""
    if not settings.embedded:
        raise ClusterError("已设置 DATABASE_URL，使用外部数据库，无需启动本地集群 (DATABASE_URL is set: "
                           "the external server is used and the embedded cluster is not started)")
    if not postgis_available():
        raise ClusterError(
            f"未找到 PostGIS。请安装: apt-get install {DEBIAN_PACKAGES}，或使用 conda 环境 environment.yml"
            " (PostGIS extension not installed)"
        )
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    # Two commands starting the same cluster at once (a test run beside `make demo`) must not both
    # run initdb or pg_ctl start: hold a lock file for the whole of `up`.
    with open(settings.var_dir / "cluster.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _up_locked(settings)


def _up_locked(settings: Settings) -> list[str]:
    said = []
    _prepare_dirs(settings)
    if not is_initialised(settings):
        _run(settings, [
            pg_bin("initdb"), "-D", str(settings.pg_data_dir), "-U", superuser(settings),
            "--encoding=UTF8", "--locale=C.UTF-8", "--auth-local=trust", "--auth-host=scram-sha-256",
        ])
        with open(settings.pg_data_dir / "postgresql.auto.conf", "a") as conf:
            conf.write(
                f"port = {settings.pg_port}\n"
                f"unix_socket_directories = '{settings.pg_socket_dir}'\n"
                "listen_addresses = '127.0.0.1'\n"
                "shared_buffers = '512MB'\n"
                "maintenance_work_mem = '512MB'\n"
                "max_wal_size = '4GB'\n"
                "timezone = 'Asia/Shanghai'\n"
            )
        said.append(f"已初始化集群 {settings.pg_data_dir} (initialised the cluster)")
    if is_running(settings):
        said.append(f"集群已在运行，端口 {settings.pg_port} (already running)")
    else:
        _run(settings, [
            pg_bin("pg_ctl"), "start", "-w", "-D", str(settings.pg_data_dir),
            "-l", str(settings.pg_data_dir / "server.log"),
        ])
        said.append(f"已启动集群，端口 {settings.pg_port} (started)")
    said.extend(provision(settings))
    return said


def provision(settings: Settings) -> list[str]:
    """Database, roles and extensions; each created only when missing."""
    said = []
    db = settings.pg_database
    if not _psql_super(settings, f"SELECT 1 FROM pg_database WHERE datname = '{db}'"):
        _psql_super(settings, f"CREATE DATABASE {db} ENCODING 'UTF8'")
        said.append(f"已创建数据库 {db} (created database)")
    # The owner holds the tables; the app role is what the server connects as (no BYPASSRLS, not the
    # owner, so row-level security applies to it); the backup role reads everything and writes nothing.
    roles = {
        settings.owner_role: "LOGIN NOBYPASSRLS",
        settings.app_role: f"LOGIN PASSWORD '{settings.app_password}' NOBYPASSRLS",
        settings.backup_role: "LOGIN BYPASSRLS",
    }
    for role, options in roles.items():
        if not _psql_super(settings, f"SELECT 1 FROM pg_roles WHERE rolname = '{role}'"):
            _psql_super(settings, f"CREATE ROLE {role} NOSUPERUSER {options}")
            said.append(f"已创建角色 {role} (created role)")
    _psql_super(settings, f"ALTER DATABASE {db} OWNER TO {settings.owner_role}")
    _psql_super(settings, f"GRANT pg_read_all_data TO {settings.backup_role}")
    # The register and boundary loaders copy without the per-row foreign-key triggers, after checking the
    # same keys as one set (etl/bulk_keys.py); that SET needs a grant.
    _psql_super(settings, f"GRANT SET ON PARAMETER session_replication_role TO {settings.owner_role}")
    for ext in EXTENSIONS:
        _psql_super(settings, f"CREATE EXTENSION IF NOT EXISTS {ext}", database=db)
    _psql_super(settings, "; ".join(f"ALTER FUNCTION {f} LEAKPROOF" for f in LEAKPROOF_BOX_OPERATORS),
                database=db)
    return said


def down(settings: Settings) -> str:
    if not is_running(settings):
        return "集群未在运行 (not running)"
    _run(settings, [pg_bin("pg_ctl"), "stop", "-w", "-m", "fast", "-D", str(settings.pg_data_dir)])
    return "已停止集群 (stopped)"


def status(settings: Settings) -> str:
    if not settings.embedded:
        return "使用外部数据库 DATABASE_URL (external server)"
    if not is_initialised(settings):
        return f"未初始化: {settings.pg_data_dir} (not initialised)"
    state = "运行中 (running)" if is_running(settings) else "已停止 (stopped)"
    return f"{state}: {settings.pg_data_dir}, 端口 {settings.pg_port}"
