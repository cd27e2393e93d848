"""内部硬盘共享 through ``/api/v1/files``: territory and department sharing, the size and type limits, soft
deletes on record, Chinese file names, and the bytes on disk named by their digest."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from gis import db
from tests.notices_helpers import build_world


@pytest.fixture(scope="module")
def world(fresh_db, tmp_path_factory):
    settings = fresh_db.model_copy(update={"files_dir": tmp_path_factory.mktemp("files"),
                                           "files_max_bytes": 64 * 1024})
    return build_world(settings)


def call(world, method: str, username: str, path: str = "", expect: int = 200, **kwargs):
    response = world.client.request(method, f"/api/v1/files{path}", headers=world.headers[username], **kwargs)
    assert response.status_code == expect, response.text
    return response


def upload(world, username: str, name: str, data: bytes = b"hello", expect: int = 201, **form) -> dict:
    response = call(world, "POST", username, expect=expect, files=[("files", (name, data, "text/plain"))],
                    data={k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in form.items()})
    return response.json()[0] if expect == 201 else response.json()


def listing(world, username: str, folder_id: int | None = None) -> dict:
    params = {"folder_id": folder_id} if folder_id else {}
    return call(world, "GET", username, params=params).json()


def test_files_obey_the_territory(world):
    shared = upload(world, "sq1", "山西路社区走访安排.txt", "走访安排".encode())
    assert shared["shared_path"] == world.units["c1"].path and shared["subtree"] is True
    # Inside: the community, its grids (subtree), the street and the district above.
    for insider in ("sq1", "wg1", "wg2", "jd1", "zhihui"):
        assert shared["id"] in [f["id"] for f in listing(world, insider)["files"]], insider
        assert call(world, "GET", insider, f"/{shared['id']}").content == "走访安排".encode()
    # Another community of the same street, another street: nothing listed, 404 on download.
    for outsider in ("sq2", "wg3", "jd2", "sq3", "wg4"):
        assert shared["id"] not in [f["id"] for f in listing(world, outsider)["files"]], outsider
        detail = call(world, "GET", outsider, f"/{shared['id']}", expect=404).json()["detail"]
        assert "不存在或未共享给您" in detail


def test_without_the_subtree_the_grids_do_not_see_it(world):
    only_unit = upload(world, "sq1", "社区内部.txt", unit_id=world.units["c1"].id, subtree=False)
    assert only_unit["id"] in [f["id"] for f in listing(world, "sq1")["files"]]
    assert only_unit["id"] not in [f["id"] for f in listing(world, "wg1")["files"]]
    call(world, "GET", "wg1", f"/{only_unit['id']}", expect=404)


def test_shared_with_a_department_and_outside_the_scope(world):
    for_urban = upload(world, "jd2", "占道经营点位.txt", department="urban", subtree=False)
    assert for_urban["id"] in [f["id"] for f in listing(world, "cg1")["files"]]
    assert for_urban["id"] not in [f["id"] for f in listing(world, "jd1")["files"]]
    refused = upload(world, "sq1", "越界.txt", unit_id=world.units["c3"].id, expect=403)
    assert "不在您的辖区内" in refused["detail"]
    upload(world, "fx", "分析员.txt", expect=403)   # analysts read figures, they do not share files


def test_folders(world):
    folder = call(world, "POST", "jd1", "/folders", expect=201,
                  json={"name": "2026年网格化工作", "subtree": True}).json()
    assert folder["shared_path"] == world.units["s1"].path
    assert "已有名为" in call(world, "POST", "jd1", "/folders", expect=409,
                            json={"name": "2026年网格化工作"}).json()["detail"]
    inner = upload(world, "jd1", "考核细则.txt", folder_id=folder["id"])
    assert inner["folder_id"] == folder["id"] and inner["shared_path"] == world.units["s1"].path
    seen = listing(world, "wg3", folder["id"])
    assert [f["file_name"] for f in seen["files"]] == ["考核细则.txt"]
    assert [c["name"] for c in seen["path"]] == ["2026年网格化工作"]
    assert folder["id"] in [f["id"] for f in listing(world, "wg1")["folders"]]
    call(world, "GET", "wg4", params={"folder_id": folder["id"]}, expect=404)
    call(world, "DELETE", "jd1", f"/folders/{folder['id']}", expect=409)


def test_size_and_type_limits(world):
    too_big = upload(world, "sq1", "大文件.txt", b"x" * (world.settings.files_max_bytes + 1), expect=413)
    assert "超过大小限制" in too_big["detail"]
    refused = upload(world, "sq1", "病毒.exe", b"MZ", expect=415)
    assert "不允许上传" in refused["detail"]
    assert "不允许上传" in upload(world, "sq1", "没有扩展名", b"x", expect=415)["detail"]
    exactly = upload(world, "sq1", "刚好.txt", b"y" * world.settings.files_max_bytes)
    assert exactly["size"] == world.settings.files_max_bytes


def test_chinese_file_names_round_trip_and_bytes_are_stored_by_digest(world):
    name = "关于做好2026年元旦春节期间矛盾纠纷排查的通知（终稿）.txt"
    data = "内容".encode() * 10
    stored = upload(world, "sq1", f"C:\\fakepath\\{name}", data)
    assert stored["file_name"] == name
    response = call(world, "GET", "wg1", f"/{stored['id']}")
    assert response.content == data
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment;") and "filename*=UTF-8''" in disposition
    from urllib.parse import unquote
    assert unquote(disposition.split("filename*=UTF-8''")[1]) == name
    digest = hashlib.sha256(data).hexdigest()
    on_disk = world.settings.files_dir / digest[:2] / digest
    assert on_disk.read_bytes() == data
    assert not any(p.name == name for p in world.settings.files_dir.rglob("*"))


def test_soft_delete_is_logged(world):
    mine = upload(world, "sq1", "现场照片说明.txt")
    call(world, "DELETE", "wg1", f"/{mine['id']}", expect=403)       # sees it, but no file:manage
    call(world, "DELETE", "sq1", f"/{mine['id']}", expect=204, params={"reason": "上传错了"})
    assert mine["id"] not in [f["id"] for f in listing(world, "jd1")["files"]]
    call(world, "GET", "jd1", f"/{mine['id']}", expect=404)
    call(world, "DELETE", "sq1", f"/{mine['id']}", expect=404)
    with db.owner_engine(world.settings).connect() as conn:
        row = conn.execute(text("SELECT deleted_at, deleted_by FROM shared_file WHERE id = :id"),
                           {"id": mine["id"]}).one()
        assert row.deleted_at is not None and row.deleted_by == world.ids["sq1"]
        log = conn.execute(text(
            "SELECT username, reason FROM access_log WHERE action = 'delete_file' AND target_id = :id"),
            {"id": str(mine["id"])}).one()
        assert tuple(log) == ("sq1", "上传错了")
        history = conn.execute(text(
            "SELECT user_id, after ? 'deleted_at' FROM change_log WHERE table_name = 'shared_file'"
            " AND row_id = :id AND op = 'update'"), {"id": str(mine["id"])}).one()
        assert tuple(history) == (world.ids["sq1"], True)
    # A manager above may delete others' files in their territory.
    other = upload(world, "wg2", "待清理.txt")
    call(world, "DELETE", "jd1", f"/{other['id']}", expect=204)


def test_the_database_fails_closed(world):
    with db.app_engine(world.settings).connect() as conn:
        for table in ("shared_file", "shared_folder"):
            with pytest.raises(DBAPIError) as raised, conn.begin():
                conn.execute(text(f"SELECT count(*) FROM {table}")).all()
            assert raised.value.orig.sqlstate == "42501"


def test_the_sweep_removes_only_old_bytes_no_row_names(world):
    """Bytes are written before their row; an upload whose transaction rolled back leaves bytes nobody
    names. ``gridgov db sweep-files`` removes those (and interrupted temporary files) once past the grace
    period, and never a file a row names, in scope of anyone or soft-deleted."""
    import os
    import time

    from typer.testing import CliRunner

    from gis.cli import app as cli
    from layers import file_store

    upload(world, "sq1", "留存.txt", b"kept by its row")
    kept = file_store.path_for(world.settings, hashlib.sha256(b"kept by its row").hexdigest())
    old_orphan = file_store.path_for(world.settings, file_store.save(world.settings, b"rolled back long ago"))
    young_orphan = file_store.path_for(world.settings, file_store.save(world.settings, b"upload in flight"))
    leftover = old_orphan.parent / ".upload-interrupted"
    leftover.write_bytes(b"half a file")
    two_days_ago = time.time() - 2 * 86_400
    for path in (kept, old_orphan, leftover):
        os.utime(path, (two_days_ago, two_days_ago))

    settings = world.settings
    env = {"GRIDGOV_VAR_DIR": str(settings.var_dir), "GRIDGOV_PG_PORT": str(settings.pg_port),
           "GRIDGOV_PG_DATABASE": settings.pg_database, "GRIDGOV_FILES_DIR": str(settings.files_dir)}
    listed = CliRunner().invoke(cli, ["db", "sweep-files", "--dry-run"], env=env)
    assert listed.exit_code == 0 and "将删除 2 个" in listed.output, listed.output
    assert old_orphan.exists() and leftover.exists()  # a dry run lists only

    swept = CliRunner().invoke(cli, ["db", "sweep-files"], env=env)
    assert swept.exit_code == 0 and "已删除 2 个" in swept.output, swept.output
    assert not old_orphan.exists() and not leftover.exists()
    assert kept.read_bytes() == b"kept by its row" and young_orphan.exists()
