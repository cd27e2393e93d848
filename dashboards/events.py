"""事件办理 — the event pages: the inbox, all events, one event's detail and actions, the report form.

- **我的待办** is :func:`layers.events.inbox` — the events on which an action of this user is due, for them
  and their unit, earliest deadline first — with a tile per warning light (the counts are the inbox's,
  before the filters) and the filters of the side panel applied to the list.
- **全部事件** is :func:`layers.events.list_events` on the same filters, a page at a time (the service
  pages; the table never holds more than one page).
- **事件详情** (:mod:`dashboards.event_detail`) opens on a click on a row of either list, or straight from
  ``/events?id=<event id>`` (the link other pages use).
- **上报事件** (:mod:`dashboards.event_report`) is offered to the roles that may report.

Every read and write goes through :mod:`layers.events` on a connection scoped to the user, so what is
seen is what row-level security shows, and what may be done is the workflow table's answer: this page is
one more face of the services the API serves.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import panel as pn

from dashboards import theme
from dashboards.event_detail import LIGHTS, EventDetail, beijing
from dashboards.event_report import ReportForm
from gis.security.scope import scoped_connection
from gis.settings import Settings
from layers import events, territory
from layers.events.calendar import BEIJING
from layers.events.workflow import STATUSES, TERRITORIAL
from layers.registry_export import code_names

PAGE_SIZE = 20
INBOX_LIMIT = 1000
DETAIL_TAB = 2
REPORT_TAB = 3
COLUMNS = {"number": "编号", "title": "标题", "type_name": "类型", "urgency": "紧急程度",
           "status_name": "状态", "holder_name": "承办", "due": "时限", "light": "预警"}
INBOX_COLUMNS = {**COLUMNS, "todo": "待办操作"}

TILES_CSS = """
.gg-tiles { display: flex; gap: 12px; }
.gg-tile { flex: 1; min-width: 120px; padding: 10px 14px; border-radius: 6px; color: white; }
.gg-tile .gg-value { font-size: 28px; font-weight: 700; display: block; line-height: 1.1; }
.gg-tile .gg-label { font-size: 13px; opacity: 0.95; }
"""
_TILE_COLOURS = {"red": "#dc2626", "yellow": "#d97706", "green": "#16a34a", "none": "#6b7280",
                 "total": "#1f3b63"}


def _arg(name: str) -> str | None:
    values = pn.state.session_args.get(name) if pn.state.session_args else None
    return values[0].decode("utf-8", "replace") if values else None


def tiles_html(counts: dict[str, int], total: int) -> str:
    """The inbox's counts as tiles, one per warning light (``data-light`` names each for tests)."""
    tiles = [("total", total, "待办合计")]
    tiles += [(light, counts.get(light, 0), f"{name}·{meaning}")
              for light, (name, meaning, _) in LIGHTS.items()]
    if counts.get("none"):
        tiles.append(("none", counts["none"], "无时限"))
    return '<div class="gg-tiles">' + "".join(
        f'<div class="gg-tile" data-light="{key}" style="background:{_TILE_COLOURS[key]}">'
        f'<span class="gg-value">{value}</span><span class="gg-label">{label}</span></div>'
        for key, value, label in tiles) + "</div>"


def light_cell(light: str | None) -> str:
    if light not in LIGHTS:
        return "—"
    name, _, colour = LIGHTS[light]
    return f'<span style="color:{colour};font-weight:600">● {name}</span>'


class EventDesk:
    """One user's event desk: filters, inbox, all events, detail, report form."""

    def __init__(self, settings: Settings, user: Any, *, tile_url: str | None = None):
        self.settings, self.user = settings, user
        with self.connect() as conn:
            self.names = code_names(conn)
            units = territory.territory_units(conn, within_path=user.scope)
            actor = events.actor_for(conn, user)
        self.may_report = actor.role in TERRITORIAL and actor.has("event:report")
        # ---- filters (side panel): both lists
        wide = {"sizing_mode": "stretch_width"}
        statuses = {name: code for code, name in STATUSES.items()}
        self.status = pn.widgets.Select(label="状态", options={"全部": "", **statuses}, **wide)
        classes = {name: code for (table, code), name in sorted(self.names.items())
                   if table == "event_type" and len(code) == 2}
        self.type = pn.widgets.Select(label="事件类型", options={"全部": "", **classes}, **wide)
        lights = {f"{name}（{meaning}）": key for key, (name, meaning, _) in LIGHTS.items()}
        self.light = pn.widgets.Select(label="预警灯", options={"全部": "", **lights}, **wide)
        self.date_from = pn.widgets.DatePicker(label="上报日期起", **wide)
        self.date_to = pn.widgets.DatePicker(label="上报日期止", **wide)
        self.q = pn.widgets.TextInput(label="编号或标题", placeholder="输入事件编号或标题关键词",
                                      max_length=50, **wide)
        self.search_button = pn.widgets.Button(label="查询", color="primary", **wide)
        self.reset_button = pn.widgets.Button(label="重置", **wide)
        self.search_button.on_click(lambda _: self.refresh(offset=0))
        self.reset_button.on_click(lambda _: self._reset())
        self.q.param.watch(lambda _: self.refresh(offset=0), "enter_pressed")
        # ---- inbox
        self.tiles = pn.pane.HTML("", css_classes=["gg-inbox-tiles"], stylesheets=[TILES_CSS], **wide)
        self.inbox_info = pn.pane.Markdown("", css_classes=["gg-inbox-info"])
        self.inbox_table = self._table("gg-inbox-table", INBOX_COLUMNS, pagination="local")
        self.inbox_items: list[dict] = []
        # ---- all events
        self.all_table = self._table("gg-all-table", COLUMNS, pagination=None)
        self.all_items: list[dict] = []
        self.offset, self.total = 0, 0
        self.previous_button = pn.widgets.Button(label="上一页", width=90, disabled=True)
        self.next_button = pn.widgets.Button(label="下一页", width=90, disabled=True)
        self.page_info = pn.pane.Markdown("", css_classes=["gg-page-info"])
        self.previous_button.on_click(lambda _: self.refresh_all(max(0, self.offset - PAGE_SIZE)))
        self.next_button.on_click(lambda _: self.refresh_all(self.offset + PAGE_SIZE))
        # ---- detail and report
        self.detail = EventDetail(user, self.connect, self.names, units, tile_url=tile_url,
                                  on_change=lambda: self.refresh())
        # The report form (and its map) is built when its tab is first opened: most visits never do.
        self.report: ReportForm | None = None
        self._report_tab = pn.Column(**wide)
        self._units, self._tile_url = units, tile_url
        tabs = [("我的待办", pn.Column(self.tiles, self.inbox_info, self.inbox_table, **wide)),
                ("全部事件", pn.Column(self.all_table, pn.Row(self.previous_button, self.next_button,
                                                            self.page_info), **wide)),
                ("事件详情", self.detail)]
        if self.may_report:
            tabs.append(("上报事件", self._report_tab))
        self.tabs = pn.Tabs(*tabs, **wide)
        self.tabs.param.watch(self._tab_opened, "active")
        self.inbox_table.param.watch(lambda e: self._picked(e, self.inbox_items), "selection")
        self.all_table.param.watch(lambda e: self._picked(e, self.all_items), "selection")

        self.refresh()
        wanted = _arg("id")
        if wanted:
            self.open(int(wanted) if wanted.isdigit() else 0)

    def connect(self):
        return scoped_connection(self.settings, self.user)

    @staticmethod
    def _table(css: str, columns: dict[str, str], pagination: str | None) -> pn.widgets.Tabulator:
        return pn.widgets.Tabulator(
            pd.DataFrame(columns=list(columns)), show_index=False, disabled=True, selectable=1,
            pagination=pagination, page_size=PAGE_SIZE, titles=columns,
            formatters={"light": {"type": "html"}},
            sizing_mode="stretch_width", layout="fit_data_fill", css_classes=[css], height=560)

    # ------------------------------------------------------------ filters
    def _period(self) -> tuple[dt.date | None, dt.date | None]:
        """The period picked: from the first day, to the day after the last (exclusive)."""
        to = self.date_to.value + dt.timedelta(days=1) if self.date_to.value else None
        return self.date_from.value, to

    def _reset(self) -> None:
        for widget in (self.status, self.type, self.light, self.q):
            widget.value = ""
        self.date_from.value = self.date_to.value = None
        self.refresh(offset=0)

    def _matches(self, e: dict) -> bool:
        """The side panel's filters, on one inbox item (the inbox is one user's, small: filtered here)."""
        start, end = self._period()
        day = e["reported_at"].astimezone(BEIJING).date()
        q = self.q.value.strip()
        return ((not self.status.value or e["status"] == self.status.value)
                and (not self.type.value or e["type"].startswith(self.type.value))
                and (not self.light.value or e["light"] == self.light.value)
                and (start is None or day >= start) and (end is None or day < end)
                and (not q or q in e["number"] or q in e["title"]))

    # ------------------------------------------------------------ the lists
    def refresh(self, offset: int | None = None) -> None:
        self.refresh_inbox()
        self.refresh_all(self.offset if offset is None else offset)

    def _frame(self, items: list[dict], columns: dict[str, str] = COLUMNS) -> pd.DataFrame:
        return pd.DataFrame([{
            "number": e["number"], "title": e["title"], "type_name": e["type_name"] or e["type"],
            "urgency": self.names.get(("event_urgency", e["urgency"]), e["urgency"]),
            "status_name": e["status_name"], "holder_name": e["holder_name"],
            "due": beijing(e["due_at"]) if e["due_at"] else "—", "light": light_cell(e["light"]),
            "todo": "、".join(a["name"] for a in e.get("actions", ())),
        } for e in items], columns=list(columns))

    def refresh_inbox(self) -> None:
        with self.connect() as conn:
            box = events.inbox(conn, events.actor_for(conn, self.user), limit=INBOX_LIMIT)
        self.tiles.object = tiles_html(box["counts"], box["total"])
        self.inbox_items = [e for e in box["items"] if self._matches(e)]
        self.inbox_table.selection = []
        self.inbox_table.value = self._frame(self.inbox_items, INBOX_COLUMNS)
        shown = len(self.inbox_items)
        self.inbox_info.object = (f"待办 {box['total']} 件" + (f"，筛选后 {shown} 件" if shown != box["total"]
                                                                else "") + "，按时限先后排列。")

    def refresh_all(self, offset: int) -> None:
        start, end = self._period()
        try:
            with self.connect() as conn:
                page = events.list_events(conn, status=[self.status.value] if self.status.value else None,
                                          type=self.type.value or None, light=self.light.value or None,
                                          reported_from=start, reported_to=end, q=self.q.value or None,
                                          limit=PAGE_SIZE, offset=offset)
        except events.EventError as error:
            self.page_info.object = str(error)
            return
        self.offset, self.total, self.all_items = page.offset, page.total, page.items
        self.all_table.selection = []
        self.all_table.value = self._frame(page.items)
        pages = max(1, -(-page.total // PAGE_SIZE))
        self.page_info.object = f"第 {offset // PAGE_SIZE + 1} / {pages} 页，共 {page.total} 条"
        self.previous_button.disabled = offset == 0
        self.next_button.disabled = offset + PAGE_SIZE >= page.total

    # ------------------------------------------------------------ opening
    def _tab_opened(self, event) -> None:
        if event.new == REPORT_TAB and self.may_report and self.report is None:
            self.report = ReportForm(self.user, self.connect, self.names, self._units,
                                     tile_url=self._tile_url, on_reported=self._reported)
            self._report_tab.objects = [self.report]

    def _picked(self, event, items: list[dict]) -> None:
        if event.new and event.new[0] < len(items):
            self.open(items[event.new[0]]["id"])

    def open(self, event_id: int) -> None:
        self.detail.open(event_id)
        self.tabs.active = DETAIL_TAB

    def _reported(self, event_id: int) -> None:
        self.detail.open(event_id, message=("已上报。", "success"))
        self.tabs.active = DETAIL_TAB
        self.refresh()

    # ------------------------------------------------------------ the page
    def view(self) -> pn.template.BaseTemplate:
        filters = pn.Column(
            pn.pane.Markdown("**筛选**"), self.status, self.type, self.light, self.date_from, self.date_to,
            self.q, pn.Row(self.search_button, self.reset_button),
            pn.pane.Markdown(f"<small>当前用户：{self.user.display_name}</small>"),
            sizing_mode="stretch_width")
        return theme.page("事件办理", main=[self.tabs], sidebar=[filters])


def events_page(settings: Settings, user: Any, *, tile_url: str | None = None) -> pn.viewable.Viewable:
    return EventDesk(settings, user, tile_url=tile_url).view()
