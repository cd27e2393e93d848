"""Whole-database backup and restore with ``pg_dump -Fc`` / ``pg_restore``.

The dump is taken as the backup role (reads everything, row-level security bypassed, writes nothing).
The restore runs as the owner and replaces the objects of the dump in one transaction, so a failed
restore leaves the database as it was. Extensions are left out of the restore list: they belong to the
superuser, are created by ``gridgov db up`` (or the server's administrator), and a non-superuser may
neither drop nor comment on them.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from gis import cluster, db
from gis.settings import Settings


class BackupError(RuntimeError):
    pass


def _run(argv: list[str]) -> subprocess.CompletedProcess:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode:
        raise BackupError(result.stderr.strip() or result.stdout.strip())
    return result


def backup(settings: Settings, file: Path) -> str:
    _run([cluster.pg_bin("pg_dump"), "-Fc", "--no-owner", "-f", str(file),
          "-d", db.libpq_dsn(db.backup_url(settings))])
    return f"已备份到 {file} ({file.stat().st_size:,} 字节) (backed up)"


def restore(settings: Settings, file: Path) -> str:
    listing = _run([cluster.pg_bin("pg_restore"), "-l", str(file)]).stdout
    # spatial_ref_sys is PostGIS's own table: its rows come with the extension, not with our data.
    kept = [line for line in listing.splitlines()
            if " EXTENSION " not in line and "spatial_ref_sys" not in line]
    list_file = file.with_suffix(file.suffix + ".list")
    list_file.write_text("\n".join(kept) + "\n", encoding="utf-8")
    try:
        _run([cluster.pg_bin("pg_restore"), "--clean", "--if-exists", "--no-owner", "--single-transaction",
              "--exit-on-error", "-L", str(list_file), "-d", db.libpq_dsn(db.owner_url(settings)), str(file)])
    finally:
        list_file.unlink(missing_ok=True)
    return f"已从 {file} 恢复 (restored)"
