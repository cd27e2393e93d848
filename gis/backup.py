"""Whole-database backup and restore with ``pg_dump -Fc`` / ``pg_restore``.

The dump is taken as the backup role (reads everything, row-level security bypassed, writes nothing).
The restore runs as the owner and replaces the objects of the dump in one transaction, so a failed
restore leaves the database as it was. Extensions are left out of the restore list: they belong to the
superuser, are created by ``gridgov db up`` (or the server's administrator), and a non-superuser may
neither drop nor comment on them.

Shared files (内部硬盘共享) keep their bytes on disk under ``files_dir``, named by their SHA-256: a backup
archives that folder beside the dump (``<dump>.files.tar``) and a restore puts the archived files back.
Content-addressed names make that safe — a name that exists already holds the same bytes.
"""

from __future__ import annotations

import subprocess
import tarfile
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


def files_archive(file: Path) -> Path:
    return file.with_name(file.name + ".files.tar")


def backup(settings: Settings, file: Path) -> str:
    _run([cluster.pg_bin("pg_dump"), "-Fc", "--no-owner", "-f", str(file),
          "-d", db.libpq_dsn(db.backup_url(settings))])
    said = f"已备份到 {file} ({file.stat().st_size:,} 字节) (backed up)"
    files = Path(settings.files_dir)
    if files.is_dir() and any(files.iterdir()):
        with tarfile.open(files_archive(file), "w") as archive:
            archive.add(files, arcname="files")
        said += f"；共享文件已打包到 {files_archive(file)} (shared files archived)"
    return said


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
    said = f"已从 {file} 恢复 (restored)"
    if files_archive(file).is_file():
        target = Path(settings.files_dir)
        target.mkdir(parents=True, exist_ok=True)
        with tarfile.open(files_archive(file)) as archive:
            for member in archive.getmembers():
                if member.isfile() and member.name.startswith("files/"):
                    member.name = member.name.removeprefix("files/")
                    archive.extract(member, target, filter="data")
        said += f"；共享文件已恢复到 {target} (shared files restored)"
    return said
