"""The command wall (指挥大屏): a dark full-screen page that keeps itself up to date.

One refresh task per territory, not per screen. :class:`WallFeed` is a server-side thread that reads
the wall's figures through a scoped connection — worker positions every ``fast`` seconds, events,
charts, heat maps and notices every ``slow`` seconds — and hands each :class:`WallSnapshot` to every
open screen of that territory. Ten screens on the wall cost the database what one does. A screen
subscribes when its session opens and unsubscribes when it closes; when the last one leaves the thread
stops. Screens apply a snapshot in their own document's next tick (the one thread-safe way into a
Bokeh document) by assigning new data to the sources they drew once, so nothing is rebuilt and memory
stays flat however long the wall runs.

The map is :class:`dashboards.map.TerritoryMap` with three overlays drawn empty at first: the event
heat map (an image rendered by datashader on the server), open events coloured by warning light, and
workers' latest positions. Toasts announce new 重大/紧急 events and new notices.
"""

from __future__ import annotations

import datetime as dt
import html
import itertools
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import holoviews as hv
import numpy as np
import panel as pn
from bokeh.models import ColumnDataSource, FactorRange, HoverTool
from bokeh.plotting import figure
from sqlalchemy import Connection

from dashboards import theme
from dashboards.map import TerritoryMap
from gis.security.scope import scoped_connection
from gis.settings import Settings
from layers import cameras, command, heatmap, patrol, territory, visits
from layers.events.calendar import BEIJING

log = logging.getLogger(__name__)

FAST_SECONDS = 5.0     # positions: "within 10 s"
SLOW_SECONDS = 15.0    # events, charts, heat maps: "within 30 s"
HEAT_WIDTH = 480
SHARED_PERIODS = ("today", "7d", "30d")
TOAST_SECONDS = 30
KPI_LABELS = {**command.KPI_LABELS, "overdue_visits": "逾期走访"}
_EARTH = 6378137.0

BACKGROUND = "#0b1426"
PANEL_BG = "#111d33"
TEXT = "#e6edf7"
ACCENT = "#39b6ff"


def mercator(lon: float, lat: float) -> tuple[float, float]:
    """EPSG:4490 lon/lat to Web Mercator metres (CGCS2000 and WGS84 agree to centimetres)."""
    return (_EARTH * math.radians(lon),
            _EARTH * math.log(math.tan(math.pi / 4 + math.radians(max(-85.0, min(85.0, lat))) / 2)))


# ---------------------------------------------------------------- the shared feed
@dataclass(frozen=True)
class HeatRaster:
    rgba: np.ndarray          # (h, w, 4) uint8, row 0 = south
    bounds: heatmap.Bounds
    events: int


@dataclass
class WallSnapshot:
    version: int = 0
    at: dt.datetime | None = None
    kpis: dict[str, Any] = field(default_factory=dict)
    positions: list[dict[str, Any]] = field(default_factory=list)
    open_events: list[dict[str, Any]] = field(default_factory=list)
    recent: list[dict[str, Any]] = field(default_factory=list)
    by_type: list[dict[str, Any]] = field(default_factory=list)
    ranking: list[dict[str, Any]] = field(default_factory=list)
    heat: dict[str, HeatRaster] = field(default_factory=dict)
    notices: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class FeedReader:
    """Whom the feed reads as. Everything that decides what a screen may see is here, and the feeds are
    keyed by it (:func:`visibility_key`): the scope (row-level security on every table), the department
    (row-level security lets a department's officers see the events dispatched to it, whatever their
    scope) and the special-population categories whose overdue visits are counted. ``id`` is a user with
    exactly that visibility (the screen that opened the feed): the database reads the department
    through it. Notices addressed to one person are not read through it (see :meth:`WallFeed._notices`).
    """

    id: int | None
    scope_path: str
    department: str | None = None
    permissions: frozenset[str] = frozenset()

    def has(self, permission: str) -> bool:
        """What :func:`layers.visits.categories_for` asks: only the visibility the feed is keyed by."""
        return permission in self.permissions

    @classmethod
    def of(cls, user: Any) -> FeedReader:
        granted = frozenset(p for r in visits.categories_for(user)
                            for p in (f"special:{r.special}", r.permission("read")))
        return cls(user.id, str(user.scope), getattr(user, "department", None) or None, granted)

    @property
    def key(self) -> tuple[str, str, tuple[str, ...]]:
        return (self.scope_path, self.department or "", tuple(sorted(self.permissions)))


class WallFeed:
    """One refresh thread feeding every open wall of one territory scope."""

    def __init__(self, settings: Settings, reader: FeedReader, *, fast: float = FAST_SECONDS,
                 slow: float = SLOW_SECONDS):
        self.settings, self.reader, self.fast, self.slow = settings, reader, fast, slow
        self.snapshot = WallSnapshot()
        self.refreshes = 0          # full (slow) refreshes done, for tests and the benchmark
        self.fast_refreshes = 0
        self._subscribers: dict[int, Callable[[WallSnapshot], None]] = {}
        self._tokens = itertools.count(1)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._bounds: heatmap.Bounds | None = None

    # -------------------------------------------------------------- subscribing
    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def subscribe(self, callback: Callable[[WallSnapshot], None]) -> int:
        with self._lock:
            token = next(self._tokens)
            self._subscribers[token] = callback
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="gridgov-wall-feed", daemon=True)
                self._thread.start()
        if self.snapshot.version:
            callback(self.snapshot)
        return token

    def unsubscribe(self, token: int) -> None:
        with self._lock:
            self._subscribers.pop(token, None)
            if not self._subscribers:
                self._wake.set()

    def stop(self) -> None:
        """Drop every screen and let the thread end (server shutdown, tests)."""
        with self._lock:
            self._subscribers.clear()
        self._wake.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=10)

    def _publish(self) -> None:
        with self._lock:
            subscribers = list(self._subscribers.items())
        for token, callback in subscribers:
            try:
                callback(self.snapshot)
            except Exception:  # a screen whose document is gone: drop it, keep feeding the others
                log.warning("wall screen %s dropped", token, exc_info=True)
                self.unsubscribe(token)

    # -------------------------------------------------------------- reading
    def refresh(self, *, full: bool = True, now: dt.datetime | None = None) -> WallSnapshot:
        """Read a new snapshot (positions only unless ``full``) and publish it."""
        now = now or dt.datetime.now(dt.UTC)
        old = self.snapshot
        new = WallSnapshot(version=old.version + 1, at=now, kpis=old.kpis, open_events=old.open_events,
                           recent=old.recent, by_type=old.by_type, ranking=old.ranking, heat=old.heat,
                           notices=old.notices)
        with scoped_connection(self.settings, self.reader) as conn:
            new.positions = _with_xy(patrol.latest_positions(conn, now=now))
            new.kpis = command.kpis(conn, now=now)
            if full:
                self._read_events(conn, new, now)
                new.kpis["overdue_visits"] = len(visits.overdue_visits(conn, user=self.reader))
            else:
                new.kpis["overdue_visits"] = old.kpis.get("overdue_visits")
        if full:
            new.notices = self._notices()
        self.snapshot = new
        if full:
            self.refreshes += 1
        else:
            self.fast_refreshes += 1
        self._publish()
        return new

    def _read_events(self, conn: Connection, new: WallSnapshot, now: dt.datetime) -> None:
        new.open_events = _with_xy(command.open_events(conn, now=now))
        new.recent = command.recent_events(conn, limit=20, now=now)
        today = heatmap.period("today", now=now)
        new.by_type = command.events_by_type(conn, today.start, today.end)
        month = heatmap.period("30d", now=now)
        new.ranking = command.closure_ranking(conn, self.reader.scope_path, month.start, month.end)
        if self._bounds is None:
            self._bounds = heatmap.territory_bounds(conn, self.reader.scope_path)
        if self._bounds is not None:
            new.heat = {key: heat_raster(conn, heatmap.period(key, now=now), self._bounds)
                        for key in SHARED_PERIODS}

    def _notices(self) -> list[dict[str, Any]]:
        # Read as nobody in particular: row-level security also shows a user the notices addressed to
        # them, which must not toast on the screens of everyone else sharing this feed.
        with scoped_connection(self.settings, FeedReader(None, self.reader.scope_path)) as conn:
            return command.recent_notices(conn)

    def _run(self) -> None:
        last_full = 0.0
        while True:
            with self._lock:
                if not self._subscribers:
                    self._thread = None
                    self._wake.clear()
                    return
            started = time.monotonic()
            full = started - last_full >= self.slow
            try:
                self.refresh(full=full)
                if full:
                    last_full = started
            except Exception:
                log.exception("wall refresh failed; retrying")
            self._wake.wait(max(0.5, self.fast - (time.monotonic() - started)))


def heat_raster(conn: Connection, period: heatmap.Period, bounds: heatmap.Bounds,
                width: int = HEAT_WIDTH) -> HeatRaster:
    x, y = heatmap.event_points(conn, period.start, period.end)
    w, h = heatmap.canvas_shape(bounds, width)
    return HeatRaster(heatmap.shade(heatmap.density(x, y, bounds, w, h)), bounds, int(x.size))


def _with_xy(rows: list[dict]) -> list[dict]:
    for row in rows:
        if row.get("lon") is not None:
            row["x"], row["y"] = mercator(row["lon"], row["lat"])
    return [r for r in rows if "x" in r]


_FEEDS: dict[tuple, WallFeed] = {}
_FEEDS_LOCK = threading.Lock()


def stop_feeds() -> None:
    """Stop every feed (the server is going down)."""
    with _FEEDS_LOCK:
        feeds = list(_FEEDS.values())
        _FEEDS.clear()
    for feed in feeds:
        feed.stop()


def feed_for(settings: Settings, user: Any) -> WallFeed:
    """The one feed of everything ``user`` may see (scope, department, categories; made on first use).
    Screens of users who see the same share it; a department officer in a commander's scope does not
    get the commander's view, nor the commander the department's."""
    reader = FeedReader.of(user)
    key = (settings.pg_database + "@" + str(settings.pg_port), *reader.key)
    with _FEEDS_LOCK:
        if key not in _FEEDS:
            _FEEDS[key] = WallFeed(settings, reader, fast=FAST_SECONDS, slow=SLOW_SECONDS)
        return _FEEDS[key]


# ---------------------------------------------------------------- one screen
_CSS = f"""
body {{ background: {BACKGROUND}; }}
#header {{ background: #081022 !important; }}
.main, #main, .main-content {{ background: {BACKGROUND} !important; }}
"""
_TILE_CSS = f"""
:host {{ display: block; }}
.gg-tiles {{ display: grid; grid-template-columns: repeat(7, 1fr); gap: 0.6vw; }}
.gg-tile {{ background: {PANEL_BG}; border: 1px solid #1f3b63; border-radius: 6px; padding: 0.6vw 0.8vw;
        color: {TEXT}; font-family: "Noto Sans CJK SC", "Microsoft YaHei", sans-serif; }}
.gg-tile .gg-label {{ font-size: clamp(12px, 0.8vw, 32px); color: #9fb3d1; }}
.gg-tile .gg-value {{ font-size: clamp(24px, 2.2vw, 88px); font-weight: 700; color: {ACCENT};
               font-variant-numeric: tabular-nums; }}
.gg-tile.gg-warn .gg-value {{ color: #ef4444; }}
"""
_LIST_CSS = f"""
:host {{ display: block; }}
.gg-box {{ background: {PANEL_BG}; border: 1px solid #1f3b63; border-radius: 6px; padding: 8px; color: {TEXT};
       font-family: "Noto Sans CJK SC", "Microsoft YaHei", sans-serif;
       font-size: clamp(12px, 0.75vw, 28px); }}
.gg-box h3 {{ margin: 0 0 6px 0; font-size: clamp(14px, 0.9vw, 34px); color: {ACCENT}; }}
.gg-rows {{ max-height: 38vh; overflow: hidden; }}
.gg-row {{ display: flex; gap: 6px; padding: 3px 0; border-bottom: 1px solid #1c2c48; }}
.gg-row .gg-dot {{ width: 10px; height: 10px; border-radius: 50%; margin-top: 5px; flex: none; }}
.gg-row .gg-main {{ flex: 1; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }}
.gg-row .gg-side {{ color: #9fb3d1; flex: none; }}
.gg-tag {{ color: #fff; border-radius: 3px; padding: 0 4px; margin-right: 4px; }}
.gg-tag.major {{ background: #b91c1c; }} .gg-tag.urgent {{ background: #c2410c; }}
"""
_TOAST_CSS = """
:host { display: block; }
.gg-toast { background: #7f1d1d; color: #fff; border-left: 6px solid #fca5a5; border-radius: 6px;
         padding: 10px 14px; margin-bottom: 8px; box-shadow: 0 4px 14px rgba(0,0,0,.5);
         font-size: clamp(14px, 0.9vw, 34px);
         font-family: "Noto Sans CJK SC", "Microsoft YaHei", sans-serif; }
.gg-toast.gg-notice { background: #1e3a8a; border-left-color: #93c5fd; }
"""


def _ago(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds}秒前"
    if seconds < 3600:
        return f"{seconds // 60}分钟前"
    return f"{seconds // 3600}小时前"


def _fmt_rate(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f}%"


class WallScreen:
    """One open wall: the layout, the sources it draws from, and how a snapshot is applied to them."""

    def __init__(self, settings: Settings, user: Any, conn: Connection, *, tile_url: str | None = None):
        self.settings, self.user = settings, user
        self.top = territory.unit_at_path(conn, user.scope)
        units = territory.territory_units(conn, within_path=user.scope)
        # Toasts are for what arrives while the screen is open, not for the backlog.
        self.max_event_id, self.max_notice_id = command.latest_ids(conn)
        self.toasts: list[tuple[float, str, str]] = []   # (expires, kind, text)
        self.applied = 0
        self._sources: dict[str, list[ColumnDataSource]] = {"heat": [], "events": [], "workers": []}
        self._custom_heat: HeatRaster | None = None
        # Cameras hardly change: read once when the screen opens, not on every refresh.
        self.cameras = _with_xy(cameras.all_cameras(conn))
        self.fov_range = cameras.fov_range(settings)
        self.camera_card = pn.pane.HTML("", stylesheets=[_CAMERA_CSS], sizing_mode="stretch_width",
                                        css_classes=["gg-camera-card"], visible=False)
        self.video_wall = pn.pane.HTML("", stylesheets=[_CAMERA_CSS], sizing_mode="stretch_width",
                                       css_classes=["gg-video-wall"], visible=False)
        self.close_video = pn.widgets.Button(label="关闭视频", visible=False,
                                             css_classes=["gg-close-video"])
        self.close_video.on_click(self._close_video)
        self.event_pick = pn.widgets.Select(name="附近摄像头（选择事件）", options={"—": None},
                                            sizing_mode="stretch_width", css_classes=["gg-event-pick"])
        self.event_pick.param.watch(self._on_event_pick, "value")
        self.nearby_pane = pn.pane.HTML("", stylesheets=[_LIST_CSS], sizing_mode="stretch_width",
                                        css_classes=["gg-nearby"])
        self.open_nearby = pn.widgets.Button(label="在视频墙打开附近摄像头", visible=False,
                                             sizing_mode="stretch_width", css_classes=["gg-open-nearby"])
        self.open_nearby.on_click(lambda event: self.show_video_wall(self.nearby))
        self.nearby: list[dict[str, Any]] = []
        self._camera_sources: list[ColumnDataSource] = []
        self.period = pn.widgets.RadioButtonGroup(
            name="时段", options={v: k for k, v in heatmap.PERIODS.items()}, value="today",
            color="primary", variant="outline")
        self.custom_range = pn.widgets.DateRangePicker(name="自定义时段", visible=False, width=240)
        self.period.param.watch(self._on_period, "value")
        self.custom_range.param.watch(self._on_custom, "value")
        self.map = TerritoryMap(units, tile_url=tile_url, overlays=self._overlays(), min_height=520)
        self.kpi_pane = pn.pane.HTML(self._kpi_html({}), stylesheets=[_TILE_CSS], sizing_mode="stretch_width")
        self.events_pane = pn.pane.HTML("", stylesheets=[_LIST_CSS], sizing_mode="stretch_width",
                                        css_classes=["gg-new-events"])
        self.workers_pane = pn.pane.HTML("", stylesheets=[_LIST_CSS], sizing_mode="stretch_width",
                                         css_classes=["gg-workers"])
        # A fixed box of its own size over the top right corner (an empty pane would be laid out with no
        # height and hide what comes later); clicks go through it to the map.
        self.toast_pane = pn.pane.HTML("", stylesheets=[_TOAST_CSS], width=440, height=360,
                                       css_classes=["gg-toasts"],
                                       styles={"position": "fixed", "top": "70px", "right": "24px",
                                               "z-index": "1000", "pointer-events": "none"})
        self.status = pn.pane.HTML("", styles={"color": "#9fb3d1"}, css_classes=["gg-wall-status"])
        self.type_source = ColumnDataSource({"name": [], "events": []})
        self.rank_source = ColumnDataSource({"name": [], "rate": [], "label": []})
        self.type_chart = _bar_chart("今日事件类型", self.type_source, "events", "@name: @events 件")
        self.rank_chart = _bar_chart("街道结案率排名（近30日）", self.rank_source, "rate", "@name: @label")
        self.rank_chart.x_range.end = 1.0

    # -------------------------------------------------------------- layout
    def view(self) -> pn.template.BootstrapTemplate:
        name = self.top.name if self.top else ""
        left = pn.Column(self.events_pane, self.event_pick, self.nearby_pane, self.open_nearby,
                         self.workers_pane, width=380, sizing_mode="stretch_height")
        right = pn.Column(self.camera_card, pn.pane.Bokeh(self.type_chart, sizing_mode="stretch_width"),
                          pn.pane.Bokeh(self.rank_chart, sizing_mode="stretch_width"),
                          width=420, sizing_mode="stretch_height")
        centre = pn.Column(pn.Row(self.period, self.custom_range, self.status, self.close_video), self.map,
                           self.video_wall, sizing_mode="stretch_both")
        # The Bootstrap template drops its own js_files from the page; pn.config set inside a session
        # applies to this session's page only (a new dict: the global config stays as it is).
        if pn.state.curdoc is not None:
            pn.config.js_files = {**pn.config.js_files, **PLAYER_JS}
        template = pn.template.BootstrapTemplate(
            title=f"{name} 综治指挥大屏", theme="dark", header_background="#081022", raw_css=[_CSS],
            main=[pn.Column(self.kpi_pane, pn.Row(left, centre, right, sizing_mode="stretch_both"),
                            self.toast_pane, sizing_mode="stretch_both",
                            styles={"background": BACKGROUND})],
            collapsed_sidebar=True,
        )
        return template

    def _overlays(self) -> list[hv.Element]:
        bounds = (0.0, 0.0, 1.0, 1.0)
        heat = hv.RGB(np.zeros((1, 1, 4), dtype=np.uint8), bounds=bounds).opts(
            hooks=[self._keep("heat")], alpha=0.85)
        # One point nowhere (NaN) until the first snapshot: an empty column would go out as numbers,
        # which BokehJS refuses as colours; and a used ``color`` keeps HoloViews sending the column.
        events = hv.Points({"x": [np.nan], "y": [np.nan], "title": [""], "urgency_name": [""],
                            "light_name": [""], "color": ["#000000"]},
                           ["x", "y"], ["title", "urgency_name", "light_name", "color"]).opts(
            color="color", size=9, line_color="white", line_width=1, hooks=[self._keep("events")],
            tools=[HoverTool(tooltips=[("事件", "@title"), ("紧急程度", "@urgency_name"),
                                       ("预警", "@light_name")], description="事件")])
        workers = hv.Points({"x": [np.nan], "y": [np.nan], "name": [""], "age": [""], "color": ["#000000"]},
                            ["x", "y"], ["name", "age", "color"]).opts(
            color="color", marker="triangle", size=13, line_color="#0b1426", hooks=[self._keep("workers")],
            tools=[HoverTool(tooltips=[("网格员", "@name"), ("定位", "@age")], description="网格员")])
        return [heat, *self._camera_overlays(), events, workers]

    def _camera_overlays(self) -> list[hv.Element]:
        """The wedges and the camera points (drawn once: there are no empty layers to fill later). A
        click on a camera selects it (card), a box selects several (video wall); both arrive through
        Bokeh's selection of the points, in the order of ``self.cameras``."""
        if not self.cameras:
            return []
        wedges = []
        for c in self.cameras:
            ring = cameras.fov_wedge(c["lon"], c["lat"], c["heading"], c["view_angle"], self.fov_range)
            if ring:
                xs, ys = zip(*(mercator(lon, lat) for lon, lat in ring), strict=True)
                wedges.append({"x": list(xs), "y": list(ys),
                               "color": cameras.STATUS_COLORS.get(c["status"], "#94a3b8")})
        layers: list[hv.Element] = []
        if wedges:
            layers.append(hv.Polygons(wedges, vdims=["color"]).opts(
                color="color", fill_alpha=0.18, line_alpha=0.5, line_width=0.5, tools=[]))
        listed = self.cameras
        points = hv.Points({"x": [c["x"] for c in listed], "y": [c["y"] for c in listed],
                            "name": [c["name"] for c in listed],
                            "status_name": [c["status_name"] for c in listed],
                            "color": [cameras.STATUS_COLORS.get(c["status"], "#94a3b8") for c in listed]},
                           ["x", "y"], ["name", "status_name", "color"]).opts(
            color="color", marker="square", size=9, line_color="#0b1426", nonselection_alpha=0.6,
            selection_line_color="#ffffff", selection_line_width=2, hooks=[self._keep_camera_source],
            tools=["tap", "box_select", HoverTool(tooltips=[("摄像头", "@name"), ("状态", "@status_name")],
                                                  description="摄像头")])
        self.camera_selection = hv.streams.Selection1D(source=points)
        self.camera_selection.add_subscriber(self._on_camera_selection)
        layers.append(points)
        return layers

    def _keep(self, name: str):
        def hook(plot, element):
            source = plot.handles.get("source")
            glyph = plot.handles.get("glyph")
            if name != "heat" and glyph is not None:
                glyph.fill_color = {"field": "color"}   # the colours are data: lights and patrol status
            if source is not None and source not in self._sources[name]:
                self._sources[name].append(source)
        return hook

    # -------------------------------------------------------------- updates
    def receive(self, doc, snapshot: WallSnapshot) -> None:
        """Called from the feed thread: hand the snapshot to this session's own loop."""
        doc.add_next_tick_callback(partial(self.apply, snapshot))

    def apply(self, snapshot: WallSnapshot) -> None:
        self.latest = snapshot
        self.kpi_pane.object = self._kpi_html(snapshot.kpis)
        self.events_pane.object = self._events_html(snapshot.recent)
        self.workers_pane.object = self._workers_html(snapshot.positions)
        self._set("events", {
            "x": [e["x"] for e in snapshot.open_events], "y": [e["y"] for e in snapshot.open_events],
            "title": [e["title"] for e in snapshot.open_events],
            "urgency_name": [e["urgency_name"] for e in snapshot.open_events],
            "light_name": [{"green": "绿灯", "yellow": "黄灯", "red": "红灯"}.get(e["light"], "无时限")
                           for e in snapshot.open_events],
            "color": [command.LIGHT_COLORS.get(e["light"], "#8ab4f8") for e in snapshot.open_events]})
        self._set("workers", {
            "x": [p["x"] for p in snapshot.positions], "y": [p["y"] for p in snapshot.positions],
            "name": [p["worker_name"] for p in snapshot.positions],
            "age": [_ago(p["age_seconds"]) for p in snapshot.positions],
            "color": ["#22d3ee" if p["on_patrol"] else "#64748b" for p in snapshot.positions]})
        self._draw_heat(snapshot)
        self.type_chart.y_range.factors = [t["name"] for t in reversed(snapshot.by_type)] or ["—"]
        self.type_source.data = {"name": [t["name"] for t in reversed(snapshot.by_type)],
                                 "events": [t["events"] for t in reversed(snapshot.by_type)]}
        ranking = snapshot.ranking[:12]
        self.rank_chart.y_range.factors = [r["name"] for r in reversed(ranking)] or ["—"]
        self.rank_source.data = {"name": [r["name"] for r in reversed(ranking)],
                                 "rate": [r["rate"] for r in reversed(ranking)],
                                 "label": [f"{r['rate'] * 100:.0f}% ({r['closed']}/{r['events']})"
                                           for r in reversed(ranking)]}
        self._toast_new(snapshot)
        self._event_options(snapshot)
        at = snapshot.at.astimezone(BEIJING).strftime("%H:%M:%S") if snapshot.at else ""
        self.status.object = f"更新于 {at}"
        self.applied += 1

    def _set(self, name: str, data: dict) -> None:
        for source in self._sources[name]:
            source.data = data

    def _draw_heat(self, snapshot: WallSnapshot) -> None:
        heat = self._custom_heat if self.period.value == "custom" else snapshot.heat.get(self.period.value)
        if heat is None:
            return
        x0, y0, x1, y1 = heat.bounds
        h, w = heat.rgba.shape[:2]
        image = np.ascontiguousarray(heat.rgba).view(np.uint32).reshape(h, w)
        self._set("heat", {"image": [image], "x": [x0], "y": [y0], "dw": [x1 - x0], "dh": [y1 - y0]})

    def _on_period(self, event) -> None:
        self.custom_range.visible = event.new == "custom"
        if event.new != "custom" and getattr(self, "latest", None) is not None:
            self._draw_heat(self.latest)

    def _on_custom(self, event) -> None:
        if not event.new:
            return
        start, end = event.new
        with scoped_connection(self.settings, self.user) as conn:
            bounds = heatmap.territory_bounds(conn, self.user.scope)
            if bounds is None:
                return
            self._custom_heat = heat_raster(conn, heatmap.period("custom", start=start, end=end), bounds)
        if getattr(self, "latest", None) is not None:
            self._draw_heat(self.latest)

    # -------------------------------------------------------------- cameras
    def _keep_camera_source(self, plot, element) -> None:
        source = plot.handles.get("source")
        if source is not None and source not in self._camera_sources:
            self._camera_sources.append(source)

    def _on_camera_selection(self, index: list[int]) -> None:
        chosen = [self.cameras[i] for i in index or [] if 0 <= i < len(self.cameras)]
        if len(chosen) == 1:
            self.show_camera(chosen[0])
        elif chosen:
            self.show_video_wall(chosen)

    def show_camera(self, camera: dict[str, Any]) -> None:
        """The side card: the camera's details and its live view."""
        self.camera_card.object = camera_card_html(camera)
        self.camera_card.visible = self.close_video.visible = True

    def show_video_wall(self, chosen: list[dict[str, Any]]) -> None:
        """Several cameras in a grid: 2×2 up to four, 3×3 up to nine."""
        if not chosen:
            return
        self.video_wall.object = video_wall_html(chosen)
        self.video_wall.height = 520 if len(chosen) > 4 else 460
        self.video_wall.visible = self.close_video.visible = True

    def _close_video(self, event=None) -> None:
        # Emptying the panes stops the streams (the <img>/<video> elements go with them).
        self.camera_card.object = self.video_wall.object = ""
        self.camera_card.visible = self.video_wall.visible = self.close_video.visible = False
        for source in self._camera_sources:   # so that a click on the same camera opens it again
            source.selected.indices = []

    def _event_options(self, snapshot: WallSnapshot) -> None:
        options = {"—": None}
        chosen = self.event_pick.value
        if chosen is not None:   # keep the chosen event listed when newer ones push it off the list
            options.update({k: v for k, v in self.event_pick.options.items() if v == chosen})
        for e in [*snapshot.recent, *snapshot.open_events]:
            if e.get("lon") is not None:
                options.setdefault(f"{e['title']}（{e.get('number') or e['id']}）", e["id"])
        if list(options.values()) != list(self.event_pick.options.values()):
            self.event_pick.options = options

    def _on_event_pick(self, event) -> None:
        self.nearby = []
        if event.new is not None:
            try:
                with scoped_connection(self.settings, self.user) as conn:
                    lon, lat = cameras.event_location(conn, event.new)
                    self.nearby = cameras.nearest_cameras(conn, lon, lat, n=4)
            except cameras.CameraError as error:
                self.nearby_pane.object = f'<div class="gg-box">{html.escape(str(error))}</div>'
                self.open_nearby.visible = False
                return
        self.nearby_pane.object = nearby_html(self.nearby) if event.new is not None else ""
        self.open_nearby.visible = bool(self.nearby)

    def _toast_new(self, snapshot: WallSnapshot) -> None:
        now = time.monotonic()
        for event in sorted(snapshot.recent, key=lambda e: e["id"]):
            if event["id"] > self.max_event_id and event["urgency"] in command.URGENT:
                self.toasts.append((now + TOAST_SECONDS, "event",
                                    f"【{event['urgency_name']}事件】{event['title']}"
                                    f"（{event['grid_name'] or ''}）"))
        for notice in sorted(snapshot.notices, key=lambda n: n["id"]):
            if notice["id"] > self.max_notice_id:
                self.toasts.append((now + TOAST_SECONDS, "notice", f"【通知】{notice['title']}"))
        self.max_event_id = max([self.max_event_id, *(e["id"] for e in snapshot.recent)])
        self.max_notice_id = max([self.max_notice_id, *(n["id"] for n in snapshot.notices)])
        self.toasts = [t for t in self.toasts if t[0] > now][-4:]
        self.toast_pane.object = "".join(f'<div class="gg-toast gg-{kind}">{html.escape(message)}</div>'
                                         for _, kind, message in self.toasts)

    # -------------------------------------------------------------- HTML bits
    @staticmethod
    def _kpi_html(k: dict) -> str:
        tiles = []
        for key, label in KPI_LABELS.items():
            value = k.get(key)
            shown = _fmt_rate(value) if key == "closure_rate" else ("—" if value is None else f"{value:,}")
            warn = " gg-warn" if key in ("overdue", "overdue_visits") and value else ""
            tiles.append(f'<div class="gg-tile{warn}" data-kpi="{key}"><div class="gg-label">{label}</div>'
                         f'<div class="gg-value">{shown}</div></div>')
        return f'<div class="gg-tiles">{"".join(tiles)}</div>'

    @staticmethod
    def _events_html(events: list[dict]) -> str:
        rows = []
        for e in events:
            tag = (f'<span class="gg-tag {e["urgency"]}">{e["urgency_name"]}</span>'
                   if e["urgency"] in command.URGENT else "")
            at = e["reported_at"].astimezone(BEIJING).strftime("%H:%M")
            rows.append(f'<div class="gg-row"><span class="gg-dot" style="background:'
                        f'{command.LIGHT_COLORS.get(e["light"], "#8ab4f8")}"></span>'
                        f'<span class="gg-main">{tag}{html.escape(e["title"])}</span>'
                        f'<span class="gg-side">{html.escape(e["grid_name"] or "")} {at}</span></div>')
        listed = "".join(rows) or "暂无"
        return f'<div class="gg-box"><h3>最新事件</h3><div class="gg-rows">{listed}</div></div>'

    @staticmethod
    def _workers_html(positions: list[dict]) -> str:
        on = sorted(positions, key=lambda p: p["age_seconds"])
        rows = [f'<div class="gg-row"><span class="gg-dot" style="background:'
                f'{"#22d3ee" if p["on_patrol"] else "#64748b"}"></span>'
                f'<span class="gg-main">{html.escape(p["worker_name"])}</span>'
                f'<span class="gg-side">{html.escape(p["grid_name"] or "")} '
                f'{_ago(p["age_seconds"])}</span></div>'
                for p in on[:30]]
        on_patrol = sum(p["on_patrol"] for p in positions)
        return (f'<div class="gg-box"><h3>网格员实时位置（{on_patrol} 人在岗）</h3>'
                f'<div class="gg-rows">{"".join(rows) or "暂无"}</div></div>')


_CAMERA_CSS = f"""
:host {{ display: block; }}
.gg-cam {{ background: {PANEL_BG}; border: 1px solid #1f3b63; border-radius: 6px; padding: 8px;
        color: {TEXT}; font-family: "Noto Sans CJK SC", "Microsoft YaHei", sans-serif;
        font-size: clamp(12px, 0.75vw, 28px); }}
.gg-cam h3 {{ margin: 0 0 6px 0; font-size: clamp(14px, 0.9vw, 34px); color: {ACCENT}; }}
.gg-cam table {{ width: 100%; border-collapse: collapse; }}
.gg-cam td {{ padding: 2px 4px; border-bottom: 1px solid #1c2c48; }}
.gg-cam td:first-child {{ color: #9fb3d1; white-space: nowrap; }}
.gg-state {{ border-radius: 3px; padding: 0 4px; margin-left: 6px; color: #0b1426; }}
.gg-view {{ margin-top: 6px; background: #000; min-height: 120px; display: flex; align-items: center;
         justify-content: center; }}
.gg-view img, .gg-view video {{ max-width: 100%; max-height: 40vh; }}
.gg-cam-message {{ color: #fca5a5; padding: 16px; text-align: center; }}
.gg-grid {{ display: grid; gap: 6px; }}
.gg-grid.n2 {{ grid-template-columns: repeat(2, 1fr); }}
.gg-grid.n3 {{ grid-template-columns: repeat(3, 1fr); }}
.gg-grid .gg-cam h3 {{ font-size: clamp(12px, 0.75vw, 28px); }}
.gg-grid .gg-view img, .gg-grid .gg-view video {{ max-height: 18vh; }}
"""
VIDEO_WALL_MAX = 9
_MESSAGES = {
    "none": "未登记视频流地址",
    "unsafe": "视频流地址不是 http(s) 地址，无法在页面中播放，请在视频平台中查看",
}
# When the stream cannot be reached the element fires ``error``: swap it for the message in place.
_ON_ERROR = "this.style.display='none';this.nextElementSibling.style.display='block'"
_UNREACHABLE = "视频无法连接"
# HLS and HTTP-FLV need a player script (gis/static/player.js on the vendored hls.js / mpegts.js, served
# from our own origin: no CDN on a command-centre network). The card is an HTML pane in shadow DOM where
# <script> does not run, so a hidden 1×1 image hands the <video> before it to ``gridgovPlay`` on load.
PLAYER_JS = {"hls.js": "assets/vendor/hls.min.js", "mpegts.js": "assets/vendor/mpegts.js",
             "gridgov-player": "assets/player.js"}
_PLAYER_HOOK = ('<img class="gg-player-hook" hidden alt="" width="1" height="1" '
                'src="data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7" '
                'onload="window.gridgovPlay&&gridgovPlay(this.previousElementSibling)">')


def player_html(url: str | None) -> str:
    """The live view of a stream URL: ``<img>`` for snapshots and MJPEG, ``<video>`` for MP4/WebM, a
    ``<video>`` driven by hls.js / mpegts.js for HLS / HTTP-FLV, otherwise a message. Only http(s) and
    same-server URLs reach the page; never a ``<script>`` (it would not run in the pane anyway)."""
    kind = cameras.stream_kind(url)
    if kind in _MESSAGES:
        shown = f"<br><small>{html.escape(url)}</small>" if url and kind != "none" else ""
        return f'<div class="gg-cam-message" data-kind="{kind}">{_MESSAGES[kind]}{shown}</div>'
    src = html.escape(url.strip(), quote=True)
    if kind == "image":
        element = f'<img class="gg-live" src="{src}" alt="实时画面" onerror="{_ON_ERROR}">'
    elif kind in ("hls", "flv"):
        # player.js hides the video and shows the message below when the stream fails
        element = (f'<video class="gg-live" data-stream="{src}" data-kind="{kind}" autoplay muted playsinline'
                   f' controls></video>{_PLAYER_HOOK}')
    else:
        element = (f'<video class="gg-live" src="{src}" autoplay muted playsinline controls'
                   f' onerror="{_ON_ERROR}"></video>')
    return (f'{element}<div class="gg-cam-message gg-unreachable" data-kind="{kind}" style="display:none">'
            f'{_UNREACHABLE}</div>')


def _state(camera: dict) -> str:
    color = cameras.STATUS_COLORS.get(camera["status"], "#94a3b8")
    return f'<span class="gg-state" style="background:{color}">{html.escape(camera["status_name"])}</span>'


def camera_card_html(camera: dict[str, Any]) -> str:
    def number(value, unit):
        return "—" if value is None else f"{value:g}{unit}"

    rows = [("设备编号", camera.get("device_no")), ("安装位置", camera.get("location")),
            ("朝向", number(camera.get("heading"), "°")), ("视角", number(camera.get("view_angle"), "°")),
            ("所属单位", camera.get("owner_unit")),
            ("坐标", f"{camera['lon']:.6f}, {camera['lat']:.6f}" if camera.get("lon") is not None else None)]
    table = "".join(f"<tr><td>{k}</td><td>{html.escape(str(v)) if v else '—'}</td></tr>" for k, v in rows)
    return (f'<div class="gg-cam" data-camera-id="{camera["id"]}"><h3>{html.escape(camera["name"])}'
            f'{_state(camera)}</h3><table>{table}</table>'
            f'<div class="gg-view">{player_html(camera.get("stream_url"))}</div></div>')


def video_wall_html(chosen: list[dict[str, Any]]) -> str:
    shown = chosen[:VIDEO_WALL_MAX]
    columns = 2 if len(shown) <= 4 else 3
    cells = "".join(f'<div class="gg-cam" data-camera-id="{c["id"]}"><h3>{html.escape(c["name"])}'
                    f'{_state(c)}</h3><div class="gg-view">{player_html(c.get("stream_url"))}</div></div>'
                    for c in shown)
    more = (f'<div class="gg-cam-message">已选 {len(chosen)} 个摄像头，显示前 {VIDEO_WALL_MAX} 个</div>'
            if len(chosen) > VIDEO_WALL_MAX else "")
    return f'{more}<div class="gg-grid n{columns}">{cells}</div>'


def nearby_html(near: list[dict[str, Any]]) -> str:
    rows = "".join(f'<div class="gg-row"><span class="gg-dot" style="background:'
                   f'{cameras.STATUS_COLORS.get(c["status"], "#94a3b8")}"></span>'
                   f'<span class="gg-main">{html.escape(c["name"])}</span>'
                   f'<span class="gg-side">{c["distance_m"]:.0f} 米 {html.escape(c["status_name"])}</span>'
                   f'</div>' for c in near)
    return (f'<div class="gg-box"><h3>附近摄像头</h3>'
            f'<div class="gg-rows">{rows or "附近没有摄像头"}</div></div>')


def _bar_chart(title: str, source: ColumnDataSource, value: str, tooltip: str):
    chart = figure(title=title, y_range=FactorRange(factors=["—"]), height=300, sizing_mode="stretch_width",
                   toolbar_location=None, tools="", background_fill_color=PANEL_BG,
                   border_fill_color=PANEL_BG, outline_line_color=None)
    chart.hbar(y="name", right=value, height=0.7, source=source, color=ACCENT)
    chart.add_tools(HoverTool(tooltips=tooltip))
    chart.title.text_color = TEXT
    chart.title.text_font_size = "15px"
    for axis in (chart.xaxis, chart.yaxis):
        axis.major_label_text_color = "#c8d5ea"
        axis.axis_line_color = "#2a3f63"
    chart.x_range.start = 0
    chart.xgrid.grid_line_color = "#1c2c48"
    chart.ygrid.grid_line_color = None
    return chart


def wall_page(settings: Settings, user: Any, *, tile_url: str | None = None) -> pn.viewable.Viewable:
    """Build one wall screen and subscribe it to its territory's shared feed."""
    with scoped_connection(settings, user) as conn:
        if territory.unit_at_path(conn, user.scope) is None:
            return theme.notice_page("指挥大屏", "暂无区划数据", "数据库中还没有本辖区的区划边界。")
        screen = WallScreen(settings, user, conn, tile_url=tile_url)
    page = screen.view()
    doc = pn.state.curdoc
    feed = feed_for(settings, user)
    token = feed.subscribe(partial(screen.receive, doc))
    doc.on_session_destroyed(lambda context: feed.unsubscribe(token))
    return page
