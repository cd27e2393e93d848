"""内部硬盘共享 — the shared files page: folders, the files of a folder, upload, download, delete (issue #9).

Every read and write goes through :mod:`layers.shared_files` on a connection scoped to the user, so a
folder or file shows only where row-level security shares it, and the service's refusals (limits of size
and type, outside one's scope, not one's own file) are shown as its Chinese messages.

Downloads are plain links to the API route (``/api/v1/files/{id}``): the browser sends the session cookie,
and the API writes the download to the access log. Uploads come through a ``FileInput`` (several files at
once) with the share target chosen here: like the folder, a unit of one's territory with or without its
subtree, and/or a department.
"""

from __future__ import annotations

import datetime as dt
import html
import mimetypes
from typing import Any

import panel as pn
from sqlalchemy import text

from dashboards import theme
from dashboards.event_detail import beijing
from gis.errors import ServiceError
from gis.security.scope import scoped_connection
from gis.settings import Settings
from layers import shared_files, territory

LIST_CSS = """
table { width: 100%; border-collapse: collapse; font-size: 14px; }
th { text-align: left; color: #555; font-weight: 500; border-bottom: 2px solid #dde; padding: 4px 6px; }
td { border-bottom: 1px solid #eee; padding: 4px 6px; }
td.gg-size { text-align: right; font-variant-numeric: tabular-nums; }
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def human_size(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / 1024 / 1024:.1f} MB"
    if n >= 1024:
        return f"{n / 1024:.1f} KB"
    return f"{n} B"


class FileDesk:
    """One user's view of the shared files: where they are, what is there, and what they may do."""

    def __init__(self, settings: Settings, user: Any):
        self.settings, self.user = settings, user
        self.may_upload, self.may_manage = user.has("file:upload"), user.has("file:manage")
        with self.connect() as conn:
            units = territory.territory_units(conn, within_path=user.scope)
            departments = conn.execute(text(
                "SELECT code, name_zh FROM code_item WHERE table_key = 'department' ORDER BY sort")).all()
        self.departments = dict(departments)
        self.folder_id: int | None = None
        self.listing: dict = {"folders": [], "files": [], "path": []}
        wide = {"sizing_mode": "stretch_width"}
        self.message = pn.Column(**wide)
        self.crumbs = pn.Row(css_classes=["gg-crumbs"], **wide)
        self.folders = pn.FlexBox(css_classes=["gg-folders"], **wide)
        self.files = pn.pane.HTML("", stylesheets=[LIST_CSS], css_classes=["gg-files"], **wide)
        # ---- delete, with a confirmation
        self.delete_choice = pn.widgets.Select(label="删除文件", options={}, width=320)
        self.delete_button = pn.widgets.Button(label="删除", color="danger", width=90, align="end")
        self.delete_button.on_click(lambda _: self._ask_delete())
        self.confirm_text = pn.pane.Markdown("", css_classes=["gg-confirm-text"])
        self.confirm_button = pn.widgets.Button(label="确认删除", color="danger", width=100)
        self.cancel_button = pn.widgets.Button(label="取消", width=80)
        self.confirm_button.on_click(lambda _: self._delete())
        self.cancel_button.on_click(lambda _: setattr(self.confirm, "visible", False))
        self.confirm = pn.Row(self.confirm_text, self.confirm_button, self.cancel_button,
                              css_classes=["gg-confirm"], visible=False, **wide)
        self.delete_row = pn.Column(pn.Row(self.delete_choice, self.delete_button), self.confirm,
                                    css_classes=["gg-delete"], **wide)
        # ---- upload and new folder, with the share target
        allowed = sorted({t.lower().lstrip(".") for t in settings.files_allowed_types})
        self.upload_input = pn.widgets.FileInput(multiple=True, accept=",".join(f".{t}" for t in allowed),
                                                 css_classes=["gg-upload-input"], **wide)
        self.upload_button = pn.widgets.Button(label="上传", color="primary", width=100)
        self.upload_button.on_click(lambda _: self._upload())
        limit = human_size(settings.files_max_bytes)
        self.share_unit = pn.widgets.Select(label="共享给区划", options={
            "同所在文件夹（顶层为本单位）": "",
            **{f"{r.level_label} {r.name}": str(r.id) for r in units.itertuples()}}, **wide)
        self.share_subtree = pn.widgets.Select(label="范围", options={
            "同所在文件夹（顶层含下级）": "", "含下级区划": "yes", "仅该单位": "no"}, **wide)
        self.share_department = pn.widgets.Select(label="共享给部门", options={
            "同所在文件夹（默认不限部门）": "", **{name: code for code, name in departments}}, **wide)
        self.folder_name = pn.widgets.TextInput(label="新文件夹名称", max_length=100, **wide)
        self.folder_button = pn.widgets.Button(label="新建文件夹", width=120)
        self.folder_button.on_click(lambda _: self._new_folder())
        self.upload_panel = pn.Column(
            pn.pane.Markdown(f"**上传到当前文件夹**<br><small>单个文件不超过 {limit}；允许的类型："
                             f"{'、'.join(allowed)}</small>"),
            self.upload_input, self.upload_button,
            pn.pane.Markdown("**共享范围**（上传与新建文件夹）"), self.share_unit, self.share_subtree,
            self.share_department, self.folder_name, self.folder_button,
            visible=self.may_upload, css_classes=["gg-upload"], **wide)
        self.open(None)

    def connect(self):
        return scoped_connection(self.settings, self.user)

    def _say(self, text_: str, kind: str) -> None:
        self.message.objects = [pn.pane.Alert(text_, alert_type=kind, css_classes=[f"gg-files-{kind}"],
                                              sizing_mode="stretch_width")]

    # ------------------------------------------------------------ showing a folder
    def open(self, folder_id: int | None, *, keep_message: bool = False) -> None:
        if not keep_message:
            self.message.objects = []
        try:
            with self.connect() as conn:
                listing = shared_files.list_folder(conn, self.user, folder_id)
                paths = {f["shared_path"] for f in [*listing["folders"], *listing["files"]]}
                names = dict(conn.execute(text(
                    "SELECT path::text, name FROM territory_unit WHERE path::text = ANY(:p)"),
                    {"p": sorted(paths)}).all()) if paths else {}
        except ServiceError as error:
            self._say(str(error), "danger")
            if folder_id is not None:
                self.open(None, keep_message=True)
            return
        self.folder_id, self.listing, self.unit_names = folder_id, listing, names
        self.confirm.visible = False
        self._draw()

    def _shared_with(self, item: dict) -> str:
        unit = self.unit_names.get(item["shared_path"], item["shared_path"])
        parts = [f"{unit}{'（含下级）' if item['subtree'] else '（仅本单位）'}"]
        if item["department"]:
            parts.append("部门：" + self.departments.get(item["department"], item["department"]))
        return "；".join(parts)

    def _draw(self) -> None:
        listing = self.listing
        root = pn.widgets.Button(label="全部文件", width=110)
        root.on_click(lambda _: self.open(None))
        crumbs: list = [root]
        for crumb in listing["path"]:
            button = pn.widgets.Button(label=crumb["name"], width=max(80, 16 * len(crumb["name"]) + 30))
            button.on_click(lambda _, i=crumb["id"]: self.open(i))
            crumbs += [pn.pane.Markdown("›", margin=(8, 2)), button]
        self.crumbs.objects = crumbs
        folder_buttons = []
        for folder in listing["folders"]:
            button = pn.widgets.Button(label=f"文件夹：{folder['name']}", css_classes=["gg-folder"],
                                       description=self._shared_with(folder), width=220)
            button.on_click(lambda _, i=folder["id"]: self.open(i))
            folder_buttons.append(button)
        self.folders.objects = folder_buttons or [pn.pane.Markdown("（没有子文件夹）")]
        rows = "".join(
            f'<tr class="gg-file" data-id="{f["id"]}">'
            f'<td><a class="gg-file-link" href="{_e(f["url"])}" download="{_e(f["file_name"])}">'
            f'{_e(f["file_name"])}</a></td>'
            f'<td class="gg-size">{human_size(f["size"])}</td>'
            f'<td>{_e(_type_name(f["file_name"], f["content_type"]))}</td><td>{_e(f["uploader"])}</td>'
            f'<td>{beijing(f["uploaded_at"]) if isinstance(f["uploaded_at"], dt.datetime) else "—"}</td>'
            f'<td>{_e(self._shared_with(f))}</td></tr>' for f in listing["files"])
        header = "".join(f"<th>{h}</th>" for h in ("文件名", "大小", "类型", "上传人", "上传时间", "共享给"))
        self.files.object = (f"<table><tr>{header}</tr>{rows}</table>" if rows
                             else '<p class="gg-no-files">此文件夹中没有文件。</p>')
        deletable = {f"{f['file_name']}（{f['uploader']}）": str(f["id"]) for f in listing["files"]
                     if f["uploader_id"] == self.user.id or self.may_manage}
        self.delete_choice.options = deletable
        self.delete_row.visible = bool(deletable)

    # ------------------------------------------------------------ changing things
    def _share(self) -> shared_files.Share:
        subtree = {"yes": True, "no": False}.get(self.share_subtree.value)
        return shared_files.Share(int(self.share_unit.value) if self.share_unit.value else None, subtree,
                                  self.share_department.value or None)

    def _upload(self) -> None:
        chosen = self.upload_input
        values, names, types = chosen.value, chosen.filename, chosen.mime_type
        if not values:
            self._say("请先选择要上传的文件", "danger")
            return
        if not isinstance(values, list):
            values, names, types = [values], [names], [types]
        types = types or [None] * len(values)
        try:
            with self.connect() as conn:
                stored = [shared_files.upload(conn, self.settings, self.user, name or "文件",
                                              kind or mimetypes.guess_type(name or "")[0], data,
                                              folder_id=self.folder_id, share=self._share())
                          for data, name, kind in zip(values, names, types, strict=False)]
        except ServiceError as error:
            self._say(str(error), "danger")     # one refused file refuses the batch: nothing is stored
            return
        self.upload_input.clear()
        self._say("已上传：" + "、".join(f["file_name"] for f in stored), "success")
        self.open(self.folder_id, keep_message=True)

    def _new_folder(self) -> None:
        try:
            with self.connect() as conn:
                folder = shared_files.create_folder(conn, self.user, self.folder_name.value,
                                                    parent_id=self.folder_id, share=self._share())
        except ServiceError as error:
            self._say(str(error), "danger")
            return
        self.folder_name.value = ""
        self._say(f"已新建文件夹“{folder['name']}”", "success")
        self.open(self.folder_id, keep_message=True)

    def _ask_delete(self) -> None:
        if not self.delete_choice.value:
            return
        chosen = next((f for f in self.listing["files"] if str(f["id"]) == self.delete_choice.value), None)
        if chosen is None:
            return
        self.confirm_text.object = f"确定删除“{_e(chosen['file_name'])}”吗？删除会记入日志。"
        self.confirm.visible = True

    def _delete(self) -> None:
        file_id = int(self.delete_choice.value)
        try:
            with self.connect() as conn:
                shared_files.delete_file(conn, self.user, file_id)
        except ServiceError as error:
            self._say(str(error), "danger")
            return
        self._say("已删除。", "success")
        self.open(self.folder_id, keep_message=True)

    # ------------------------------------------------------------ the page
    def view(self) -> pn.template.BaseTemplate:
        main = pn.Column(self.message, self.crumbs, pn.pane.Markdown("**文件夹**"), self.folders,
                         pn.pane.Markdown("**文件**"), self.files, self.delete_row,
                         sizing_mode="stretch_width")
        side = [self.upload_panel, pn.pane.Markdown(f"<small>当前用户：{_e(self.user.display_name)}</small>")]
        return theme.page("内部硬盘共享", main=[main], sidebar=side)


def _type_name(file_name: str, content_type: str | None) -> str:
    _, dot, ext = file_name.rpartition(".")
    return ext.upper() if dot and ext else (content_type or "—")


def files_page(settings: Settings, user: Any, *, tile_url: str | None = None) -> pn.viewable.Viewable:
    if not user.has("file:read"):
        return theme.notice_page("内部硬盘共享", "无权限", "您没有查看共享文件的权限。")
    return FileDesk(settings, user).view()
