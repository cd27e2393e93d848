"""大数据统计分析: the statistics page. One area of the viewer's territory (chosen in the selector, or by
clicking a bar of an area chart to drill into it) and a period; for them every figure of
:mod:`layers.statistics` as a chart (PNG through the chart's save tool), its table, and an XLSX download.

The figures come through the viewer's scoped connection, so they follow the viewer's scope; the special
population chart has only the categories the viewer holds ``special:<category>`` for.
"""

from __future__ import annotations

import datetime as dt
import html
import io
from typing import Any

import panel as pn
from bokeh.models import ColumnDataSource, FactorRange, HoverTool
from bokeh.palettes import Category10_10
from bokeh.plotting import figure as bokeh_figure
from bokeh.transform import dodge

from dashboards import theme
from gis.security.scope import scoped_connection
from gis.settings import Settings
from layers import statistics
from layers.events.calendar import beijing_today
from layers.statistics import Figure

# Figures whose rows are child areas: a click on a bar drills into that area.
DRILLABLE = ("population", "teams", "special", "closure")
DRILL_LEVELS = ("district", "street", "community")   # a grid has no children to count under
HELP = "点击区域柱形可下钻到下一级；图表右上角的保存按钮导出 PNG。"
LEVEL_NAMES = {"province": "省", "city": "市", "district": "区县", "street": "街道", "community": "社区",
               "grid": "网格"}


def _percent(value: Any) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def table_html(fig: Figure) -> str:
    """The figure's table (what the XLSX holds), rates as percentages."""
    head = "".join(f"<th>{html.escape(label)}</th>" for _, label in fig.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_percent(r.get(k)) if k == 'rate' else html.escape(str(r.get(k, '')))}</td>"
                         for k, _ in fig.columns) + "</tr>" for r in fig.rows)
    empty = f'<tr><td colspan="{len(fig.columns)}">暂无数据</td></tr>' if not fig.rows else ""
    return (f'<table class="gg-stat-table" data-figure="{fig.key}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}{empty}</tbody></table>")


def _data(fig: Figure) -> dict[str, list]:
    data: dict[str, list] = {"name": [str(r[fig.label]) for r in fig.rows],
                             "path": [r.get("path") or "" for r in fig.rows]}
    for key in fig.values:
        data[key] = [r.get(key) if r.get(key) is not None else 0 for r in fig.rows]
    return data


class FigureCard:
    """One figure: chart, table and XLSX download, updated in place when the area or period changes."""

    def __init__(self, fig: Figure, on_drill):
        self.fig = fig
        self.source = ColumnDataSource(_data(fig))
        self.chart = self._chart(fig)
        self.table = pn.pane.HTML(table_html(fig), stylesheets=[theme.TABLE_CSS], sizing_mode="stretch_width",
                                  css_classes=[f"gg-table-{fig.key}"])
        self.download = pn.widgets.FileDownload(
            callback=lambda: io.BytesIO(self.fig.xlsx()), filename=f"{fig.title}.xlsx",
            label="下载表格（XLSX）", embed=False, css_classes=[f"gg-xlsx-{fig.key}"])
        if fig.key in DRILLABLE:
            self.source.selected.on_change("indices", lambda attr, old, new: self._tapped(new, on_drill))
        self.view = pn.Card(pn.pane.Bokeh(self.chart, sizing_mode="stretch_width"), self.table, self.download,
                            title=fig.title, collapsible=False, sizing_mode="stretch_width",
                            css_classes=["gg-stat-card", f"gg-card-{fig.key}"])

    def _chart(self, fig: Figure):
        names = self.source.data["name"] or ["—"]
        chart = bokeh_figure(x_range=FactorRange(factors=names), height=300, sizing_mode="stretch_width",
                             tools="tap,save" if fig.key in DRILLABLE else "save", toolbar_location="right",
                             title=fig.title)
        labels = dict(fig.columns)
        colors = list(Category10_10)
        if fig.key == "events_by_month":
            for i, key in enumerate(fig.values):
                chart.line("name", key, source=self.source, color=colors[i], line_width=2,
                           legend_label=labels[key])
                chart.scatter("name", key, source=self.source, color=colors[i], size=6)
        elif fig.key == "special" and fig.values:
            chart.vbar_stack(fig.values, x="name", width=0.7, source=self.source,
                             color=colors[:len(fig.values)], legend_label=[labels[k] for k in fig.values])
        elif len(fig.values) > 1:
            width = 0.8 / len(fig.values)
            for i, key in enumerate(fig.values):
                offset = (i - (len(fig.values) - 1) / 2) * width
                chart.vbar(x=dodge("name", offset, range=chart.x_range), top=key, width=width * 0.9,
                           source=self.source, color=colors[i], legend_label=labels[key])
        elif fig.values:
            chart.vbar(x="name", top=fig.values[0], width=0.7, source=self.source, color=colors[0])
        if fig.key == "closure":
            chart.y_range.end = 1.0
        chart.y_range.start = 0
        chart.add_tools(HoverTool(tooltips=[("", "@name"), *((labels[k], f"@{k}") for k in fig.values)]))
        chart.xaxis.major_label_orientation = 0.6 if len(self.source.data["name"]) > 6 else 0
        if chart.legend:
            chart.legend.location = "top_right"
            chart.legend.click_policy = "hide"
        chart.toolbar.logo = None
        return chart

    def update(self, fig: Figure) -> None:
        self.fig = fig
        data = _data(fig)
        self.chart.x_range.factors = data["name"] or ["—"]
        self.source.data = data
        self.source.selected.indices = []
        self.table.object = table_html(fig)

    def _tapped(self, indices: list[int], on_drill) -> None:
        if len(indices) == 1:
            path = self.source.data["path"][indices[0]]
            if path:
                on_drill(path)


class StatisticsPage:
    def __init__(self, settings: Settings, user: Any):
        self.settings, self.user = settings, user
        with scoped_connection(settings, user) as conn:
            self.areas = self._areas(conn)
        today = beijing_today()
        self.area = pn.widgets.Select(name="统计区域", options={label: path for path, label in self.areas},
                                      value=str(user.scope), sizing_mode="stretch_width",
                                      css_classes=["gg-stat-area"])
        self.up = pn.widgets.Button(label="返回上一级", sizing_mode="stretch_width",
                                    css_classes=["gg-stat-up"])
        self.period = pn.widgets.DateRangePicker(name="事件时段", value=(dt.date(today.year, 1, 1), today),
                                                 sizing_mode="stretch_width")
        self.message = pn.pane.HTML("", css_classes=["gg-stat-message"])
        self.heading = pn.pane.Markdown("", css_classes=["gg-stat-heading"])
        self.cards = {f.key: FigureCard(f, self.drill) for f in self._figures(str(user.scope))}
        self._show_heading(str(user.scope))
        self.area.param.watch(lambda e: self.refresh(), "value")
        self.period.param.watch(lambda e: self.refresh(), "value")
        self.up.on_click(lambda e: self._go_up())

    def _areas(self, conn) -> list[tuple[str, str]]:
        """The viewer's unit and every unit under it that has units under it (grids have none)."""
        top = statistics.area(conn, str(self.user.scope))
        rows = [top]
        frontier = [top]
        while frontier:
            unit = frontier.pop(0)
            if unit["level"] not in DRILL_LEVELS:
                continue
            for child in statistics.children(conn, unit["path"]):
                if child["level"] in DRILL_LEVELS:
                    rows.append(child)
                    frontier.append(child)
        rows.sort(key=lambda r: r["path"])
        depth = top["path"].count(".")
        return [(r["path"], "　" * (r["path"].count(".") - depth)
                 + f"{r['name']}（{LEVEL_NAMES.get(r['level'], '')}）") for r in rows]

    def _figures(self, path: str) -> list[Figure]:
        start, end = self.period.value if self.period.value else (dt.date(2000, 1, 1), beijing_today())
        with scoped_connection(self.settings, self.user) as conn:
            return statistics.all_figures(conn, statistics.check_area(path, str(self.user.scope)), self.user,
                                          start, end)

    def _show_heading(self, path: str) -> None:
        label = next((lbl for p, lbl in self.areas if p == path), path).strip("　")
        start, end = self.period.value
        self.heading.object = f"### {label}　{start:%Y-%m-%d} 至 {end:%Y-%m-%d}"

    def refresh(self) -> None:
        path = self.area.value
        try:
            figures = self._figures(path)
        except statistics.StatisticsError as error:
            self.message.object = f'<div class="alert alert-warning">{html.escape(str(error))}</div>'
            return
        self.message.object = ""
        for fig in figures:
            self.cards[fig.key].update(fig)
        self._show_heading(path)

    def drill(self, path: str) -> None:
        """Show the area ``path`` (a bar was clicked): only areas in the selector (not grids)."""
        if path in dict(self.areas):
            self.area.value = path
        else:
            self.message.object = '<div class="alert alert-info">已是最小统计单元（网格），无法继续下钻</div>'

    def _go_up(self) -> None:
        path = self.area.value
        if path != str(self.user.scope) and "." in path:
            self.area.value = path.rsplit(".", 1)[0]

    def view(self) -> pn.template.BootstrapTemplate:
        grid = pn.GridBox(*(card.view for card in self.cards.values()), ncols=2, sizing_mode="stretch_width")
        return theme.page("大数据统计分析", main=[self.heading, self.message, grid],
                          sidebar=[self.area, self.up, self.period,
                                   pn.pane.Markdown(HELP)])


def statistics_page(settings: Settings, user: Any, *, tile_url: str | None = None) -> pn.viewable.Viewable:
    with scoped_connection(settings, user) as conn:
        try:
            statistics.area(conn, str(user.scope))
        except statistics.StatisticsError:
            return theme.notice_page("大数据统计分析", "暂无区划数据", "数据库中还没有本辖区的区划。")
    return StatisticsPage(settings, user).view()
