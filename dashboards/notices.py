"""通知公告 page: my inbox for everyone; for senders (``notice:send``) the compose form with its targets
picker and the sent list with read and unread counts and who.

``?id=<notice>`` opens that notice (the popup's link), which marks it read like opening it anywhere else.
Everything goes through :mod:`layers.notices` in the viewer's scoped transaction: the page sees and may
do exactly what the API lets the same user see and do.
"""

from __future__ import annotations

import datetime as dt
import html
from typing import Any
from zoneinfo import ZoneInfo

import panel as pn

from dashboards import theme
from gis.errors import ServiceError
from gis.security.scope import scoped_connection
from gis.settings import Settings
from layers import file_store, notices

BEIJING = ZoneInfo("Asia/Shanghai")
ACCEPT = ".pdf,.ofd,.doc,.docx,.wps,.xls,.xlsx,.et,.ppt,.pptx,.txt,.jpg,.jpeg,.png,.zip"


def _time(value: dt.datetime | None) -> str:
    return value.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M") if value else ""


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>" if rows else \
        '<p style="color:#6b7280">暂无</p>'


_LIST_CSS = """
table { width: 100%; border-collapse: collapse; font-size: 14px; }
th, td { border-bottom: 1px solid #e3e6ea; padding: 5px 6px; text-align: left; }
th { color: #4b5563; font-weight: 600; }
.unread { font-weight: 700; } .red { color: #b91c1c; } .muted { color: #6b7280; }
.doc { white-space: pre-wrap; line-height: 1.7; font-size: 15px; }
"""


class NoticesPage:
    def __init__(self, settings: Settings, user: Any) -> None:
        self.settings, self.user = settings, user
        self.can_send = bool(getattr(user, "has", lambda _: False)("notice:send"))
        self.inbox_pane = pn.pane.HTML("", stylesheets=[_LIST_CSS], sizing_mode="stretch_width",
                                       css_classes=["gg-inbox"])
        self.open_select = pn.widgets.Select(label="打开通知", options={}, sizing_mode="stretch_width")
        self.detail_pane = pn.pane.HTML("", stylesheets=[_LIST_CSS], sizing_mode="stretch_width",
                                        css_classes=["gg-notice-detail"])
        self.open_select.param.watch(lambda e: e.new and self.open(e.new), "value")
        if self.can_send:
            self._build_sender()

    # ------------------------------------------------------------ reading
    def connection(self):
        return scoped_connection(self.settings, self.user)

    def refresh_inbox(self) -> None:
        with self.connection() as conn:
            box = notices.inbox(conn, self.user.id)
        rows = [[f'<span class="{"unread" if i["read_at"] is None else ""}">{html.escape(i["title"])}</span>',
                 html.escape(i["notice_type_zh"] or ""), html.escape(i["sender"] or ""), _time(i["sent_at"]),
                 "未读" if i["read_at"] is None else f'<span class="muted">{_time(i["read_at"])} 已读</span>',
                 i["attachments"] or ""] for i in box["items"]]
        self.inbox_pane.object = (f"<p>未读 <b>{box['unread']}</b> 条</p>"
                                  + _table(["标题", "类型", "发送人", "发送时间", "状态", "附件"], rows))
        self.open_select.options = {"（选择一条通知）": None, **{
            f"{'● ' if i['read_at'] is None else ''}{i['title']}（{_time(i['sent_at'])}）": i["id"]
            for i in box["items"]}}

    def open(self, notice_id: int) -> None:
        try:
            with self.connection() as conn:
                notice = notices.get_notice(conn, self.user, int(notice_id))
        except ServiceError as error:
            self.detail_pane.object = f'<p class="red">{html.escape(str(error))}</p>'
            return
        red = notice["notice_type"] == notices.RED_HEADER
        header = (f'<p class="red"><b>{html.escape(notice["issuing_office"] or "")}</b>　'
                  f'{html.escape(notice["doc_no"] or "")}</p>' if red else "")
        files = "".join(f'<li><a href="{a["url"]}" target="_blank">{html.escape(a["file_name"])}</a>'
                        f' <span class="muted">{a["size"] // 1024 + 1} KB</span></li>'
                        for a in notice["attachments"])
        self.detail_pane.object = (
            f"{header}<h3>{html.escape(notice['title'])}</h3>"
            f'<p class="muted">{html.escape(notice["notice_type_zh"] or "")}'
            f' · {html.escape(notice["sender"] or "")} · {_time(notice["sent_at"])}</p>'
            f'<div class="doc">{html.escape(notice["body"])}</div>'
            + (f"<p><b>附件</b></p><ul>{files}</ul>" if files else ""))
        self.refresh_inbox()

    # ------------------------------------------------------------ sending
    def _build_sender(self) -> None:
        with self.connection() as conn:
            types = notices.notice_types(conn)
            options = notices.audience_options(conn, self.user)
        if not self.user.has("notice:publish_red"):
            types.pop(notices.RED_HEADER, None)
        self.title = pn.widgets.TextInput(label="标题", max_length=200, sizing_mode="stretch_width")
        self.kind = pn.widgets.Select(label="通知类型", options={name: code for code, name in types.items()})
        self.body = pn.widgets.TextAreaInput(label="正文", height=180, max_length=20000,
                                             sizing_mode="stretch_width")
        self.doc_no = pn.widgets.TextInput(label="文号（红头文件）", placeholder="如：鼓综治〔2026〕3号")
        self.office = pn.widgets.TextInput(label="发文机关（红头文件）")
        self.units = pn.widgets.MultiChoice(
            label="区划", options={f"{u['name']}": u["id"] for u in options["units"]},
            sizing_mode="stretch_width")
        self.subtree = pn.widgets.Checkbox(label="含下级区划（社区、网格）", value=True)
        self.roles = pn.widgets.MultiChoice(label="角色（本辖区内）",
                                            options={r["name_zh"]: r["code"] for r in options["roles"]},
                                            sizing_mode="stretch_width")
        self.departments = pn.widgets.MultiChoice(
            label="部门", options={d["name_zh"]: d["code"] for d in options["departments"]},
            sizing_mode="stretch_width")
        self.people = pn.widgets.MultiChoice(
            label="指定人员", options={f"{p['name']}（{p['id']}）": p["id"] for p in options["users"]},
            sizing_mode="stretch_width")
        self.files = pn.widgets.FileInput(multiple=True, accept=ACCEPT)
        self.send_button = pn.widgets.Button(label="发送", color="primary", width=120)
        self.send_button.on_click(lambda _: self.send())
        self.result = pn.pane.HTML("", sizing_mode="stretch_width", css_classes=["gg-send-result"])
        self.sent_pane = pn.pane.HTML("", stylesheets=[_LIST_CSS], sizing_mode="stretch_width",
                                      css_classes=["gg-sent"])
        self.receipt_select = pn.widgets.Select(label="查看阅读情况", options={}, sizing_mode="stretch_width")
        self.receipts_pane = pn.pane.HTML("", stylesheets=[_LIST_CSS], sizing_mode="stretch_width",
                                          css_classes=["gg-receipts"])
        self.receipt_select.param.watch(lambda e: e.new and self.show_receipts(e.new), "value")

    def send(self) -> None:
        targets = notices.Targets(
            users=list(self.people.value), roles=list(self.roles.value),
            departments=list(self.departments.value),
            units=[notices.UnitTarget(id=u, subtree=self.subtree.value) for u in self.units.value])
        names = self.files.filename or []
        names = [names] if isinstance(names, str) else names
        values = self.files.value or []
        values = [values] if isinstance(values, bytes) else values
        mimes = self.files.mime_type or []
        mimes = [mimes] if isinstance(mimes, str) else mimes
        try:
            attachments = [
                notices.Attachment(file_store.clean_file_name(n), m or "application/octet-stream", v)
                for n, v, m in zip(names, values, mimes or [None] * len(names), strict=False)]
            with self.connection() as conn:
                sent = notices.send_notice(
                    conn, self.settings, self.user, title=self.title.value, notice_type=self.kind.value,
                    body=self.body.value, targets=targets, doc_no=self.doc_no.value,
                    issuing_office=self.office.value, attachments=attachments)
        except ServiceError as error:
            self.result.object = f'<p style="color:#b91c1c">{html.escape(str(error))}</p>'
            return
        self.result.object = f'<p style="color:#15803d">已发送，接收人 {sent["recipients"]} 人。</p>'
        self.title.value = self.body.value = self.doc_no.value = self.office.value = ""
        self.refresh_sent()

    def refresh_sent(self) -> None:
        with self.connection() as conn:
            rows = notices.sent(conn, self.user.id)
        self.sent_pane.object = _table(
            ["标题", "类型", "发送时间", "发送对象", "已读", "未读"],
            [[html.escape(r["title"]), html.escape(r["notice_type_zh"] or ""), _time(r["sent_at"]),
              html.escape(r["targets_text"] or ""), r["read_count"], r["unread_count"]] for r in rows])
        self.receipt_select.options = {"（选择一条通知）": None,
                                       **{f"{r['title']}（{_time(r['sent_at'])}）": r["id"] for r in rows}}

    def show_receipts(self, notice_id: int) -> None:
        try:
            with self.connection() as conn:
                found = notices.receipts(conn, self.user, int(notice_id))
        except ServiceError as error:
            self.receipts_pane.object = f'<p class="red">{html.escape(str(error))}</p>'
            return

        def rows(items):
            return [[html.escape(r["name"]), html.escape(r["unit"] or ""), _time(r["read_at"])]
                    for r in items]
        self.receipts_pane.object = (
            f"<p><b>已读 {len(found['read'])} 人</b></p>"
            + _table(["姓名", "单位", "阅读时间"], rows(found["read"]))
            + f"<p><b>未读 {len(found['unread'])} 人</b></p>"
            + _table(["姓名", "单位", ""], rows(found["unread"])))

    # ------------------------------------------------------------ layout
    def view(self) -> pn.template.BootstrapTemplate:
        self.refresh_inbox()
        inbox = pn.Column("### 我的通知", self.inbox_pane, self.open_select, self.detail_pane,
                          sizing_mode="stretch_width")
        tabs = [("我的通知", inbox)]
        if self.can_send:
            self.refresh_sent()
            compose = pn.Column(
                "### 发送通知", self.title, pn.Row(self.kind, self.doc_no, self.office), self.body,
                "**发送对象**（可组合：区划、角色、部门、指定人员）", self.units, self.subtree, self.roles,
                self.departments, self.people, "**附件**（红头文件须附 PDF 正式文件）", self.files,
                self.send_button, self.result, sizing_mode="stretch_width", max_width=900)
            sent = pn.Column("### 已发送", self.sent_pane, self.receipt_select, self.receipts_pane,
                             sizing_mode="stretch_width")
            tabs += [("发送通知", compose), ("已发送", sent)]
        initial = pn.state.session_args.get("id", [b""])[0] if pn.state.session_args else b""
        if initial and initial.decode("ascii", "ignore").isdigit():
            self.open(int(initial))
        return theme.page("通知公告", main=[pn.Tabs(*tabs, sizing_mode="stretch_width")])


def notices_page(settings: Settings, user: Any, *, tile_url: str | None = None) -> pn.viewable.Viewable:
    """The 通知公告 page (mount at ``/notices``); ``tile_url`` is unused (no map here)."""
    return NoticesPage(settings, user).view()
