"""Track playback (轨迹回放): a worker's day on the map, with a time slider, play/pause and speed.

Pick a day and a worker (the workers with fixes that day, within the viewer's scope). The track is
drawn whole; a marker moves along it as the slider moves — by hand, or by the play button at the
chosen speed — interpolated between fixes (:func:`layers.patrol.position_at`). Stops, the events the
worker reported and their diary entries are drawn on the track; the side panel gives distance, stops
with their dwell times, and the share of their grid covered.

``/playback?worker=<user id>&day=YYYY-MM-DD`` opens a given day.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import holoviews as hv
import panel as pn
from bokeh.models import ColumnDataSource, HoverTool

from dashboards import theme
from dashboards.map import TerritoryMap
from dashboards.wall import mercator
from gis.security.scope import scoped_connection
from gis.settings import Settings
from layers import patrol, territory
from layers.events.calendar import BEIJING

TICK_MS = 250
SPEEDS = {"×60": 60, "×300": 300, "×900": 900, "×3600": 3600}


def _arg(name: str) -> str | None:
    values = pn.state.session_args.get(name) if pn.state.session_args else None
    return values[0].decode("utf-8", "replace") if values else None


def _hhmm(moment: dt.datetime) -> str:
    return moment.astimezone(BEIJING).strftime("%H:%M:%S")


class Playback:
    """One viewer's playback: the widgets, the overlays' sources, the loaded day."""

    def __init__(self, settings: Settings, user: Any, *, tile_url: str | None = None):
        self.settings, self.user = settings, user
        self.data: dict[str, Any] | None = None
        self._sources: dict[str, list[ColumnDataSource]] = {k: [] for k in
                                                            ("track", "stops", "events", "diary", "now")}
        self._timer = None
        with self._conn() as conn:
            units = territory.territory_units(conn, within_path=user.scope)
        today = dt.datetime.now(BEIJING).date()
        try:
            day = dt.date.fromisoformat(_arg("day") or "") if _arg("day") else today
        except ValueError:
            day = today
        self.day = pn.widgets.DatePicker(name="日期", value=day, end=today, sizing_mode="stretch_width")
        self.worker = pn.widgets.Select(name="网格员", options={}, sizing_mode="stretch_width")
        self.slider = pn.widgets.IntSlider(name="时间", start=0, end=1, value=0, step=5,
                                           sizing_mode="stretch_width", disabled=True)
        self.play = pn.widgets.Toggle(name="▶ 播放", button_type="primary", disabled=True)
        self.speed = pn.widgets.Select(name="速度", options=SPEEDS, value=300, width=110)
        self.clock = pn.pane.Markdown("", css_classes=["gg-clock"])
        self.summary = pn.pane.Markdown("请选择日期和网格员。", sizing_mode="stretch_width",
                                        css_classes=["gg-summary"], stylesheets=[theme.TABLE_CSS])
        self.map = TerritoryMap(units, tile_url=tile_url, overlays=self._overlays())
        self.day.param.watch(lambda e: self._list_workers(), "value")
        self.worker.param.watch(lambda e: self.load(), "value")
        self.slider.param.watch(lambda e: self._move(), "value")
        self.play.param.watch(self._toggle, "value")
        self._list_workers(preselect=_arg("worker"))

    def _conn(self):
        return scoped_connection(self.settings, self.user)

    # -------------------------------------------------------------- overlays
    def _keep(self, name: str):
        def hook(plot, element):
            source = plot.handles.get("source")
            if source is not None and source not in self._sources[name]:
                self._sources[name].append(source)
        return hook

    def _overlays(self) -> list[hv.Element]:
        track = hv.Path([{"x": [], "y": []}]).opts(color="#1f6fd1", line_width=3, alpha=0.8,
                                                   hooks=[self._keep("track")])
        stops = hv.Points({"x": [], "y": [], "label": []}, ["x", "y"], ["label"]).opts(
            color="#f59e0b", size=12, marker="square", hooks=[self._keep("stops")],
            tools=[HoverTool(tooltips=[("停留", "@label")], description="停留点")])
        events = hv.Points({"x": [], "y": [], "label": []}, ["x", "y"], ["label"]).opts(
            color="#dc2626", size=11, marker="diamond", hooks=[self._keep("events")],
            tools=[HoverTool(tooltips=[("上报事件", "@label")], description="事件")])
        diary = hv.Points({"x": [], "y": [], "label": []}, ["x", "y"], ["label"]).opts(
            color="#16a34a", size=10, marker="circle_cross", hooks=[self._keep("diary")],
            tools=[HoverTool(tooltips=[("民情日记", "@label")], description="日记")])
        now = hv.Points({"x": [], "y": []}, ["x", "y"]).opts(
            color="#111827", size=16, marker="triangle", line_color="white", hooks=[self._keep("now")])
        return [track, stops, events, diary, now]

    def _set(self, name: str, data: dict) -> None:
        for source in self._sources[name]:
            source.data = data

    # -------------------------------------------------------------- loading
    def _list_workers(self, preselect: str | None = None) -> None:
        with self._conn() as conn:
            people = patrol.workers(conn, self.day.value)
        options = {f"{w['name']}（{w['fixes']} 点）": w["user_id"] for w in people}
        self.worker.options = options
        wanted = int(preselect) if preselect and preselect.isdigit() else None
        if wanted in options.values():
            self.worker.value = wanted
        elif options:
            self.worker.value = next(iter(options.values()))
        else:
            self.data = None
            self.summary.object = f"{self.day.value} 没有网格员的定位记录。"
            self._clear()

    def _clear(self) -> None:
        for name in self._sources:
            self._set(name, {"xs": [], "ys": []} if name == "track" else {"x": [], "y": [], "label": []})
        self.slider.disabled = self.play.disabled = True

    def load(self) -> None:
        if self.worker.value is None:
            return
        self.play.value = False
        with self._conn() as conn:
            self.data = patrol.playback(conn, self.worker.value, self.day.value)
        points = self.data["points"]
        if not points:
            self._clear()
            self.summary.object = "当天没有定位记录。"
            return
        xy = [mercator(p["lon"], p["lat"]) for p in points]
        self._set("track", {"xs": [[x for x, _ in xy]], "ys": [[y for _, y in xy]]})
        self._labelled("stops", self.data["stops"],
                       lambda s: f"{_hhmm(s['arrived'])}–{_hhmm(s['left'])}，{s['dwell_seconds'] // 60} 分钟")
        self._labelled("events", self.data["events"], lambda e: f"{_hhmm(e['reported_at'])} {e['title']}")
        self._labelled("diary", self.data["diary"], lambda d: f"{_hhmm(d['created_at'])} {d['content']}")
        span = int((points[-1]["fixed_at"] - points[0]["fixed_at"]).total_seconds())
        self.slider.param.update(start=0, end=max(1, span), value=0, disabled=False)
        self.play.disabled = False
        self.summary.object = self._summary_md()
        self._move()

    def _labelled(self, name: str, rows: list[dict], label) -> None:
        rows = [r for r in rows if r.get("lon") is not None]
        xy = [mercator(r["lon"], r["lat"]) for r in rows]
        self._set(name, {"x": [x for x, _ in xy], "y": [y for _, y in xy], "label": [label(r) for r in rows]})

    def _summary_md(self) -> str:
        d = self.data
        stops = "\n".join(f"| {_hhmm(s['arrived'])}–{_hhmm(s['left'])} | {s['dwell_seconds'] // 60} 分钟 |"
                          for s in d["stops"]) or "| — | — |"
        grid = d["grid"]["name"] if d["grid"] else "—"
        return (f"| 指标 | 数值 |\n|:--|--:|\n| 定位点 | {len(d['points'])} |\n"
                f"| 行走距离 | {d['distance_m'] / 1000:.2f} 公里 |\n| 停留点 | {len(d['stops'])} |\n"
                f"| 网格 | {grid} |\n| 网格覆盖率 | {d['coverage'] * 100:.1f}% |\n"
                f"| 上报事件 | {len(d['events'])} |\n| 民情日记 | {len(d['diary'])} |\n\n"
                f"**停留点**\n\n| 时段 | 停留 |\n|:--|--:|\n{stops}")

    # -------------------------------------------------------------- playing
    def current_time(self) -> dt.datetime | None:
        if not self.data or not self.data["points"]:
            return None
        return self.data["points"][0]["fixed_at"] + dt.timedelta(seconds=self.slider.value)

    def _move(self) -> None:
        moment = self.current_time()
        if moment is None:
            return
        where = patrol.position_at(self.data["points"], moment)
        if where is not None:
            x, y = mercator(*where)
            self._set("now", {"x": [x], "y": [y]})
        self.clock.object = f"**{_hhmm(moment)}**"

    def _toggle(self, event) -> None:
        self.play.name = "⏸ 暂停" if event.new else "▶ 播放"
        if event.new:
            if self.slider.value >= self.slider.end:
                self.slider.value = 0
            # This viewer's own playback clock: one timer per playing session, stopped on pause.
            self._timer = pn.state.add_periodic_callback(self._tick, period=TICK_MS)
        elif self._timer is not None:
            self._timer.stop()
            self._timer = None

    def _tick(self) -> None:
        step = int(self.speed.value * TICK_MS / 1000)
        if self.slider.value + step >= self.slider.end:
            self.slider.value = self.slider.end
            self.play.value = False
        else:
            self.slider.value += step

    def view(self) -> pn.template.BootstrapTemplate:
        controls = pn.Column(self.day, self.worker, pn.Row(self.play, self.speed), self.clock, self.summary,
                             sizing_mode="stretch_width")
        main = pn.Column(self.slider, self.map, sizing_mode="stretch_both")
        return theme.page("轨迹回放", main=[main], sidebar=[controls])


def playback_page(settings: Settings, user: Any, *, tile_url: str | None = None) -> pn.viewable.Viewable:
    return Playback(settings, user, tile_url=tile_url).view()
