"""The embedded cluster's lifecycle and the migrations, on a real PostgreSQL."""

from __future__ import annotations

import os
import shutil

from sqlalchemy import create_engine, text

from gis import cluster, db, migrate
from tests.conftest import ROOT, settings_for_tests


def test_fresh_db_is_migrated_and_empty(fresh_db):
    with db.owner_engine(fresh_db).connect() as conn:
        current = ",".join(sorted(conn.execute(text("SELECT version_num FROM alembic_version")).scalars()))
        assert current == migrate.head_revisions()
        assert conn.execute(text("SELECT count(*) FROM person")).scalar() == 0
        extensions = set(conn.execute(text("SELECT extname FROM pg_extension")).scalars())
    assert set(cluster.EXTENSIONS) <= extensions


def _postmaster_uid(settings) -> int:
    pid = int((settings.pg_data_dir / "postmaster.pid").read_text().split()[0])
    return os.stat(f"/proc/{pid}").st_uid


def test_cluster_lifecycle_keeps_data(tmp_path_factory):
    """up twice (second a no-op), a row written, down, up again: the row is still there."""
    var_dir = ROOT / "var" / f"test-lifecycle-{os.getpid()}"
    settings = settings_for_tests(var_dir=var_dir, pg_port=54349, pg_database="gridgov")
    try:
        first = cluster.up(settings)
        assert any("初始化" in line for line in first)
        second = cluster.up(settings)
        assert not any("初始化" in line or "创建" in line for line in second), second
        assert cluster.is_running(settings)
        if os.geteuid() == 0:
            # initdb refuses root: the cluster must run as the unprivileged system user.
            assert _postmaster_uid(settings) != 0
        engine = create_engine(db.owner_url(settings))
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE kept (v text)"))
            conn.execute(text("INSERT INTO kept VALUES ('留存')"))
        engine.dispose()
        assert "停止" in cluster.down(settings)
        assert not cluster.is_running(settings)
        assert "未在运行" in cluster.down(settings)
        cluster.up(settings)
        engine = create_engine(db.owner_url(settings))
        with engine.connect() as conn:
            assert conn.execute(text("SELECT v FROM kept")).scalar() == "留存"
        engine.dispose()
    finally:
        if cluster.is_running(settings):
            cluster.down(settings)
        shutil.rmtree(var_dir, ignore_errors=True)


def test_migrations_down_and_up(fresh_db):
    head = migrate.head_revisions()
    assert "base" in migrate.downgrade(fresh_db, "base")
    with db.owner_engine(fresh_db).connect() as conn:
        tables = set(conn.execute(text(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars())
    assert "person" not in tables and "territory_unit" not in tables
    assert head in migrate.upgrade(fresh_db)
    assert "已是最新" in migrate.upgrade(fresh_db)
    with db.owner_engine(fresh_db).connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM code_item WHERE table_key = 'sex'")).scalar() >= 3


def test_moving_a_building_to_another_grid_moves_its_houses_and_people(fresh_db):
    """The org_path triggers: a building's grid_id changes; its houses, residences and residents follow."""
    with db.owner_engine(fresh_db).begin() as conn:
        ids = {}
        for code, level, parent in [("320106", "district", None), ("320106001", "street", "320106"),
                                    ("320106001001", "community", "320106001"),
                                    ("320106001001001", "grid", "320106001001"),
                                    ("320106001001002", "grid", "320106001001")]:
            ids[code] = conn.execute(text(
                "INSERT INTO territory_unit (level, code, name, parent_id) VALUES (:l, :c, :c, :p)"
                " RETURNING id"),
                {"l": level, "c": code, "p": ids.get(parent)}).scalar_one()
        building = conn.execute(text(
            "INSERT INTO building (grid_id, name, floors, footprint) VALUES (:g, '1幢', 6,"
            " ST_MakeEnvelope(118.77, 32.06, 118.7705, 32.0605, 4490)) RETURNING id"),
            {"g": ids["320106001001001"]}).scalar_one()
        house = conn.execute(text(
            "INSERT INTO house (building_id, floor, room_no) VALUES (:b, 1, '101') RETURNING id"),
            {"b": building}).scalar_one()
        person = conn.execute(text(
            "INSERT INTO person (name, sex, birth_date, org_path, district_code) VALUES"
            " ('张三', '1', '1990-01-01', '320106', '320106') RETURNING id")).scalar_one()
        conn.execute(text("INSERT INTO residence (person_id, house_id, relation, is_head)"
                          " VALUES (:p, :h, '02', true)"), {"p": person, "h": house})

        def path_of(table: str, key: int, column: str = "id") -> str:
            return conn.execute(text(f"SELECT org_path::text FROM {table} WHERE {column} = :k"),
                                {"k": key}).scalar_one()

        assert path_of("person", person) == "320106.320106001.320106001001.320106001001001"

        conn.execute(text("UPDATE building SET grid_id = :g WHERE id = :b"),
                     {"g": ids["320106001001002"], "b": building})
        moved = "320106.320106001.320106001001.320106001001002"
        assert path_of("house", house) == path_of("residence", house, "house_id") == moved
        assert path_of("person", person) == moved
