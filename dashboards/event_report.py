"""The 上报事件 form: a walk-in, a phone call or a grid worker's own find, reported from the desk.

It calls the same service as ``POST /api/v1/events`` (:func:`layers.events.report`): the position is
a click on the small map, or a lon/lat typed in one of the coordinate systems the API takes (converted
to CGCS2000 by the service), or, without one, the grid picked from the list. Each form carries a client
id, so a double click or a retry after a slow answer reports the event once.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import geopandas as gpd
import panel as pn
from sqlalchemy.exc import DBAPIError

from dashboards.event_detail import ACCEPT, Connect, _uploads
from dashboards.event_map import PointMap
from layers import events
from layers.events.position import PositionError, to_cgcs2000

CRS_OPTIONS = {"CGCS2000（国家2000）": "cgcs2000", "WGS84（GPS）": "wgs84", "GCJ-02（高德/腾讯）": "gcj02",
               "BD-09（百度）": "bd09"}


def type_groups(names: dict) -> dict[str, dict[str, str]]:
    """The event types as grouped options: class → {kind name: code} (a class without kinds is its own)."""
    classes = sorted(code for (table, code) in names if table == "event_type" and len(code) == 2)
    groups = {}
    for cls in classes:
        kinds = {names[("event_type", code)]: code for (table, code) in sorted(names)
                 if table == "event_type" and len(code) > 2 and code.startswith(cls)}
        groups[names[("event_type", cls)]] = kinds or {names[("event_type", cls)]: cls}
    return groups


def grid_options(grids: gpd.GeoDataFrame) -> dict[str, int]:
    """Grid name → id; a name used twice shows its code."""
    options: dict[str, int] = {}
    for name, code, grid_id in zip(grids.name, grids.code, grids.id, strict=False):
        options[name if name not in options else f"{name}（{code}）"] = int(grid_id)
    return options


class ReportForm(pn.viewable.Viewer):
    """The report form; ``on_reported(event_id)`` opens the new event."""

    def __init__(self, user: Any, connect: Connect, names: dict, units: gpd.GeoDataFrame, *,
                 tile_url: str | None = None, on_reported: Callable[[int], None] = lambda _: None):
        self.user, self.connect, self.on_reported = user, connect, on_reported
        self.client_id = str(uuid.uuid4())
        wide = {"sizing_mode": "stretch_width"}
        self.title = pn.widgets.TextInput(label="事件标题（必填）", max_length=200, **wide)
        self.type = pn.widgets.Select(label="事件类型", groups=type_groups(names), **wide)
        self.urgency = pn.widgets.Select(label="紧急程度", options=self._codes(names, "event_urgency"),
                                         **wide)
        sources = self._codes(names, "event_source")
        self.source = pn.widgets.Select(label="事件来源", options=sources,
                                        value="app" if user.role == "grid_worker" else "walk_in", **wide)
        self.content = pn.widgets.TextAreaInput(label="事件描述", height=90, max_length=5000, **wide)
        self.reporter_name = pn.widgets.TextInput(label="反映人", max_length=50, **wide)
        self.reporter_phone = pn.widgets.TextInput(label="联系电话", max_length=32, **wide)
        self.address = pn.widgets.TextInput(label="事发地址", max_length=300, **wide)
        self.lon = pn.widgets.FloatInput(label="经度", value=None, start=-180, end=180, step=0.0001,
                                         width=150)
        self.lat = pn.widgets.FloatInput(label="纬度", value=None, start=-90, end=90, step=0.0001, width=150)
        self.crs = pn.widgets.Select(label="坐标系", options=CRS_OPTIONS, value="cgcs2000", width=190)
        grids = units[units.level == "grid"]
        self.grid = pn.widgets.Select(label="所属网格（无坐标时必选）",
                                      options={"（按坐标自动确定）": 0, **grid_options(grids)},
                                      value=0, **wide)
        self.photos = pn.widgets.FileInput(multiple=True, accept=ACCEPT, **wide)
        self.submit_button = pn.widgets.Button(label="提交上报", color="primary", width=140)
        self.message = pn.Column(sizing_mode="stretch_width", css_classes=["gg-report-message"])
        self.map = PointMap(units, tile_url=tile_url, height=360, on_pick=self._picked)
        self.submit_button.on_click(lambda _: self.submit())
        for widget in (self.lon, self.lat, self.crs):
            widget.param.watch(lambda _: self._typed(), "value")

    @staticmethod
    def _codes(names: dict, table: str) -> dict[str, str]:
        return {name: code for (t, code), name in names.items() if t == table}

    def __panel__(self) -> pn.viewable.Viewable:
        form = pn.Column(
            self.message, self.title,
            pn.Row(self.type, self.urgency, self.source, sizing_mode="stretch_width"),
            self.content, pn.Row(self.reporter_name, self.reporter_phone, sizing_mode="stretch_width"),
            self.address, pn.Row(self.lon, self.lat, self.crs), self.grid,
            pn.pane.Markdown("现场照片（可多选）"), self.photos, self.submit_button,
            sizing_mode="stretch_width")
        where = pn.Column(pn.pane.Markdown("**事发位置**：点击地图，或在左侧填写经纬度"), self.map, width=520,
                          margin=(0, 0, 0, 16))
        return pn.Row(form, where, sizing_mode="stretch_width")

    # ------------------------------------------------------------ the position
    def _picked(self, lon: float, lat: float) -> None:
        self._picking = True
        try:
            self.crs.value = "cgcs2000"
            self.lon.value, self.lat.value = round(lon, 6), round(lat, 6)
        finally:
            self._picking = False

    def _typed(self) -> None:
        if getattr(self, "_picking", False) or self.lon.value is None or self.lat.value is None:
            return
        try:
            self.map.show(to_cgcs2000(float(self.lon.value), float(self.lat.value), self.crs.value))
        except PositionError:
            pass  # said when submitting; a half-typed coordinate is no error yet

    # ------------------------------------------------------------ sending
    def fields(self) -> events.ReportFields:
        has_point = self.lon.value is not None and self.lat.value is not None
        return events.ReportFields(
            title=self.title.value, type=self.type.value, content=self.content.value or None,
            urgency=self.urgency.value, source=self.source.value,
            reporter_name=self.reporter_name.value or None, reporter_phone=self.reporter_phone.value or None,
            address=self.address.value or None, lon=self.lon.value if has_point else None,
            lat=self.lat.value if has_point else None, crs=self.crs.value,
            grid_id=(self.grid.value or None) if not has_point else None, client_id=self.client_id)

    def submit(self) -> None:
        try:
            with self.connect() as conn:
                actor = events.actor_for(conn, self.user)
                event, _ = events.report(conn, actor, self.fields(), uploads=_uploads(self.photos))
        except events.EventError as error:
            self._say(str(error), "danger")
            return
        except DBAPIError as error:
            if getattr(error.orig, "sqlstate", None) != "42501":
                raise
            self._say("无权在该位置上报事件（数据权限拒绝）", "danger")
            return
        self._clear()
        self.on_reported(event["id"])

    def _clear(self) -> None:
        self.client_id = str(uuid.uuid4())
        for widget in (self.title, self.content, self.reporter_name, self.reporter_phone, self.address):
            widget.value = ""
        self._picking = True
        self.lon.value = self.lat.value = None
        self._picking = False
        self.grid.value = 0
        self.photos.clear()
        self.message.objects = []
        self.map.show(None)

    def _say(self, text: str, kind: str) -> None:
        self.message.objects = [pn.pane.Alert(text, alert_type=kind, sizing_mode="stretch_width")]
