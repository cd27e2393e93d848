"""The shared files page in a real Chromium: a street officer uploads a file with a Chinese name into a
folder shared with a community; it is listed; its download link returns the same bytes (fetched with the
page's cookies); a user of another street sees neither the folder nor the file (and the link answers 404);
deleting it, after the confirmation, soft-deletes it (``deleted_at`` set). A file type outside the
allow-list and a file over the size limit are refused with the service's Chinese messages; a folder made
on the page is shared like its parent. No request leaves the machine.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest
from playwright.sync_api import expect
from sqlalchemy import text

from gis import db
from gis.security import roles, users
from gis.security.scope import scoped_connection
from gis.security.sessions import CurrentUser
from layers import shared_files
from tests.ui.conftest import pages_per_user
from tests.ui.support import running_server

pytestmark = pytest.mark.ui

PASSWORD = "Gridgov#2024ui"
COMMUNITY = "320106.320106001.320106001003"
PEOPLE = {
    "qu_fil": ("district_commander", "320106", "指挥长周建华"),
    "jd_fil": ("street_staff", "320106.320106001", "街道李晓燕"),
    "sq_fil_other": ("community_staff", "320106.320106002.320106002002", "慈悲社社区小刘"),
}
FOLDER = "仙霞路社区工作资料"
FILE_NAME = "关于开展矛盾纠纷排查化解工作的通知.pdf"
CONTENT = "%PDF-1.4\n矛盾纠纷排查化解 通知正文\n%%EOF\n".encode()
STEP_TIMEOUT = 45_000
LIMIT = 64 * 1024
SCREENSHOT = "/tmp/gridgov_files_page.png"


@pytest.fixture(scope="module")
def world(territory_db, browser, tmp_path_factory):
    settings = territory_db.model_copy(update={"files_dir": tmp_path_factory.mktemp("files"),
                                                "files_max_bytes": LIMIT})
    ids = {}
    with db.owner_engine(settings).begin() as conn:
        for username, (role, scope, name) in PEOPLE.items():
            ids[username] = users.upsert_user(conn, username, PASSWORD, role, scope, name)
        community_id = conn.execute(text("SELECT id FROM territory_unit WHERE path = CAST(:p AS ltree)"),
                                    {"p": COMMUNITY}).scalar_one()
    # The district shares a folder with the community (and its grids).
    commander = user_of(ids, "qu_fil")
    with scoped_connection(settings, commander) as conn:
        folder = shared_files.create_folder(conn, commander, FOLDER,
                                            share=shared_files.Share(community_id, True))
    with (running_server(settings) as base_url,
          pages_per_user(browser, base_url, PASSWORD) as (page_of, logs, pages)):
        yield {"url": base_url, "settings": settings, "folder": folder, "page": page_of, "logs": logs}


def user_of(ids: dict, username: str) -> CurrentUser:
    role, scope, name = PEOPLE[username]
    return CurrentUser(id=ids[username], username=username, name=name, role=role, scope_path=scope,
                       department=None, permissions=roles.ROLES[role].permissions)


def stored(world, name: str) -> dict | None:
    with db.owner_engine(world["settings"]).connect() as conn:
        row = conn.execute(text(
            "SELECT id, folder_id, org_path::text AS org_path, share_subtree, size, uploader, deleted_at,"
            " deleted_by FROM shared_file WHERE file_name = :n"), {"n": name}).mappings().first()
    return dict(row) if row else None


def open_files(world, username: str):
    page = world["page"](username)
    page.goto(world["url"] + "/files")
    page.get_by_role("button", name="全部文件").wait_for(state="visible", timeout=60_000)
    return page


def test_upload_list_download_hide_and_delete(world):
    page = open_files(world, "jd_fil")
    page.get_by_role("button", name=f"文件夹：{FOLDER}").click()
    expect(page.locator(".gg-crumbs")).to_contain_text(FOLDER, timeout=STEP_TIMEOUT)
    expect(page.locator(".gg-files")).to_contain_text("此文件夹中没有文件", timeout=STEP_TIMEOUT)

    # A type outside the allow-list is refused with the service's message; nothing is stored.
    upload = page.locator(".gg-upload-input input[type=file]")
    upload.set_input_files([{"name": "脚本.exe", "mimeType": "application/octet-stream", "buffer": b"MZ"}])
    page.get_by_role("button", name="上传", exact=True).click()
    expect(page.locator(".gg-files-danger")).to_contain_text("不允许上传该类型的文件", timeout=STEP_TIMEOUT)
    assert stored(world, "脚本.exe") is None

    upload.set_input_files([{"name": FILE_NAME, "mimeType": "application/pdf", "buffer": CONTENT}])
    page.get_by_role("button", name="上传", exact=True).click()
    expect(page.locator(".gg-files-success")).to_contain_text(f"已上传：{FILE_NAME}", timeout=STEP_TIMEOUT)
    row = page.locator(".gg-files tr.gg-file", has_text=FILE_NAME)
    expect(row).to_have_count(1)
    expect(row).to_contain_text("街道李晓燕")
    expect(row).to_contain_text("仙霞路社区居委会（含下级）")          # shared like its folder
    found = stored(world, FILE_NAME)
    assert (found["folder_id"], found["org_path"], found["share_subtree"], found["size"]) == (
        world["folder"]["id"], COMMUNITY, True, len(CONTENT))
    page.screenshot(path=SCREENSHOT, full_page=True)

    # The link is the API route; the browser's cookies fetch the same bytes, under the Chinese name.
    href = row.locator("a.gg-file-link").get_attribute("href")
    assert href == f"/api/v1/files/{found['id']}"
    response = page.request.get(world["url"] + href)
    assert response.ok and response.body() == CONTENT
    assert quote(FILE_NAME) in response.headers["content-disposition"]

    # A user of another street sees neither the folder nor the file, and the link answers 404.
    other = open_files(world, "sq_fil_other")
    expect(other.locator(".gg-folders")).to_contain_text("没有子文件夹", timeout=STEP_TIMEOUT)
    expect(other.get_by_role("button", name=f"文件夹：{FOLDER}")).to_have_count(0)
    expect(other.locator(".gg-files")).not_to_contain_text(FILE_NAME)
    assert other.request.get(world["url"] + href).status == 404
    world["logs"]["sq_fil_other"].failed_responses.clear()   # that 404 was asked for

    # Delete: asked to confirm first; then soft-deleted (the row stays, with who and when).
    page.locator(".gg-delete select").select_option(label=f"{FILE_NAME}（街道李晓燕）")
    page.get_by_role("button", name="删除", exact=True).click()
    expect(page.locator(".gg-confirm")).to_contain_text("确定删除", timeout=STEP_TIMEOUT)
    assert stored(world, FILE_NAME)["deleted_at"] is None
    page.get_by_role("button", name="确认删除").click()
    expect(page.locator(".gg-files-success")).to_contain_text("已删除", timeout=STEP_TIMEOUT)
    expect(page.locator(".gg-files tr.gg-file")).to_have_count(0)
    gone = stored(world, FILE_NAME)
    assert gone["deleted_at"] is not None and gone["deleted_by"] is not None
    assert page.request.get(world["url"] + href).status == 404


def test_a_new_folder_takes_the_share_of_its_parent_and_the_size_limit_refuses(world):
    page = open_files(world, "qu_fil")
    page.get_by_role("button", name=f"文件夹：{FOLDER}").click()
    expect(page.locator(".gg-crumbs")).to_contain_text(FOLDER, timeout=STEP_TIMEOUT)
    page.locator("#sidebar").get_by_label("新文件夹名称").fill("排查台账")
    page.get_by_role("button", name="新建文件夹").click()
    expect(page.locator(".gg-files-success")).to_contain_text("已新建文件夹“排查台账”", timeout=STEP_TIMEOUT)
    expect(page.get_by_role("button", name="文件夹：排查台账")).to_be_visible()
    with db.owner_engine(world["settings"]).connect() as conn:
        made = conn.execute(text(
            "SELECT parent_id, org_path::text, share_subtree FROM shared_folder WHERE name = :n"),
            {"n": "排查台账"}).one()
    assert tuple(made) == (world["folder"]["id"], COMMUNITY, True)
    # Over the size limit (64 KB in this module): the service's message, nothing stored.
    page.get_by_role("button", name="文件夹：排查台账").click()
    expect(page.locator(".gg-crumbs")).to_contain_text("排查台账", timeout=STEP_TIMEOUT)
    page.locator(".gg-upload-input input[type=file]").set_input_files(
        [{"name": "大文件.pdf", "mimeType": "application/pdf", "buffer": b"x" * (LIMIT + 1)}])
    page.get_by_role("button", name="上传", exact=True).click()
    expect(page.locator(".gg-files-danger")).to_contain_text("超过大小限制", timeout=STEP_TIMEOUT)
    assert stored(world, "大文件.pdf") is None
    # Back up by the breadcrumb.
    page.get_by_role("button", name="全部文件").click()
    expect(page.get_by_role("button", name=f"文件夹：{FOLDER}")).to_be_visible(timeout=STEP_TIMEOUT)
