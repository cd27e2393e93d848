"""民情日记 — the diary page: supervisors review, leaders comment, grid workers write (issue #9).

- The list is :func:`layers.diary.list_entries` on the side panel's filters (worker, dates, state), 待审批
  first and then newest day first; the tiles count the entries per state on the same filters.
- Picking a row opens the entry (:func:`layers.diary.get_entry`): text, date, worker, grid, the persons
  and houses visited (as the service gives them: names only, never ID numbers), photos (the API's photo
  route, fetched by the browser with the session cookie), its position on a small map, the review note
  and the comments.
- 通过 / 退回 (a note required) are offered to ``diary:review`` holders on a submitted entry not their own,
  点评 to ``diary:comment`` holders; each calls the service with the version the page showed, so a
  review made meanwhile elsewhere is refused with the service's conflict message and the entry reloads.
- A grid worker (``diary:write``) sees their own entries and writes a new one or edits one not yet
  approved, in the 写日记 tab.

Every read and write goes through :mod:`layers.diary` on a connection scoped to the user: row-level
security decides what exists, the service what may be done.
"""

from __future__ import annotations

import datetime as dt
import html
from typing import Any

import pandas as pd
import panel as pn
from sqlalchemy import text

from dashboards import theme
from dashboards.event_detail import beijing
from dashboards.event_map import PointMap
from dashboards.events import TILES_CSS
from gis.errors import ServiceError
from gis.security.scope import scoped_connection
from gis.settings import Settings
from layers import diary, people, territory
from layers.events.calendar import beijing_today

LIST_SIZE = diary.MAX_PAGE
COLUMNS = {"diary_date": "日期", "worker": "网格员", "grid_name": "网格", "state_name": "状态",
           "summary": "内容摘要", "comments": "点评"}
_STATE_COLOURS = {"total": "#1f3b63", "submitted": "#d97706", "approved": "#16a34a", "returned": "#dc2626"}
DETAIL_CSS = """
.gg-diary-fields table { border-collapse: collapse; width: 100%; font-size: 14px; }
.gg-diary-fields th { text-align: left; width: 90px; color: #555; font-weight: 500; padding: 4px 6px; }
.gg-diary-fields td { padding: 4px 6px; border-bottom: 1px solid #eee; white-space: pre-wrap; }
.gg-diary-photos img { height: 96px; margin: 4px; border: 1px solid #ddd; border-radius: 4px; }
.gg-diary-comments li { margin-bottom: 6px; }
"""
DETAIL_TAB, WRITE_TAB = 1, 2


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def tiles_html(counts: dict[str, int]) -> str:
    """The counts per state as tiles (``data-state`` names each for tests)."""
    tiles = [("total", sum(counts.values()), "合计")] + [(s, counts.get(s, 0), name)
                                                        for s, name in diary.STATES.items()]
    return '<div class="gg-tiles">' + "".join(
        f'<div class="gg-tile" data-state="{key}" style="background:{_STATE_COLOURS[key]}">'
        f'<span class="gg-value">{value}</span><span class="gg-label">{label}</span></div>'
        for key, value, label in tiles) + "</div>"


def entry_html(entry: dict) -> str:
    """One entry's fields, photos, review and comments as HTML (every value escaped)."""
    persons = "、".join(_e(p["name"]) for p in entry["visited_persons"]) or "—"
    houses = "、".join(_e(h["address"]) for h in entry["visited_houses"]) or "—"
    review = "—"
    if entry["reviewed_by"]:
        review = f"{_e(entry['reviewed_by'])}（{beijing(entry['reviewed_at'])}）"
    rows = [("日期", _e(entry["diary_date"])), ("网格员", _e(entry["worker"])),
            ("网格", _e(entry["grid_name"])),
            ("状态", f'<span data-state="{_e(entry["state"])}">{_e(entry["state_name"])}</span>'),
            ("内容", _e(entry["content"])), ("走访人员", persons), ("走访房屋", houses),
            ("审核人", review), ("审核意见", f'<span class="gg-review-note">{_e(entry["review_note"] or "—")}'
                                            "</span>"),
            ("版本", _e(entry["version"]))]
    fields = "<table>" + "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows) + "</table>"
    photos = "".join(
        f'<a href="/api/v1/diary/{entry["id"]}/photos/{p["id"]}" target="_blank">'
        f'<img src="/api/v1/diary/{entry["id"]}/photos/{p["id"]}" alt="{_e(p["filename"])}"></a>'
        for p in entry["photos"]) or '<span style="color:#888">无照片</span>'
    comments = "".join(
        f'<li class="gg-comment"><b>{_e(c["by"])}</b>（{beijing(c["at"])}）：{_e(c["text"])}</li>'
        for c in entry["comments"]) or '<li style="color:#888">暂无点评</li>'
    return (f'<div class="gg-diary-fields">{fields}</div>'
            f'<h6>照片</h6><div class="gg-diary-photos">{photos}</div>'
            f'<h6>点评</h6><ul class="gg-diary-comments">{comments}</ul>')


class DiaryDesk:
    """One user's diary page: filters, list, one entry with its review and comment forms, the writer."""

    def __init__(self, settings: Settings, user: Any, *, tile_url: str | None = None):
        self.settings, self.user = settings, user
        self.may_write = user.has("diary:write")
        self.may_review, self.may_comment = user.has("diary:review"), user.has("diary:comment")
        with self.connect() as conn:
            units = territory.territory_units(conn, within_path=user.scope)
            # The workers whose entries this user may see (row-level security filters the rows).
            workers = conn.execute(text(
                "SELECT DISTINCT worker_id, worker FROM diary"
                " WHERE deleted_at IS NULL AND worker_id IS NOT NULL ORDER BY worker")).all()
            persons = people.list_people(conn, within=user.scope, limit=500).items if self.may_write else []
        wide = {"sizing_mode": "stretch_width"}
        # ---- filters
        if self.may_write and not self.may_review:
            worker_options = {"本人": "me"}       # a grid worker sees their own entries
        else:
            worker_options = {"全部": "", **{f"{w.worker}（{w.worker_id}）": str(w.worker_id)
                                             for w in workers}}
        self.worker = pn.widgets.Select(label="网格员", options=worker_options, **wide)
        self.date_from = pn.widgets.DatePicker(label="日期起", **wide)
        self.date_to = pn.widgets.DatePicker(label="日期止", **wide)
        states = {name: key for key, name in diary.STATES.items()}
        self.state = pn.widgets.Select(label="状态", options={"全部": "", **states}, **wide)
        self.search_button = pn.widgets.Button(label="查询", color="primary", **wide)
        self.search_button.on_click(lambda _: self.refresh())
        # ---- list
        self.tiles = pn.pane.HTML("", css_classes=["gg-diary-tiles"], stylesheets=[TILES_CSS], **wide)
        self.list_info = pn.pane.Markdown("", css_classes=["gg-diary-info"])
        self.table = pn.widgets.Tabulator(
            pd.DataFrame(columns=list(COLUMNS)), show_index=False, disabled=True, selectable=1,
            pagination="local", page_size=20, titles=COLUMNS, sizing_mode="stretch_width",
            layout="fit_data_fill", css_classes=["gg-diary-table"], height=560)
        self.items: list[dict] = []
        self.table.param.watch(self._picked, "selection")
        # ---- detail
        self.entry: dict | None = None
        self.message = pn.Column(**wide)
        self.fields = pn.pane.HTML("<p>请在列表中选择一篇日记。</p>", stylesheets=[DETAIL_CSS],
                                   css_classes=["gg-diary-detail"], **wide)
        self.map = PointMap(units, tile_url=tile_url, height=260)
        self.note = pn.widgets.TextAreaInput(label="审核意见（退回时必填）", max_length=2000, height=80,
                                             **wide)
        self.approve_button = pn.widgets.Button(label="通过", color="success", width=90)
        self.return_button = pn.widgets.Button(label="退回", color="danger", width=90)
        self.approve_button.on_click(lambda _: self._review("approve"))
        self.return_button.on_click(lambda _: self._review("return"))
        self.review_form = pn.Column(self.note, pn.Row(self.approve_button, self.return_button),
                                     css_classes=["gg-review-form"], visible=False, **wide)
        self.comment = pn.widgets.TextAreaInput(label="点评内容", max_length=2000, height=80, **wide)
        self.comment_button = pn.widgets.Button(label="点评", color="primary", width=90)
        self.comment_button.on_click(lambda _: self._comment())
        self.comment_form = pn.Column(self.comment, self.comment_button, css_classes=["gg-comment-form"],
                                      visible=False, **wide)
        self.edit_button = pn.widgets.Button(label="修改此日记", width=120, visible=False)
        self.edit_button.on_click(lambda _: self._start_edit())
        body = pn.Row(pn.Column(self.fields, **wide), pn.Column(self.map, width=380), **wide)
        detail = pn.Column(self.message, body, self.review_form, self.comment_form, self.edit_button, **wide)
        tabs = [("日记列表", pn.Column(self.tiles, self.list_info, self.table, **wide)), ("日记详情", detail)]
        # ---- the writer
        if self.may_write:
            self.editing: dict | None = None
            self.write_title = pn.pane.Markdown("#### 填写今日民情日记", css_classes=["gg-write-title"])
            self.write_date = pn.widgets.DatePicker(label="日期", value=beijing_today(), **wide)
            self.write_content = pn.widgets.TextAreaInput(
                label="工作内容（必填）", max_length=diary.MAX_CONTENT, height=160, **wide)
            self.write_persons = pn.widgets.MultiChoice(
                label="走访人员（可搜索，选填）",
                options={p["name"] + f"（{p['id']}）": p["id"] for p in persons}, **wide)
            self.write_button = pn.widgets.Button(label="提交日记", color="primary", width=120)
            self.write_button.on_click(lambda _: self._write())
            self.write_message = pn.Column(**wide)
            tabs.append(("写日记", pn.Column(self.write_title, self.write_message, self.write_date,
                                             self.write_content, self.write_persons, self.write_button,
                                             **wide)))
        self.tabs = pn.Tabs(*tabs, **wide)
        self.refresh()

    def connect(self):
        return scoped_connection(self.settings, self.user)

    # ------------------------------------------------------------ the list
    def _filters(self) -> dict:
        return {"worker": self.worker.value or None, "date_from": self.date_from.value,
                "date_to": self.date_to.value}

    def refresh(self) -> None:
        filters = self._filters()
        try:
            with self.connect() as conn:
                counts = {s: diary.list_entries(conn, self.user, state=s, size=1, **filters)["total"]
                          for s in diary.STATES}
                found = diary.list_entries(conn, self.user, state=self.state.value or None, size=LIST_SIZE,
                                           **filters)
        except ServiceError as error:
            self.list_info.object = str(error)
            return
        self.tiles.object = tiles_html(counts)
        # 待审批 first (they are the supervisor's work), then as the service orders: newest day first.
        self.items = sorted(found["items"], key=lambda e: e["state"] != "submitted")
        self.table.selection = []
        self.table.value = pd.DataFrame([{
            "diary_date": str(e["diary_date"]), "worker": e["worker"], "grid_name": e["grid_name"],
            "state_name": e["state_name"],
            "summary": e["content"][:30] + ("…" if len(e["content"]) > 30 else ""),
            "comments": len(e["comments"])} for e in self.items], columns=list(COLUMNS))
        more = f"（仅列出最新 {LIST_SIZE} 篇）" if found["total"] > LIST_SIZE else ""
        self.list_info.object = f"共 {found['total']} 篇{more}，待审批的排在前面。"

    def _picked(self, event) -> None:
        if event.new and event.new[0] < len(self.items):
            self.open(self.items[event.new[0]]["id"])
            self.tabs.active = DETAIL_TAB

    # ------------------------------------------------------------ one entry
    def _say(self, where: pn.Column, text_: str, kind: str) -> None:
        where.objects = [pn.pane.Alert(text_, alert_type=kind, css_classes=[f"gg-diary-{kind}"],
                                       sizing_mode="stretch_width")]

    def open(self, entry_id: int, message: tuple[str, str] | None = None) -> None:
        self.message.objects = []
        try:
            with self.connect() as conn:
                entry = diary.get_entry(conn, self.user, entry_id)
        except ServiceError as error:
            self.entry = None
            self._say(self.message, str(error), "danger")
            self.review_form.visible = self.comment_form.visible = self.edit_button.visible = False
            return
        if message:
            self._say(self.message, *message)
        self.entry = entry
        self.fields.object = entry_html(entry)
        has_point = entry["lon"] is not None and entry["lat"] is not None
        self.map.show((entry["lon"], entry["lat"]) if has_point else None)
        self.review_form.visible = (self.may_review and entry["state"] == "submitted"
                                    and entry["worker_id"] != self.user.id)
        self.comment_form.visible = self.may_comment
        self.edit_button.visible = (self.may_write and entry["worker_id"] == self.user.id
                                    and entry["state"] != "approved")
        self.note.value = self.comment.value = ""

    def _review(self, decision: str) -> None:
        entry = self.entry
        if entry is None:
            return
        try:
            with self.connect() as conn:
                diary.review_entry(conn, self.user, entry["id"], decision, self.note.value, entry["version"])
        except diary.Conflict as error:
            # Reviewed or edited meanwhile: say so, and show the entry as it is now.
            self.open(entry["id"], message=(str(error), "warning"))
            self.refresh()
            return
        except ServiceError as error:
            self._say(self.message, str(error), "danger")
            return
        self.open(entry["id"], message=("已通过。" if decision == "approve" else "已退回。", "success"))
        self.refresh()

    def _comment(self) -> None:
        entry = self.entry
        if entry is None:
            return
        try:
            with self.connect() as conn:
                diary.add_comment(conn, self.user, entry["id"], self.comment.value)
        except ServiceError as error:
            self._say(self.message, str(error), "danger")
            return
        self.open(entry["id"], message=("已点评。", "success"))
        self.refresh()

    # ------------------------------------------------------------ writing
    def _start_edit(self) -> None:
        entry = self.entry
        if entry is None or not self.may_write:
            return
        self.editing = entry
        self.write_title.object = f"#### 修改 {entry['diary_date']} 的日记"
        self.write_date.value = entry["diary_date"]
        self.write_content.value = entry["content"]
        known = set(self.write_persons.options.values())
        self.write_persons.value = [p["id"] for p in entry["visited_persons"] if p["id"] in known]
        self.write_message.objects = []
        self.tabs.active = WRITE_TAB

    def _write(self) -> None:
        day = self.write_date.value
        if not isinstance(day, dt.date):
            self._say(self.write_message, "请选择日记日期", "danger")
            return
        try:
            with self.connect() as conn:
                if self.editing is not None:
                    saved = diary.edit_entry(conn, self.user, self.editing["id"],
                                             version=self.editing["version"],
                                             content=self.write_content.value, diary_date=day,
                                             person_ids=list(self.write_persons.value))
                else:
                    saved, _ = diary.write_entry(conn, self.user, diary.DiaryInput(
                        day, self.write_content.value, person_ids=list(self.write_persons.value)))
        except ServiceError as error:
            self._say(self.write_message, str(error), "danger")
            return
        was_edit = self.editing is not None
        self.editing = None
        self.write_title.object = "#### 填写今日民情日记"
        self.write_content.value = ""
        self.write_persons.value = []
        self.write_message.objects = []
        self.refresh()
        self.open(saved["id"], message=("已修改并重新提交。" if was_edit else "已提交。", "success"))
        self.tabs.active = DETAIL_TAB

    # ------------------------------------------------------------ the page
    def view(self) -> pn.template.BaseTemplate:
        filters = pn.Column(
            pn.pane.Markdown("**筛选**"), self.worker, self.date_from, self.date_to, self.state,
            self.search_button, pn.pane.Markdown(f"<small>当前用户：{_e(self.user.display_name)}</small>"),
            sizing_mode="stretch_width")
        return theme.page("民情日记", main=[self.tabs], sidebar=[filters])


def diary_review_page(settings: Settings, user: Any, *, tile_url: str | None = None) -> pn.viewable.Viewable:
    # The same permissions layers.diary reads with: without one, say so instead of an empty page.
    if not any(user.has(p) for p in ("diary:write", "diary:review", "diary:comment", "registry:diary:read")):
        return theme.notice_page("民情日记", "无权限", "您没有查看民情日记的权限。")
    return DiaryDesk(settings, user, tile_url=tile_url).view()
