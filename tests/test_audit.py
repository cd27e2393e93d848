"""The access log: append-only for the application, hash-chained so that an edit, a deletion or a cut-off
tail made even by a superuser is found by ``gridgov audit verify``; and the database's own masking."""

from __future__ import annotations

import threading

import pytest
from hypothesis import example, given, settings as hypothesis_settings, strategies as st
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from gis import cluster, db
from gis.cli import app as cli
from gis.masking import mask_id_number, mask_phone
from gis.security import audit
from gis.security.scope import scoped_connection
from gis.security.sessions import CurrentUser
from tests.access_helpers import add_district, add_user, wipe
from tests.conftest import create_database, drop_database


@pytest.fixture(scope="module")
def user(fresh_db):
    wipe(fresh_db)
    with db.owner_engine(fresh_db).begin() as conn:
        district = add_district(conn)
        user_id = add_user(conn, "auditee", "community_staff", district)
    return CurrentUser(id=user_id, username="auditee", name="被审计者", role="community_staff",
                       scope_path=district.path)


@pytest.fixture
def own_db(cluster_settings):
    """A database of this test's own, for tampering with."""
    settings = create_database(cluster_settings)
    yield settings
    drop_database(settings)


def write_rows(settings, user, n: int, client_addr: str = "10.0.0.1") -> None:
    for i in range(n):
        with scoped_connection(settings, user, client_addr) as conn:
            audit.record(conn, "read_person", target_table="person", target_id=i,
                         detail={"i": i, "名": "张三"})


def superuser_execute(settings, sql: str) -> None:
    """What an intruder with superuser rights would do: switch the triggers off and change the table."""
    url = db.owner_url(settings).set(username=cluster.superuser(settings))
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("SET session_replication_role = replica"))
        conn.execute(text(sql))
    engine.dispose()


def test_rows_carry_who_where_and_a_chain(fresh_db, user):
    write_rows(fresh_db, user, 3)
    with db.owner_engine(fresh_db).connect() as conn:
        rows = conn.execute(text(
            "SELECT id, user_id, username, client_addr, detail, prev_hash, hash FROM access_log ORDER BY id"
        )).all()
        report = audit.verify(conn)
    assert [row.id for row in rows] == [1, 2, 3]
    who = {(row.user_id, row.username, row.client_addr) for row in rows}
    assert who == {(user.id, "auditee", "10.0.0.1")}
    assert rows[0].prev_hash == audit.GENESIS
    assert all(later.prev_hash == earlier.hash for earlier, later in zip(rows, rows[1:], strict=False))
    assert report.ok and report.rows == 3 and report.head_hash == rows[-1].hash


@pytest.mark.parametrize("statement", [
    "UPDATE access_log SET reason = 'x'",
    "DELETE FROM access_log",
    "TRUNCATE access_log",
    "UPDATE app.access_log_head SET seq = 0",
    "INSERT INTO change_log (table_name, op) VALUES ('person', 'insert')",
    "DELETE FROM change_log",
])
def test_the_app_role_can_only_append(fresh_db, user, statement):
    with pytest.raises(DBAPIError) as refused:
        with scoped_connection(fresh_db, user) as conn:
            conn.execute(text(statement))
    assert refused.value.orig.sqlstate == "42501"


def test_even_the_owner_cannot_rewrite_the_log(fresh_db, user):
    write_rows(fresh_db, user, 1)
    for statement in ("UPDATE access_log SET reason = 'x'", "DELETE FROM access_log", "TRUNCATE access_log"):
        with pytest.raises(DBAPIError, match="只能追加"):
            with db.owner_engine(fresh_db).begin() as conn:
                conn.execute(text(statement))


def test_concurrent_writers_keep_one_chain(fresh_db, user):
    threads = [threading.Thread(target=write_rows, args=(fresh_db, user, 10)) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with db.owner_engine(fresh_db).connect() as conn:
        assert audit.verify(conn).ok


@pytest.mark.parametrize("tampering, first_bad", [
    ("UPDATE access_log SET reason = '已改' WHERE id = 3", 3),
    ("UPDATE access_log SET detail = '{\"i\": 9}' WHERE id = 2", 2),
    ("DELETE FROM access_log WHERE id = 4", 4),
    # The row's own hash recomputed too: the next row's link gives it away.
    ("UPDATE access_log SET reason = '已改', hash = app.access_log_digest(prev_hash, ROW(id, at, user_id,"
     " username, action, target_table, target_id, '已改'::text, outcome, client_addr, detail, prev_hash,"
     " hash)::access_log) WHERE id = 2", 3),
    ("DELETE FROM access_log WHERE id >= 5", 5),  # the tail cut off
])
def test_verify_finds_a_superuser_edit(own_db, tampering, first_bad):
    settings = own_db
    with db.owner_engine(settings).begin() as conn:
        district = add_district(conn)
        user_id = add_user(conn, "victim", "community_staff", district)
    user = CurrentUser(id=user_id, username="victim", name="x", role="community_staff",
                       scope_path=district.path)
    write_rows(settings, user, 6)
    superuser_execute(settings, tampering)
    with db.owner_engine(settings).connect() as conn:
        report = audit.verify(conn)
    assert not report.ok and report.first_bad_id == first_bad, report

    # The command line says the same and fails.
    env = {"GRIDGOV_VAR_DIR": str(settings.var_dir), "GRIDGOV_PG_PORT": str(settings.pg_port),
           "GRIDGOV_PG_DATABASE": settings.pg_database}
    result = CliRunner().invoke(cli, ["audit", "verify"], env=env)
    assert result.exit_code == 1 and f"第 {first_bad} 行" in result.output, result.output


def test_cli_verify_passes_on_an_intact_log(fresh_db, user):
    env = {"GRIDGOV_VAR_DIR": str(fresh_db.var_dir), "GRIDGOV_PG_PORT": str(fresh_db.pg_port),
           "GRIDGOV_PG_DATABASE": fresh_db.pg_database}
    result = CliRunner().invoke(cli, ["audit", "verify"], env=env)
    assert result.exit_code == 0 and "完整" in result.output, result.output


def test_restored_rows_keep_their_hashes_but_the_app_cannot_forge_one(own_db):
    """pg_restore (as the owner) brings rows with their hashes, which must be kept; the app role's rows
    are always hashed by the database, whatever it sends."""
    settings = own_db
    with db.owner_engine(settings).begin() as conn:
        district = add_district(conn)
        user_id = add_user(conn, "kept", "community_staff", district)
    user = CurrentUser(id=user_id, username="kept", name="x", role="community_staff",
                       scope_path=district.path)
    insert = text("INSERT INTO access_log (id, at, action, outcome, prev_hash, hash)"
                  " VALUES (77, now(), 'restored', 'ok', :prev, :hash)")
    with db.owner_engine(settings).begin() as conn:
        conn.execute(insert, {"prev": "p" * 64, "hash": "h" * 64})
        kept = conn.execute(text("SELECT id, hash FROM access_log")).one()
        conn.execute(text("ALTER TABLE access_log DISABLE TRIGGER access_log_append_only"))
        conn.execute(text("DELETE FROM access_log"))
    assert tuple(kept) == (77, "h" * 64)
    with scoped_connection(settings, user) as conn:
        conn.execute(insert, {"prev": "p" * 64, "hash": "h" * 64})
        forged = conn.execute(text("SELECT id, prev_hash, hash FROM access_log")).one()
    assert forged.id == 1 and forged.prev_hash == audit.GENESIS and forged.hash != "h" * 64
    with db.owner_engine(settings).connect() as conn:
        assert audit.verify(conn).ok


# Numbers in the forms they are stored in (gis.validation canonicalises what is typed).
_ID_LIKE = st.from_regex(r"\A[0-9]{6}(19|20)[0-9]{9}[0-9X]\Z") | st.from_regex(r"\A[0-9]{15}\Z") \
    | st.from_regex(r"\A[A-Z]{1,2}[0-9]{5,9}\Z")
_PHONE_LIKE = st.from_regex(r"\A(\+86 )?1[3-9][0-9]{9}\Z") \
    | st.from_regex(r"\A(0[0-9]{2,3}-)?[1-9][0-9]{4,7}(-[0-9]{1,4})?\Z") \
    | st.from_regex(r"\A[48]00-[0-9]{3}-[0-9]{4}\Z")


@hypothesis_settings(max_examples=60, deadline=None)
@given(id_number=_ID_LIKE, phone=_PHONE_LIKE)
@example(id_number="110101199003071234", phone="1000000-0000")  # a landline with extension, not a mobile
def test_database_masks_exactly_like_python(fresh_db, id_number, phone):
    with db.owner_engine(fresh_db).connect() as conn:
        again = conn.execute(text("SELECT app.mask_id_number(:i), app.mask_phone(:p)"),
                             {"i": mask_id_number(id_number), "p": mask_phone(phone)}).one()
        masked = conn.execute(text(
            "SELECT app.mask_id_number(:i), app.mask_phone(:p),"
            " app.mask_pii(jsonb_build_object('owner_id_number', :i, 'head_mobile', :p, 'name', '张三'))"
        ), {"i": id_number, "p": phone}).one()
    assert masked[0] == mask_id_number(id_number)
    assert masked[1] == mask_phone(phone)
    assert masked[2] == {"owner_id_number": masked[0], "head_mobile": masked[1], "name": "张三"}
    assert tuple(again) == (masked[0], masked[1])  # masking a masked value changes nothing
