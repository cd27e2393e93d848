"""Backup → drop → restore through the real CLI (pg_dump -Fc as the backup role, pg_restore as the owner)
gives back the same database: every table's row count and a checksum of the people."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sqlalchemy import text

from etl.demo import ensure_demo_accounts, load_demo
from gis import db
from tests.conftest import ROOT, create_database, drop_database

TABLES = ("territory_unit", "compound", "building", "house", "person", "person_floating", "person_foreign",
          "residence", "users", "access_log", "code_item")


def snapshot(settings) -> dict:
    with db.owner_engine(settings).connect() as conn:
        counts = {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in TABLES}
        counts["people_md5"] = conn.execute(text(
            "SELECT md5(string_agg(id || name || coalesce(id_number, '') || org_path::text, ',' ORDER BY id))"
            " FROM person")).scalar_one()
        counts["boundaries_md5"] = conn.execute(text(
            "SELECT md5(string_agg(ST_AsEWKB(boundary)::text, ',' ORDER BY id)) FROM territory_unit"
        )).scalar_one()
    return counts


def gridgov(settings, *args: str, files_dir=None) -> subprocess.CompletedProcess:
    env = dict(os.environ, GRIDGOV_VAR_DIR=str(settings.var_dir), GRIDGOV_PG_PORT=str(settings.pg_port),
               GRIDGOV_PG_DATABASE=settings.pg_database)
    if files_dir is not None:
        env["GRIDGOV_FILES_DIR"] = str(files_dir)
    env.pop("DATABASE_URL", None)
    return subprocess.run([sys.executable, "-m", "gis.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, check=False)


@pytest.fixture(scope="module")
def loaded(fresh_db):
    load_demo(fresh_db, scale=3000, seed=7)
    ensure_demo_accounts(fresh_db)
    return fresh_db


def test_backup_drop_restore_gives_identical_counts(loaded, tmp_path, cluster_settings):
    before = snapshot(loaded)
    assert before["person"] == 3000 and before["users"] >= 9
    dump = tmp_path / "gridgov.dump"
    files = tmp_path / "files"
    (files / "ab").mkdir(parents=True)
    (files / "ab" / "abc123").write_bytes("共享文件内容".encode())
    done = gridgov(loaded, "db", "backup", str(dump), files_dir=files)
    assert done.returncode == 0, done.stdout + done.stderr
    assert dump.stat().st_size > 10_000

    drop_database(loaded)
    # An empty database with the extensions, as `gridgov db up` leaves a new one.
    target = create_database(cluster_settings, loaded.pg_database)
    with db.owner_engine(target).begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS app CASCADE"))
        for table in conn.execute(text(
                "SELECT tablename FROM pg_tables"
                " WHERE schemaname = 'public' AND tablename <> 'spatial_ref_sys'")).scalars():
            conn.execute(text(f'DROP TABLE IF EXISTS "{table}" CASCADE'))
    restored_files = tmp_path / "restored-files"
    done = gridgov(target, "db", "restore", str(dump), files_dir=restored_files)
    assert done.returncode == 0, done.stdout + done.stderr
    assert snapshot(target) == before
    assert (restored_files / "ab" / "abc123").read_bytes() == "共享文件内容".encode()  # the shared files too


def test_a_failed_restore_changes_nothing(loaded, tmp_path):
    before = snapshot(loaded)
    broken = tmp_path / "broken.dump"
    broken.write_bytes(b"PGDMP not really a dump")
    done = gridgov(loaded, "db", "restore", str(broken))
    assert done.returncode != 0
    assert "恢复失败" in done.stdout + done.stderr
    assert snapshot(loaded) == before
