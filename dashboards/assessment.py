"""考核督办: the assessment ranking and the half-monthly dispute screening (issues #5, #7).

A period (本半月, 上半月, 本月, 本季度, or custom dates) and two tabs:

- 考核排名 — per grid worker, unit (grid, community or street) or department: the figures, the points
  and the rank; rows with fewer events than the settings' minimum are listed, marked 不参与排名;
- 矛盾纠纷排查 — per community: screened, resolved, escalated, outstanding, by kind, with the
  "小事不出格、大事不出社区" shares and a bar chart by dispute kind;
- 超期督办 — the open events in the viewer's scope past their deadline (red light), the longest overdue
  first; a viewer the workflow lets supervise (``supervise`` / ``card``) issues 督办 or a manual 红黄牌
  from a row, through :func:`layers.events.act` at the version shown, so the rules and refusals are
  the service's own.

Both come from the services the API uses (:mod:`layers.events.assessment`, :mod:`layers.events.screening`)
in the viewer's scoped transaction, and download as the API's XLSX; a download is written to the access
log like any export. ``/assessment?start=YYYY-MM-DD&end=YYYY-MM-DD`` opens a custom period.
"""

from __future__ import annotations

import datetime as dt
import html
from typing import Any

import pandas as pd
import panel as pn
from bokeh.models import ColumnDataSource
from bokeh.plotting import figure
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from dashboards import theme
from gis.errors import ServiceError
from gis.security import audit
from gis.security.scope import scoped_connection
from gis.settings import Settings
from layers import events
from layers.events import assessment, calendar, period, screening
from layers.events.calendar import BEIJING
from layers.events.workflow import OPEN, TRANSITIONS

_UNRANKED = "不参与排名"


def _arg(name: str) -> str | None:
    values = pn.state.session_args.get(name) if pn.state.session_args else None
    return values[0].decode("utf-8", "replace") if values else None


def _date_arg(name: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(_arg(name) or "")
    except ValueError:
        return None


def _height(rows: int) -> int:
    """Tall enough for the rows (a header and ~36 px a row), up to a screenful; then it scrolls."""
    return max(120, min(560, 48 + 36 * rows))


def _frame(header: list[str], rows: list[list]) -> pd.DataFrame:
    # Object columns: a rate may be None (nothing to divide by) and shows as blank, not NaN.
    return pd.DataFrame(rows, columns=header, dtype=object).where(lambda f: f.notna(), "")


class AssessmentPage:
    """One viewer's page: the period, the two tabs, the downloads."""

    def __init__(self, settings: Settings, user: Any):
        self.settings, self.user = settings, user
        self.model = assessment.ScoringModel.with_overrides(settings.assessment_weights)
        today = dt.datetime.now(BEIJING).date()
        start, end = _date_arg("start"), _date_arg("end")
        initial = period.half_month(today)
        self.preset = pn.widgets.Select(name="统计时段", options={v: k for k, v in period.PRESETS.items()},
                                        value="custom" if start and end else "this_half_month",
                                        sizing_mode="stretch_width")
        self.start = pn.widgets.DatePicker(name="开始日期", value=start or initial.start,
                                           sizing_mode="stretch_width")
        self.end = pn.widgets.DatePicker(name="结束日期", value=end or initial.end,
                                         sizing_mode="stretch_width")
        self.by = pn.widgets.RadioButtonGroup(
            name="考核对象", options={v: k for k, v in assessment.DIMENSIONS.items()}, value="worker",
            button_type="primary", button_style="outline")
        self.level = pn.widgets.Select(name="单位层级",
                                       options={v: k for k, v in assessment.UNIT_LEVELS.items()},
                                       value="community", visible=False, width=160)
        self.message = pn.pane.Alert("", alert_type="danger", visible=False, sizing_mode="stretch_width")
        self.period_label = pn.pane.Markdown("", css_classes=["gg-period"])
        self.ranking = pn.widgets.Tabulator(
            pd.DataFrame(), show_index=False, disabled=True, pagination=None, sizing_mode="stretch_width",
            height=520, layout="fit_data_fill", css_classes=["gg-ranking"])
        self.rule = pn.pane.Markdown("", css_classes=["gg-ranking-rule"])
        self.screening_table = pn.widgets.Tabulator(
            pd.DataFrame(), show_index=False, disabled=True, pagination=None, sizing_mode="stretch_width",
            height=320, layout="fit_data_fill", css_classes=["gg-screening"])
        self.share = pn.pane.Markdown("", css_classes=["gg-share"], stylesheets=[theme.TABLE_CSS],
                                      sizing_mode="stretch_width")
        self.kinds = ColumnDataSource({"kind": [], "screened": [], "resolved": []})
        self.chart = pn.pane.Bokeh(self._chart([]), sizing_mode="stretch_width")
        self.download_ranking = pn.widgets.FileDownload(
            callback=self._ranking_xlsx, filename="考核排名.xlsx", label="下载考核排名（XLSX）",
            button_type="success", embed=False)
        self.download_screening = pn.widgets.FileDownload(
            callback=self._screening_xlsx, filename="矛盾纠纷排查.xlsx", label="下载排查表（XLSX）",
            button_type="success", embed=False)
        self.preset.param.watch(lambda e: self._apply_preset(), "value")
        for widget in (self.start, self.end):
            widget.param.watch(lambda e: self._dates_changed(), "value")
        self.by.param.watch(lambda e: self._by_changed(), "value")
        self.level.param.watch(lambda e: self.load_ranking(), "value")
        self._applying = self._styled = False
        self._init_overdue()
        self.load()
        self.load_overdue()     # not the period's: what is overdue now

    # -------------------------------------------------------------- the period
    def _apply_preset(self) -> None:
        if self.preset.value == "custom":
            return
        chosen = period.preset(self.preset.value, dt.datetime.now(BEIJING).date())
        self._applying = True
        try:
            self.start.value, self.end.value = chosen.start, chosen.end
        finally:
            self._applying = self._styled = False
        self._init_overdue()
        self.load()
        self.load_overdue()     # not the period's: what is overdue now

    def _dates_changed(self) -> None:
        if self._applying:
            return
        self.preset.value = "custom"
        self.load()

    def _by_changed(self) -> None:
        self.level.visible = self.by.value == "unit"
        self.load_ranking()

    def _period(self) -> period.Period | None:
        try:
            chosen = period.period(self.start.value, self.end.value)
        except period.PeriodError as error:
            self.message.object, self.message.visible = str(error), True
            return None
        self.message.visible = False
        self.period_label.object = f"**统计时段：{chosen.label}**"
        return chosen

    # -------------------------------------------------------------- loading
    def _conn(self):
        return scoped_connection(self.settings, self.user)

    def _assessment(self, conn, chosen: period.Period) -> dict:
        return assessment.assessment(conn, self.user.scope_path, chosen, by=self.by.value,
                                     level=self.level.value, model=self.model,
                                     min_cases=self.settings.assessment_min_cases)

    def load(self) -> None:
        self.load_ranking()
        self.load_screening()

    def load_ranking(self) -> None:
        chosen = self._period()
        if chosen is None:
            return
        with self._conn() as conn:
            report = self._assessment(conn, chosen)
        header, rows = assessment.table(report)
        frame = _frame(header, rows)
        self.ranking.param.update(value=frame, height=_height(len(rows)))
        if not self._styled:  # the styler's steps are kept across new values: add them once
            self.ranking.style.apply(
                lambda row: ["color: #8a8f98" if row["排名"] == _UNRANKED else "" for _ in row], axis=1)
            self._styled = True
        ranked = sum(r["ranked"] for r in report["rows"])
        self.rule.object = (f"共 {len(report['rows'])} 个，参与排名 {ranked} 个。事件数少于 "
                            f"{report['min_cases']} 件的不参与排名（标“{_UNRANKED}”）。")

    def load_screening(self) -> None:
        chosen = self._period()
        if chosen is None:
            return
        try:
            with self._conn() as conn:
                report = screening.screening(conn, self.user.scope_path, chosen)
        except ServiceError as error:
            self.message.object, self.message.visible = str(error), True
            return
        header, rows = screening.community_table(report)
        self.screening_table.param.update(value=_frame(header, rows), height=_height(len(rows)))
        self.share.object = self._share_md(report)
        self.chart.object = self._chart(report["by_kind"])

    # -------------------------------------------------------------- 超期督办
    _OVERDUE_COLUMNS = ["编号", "标题", "类型", "当前承办", "办结时限", "超期（工作日）", "督办次数",
                        "待回复督办", "黄牌", "红牌"]

    def _init_overdue(self) -> None:
        self.overdue: list[dict] = []
        with self._conn() as conn:
            actor = events.actor_for(conn, self.user)
        # Buttons only for a viewer whose role may supervise at all; whether this viewer stands above
        # a given event's holder is the service's decision when the form is sent.
        self.can_supervise = {
            key: actor.role in TRANSITIONS[key].roles and actor.has(TRANSITIONS[key].permission)
            for key in ("supervise", "card")}
        buttons = {}
        if self.can_supervise["supervise"]:
            buttons["督办"] = "<button class='gg-supervise-button'>督办</button>"
        if self.can_supervise["card"]:
            buttons["红黄牌"] = "<button class='gg-card-button'>红黄牌</button>"
        self.overdue_table = pn.widgets.Tabulator(
            pd.DataFrame(columns=self._OVERDUE_COLUMNS), show_index=False, disabled=True, pagination=None,
            sizing_mode="stretch_width", height=320, layout="fit_data_fill", css_classes=["gg-overdue"],
            formatters={"编号": {"type": "html"}}, buttons=buttons)
        self.overdue_table.on_click(self._overdue_clicked)
        self.overdue_note = pn.pane.Markdown("", css_classes=["gg-overdue-note"])
        self.overdue_message = pn.pane.Alert("", alert_type="danger", visible=False,
                                             sizing_mode="stretch_width", css_classes=["gg-overdue-message"])
        self.overdue_form = pn.Column(sizing_mode="stretch_width", css_classes=["gg-overdue-form"])

    def _say(self, text: str, kind: str = "danger") -> None:
        self.overdue_message.param.update(object=text, alert_type=kind, visible=bool(text))

    def load_overdue(self) -> None:
        now = dt.datetime.now(dt.UTC)
        try:
            with self._conn() as conn:
                page = events.list_events(conn, status=OPEN, light="red", limit=events.service.MAX_PAGE,
                                          now=now)
                ids = [e["id"] for e in page.items]
                counts = dict(conn.execute(text(
                    "SELECT event_id, count(*) FROM event_supervision WHERE event_id = ANY(:ids)"
                    " GROUP BY event_id"), {"ids": ids}).all()) if ids else {}
        except ServiceError as error:
            self._say(str(error))
            return
        for e in page.items:
            e["days_overdue"] = calendar.working_days_between(e["due_at"], now)
            e["supervisions"] = counts.get(e["id"], 0)
        self.overdue = sorted(page.items, key=lambda e: e["due_at"])   # the longest overdue first
        rows = [[f'<a href="/events?id={e["id"]}">{html.escape(e["number"])}</a>', e["title"],
                 e["type_name"] or e["type"], e["holder_name"],
                 e["due_at"].astimezone(BEIJING).strftime("%Y-%m-%d %H:%M"), e["days_overdue"],
                 e["supervisions"], e["open_supervisions"], e["yellow_cards"], e["red_cards"]]
                for e in self.overdue]
        self.overdue_table.param.update(value=pd.DataFrame(rows, columns=self._OVERDUE_COLUMNS, dtype=object),
                                        height=_height(len(rows)))
        more = f"（仅列出最早超期的 {len(rows)} 件）" if page.total > len(rows) else ""
        self.overdue_note.object = (f"辖区内超期未办结事件 **{page.total}** 件{more}，按超期时长排序；"
                                    "点击编号查看详情。")

    def _overdue_clicked(self, event) -> None:
        action = {"督办": "supervise", "红黄牌": "card"}.get(event.column)
        if action and 0 <= event.row < len(self.overdue):
            self.open_overdue_form(self.overdue[event.row], action)

    def open_overdue_form(self, item: dict, action: str) -> None:
        """The small form for 督办 (a note) or 红黄牌 (a colour and a reason) on one overdue event."""
        self._say("")
        color = pn.widgets.Select(label="牌色", options={"黄牌": "yellow", "红牌": "red"}, value="yellow",
                                  width=160)
        label = "督办意见（必填）" if action == "supervise" else "亮牌理由（必填）"
        note = pn.widgets.TextAreaInput(label=label, height=80, max_length=2000, sizing_mode="stretch_width",
                                        css_classes=["gg-overdue-text"])
        name = TRANSITIONS[action].zh if action == "supervise" else "红黄牌"
        submit = pn.widgets.Button(label=f"确定{name}", color="primary", width=160)
        cancel = pn.widgets.Button(label="取消", width=80)
        submit.on_click(lambda _: self.submit_overdue(item, action, note.value, color.value))
        cancel.on_click(lambda _: setattr(self.overdue_form, "objects", []))
        heading = pn.pane.Markdown(f"**{name}** · {html.escape(item['number'])} {html.escape(item['title'])}"
                                   f" · 依据第 {item['version']} 版")
        self.overdue_form.objects = [heading, *([color] if action == "card" else []), note,
                                     pn.Row(submit, cancel)]

    def submit_overdue(self, item: dict, action: str, note: str, color: str | None) -> None:
        """Send it as seen at the version listed; a conflict or refusal is the service's Chinese message."""
        request = events.ActionRequest(version=item["version"], comment=(note or "").strip() or None,
                                       color=color if action == "card" else None)
        try:
            with self._conn() as conn:
                events.act(conn, events.actor_for(conn, self.user), item["id"], action, request, full=False)
        except DBAPIError as error:
            # Row-level security refusing a write the workflow allowed: still a refusal, said in Chinese.
            if getattr(error.orig, "sqlstate", None) != "42501":
                raise
            self._say("无权操作该事件 (refused by row-level security)")
            return
        except ServiceError as error:
            self._say(str(error))
            if isinstance(error, events.VersionConflict):
                self.overdue_form.objects = []
                self.load_overdue()
            return
        self.overdue_form.objects = []
        done = "已督办" if action == "supervise" else f"已亮{'黄' if color == 'yellow' else '红'}牌"
        self._say(f"{item['number']}：{done}", "success")
        self.load_overdue()

    @staticmethod
    def _share_md(report: dict) -> str:
        def percent(value):
            return "—" if value is None else f"{value:.1f}%"

        lines = ["| 范围 | 结案数 | 网格内结案 | 社区内结案 | 小事不出格 | 大事不出社区 |",
                 "|:--|--:|--:|--:|--:|--:|"]
        for s in report["share"]:
            lines.append(f"| {s['name']} | {s['closed']} | {s['closed_at_grid']} "
                         f"| {s['closed_in_community']} | {percent(s['grid_share'])} "
                         f"| {percent(s['community_share'])} |")
        return "\n".join(lines)

    @staticmethod
    def _chart(by_kind: list[dict]):
        names = [k["name"] for k in by_kind]
        plot = figure(x_range=names or [""], height=300, title="按纠纷类型：排查数与化解数",
                      toolbar_location=None, sizing_mode="stretch_width")
        source = ColumnDataSource({"kind": names, "screened": [k["screened"] for k in by_kind],
                                   "resolved": [k["resolved"] for k in by_kind]})
        plot.vbar(x="kind", top="screened", width=0.8, source=source, color="#1f6fd1", legend_label="排查数")
        plot.vbar(x="kind", top="resolved", width=0.5, source=source, color="#16a34a", legend_label="化解数")
        plot.xaxis.major_label_orientation = 0.8
        plot.y_range.start = 0
        plot.legend.location = "top_right"
        return plot

    # -------------------------------------------------------------- downloads (logged as exports)
    def _ranking_xlsx(self):
        import io

        chosen = self._period()
        if chosen is None:
            return None
        with self._conn() as conn:
            report = self._assessment(conn, chosen)
            audit.record(conn, "export", target_table="report:assessment", detail={
                "format": "xlsx", "start": chosen.start, "end": chosen.end, "by": report["by"],
                "level": report["level"], "rows": len(report["rows"]), "page": "assessment"})
        self.download_ranking.filename = assessment.filename(report)
        return io.BytesIO(assessment.to_xlsx(report))

    def _screening_xlsx(self):
        import io

        chosen = self._period()
        if chosen is None:
            return None
        with self._conn() as conn:
            report = screening.screening(conn, self.user.scope_path, chosen)
            audit.record(conn, "export", target_table="report:dispute_screening", detail={
                "format": "xlsx", "start": chosen.start, "end": chosen.end, "unit": report["unit"]["code"],
                "rows": len(report["communities"]), "page": "assessment"})
        self.download_screening.filename = screening.filename(report)
        return io.BytesIO(screening.to_xlsx(report))

    # -------------------------------------------------------------- layout
    def view(self) -> pn.template.BootstrapTemplate:
        controls = pn.Column(self.preset, self.start, self.end, self.message, sizing_mode="stretch_width")
        ranking = pn.Column(pn.Row(self.by, self.level), self.rule, self.ranking, self.download_ranking,
                            sizing_mode="stretch_width")
        disputes = pn.Column(self.screening_table, self.share, self.chart, self.download_screening,
                             sizing_mode="stretch_width")
        overdue = pn.Column(self.overdue_note, self.overdue_message, self.overdue_table, self.overdue_form,
                            sizing_mode="stretch_width")
        tabs = pn.Tabs(("考核排名", ranking), ("矛盾纠纷排查", disputes), ("超期督办", overdue),
                       sizing_mode="stretch_width")
        return theme.page("考核督办", main=[pn.Column(self.period_label, tabs, sizing_mode="stretch_width")],
                          sidebar=[controls])


def assessment_page(settings: Settings, user: Any, *, tile_url: str | None = None) -> pn.viewable.Viewable:
    return AssessmentPage(settings, user).view()
