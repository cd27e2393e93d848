"""通知公告 through ``/api/v1/notices`` and straight at the database: targets resolved to exactly the right
people at send time, read receipts and counts, red-header rules, attachments, and who may see what."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from gis import db
from tests.notices_helpers import PDF, USERS, build_world, send


@pytest.fixture(scope="module")
def world(fresh_db, tmp_path_factory):
    settings = fresh_db.model_copy(update={"files_dir": tmp_path_factory.mktemp("files")})
    return build_world(settings)


def get(world, username: str, path: str, expect: int = 200):
    response = world.client.get(f"/api/v1/notices{path}", headers=world.headers[username])
    assert response.status_code == expect, response.text
    return response.json() if response.headers.get("content-type", "").startswith("application/json") \
        else response


def recipients(world, notice_id: int) -> set[str]:
    with db.owner_engine(world.settings).connect() as conn:
        ids = conn.execute(text("SELECT user_id FROM notice_recipient WHERE notice_id = :n"),
                           {"n": notice_id}).scalars()
        return {world.names[i] for i in ids}


def counts(world, notice_id: int) -> tuple[int, int]:
    with db.owner_engine(world.settings).connect() as conn:
        return tuple(conn.execute(text("SELECT read_count, unread_count FROM notice WHERE id = :n"),
                                  {"n": notice_id}).one())


def test_a_community_with_its_subtree_reaches_exactly_its_people(world):
    notice = send(world, "jd1", {"units": [{"id": world.units["c1"].id, "subtree": True}]})
    assert recipients(world, notice["id"]) == {"sq1", "wg1", "wg2"}
    assert (notice["read_count"], notice["unread_count"]) == (0, 3)
    assert "山西路社区（含下级）" in notice["targets_text"]


def test_without_the_subtree_only_the_unit_itself(world):
    notice = send(world, "jd1", {"units": [{"id": world.units["c1"].id, "subtree": False}]})
    assert recipients(world, notice["id"]) == {"sq1"}


def test_a_mix_of_targets_is_resolved_once_each(world):
    targets = {"units": [{"id": world.units["c2"].id}], "roles": ["grid_worker"], "departments": ["urban"],
               "users": [world.ids["sq1"], world.ids["wg1"]]}
    notice = send(world, "jd1", targets, notice_type="work", title="本周工作安排")
    # Roles inside the sender's street only (wg4 is in the other street); the department is district-wide;
    # wg1 named twice (by role and by name) receives it once; the sender never receives their own notice.
    assert recipients(world, notice["id"]) == {"sq2", "wg3", "wg1", "wg2", "cg1", "sq1"}
    assert counts(world, notice["id"]) == (0, 6)


def test_reading_it_moves_the_counts_and_the_receipts(world):
    notice = send(world, "sq1", {"units": [{"id": world.units["c1"].id}]}, notice_type="matter",
                  title="关于入户走访的事项通知")
    assert recipients(world, notice["id"]) == {"wg1", "wg2"}
    box = get(world, "wg1", "/inbox")
    assert box["items"][0]["id"] == notice["id"] and box["items"][0]["read_at"] is None
    assert box["items"][0]["notice_type_zh"] == "事项通知" and box["items"][0]["sender"] == "sq1"
    before = get(world, "wg1", "/unread-count")
    assert before["latest_id"] == notice["id"] and before["unread"] == box["unread"] >= 1

    opened = get(world, "wg1", f"/{notice['id']}")
    assert opened["read_at"] is not None and opened["body"]
    assert (opened["read_count"], opened["unread_count"]) == (1, 1) == counts(world, notice["id"])
    assert get(world, "wg1", "/unread-count")["unread"] == before["unread"] - 1
    box = get(world, "wg1", "/inbox")
    assert [i["id"] for i in box["items"]][-1] == notice["id"] or box["items"][0]["read_at"] is None
    first_read = opened["read_at"]
    assert get(world, "wg1", f"/{notice['id']}")["read_at"] == first_read   # opening again changes nothing
    assert counts(world, notice["id"]) == (1, 1)

    receipts = get(world, "sq1", f"/{notice['id']}/receipts")
    assert [r["name"] for r in receipts["read"]] == ["wg1"]
    assert receipts["read"][0]["unit"] == "山西路第一网格"
    assert [r["name"] for r in receipts["unread"]] == ["wg2"]
    sent = get(world, "sq1", "/sent")
    assert (sent[0]["id"], sent[0]["read_count"], sent[0]["unread_count"]) == (notice["id"], 1, 1)
    # The street above the sender supervises; a recipient and another street do not.
    assert len(get(world, "jd1", f"/{notice['id']}/receipts")["unread"]) == 1
    get(world, "wg2", f"/{notice['id']}/receipts", expect=403)
    get(world, "jd2", f"/{notice['id']}/receipts", expect=404)


def test_unread_first_then_newest(world):
    older = send(world, "zhihui", {"users": [world.ids["wg3"]]}, title="旧通知")
    newer = send(world, "zhihui", {"users": [world.ids["wg3"]]}, title="新通知")
    read = send(world, "zhihui", {"users": [world.ids["wg3"]]}, title="已读通知")
    get(world, "wg3", f"/{read['id']}")
    ids = [i["id"] for i in get(world, "wg3", "/inbox")["items"]]
    assert ids.index(newer["id"]) < ids.index(older["id"]) < ids.index(read["id"])


def test_a_red_header_document_needs_the_permission(world):
    targets = {"units": [{"id": world.units["c1"].id}]}
    files = [("attachments", ("鼓综治〔2026〕3号.pdf", PDF, "application/pdf"))]
    refused = send(world, "sq1", targets, notice_type="red_header", doc_no="鼓综治〔2026〕3号",
                   issuing_office="鼓楼区综治中心", files=files, expect=403)
    assert "红头文件" in refused["detail"]
    refused = send(world, "wg1", targets, expect=403)     # grid workers send nothing
    assert "发送通知的权限" in refused["detail"]


def test_a_red_header_document_needs_its_number_office_and_pdf(world):
    targets = {"units": [{"id": world.units["s1"].id}]}
    pdf = [("attachments", ("文件.pdf", PDF, "application/pdf"))]
    missing = send(world, "jd1", targets, notice_type="red_header", issuing_office="宁海路街道办事处",
                   files=pdf, expect=422)
    assert "文号" in missing["detail"]
    missing = send(world, "jd1", targets, notice_type="red_header", doc_no="宁街办〔2026〕8号", files=pdf,
                   expect=422)
    assert "发文机关" in missing["detail"]
    no_pdf = send(world, "jd1", targets, notice_type="red_header", doc_no="宁街办〔2026〕8号",
                  issuing_office="宁海路街道办事处",
                  files=[("attachments", ("文件.docx", b"PK\x03\x04", "application/octet-stream"))],
                  expect=422)
    assert "PDF" in no_pdf["detail"]

    notice = send(world, "jd1", targets, notice_type="red_header", title="关于印发网格化管理考核办法的通知",
                  doc_no="宁街办〔2026〕8号", issuing_office="宁海路街道办事处", files=pdf)
    assert (notice["doc_no"], notice["notice_type_zh"]) == ("宁街办〔2026〕8号", "红头文件")
    [attachment] = notice["attachments"]
    response = get(world, "wg2", attachment["url"].removeprefix("/api/v1/notices"))
    assert response.content == PDF
    assert "filename*=UTF-8''%E6%96%87%E4%BB%B6.pdf" in response.headers["content-disposition"]


def test_outsiders_cannot_read_it(world):
    notice = send(world, "sq1", {"users": [world.ids["wg1"]]}, title="仅发给 wg1")
    get(world, "wg1", f"/{notice['id']}")
    # (cg1, a department officer, has the district as scope: like the commander, it is inside.)
    for outsider in ("wg2", "sq2", "sq3", "jd2", "wg4"):
        get(world, outsider, f"/{notice['id']}", expect=404)
        assert notice["id"] not in [i["id"] for i in get(world, outsider, "/inbox")["items"]]
    # The sender's street and the district above see it (their territory), without becoming recipients.
    assert get(world, "jd1", f"/{notice['id']}")["read_at"] is None
    assert counts(world, notice["id"]) == (1, 0)


def test_a_recipient_elsewhere_sees_it_regardless_of_its_territory(world):
    # A street's notice to the district's urban-management department: the officer's scope (the district)
    # does not contain the street's notice by territory, only by address.
    notice = send(world, "jd2", {"departments": ["urban"]}, title="请城管局协助整治占道经营")
    assert recipients(world, notice["id"]) == {"cg1"}
    assert get(world, "cg1", f"/{notice['id']}")["title"] == "请城管局协助整治占道经营"


def test_targets_outside_the_scope_and_bad_targets(world):
    refused = send(world, "sq1", {"units": [{"id": world.units["c3"].id}]}, expect=403)
    assert "不在您的辖区" in refused["detail"]
    assert "发送对象" in send(world, "jd1", {}, expect=422)["detail"]
    assert "未知角色" in send(world, "jd1", {"roles": ["boss"]}, expect=422)["detail"]
    assert "未知部门" in send(world, "jd1", {"departments": ["nope"]}, expect=422)["detail"]
    assert "JSON" in world.client.post("/api/v1/notices", data={
        "title": "x", "notice_type": "meeting", "body": "x", "targets": "{not json"},
        headers=world.headers["jd1"]).json()["detail"]
    assert "通知类型" in send(world, "jd1", {"users": [world.ids["wg1"]]}, notice_type="gossip",
                          expect=422)["detail"]
    # Nobody there: refused, and no notice is left behind.
    before = len(get(world, "jd1", "/sent"))
    send(world, "jd1", {"roles": ["auditor"]}, expect=422)
    assert len(get(world, "jd1", "/sent")) == before


def test_attachments_obey_the_limits(world):
    big = b"%PDF-" + b"0" * world.settings.files_max_bytes
    response = world.client.post("/api/v1/notices", data={
        "title": "附件过大", "notice_type": "matter", "body": "x",
        "targets": f'{{"users": [{world.ids["wg1"]}]}}'},
        files=[("attachments", ("大文件.pdf", big, "application/pdf"))], headers=world.headers["jd1"])
    assert response.status_code == 413 and "超过大小限制" in response.json()["detail"]
    response = world.client.post("/api/v1/notices", data={
        "title": "附件类型", "notice_type": "matter", "body": "x",
        "targets": f'{{"users": [{world.ids["wg1"]}]}}'},
        files=[("attachments", ("脚本.exe", b"MZ", "application/octet-stream"))],
        headers=world.headers["jd1"])
    assert response.status_code == 415 and "不允许上传" in response.json()["detail"]


def test_the_database_fails_closed_and_keeps_recipients_honest(world):
    settings = world.settings
    with db.app_engine(settings).connect() as conn:
        for table in ("notice", "notice_recipient", "notice_attachment"):
            with pytest.raises(DBAPIError) as raised, conn.begin():
                conn.execute(text(f"SELECT count(*) FROM {table}")).all()
            assert raised.value.orig.sqlstate == "42501"
    notice = send(world, "sq1", {"users": [world.ids["wg1"]]})
    with db.app_engine(settings).connect() as conn:
        with conn.begin():
            conn.execute(text("SELECT set_config('app.scope', :s, true),"
                              " set_config('app.user_id', :u, true)"),
                         {"s": world.units["g2"].path, "u": str(world.ids["wg2"])})
            # Not the sender: may not add recipients to someone else's notice ...
            with pytest.raises(DBAPIError) as raised, conn.begin_nested():
                conn.execute(text(
                    "INSERT INTO notice_recipient (notice_id, user_id, user_name, org_path, district_code)"
                    " VALUES (:n, :u, 'x', CAST(:p AS ltree), '320106')"),
                    {"n": notice["id"], "u": world.ids["wg2"], "p": world.units["g2"].path})
            assert raised.value.orig.sqlstate == "42501"
            # ... nor mark someone else's receipt read.
            changed = conn.execute(text("UPDATE notice_recipient SET read_at = now() WHERE notice_id = :n"),
                                   {"n": notice["id"]}).rowcount
            assert changed == 0
    assert counts(world, notice["id"]) == (0, 1)


def test_every_role_of_the_catalogue_can_read_its_inbox(world):
    for username in USERS:
        assert "unread" in get(world, username, "/inbox")


def test_the_notices_page_sends_opens_and_shows_receipts(world):
    from dashboards.notices import NoticesPage
    from gis.security import sessions

    def page_for(username: str) -> NoticesPage:
        token = world.headers[username]["Authorization"].split()[1]
        page = NoticesPage(world.settings, sessions.resolve(world.settings, token))
        page.view()
        return page

    sender = page_for("jd1")
    assert "红头文件" in sender.kind.options          # a street may publish red-header documents
    assert "红头文件" not in page_for("sq1").kind.options
    sender.title.value, sender.kind.value = "页面发送的工作安排", "work"
    sender.body.value = "请于周五前报送。"
    sender.units.value, sender.subtree.value = [world.units["c2"].id], True
    sender.send()
    assert "接收人 2 人" in sender.result.object, sender.result.object
    notice_id = get(world, "jd1", "/sent")[0]["id"]
    assert recipients(world, notice_id) == {"sq2", "wg3"}

    reader = page_for("wg3")
    assert "页面发送的工作安排" in reader.inbox_pane.object
    reader.open(notice_id)
    assert "请于周五前报送。" in reader.detail_pane.object
    assert counts(world, notice_id) == (1, 1)
    sender.show_receipts(notice_id)
    assert "已读 1 人" in sender.receipts_pane.object and "未读 1 人" in sender.receipts_pane.object
    page_for("wg4").open(notice_id)     # not addressed to them, not their territory
    assert counts(world, notice_id) == (1, 1)


def test_demo_notices(world):
    """The demo loader on this module's district, with the demo accounts it looks for: a dozen of each
    type, partial readership with exact counts, red-header PDFs, shared files; a rerun replaces them."""
    from etl.demo_notices import PER_TYPE, load_demo_notices
    from gis.security import users
    from tests.access_helpers import PASSWORD

    with db.owner_engine(world.settings).begin() as conn:
        for username, role, unit in (("demo_commander", "district_commander", "district"),
                                     ("demo_street", "street_staff", "s1"),
                                     ("demo_community", "community_staff", "c1"),
                                     ("demo_grid", "grid_worker", "g1")):
            users.upsert_user(conn, username, PASSWORD, role, world.units[unit].path, username)
    report = load_demo_notices(world.settings, seed=7)
    again = load_demo_notices(world.settings, seed=7)
    assert (again.notices, again.recipients, again.read) == (report.notices, report.recipients, report.read)
    assert report.notices == 4 * PER_TYPE and 0 < report.read < report.recipients
    with db.owner_engine(world.settings).connect() as conn:
        by_type = dict(conn.execute(text(
            "SELECT n.notice_type, count(*) FROM notice n JOIN users u ON u.id = n.sender_id"
            " WHERE u.username LIKE 'demo_%' GROUP BY 1")).all())
        assert by_type == {"meeting": PER_TYPE, "matter": PER_TYPE, "work": PER_TYPE, "red_header": PER_TYPE}
        wrong = conn.execute(text(
            "SELECT count(*) FROM notice n, LATERAL (SELECT count(read_at) AS read, count(*) AS n"
            "                                  FROM notice_recipient r WHERE r.notice_id = n.id) c"
            " WHERE n.sender_id IS NOT NULL"
            "   AND (n.read_count, n.unread_count) IS DISTINCT FROM (c.read, c.n - c.read)")).scalar_one()
        assert wrong == 0
        pdfs = conn.execute(text(
            "SELECT a.sha256 FROM notice_attachment a JOIN notice n ON n.id = a.notice_id"
            " JOIN users u ON u.id = n.sender_id AND u.username LIKE 'demo_%'"
            " WHERE n.notice_type = 'red_header' AND a.content_type = 'application/pdf'")).scalars().all()
        assert len(pdfs) == PER_TYPE
        folders = conn.execute(text(
            "SELECT count(*) FROM shared_folder WHERE deleted_at IS NULL")).scalar_one()
    assert (world.settings.files_dir / pdfs[0][:2] / pdfs[0]).read_bytes().startswith(b"%PDF-")
    assert folders >= 4 and report.files >= 9
    box = get(world, "wg1", "/inbox")
    assert box["unread"] >= 1 and any(i["read_at"] for i in box["items"])
