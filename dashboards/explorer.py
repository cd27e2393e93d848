"""The map explorer (地图): drill-down, 以房找人, 以人找房, big layers and the analysts' workbench.

- **Drill-down**: district › street › community › grid › compound › building, with breadcrumbs. The
  current unit's children are drawn coloured by the chosen figure (people, households, special
  populations, events), listed with their totals, and a click on one descends into it.
- **以房找人**: a click on a building (or choosing it) opens its 楼盘表 — units × floors × rooms, each flat
  coloured by its status — and a click on a flat lists its household, masked.
- **以人找房**: search by name, full ID number or phone; choosing a result zooms to the building, marks
  the flat and opens the household.
- **Big layers**: people, houses, buildings and events are rasterized with datashader per viewport at
  low zoom and drawn as vectors (footprints, or event points; capped) below ``VECTOR_WIDTH``; a click on
  the raster is looked up in PostGIS (the nearest building within 15 m). Special populations (only the
  categories the role grants) are counted per grid when zoomed out and drawn a point a person when in.
- **Workbench**: draw a polygon or rectangle (or a circle: a point and a radius), choose the layers and
  the events' time window, count what is inside, and export a layer's rows (CSV/XLSX/GeoJSON, masked,
  logged). A grid, once reached, links to its printable notice board (网格服务公示牌).
- **Registry links**: the opened building, compound or grid links to its record in the registry page's
  side panel (在台账中打开), and a click on the map offers 在此处新建 — a new record of a point, line or
  polygon registry the role may write, placed at the clicked CGCS2000 lon/lat.

Every read runs through ``connect()`` — a connection as the app role scoped to the user — and the
services in :mod:`layers.spatial` and :mod:`layers.housing_grid`; this module writes no SQL.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any
from urllib.parse import urlencode

import datashader as ds
import geopandas as gpd
import geoviews as gv
import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import param
from cartopy import crs as ccrs
from shapely.geometry import Point, Polygon, box
from sqlalchemy import Connection

from dashboards import theme
from dashboards.map import TerritoryMap
from dashboards.registries import new_record_url, placeable_registries, readable_registries, record_url
from gis.security.roles import SPECIAL_CATEGORIES
from layers import housing_grid, people, spatial, territory

Connect = Callable[[], AbstractContextManager[Connection]]

# Below this viewport width (Mercator metres) big layers are drawn as vectors instead of a raster, and
# special populations as individual points instead of clusters per grid.
VECTOR_WIDTH = 2500
VECTOR_CAP = 3000
RASTER_WIDTH = 360  # pixels across a raster; the browser smooths it to the frame
GCJ02_MARGIN = 1000.0  # metres: more than GCJ-02's offset anywhere in China
FIGURE_CMAPS = {"people": "Blues", "households": "Greens", "special": "Reds", "events": "Oranges"}
SEARCH_KINDS = {"姓名": "name", "身份证号": "id_number", "电话": "phone"}
_FLAT_CSS = {
    status: f".bk-btn {{ background: {colour} !important; border: 1px solid #7d7d7d !important; "
            "color: #222 !important; font-size: 12px; padding: 2px 4px; }"
    for status, colour in housing_grid.STATUS_COLOURS.items()
}
_MARKED_CSS = ".bk-btn { outline: 3px solid #1f3b63 !important; outline-offset: -3px; font-weight: 700; }"


class Explorer(param.Parameterized):
    """One session's explorer: the drill-down state, the panels and the map overlays."""

    node = param.ClassSelector(class_=spatial.Node)
    figure = param.Selector(default="people", objects=list(spatial.FIGURES))
    building_id = param.Integer(default=None, allow_None=True)
    house_id = param.Integer(default=None, allow_None=True)
    big_layer = param.Selector(default="", objects=["", *spatial.VIEWPORT_LAYERS])
    special_layer = param.Selector(default="", objects=["", *SPECIAL_CATEGORIES])
    view = param.Tuple(default=None, allow_None=True, length=4,
                       doc="The viewport the browser shows (EPSG:3857 x0, y0, x1, y1); None before it says.")

    def __init__(self, user: Any, connect: Connect, top: spatial.Node, units: gpd.GeoDataFrame,
                 basemap: spatial.Basemap, **params):
        super().__init__(node=top, **params)
        self.user, self.connect, self.top = user, connect, top
        self.categories = housing_grid.visible_categories(user)
        self.children = gpd.GeoDataFrame({"level": [], "key": [], "name": [], "value": []}, geometry=[],
                                         crs="EPSG:3857")
        self._building_point: tuple[float, float] | None = None
        self._mark_house: int | None = None
        self._node_grid_id: int | None = None  # the grid the explorer is at, if it is at one

        self.children_stream = hv.streams.Pipe(data=None)
        self.mark_stream = hv.streams.Pipe(data=[])
        children_layer = hv.DynamicMap(self._children_element, streams=[self.children_stream])
        mark_layer = hv.DynamicMap(
            lambda data: gv.Points(data, kdims=["x", "y"], crs=ccrs.GOOGLE_MERCATOR).opts(
                size=16, color="#d62728", line_color="white", line_width=2, marker="diamond"),
            streams=[self.mark_stream])
        # The viewport, for every per-viewport layer: the browser reports it through a range stream on a
        # layer of its own, and the layers are redrawn (:meth:`redraw_viewport_layers`) through pipes.
        self.range_stream = hv.streams.RangeXY()
        self.range_stream.add_subscriber(self._viewport_moved)
        viewport_probe = hv.DynamicMap(lambda x_range, y_range: hv.Points([]), streams=[self.range_stream])
        self._viewport_pipes = {name: hv.streams.Pipe(data=draw(None, ""))
                                for name, draw in self._viewport_layers().items()}
        viewport_layers = [hv.DynamicMap(lambda data: data, streams=[pipe])
                           for pipe in self._viewport_pipes.values()]
        draw_box = hv.Rectangles([]).opts(fill_alpha=0.15, fill_color="#1f77b4", line_color="#1f77b4",
                                          line_width=2)
        draw_poly = hv.Polygons([]).opts(fill_alpha=0.15, fill_color="#9467bd", line_color="#9467bd",
                                         line_width=2)
        self.box_stream = hv.streams.BoxEdit(source=draw_box, num_objects=1)
        self.poly_stream = hv.streams.PolyDraw(source=draw_poly, num_objects=1, drag=True)
        self.map = TerritoryMap(units, basemap=basemap, overlays=[
            viewport_probe, draw_box, draw_poly, children_layer, *viewport_layers, mark_layer])
        self.map.param.watch(lambda event: event.new and self._tapped(*event.new), "clicked")

        # ---- side: breadcrumbs, figure, children
        self.crumbs = pn.FlexBox(sizing_mode="stretch_width", css_classes=["gg-breadcrumbs"], margin=(0, 5),
                                 flex_wrap="wrap")
        self.figure_select = pn.widgets.RadioButtonGroup(
            options={label: key for key, label in spatial.FIGURES.items()}, value=self.figure,
            color="primary", variant="outline", sizing_mode="stretch_width")
        self.figure_select.link(self, value="figure")
        self.children_table = pn.widgets.Tabulator(
            pd.DataFrame(columns=["名称", "数值"]), show_index=False, disabled=True, selectable=1,
            sizing_mode="stretch_width", height=260, css_classes=["gg-children"], layout="fit_data_stretch")
        self.children_table.on_click(self._child_clicked)
        self.children_title = pn.pane.Markdown("", css_classes=["gg-children-title"], margin=(0, 10))

        # ---- 以人找房
        self.search_kind = pn.widgets.RadioButtonGroup(options=SEARCH_KINDS, value="name",
                                                       sizing_mode="stretch_width")
        self.search_text = pn.widgets.TextInput(placeholder="输入姓名、完整身份证号或电话",
                                                sizing_mode="stretch_width", css_classes=["gg-search"])
        self.search_button = pn.widgets.Button(label="以人找房", color="primary",
                                               sizing_mode="stretch_width")
        self.search_button.on_click(self._search)
        self.search_text.param.watch(self._search, "enter_pressed")
        self.results = pn.widgets.Tabulator(
            pd.DataFrame(columns=["姓名", "身份证号", "住址"]), show_index=False, disabled=True, selectable=1,
            sizing_mode="stretch_width", height=180, css_classes=["gg-results"], visible=False)
        self.results.on_click(self._result_clicked)
        self.search_message = pn.pane.Markdown("", margin=(0, 10))
        self._result_rows: list[dict] = []

        # ---- 楼盘表 and household
        self.housing = pn.Column(sizing_mode="stretch_width", css_classes=["gg-housing"])
        self.household = pn.Column(sizing_mode="stretch_width", css_classes=["gg-household"])

        # ---- big layers and workbench
        self.big_select = pn.widgets.Select(
            label="大数据图层", sizing_mode="stretch_width", css_classes=["gg-big-layer"],
            options={"（不显示）": "", **{v: k for k, v in spatial.VIEWPORT_LAYERS.items()}})
        self.big_select.link(self, value="big_layer")
        # Only the categories the role grants are offered: the others do not exist for this user.
        self.special_select = pn.widgets.Select(
            label="特殊人群图层", sizing_mode="stretch_width", css_classes=["gg-special-layer"],
            options={"（不显示）": "", **{SPECIAL_CATEGORIES[c]: c for c in self.categories}},
            disabled=not self.categories)
        self.special_select.link(self, value="special_layer")
        self.click_info = pn.pane.Markdown("", margin=(0, 10), css_classes=["gg-click-info"])
        self.area_layers = pn.widgets.CheckBoxGroup(
            options={v: k for k, v in spatial.AREA_LAYERS.items()}, value=["person", "household", "building"],
            inline=True)
        self.radius = pn.widgets.FloatInput(label="圆形/缓冲半径（米，点击地图定圆心）", value=0, start=0,
                                            end=20000, step=50, sizing_mode="stretch_width",
                                            css_classes=["gg-radius"])
        self.since = pn.widgets.DatePicker(label="事件上报起", sizing_mode="stretch_width",
                                           css_classes=["gg-since"])
        self.until = pn.widgets.DatePicker(label="事件上报止", sizing_mode="stretch_width",
                                           css_classes=["gg-until"])
        self.export_layer = pn.widgets.Select(
            label="导出图层", options={v: k for k, v in spatial.AREA_LAYERS.items()}, value="person",
            sizing_mode="stretch_width")
        self.export_format = pn.widgets.RadioButtonGroup(options={"CSV": "csv", "Excel": "xlsx",
                                                                  "GeoJSON": "geojson"}, value="csv")
        self.export_button = pn.widgets.FileDownload(callback=self._export_area, filename="area_person.csv",
                                                     label="导出范围明细", color="primary",
                                                     sizing_mode="stretch_width", css_classes=["gg-export"])
        self.export_format.param.watch(self._name_export, "value")
        self.export_layer.param.watch(self._name_export, "value")
        self.notice_link = pn.pane.HTML("", margin=(0, 10), css_classes=["gg-notice-board"])
        # The registry side panel of /registries is where a feature's record is read and edited: the map
        # links to it (the opened building / compound / grid), and a click offers to create a record there.
        self._readable = {r.key for r in readable_registries(user)}
        self.record_link = pn.pane.HTML("", margin=(0, 10), css_classes=["gg-record-link"])
        placeable = placeable_registries(user)
        self.new_registry = pn.widgets.Select(
            label="在此处新建", options={r.zh: r.key for r in placeable}, sizing_mode="stretch_width",
            css_classes=["gg-new-registry"], visible=bool(placeable))
        self.new_link = pn.pane.HTML("", margin=(0, 10), css_classes=["gg-new-link"])
        self.new_registry.param.watch(lambda _: self._show_new_link(), "value")
        self._clicked_at: tuple[float, float] | None = None
        self.area_button = pn.widgets.Button(label="统计绘制范围", color="success",
                                             sizing_mode="stretch_width")
        self.area_button.on_click(self._query_area)
        self.area_counts = pn.pane.Markdown("", css_classes=["gg-area-counts"], stylesheets=[theme.TABLE_CSS],
                                            sizing_mode="stretch_width")
        self.area_rows = pn.widgets.Tabulator(pd.DataFrame(), show_index=False, disabled=True,
                                              sizing_mode="stretch_width", height=220, visible=False)
        self._circle_centre: tuple[float, float] | None = None

        self.param.watch(lambda _: self._refresh_children(), ["node", "figure"])
        self._refresh_children(zoom=False)

    # ------------------------------------------------------------------ drill-down
    def _children_element(self, data) -> gv.Polygons:
        frame = data if data is not None and len(data) else None
        vdims = ["value", "name", "level_label"]
        if frame is None:
            return gv.Polygons([], vdims=vdims, crs=ccrs.GOOGLE_MERCATOR)
        label = spatial.FIGURES[self.figure]
        return gv.Polygons(frame[["geometry", *vdims]], vdims=vdims, crs=ccrs.GOOGLE_MERCATOR).opts(
            color="value", cmap=FIGURE_CMAPS[self.figure], clim=(0, max(1, float(frame["value"].max()))),
            fill_alpha=0.6, line_color="#333333",
            line_width=1, colorbar=True, clabel=label, tools=["hover"],
            hover_tooltips=[("名称", "@name"), ("层级", "@level_label"), (label, "@value")])

    def _refresh_children(self, zoom: bool = True) -> None:
        with self.connect() as conn:
            crumbs = spatial.breadcrumbs(conn, self.node, self.top.key)
            grid = territory.unit_at_path(conn, self.node.key) if self.node.level == "grid" else None
            grid_id = grid.id if grid is not None else None
            children = spatial.drill_children(conn, self.node, self.figure,
                                              special_categories=self.categories)
            # A building has no children: draw it among its neighbours (its parent's children) instead.
            shown = children
            if self.node.level == "building" and len(crumbs) > 1:
                shown = spatial.drill_children(conn, crumbs[-2], self.figure,
                                               special_categories=self.categories)
        for frame in (children, shown):
            frame["level_label"] = frame["level"].map(spatial.DRILL_LABELS)
        drawn = self.map.to_draw_frame(shown) if len(shown) else shown.to_crs("EPSG:3857")
        self.children = drawn
        self.children_stream.send(drawn)
        self._draw_crumbs(crumbs)
        label = spatial.FIGURES[self.figure]
        total = int(children["value"].sum()) if len(children) else 0
        self.children_title.object = (f"**{self.node.name}** 下级{len(children)}个 · {label}合计 "
                                      f"<span class='gg-total'>{total:,}</span>")
        self.children_table.value = pd.DataFrame({"名称": children["name"], "层级": children["level_label"],
                                                  label: children["value"].astype(int)})
        self._show_notice_link(grid_id)
        self._node_grid_id = grid_id
        self._show_node_record_link()
        if self.node.level == "building":
            self.open_building(int(self.node.key), zoom=zoom, mark_house=self._mark_house)
        if zoom and self.node.level != "building":
            self._zoom_to_node(drawn)

    def _show_notice_link(self, grid_id: int | None) -> None:
        # The 公示牌 is printed by the registries' route (same permission, scope and access log).
        self.notice_link.object = (f"<a href='{notice_board_url(grid_id)}' target='_blank'>"
                                   f"打印网格服务公示牌（PDF）</a>" if grid_id is not None else "")

    def _show_node_record_link(self) -> None:
        """The link to the record of the unit the explorer is at (a grid, compound or building)."""
        feature_id = self._node_grid_id if self.node.level == "grid" else None
        if self.node.level in ("compound", "building"):
            feature_id = int(self.node.key)
        self.show_record_link(self.node.level, feature_id)

    def show_record_link(self, key: str, record_id: int | None) -> None:
        """A link to a feature's record in the registry side panel (``key``: building, compound or grid),
        if the role may read that registry."""
        shown = record_id is not None and key in self._readable
        self.record_link.object = (f"<a href='{record_url(key, record_id)}' target='_blank'>在台账中打开</a>"
                                   if shown else "")

    def _show_event_at(self, lon: float, lat: float, tolerance_m: float) -> bool:
        """On the event layer, a link to the nearest event (in scope) on the events page; whether there
        was one."""
        with self.connect() as conn:
            event = spatial.event_at(conn, lon, lat, tolerance_m)
        if event is None:
            self._show_node_record_link()
            return False
        href = f"/events?{urlencode({'id': int(event['id'])})}"
        label = html.escape(f"打开事件 {event['number']}：{event['title']}")
        self.record_link.object = f"<a href='{href}' target='_blank'>{label}</a>"
        return True

    def _show_new_link(self) -> None:
        key = self.new_registry.value
        if not key or self._clicked_at is None:
            self.new_link.object = ""
            return
        self.new_link.object = (f"<a href='{new_record_url(key, *self._clicked_at)}' target='_blank'>"
                                f"在此处新建（{self._clicked_at[0]:.6f}, {self._clicked_at[1]:.6f}）</a>")

    def _zoom_to_node(self, drawn: gpd.GeoDataFrame) -> None:
        if len(drawn):
            self.map.zoom_to(drawn.total_bounds)
        elif self.node.level == "building" and self._building_point is not None:
            x, y = self._building_point
            self.map.zoom_to((x - 80, y - 80, x + 80, y + 80))

    def _draw_crumbs(self, crumbs: list[spatial.Node]) -> None:
        buttons = []
        for i, crumb in enumerate(crumbs):
            last = i == len(crumbs) - 1
            button = pn.widgets.Button(label=crumb.name, color="primary" if last else "light",
                                       css_classes=["gg-crumb"], margin=(2, 2), disabled=last)
            button.on_click(lambda _, c=crumb: self.descend(c))
            buttons.append(button)
        self.crumbs.objects = buttons

    def descend(self, node: spatial.Node) -> None:
        if node.level != "building":
            self.building_id = None
            self.housing.objects, self.household.objects = [], []
        self.node = node

    def _child_clicked(self, event) -> None:
        if event.row is None or event.row >= len(self.children):
            return
        child = self.children.iloc[event.row]
        self.descend(spatial.Node(child["level"], child["key"], child["name"]))

    def _tapped(self, x: float | None, y: float | None) -> None:
        if x is None or y is None:
            return
        lon, lat = self.map.to_lonlat(x, y)
        self._circle_centre = (lon, lat)  # the centre of a circle, should the analyst give a radius
        self._clicked_at = (lon, lat)  # CGCS2000 (to_lonlat shifts a GCJ-02 basemap's click back)
        self._show_new_link()
        # A building under the click (or, on a raster, the nearest within a few pixels) opens its 楼盘表.
        tolerance = 15.0 if self.big_layer else 0.0
        with self.connect() as conn:
            hit = spatial.building_at(conn, lon, lat, tolerance)
        if self.big_layer:
            self.click_info.object = (f"点击位置 {lon:.5f}, {lat:.5f}：" +
                                      (f"**{hit['name']}**（{hit['compound_name'] or '无小区'}）" if hit
                                       else "附近没有楼栋"))
        if self.big_layer == "event":  # an event within a few pixels (15 m at least) opens; else as ever
            view = self.viewport(self.view)
            if self._show_event_at(lon, lat, max(tolerance, (view[2] - view[0]) / 100 if view else 0.0)):
                return
        if hit is not None and self.node.level in ("grid", "compound", "building"):
            self.descend(spatial.Node("building", str(hit["id"]), hit["name"]))
            self.show_record_link("building", int(hit["id"]))  # also when the building was already open
            return
        if hit is not None:
            self.show_record_link("building", int(hit["id"]))
        point = Point(x, y)
        inside = self.children[self.children.geometry.contains(point)] if len(self.children) else []
        if len(inside):
            child = inside.iloc[0]
            self.descend(spatial.Node(child["level"], child["key"], child["name"]))

    # ------------------------------------------------------------------ 以房找人
    def open_building(self, building_id: int, *, zoom: bool = True, mark_house: int | None = None) -> None:
        with self.connect() as conn:
            grid = housing_grid.housing_grid(conn, building_id, special_categories=self.categories)
            location = None
            if grid is not None and grid.flats:
                location = housing_grid.house_location(conn, grid.flats[0].house_id)
        if grid is None:
            self.housing.objects = [pn.pane.Alert("未找到该楼栋，或其不在您的辖区内。", alert_type="warning")]
            return
        self.building_id = building_id
        if location is not None:
            self._building_point = self.map.to_draw(location["lon"], location["lat"])
            self.mark_stream.send([self._building_point])
            if zoom:
                x, y = self._building_point
                self.map.zoom_to((x - 80, y - 80, x + 80, y + 80))
        self.housing.objects = [self._housing_panel(grid, mark_house)]

    def _housing_panel(self, grid: housing_grid.HousingGrid, mark_house: int | None) -> pn.viewable.Viewable:
        counts = grid.counts()
        legend = " ".join(
            f"<span style='background:{housing_grid.STATUS_COLOURS[k]};padding:1px 6px;"
            f"border:1px solid #888'>{label} {counts[k]}</span>"
            for k, label in housing_grid.STATUS_LABELS.items()
            if k != "special" or self.categories)
        parts: list = [pn.pane.HTML(legend, margin=(0, 10))]
        for unit_no in grid.unit_numbers:
            rows = []
            for floor, flats in grid.rows(unit_no):
                cells = [pn.pane.Markdown(f"{floor}层", width=40, margin=(4, 2))]
                for flat in flats:
                    stylesheets = [_FLAT_CSS[flat.status]]
                    if flat.house_id == mark_house:
                        stylesheets.append(_MARKED_CSS)
                    tip = f"{flat.room_no} {flat.status_label}"
                    if flat.head_name:
                        tip += f" 户主 {flat.head_name}"
                    button = pn.widgets.Button(
                        label=f"{flat.room_no} {flat.head_name or '空'}", width=96, height=34,
                        margin=(1, 1), stylesheets=stylesheets, description=tip,
                        css_classes=["gg-flat", f"gg-{flat.status}"])
                    button.on_click(lambda _, h=flat.house_id, r=flat.room_no: self.open_household(h, r))
                    cells.append(button)
                rows.append(pn.Row(*cells, margin=0))
            parts.append(pn.Card(*rows, title=f"{unit_no}单元", collapsible=False, margin=(4, 0),
                                 sizing_mode="stretch_width"))
        title = f"楼盘表 · {grid.compound_name + ' ' if grid.compound_name else ''}{grid.name}"
        return pn.Card(*parts, title=title, sizing_mode="stretch_width", collapsible=False,
                       css_classes=["gg-housing-card"])

    def open_household(self, house_id: int, room_no: str = "") -> None:
        with self.connect() as conn:
            members = housing_grid.household_members(conn, house_id, special_categories=self.categories)
        self.house_id = house_id
        if not members:
            self.household.objects = [pn.pane.Markdown(f"**{room_no} 住户**：空置，无现住人员")]
            return
        frame = pd.DataFrame({
            "姓名": [m["name"] for m in members],
            "与户主关系": [m["relation_label"] for m in members],
            "身份证号": [m["id_number"] for m in members],
            "电话": [m["phone"] for m in members],
            "特殊人群": ["、".join(SPECIAL_CATEGORIES[c] for c in m["special"]) for m in members],
        })
        table = pn.widgets.Tabulator(frame, show_index=False, disabled=True, sizing_mode="stretch_width",
                                     css_classes=["gg-members"], layout="fit_data_stretch")
        link = pn.pane.HTML("<a href='/registries?registry=person' target='_blank'>在人口台账中查看</a>")
        self.household.objects = [pn.Card(table, link, title=f"{room_no} 住户（{len(members)}人）",
                                          collapsible=False, sizing_mode="stretch_width")]

    # ------------------------------------------------------------------ 以人找房
    def _search(self, *_: Any) -> None:
        value = (self.search_text.value or "").strip()
        if not value:
            self.search_message.object = "请输入要查找的姓名、身份证号或电话。"
            return
        with self.connect() as conn:
            page = people.list_people(conn, **{self.search_kind.value: value}, within=self.top.key
                                      if self.top.level in territory.LEVELS else None, limit=50)
        self._result_rows = page.items
        self.results.value = pd.DataFrame({
            "姓名": [r["name"] for r in page.items], "身份证号": [r["id_number"] for r in page.items],
            "住址": [r["address"] or "（无现住址）" for r in page.items]})
        self.results.visible = bool(page.items)
        self.search_message.object = (f"找到 {page.total} 人" + ("，点击一行定位到住所" if page.items else "")
                                      if page.total else "辖区内没有找到匹配的人员。")
        if len(page.items) == 1:
            self.locate_person(page.items[0])

    def _result_clicked(self, event) -> None:
        if event.row is not None and event.row < len(self._result_rows):
            self.locate_person(self._result_rows[event.row])

    def locate_person(self, row: dict) -> None:
        if not row.get("building_id"):
            self.search_message.object = f"{row['name']} 没有登记现住房屋。"
            return
        with self.connect() as conn:
            location = housing_grid.house_location(conn, row["house_id"])
            node = spatial.node_at(conn, "building", str(row["building_id"]))
        self._mark_house = row["house_id"]
        try:
            if node == self.node:
                self.open_building(row["building_id"], mark_house=row["house_id"])
            else:
                self.node = node
        finally:
            self._mark_house = None
        self.open_household(row["house_id"], location["room_no"] if location else "")

    # ------------------------------------------------------------------ big layers
    def _viewport_moved(self, x_range=None, y_range=None, **_: Any) -> None:
        if not (x_range and y_range and x_range[1] - x_range[0] > 1 and y_range[1] - y_range[0] > 1):
            return  # the stream's first values (nothing, or the unit square) are no view
        view = (float(x_range[0]), float(y_range[0]), float(x_range[1]), float(y_range[1]))
        document = pn.state.curdoc
        if document is not None and document.session_context is not None:
            document.add_next_tick_callback(lambda: self.param.update(view=view))
        else:
            self.view = view

    def _viewport_layers(self) -> dict[str, Callable]:
        """Each per-viewport layer: (view, chosen layer) → the element to draw."""
        return {"raster": lambda view, _: self._big_raster(view, self.big_layer),
                "footprints": lambda view, _: self._big_vectors(view, self.big_layer),
                "events": lambda view, _: self._big_event_points(view, self.big_layer),
                "special": lambda view, _: self._special_points(view, self.special_layer),
                "special_counts": lambda view, _: self._special_counts(view, self.special_layer)}

    @param.depends("view", "big_layer", "special_layer", watch=True)
    def redraw_viewport_layers(self) -> None:
        drawn = {name: draw(self.view, None) for name, draw in self._viewport_layers().items()}
        with pn.io.unlocked():
            for name, element in drawn.items():
                self._viewport_pipes[name].send(element)

    def viewport(self, view: tuple[float, float, float, float] | None = None,
                 ) -> tuple[float, float, float, float] | None:
        """``view`` (EPSG:3857), or before the browser has reported one, the territory's extent, which
        is what the map first shows."""
        if view is not None:
            return view
        if self.map.drawn_units.empty:
            return None
        return tuple(float(v) for v in self.map.drawn_units.total_bounds)

    def _query_view(self, view: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        # Over a GCJ-02 basemap the drawn view is shifted up to ~600 m from the stored data: widen the
        # database's box by that much so nothing at the edge is missed (the draw shift puts it back).
        if self.map.basemap.frame != "gcj02":
            return view
        x0, y0, x1, y1 = view
        return (x0 - GCJ02_MARGIN, y0 - GCJ02_MARGIN, x1 + GCJ02_MARGIN, y1 + GCJ02_MARGIN)

    def _drawn_points(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Mercator ``x, y`` from the database, as this map draws them (shifted into GCJ-02 if need be)."""
        if self.map.basemap.frame != "gcj02" or frame.empty:
            return frame
        stored = gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(frame.x, frame.y), crs="EPSG:3857")
        drawn = self.map.to_draw_frame(stored.to_crs("EPSG:4490"))
        return frame.assign(x=drawn.geometry.x.values, y=drawn.geometry.y.values)

    def _big_raster(self, view=None, big_layer: str = "") -> hv.Image:
        """The big layer rasterized with datashader over the viewport, when zoomed out."""
        view = self.viewport(view) if big_layer else None
        if view is None or view[2] - view[0] < VECTOR_WIDTH:
            return _empty_raster()  # nothing chosen, or zoomed in: the vectors draw it
        with self.connect() as conn:
            frame = spatial.viewport_points(conn, big_layer, self._query_view(view))
        return raster_of(self._drawn_points(frame), view)

    def _big_vectors(self, view=None, big_layer: str = "") -> gv.Polygons:
        """Zoomed in: the footprints in view as vectors (at most ``VECTOR_CAP``), coloured by people;
        events are drawn as points by :meth:`_big_event_points` instead."""
        style = dict(color="people", cmap="YlOrRd", line_color="#555555", fill_alpha=0.8, tools=["hover"],
                     hover_tooltips=[("名称", "@name"), ("人数", "@people")])
        # The empty layer is styled too: the first element drawn decides the hover's columns.
        empty = gv.Polygons([], vdims=["name", "people"], crs=ccrs.GOOGLE_MERCATOR).opts(**style)
        view = self.viewport(view) if big_layer not in ("", "event") else None
        if view is None or view[2] - view[0] >= VECTOR_WIDTH:
            return empty
        with self.connect() as conn:
            frame = spatial.buildings_in_view(conn, self._query_view(view), cap=VECTOR_CAP)
        if frame.empty:
            return empty
        frame = self.map.to_draw_frame(frame.to_crs("EPSG:4490"))
        return gv.Polygons(frame[["geometry", "name", "people"]], vdims=["name", "people"],
                           crs=ccrs.GOOGLE_MERCATOR).opts(**style)

    def _big_event_points(self, view=None, big_layer: str = "") -> gv.Points:
        """Zoomed in on the event layer: each event in view as a point (at most ``VECTOR_CAP``)."""
        view = self.viewport(view) if big_layer == "event" else None
        frame = pd.DataFrame({"x": [], "y": [], "number": [], "title": [], "status": []})
        if view is not None and view[2] - view[0] < VECTOR_WIDTH:
            with self.connect() as conn:
                frame = spatial.events_in_view(conn, self._query_view(view), cap=VECTOR_CAP)
            frame = self._drawn_points(frame)
        return gv.Points(frame, kdims=["x", "y"], vdims=["number", "title", "status"],
                         crs=ccrs.GOOGLE_MERCATOR).opts(
            size=10, color="#e6550d", line_color="white", marker="triangle", tools=["hover"],
            hover_tooltips=[("事件", "@title"), ("编号", "@number"), ("状态", "@status")])

    def _special_frame(self, view, special_layer: str) -> tuple[pd.DataFrame, bool]:
        """The chosen special population in view, and whether it is clustered: zoomed out, one circle a
        grid with how many live there; zoomed in, one point a person around their building. Only a
        category the user's role grants is ever read."""
        view = self.viewport(view) if special_layer in self.categories else None
        if view is None:
            return pd.DataFrame({"x": [], "y": [], "n": [], "name": []}), True
        clustered = view[2] - view[0] >= VECTOR_WIDTH
        with self.connect() as conn:
            if clustered:
                frame = spatial.special_clusters(conn, special_layer, self._query_view(view))
            else:
                frame = spatial.special_people_points(conn, special_layer, self._query_view(view),
                                                      cap=VECTOR_CAP)
        return self._drawn_points(frame), clustered

    def _special_points(self, view=None, special_layer: str = "") -> gv.Points:
        frame, clustered = self._special_frame(view, special_layer)
        frame = frame.assign(size=(14 + 5 * np.sqrt(frame["n"])) if clustered else 9.0)
        tooltips = ([("网格", "@name"), ("人数", "@n")] if clustered else [("楼栋", "@name")])
        return gv.Points(frame, kdims=["x", "y"], vdims=["n", "name", "size"], crs=ccrs.GOOGLE_MERCATOR).opts(
            size="size", color="#7b2cbf", alpha=0.75, line_color="white", tools=["hover"],
            hover_tooltips=tooltips)

    def _special_counts(self, view=None, special_layer: str = "") -> hv.Labels:
        """The count written on each cluster (none on individual points)."""
        frame, clustered = self._special_frame(view, special_layer)
        if not clustered:
            frame = frame.iloc[:0]
        labels = pd.DataFrame({"x": frame["x"], "y": frame["y"], "text": frame["n"].astype(int).astype(str)})
        return hv.Labels(labels, kdims=["x", "y"], vdims=["text"]).opts(
            text_color="white", text_font_size="11px", text_font_style="bold")

    # ------------------------------------------------------------------ workbench
    def _drawn_area(self) -> Polygon | None:
        data = self.poly_stream.data or {}
        if len(data.get("xs", ())) and len(data["xs"][0]) >= 3:
            points = [self.map.to_lonlat(x, y) for x, y in zip(data["xs"][0], data["ys"][0], strict=True)]
            return Polygon(points)
        data = self.box_stream.data or {}
        if len(data.get("x0", ())):
            (lon0, lat0), (lon1, lat1) = (self.map.to_lonlat(data["x0"][0], data["y0"][0]),
                                          self.map.to_lonlat(data["x1"][0], data["y1"][0]))
            return box(min(lon0, lon1), min(lat0, lat1), max(lon0, lon1), max(lat0, lat1))
        return None

    def _area(self):
        """The area the analyst gave (drawn, or a clicked centre and a radius) and its buffer, or None."""
        area, buffer_m = self._drawn_area(), float(self.radius.value or 0)
        if area is None and self._circle_centre and buffer_m > 0:
            area = Point(*self._circle_centre)
        if area is None:
            self.area_counts.object = "请先在地图上画多边形或矩形（工具栏），或设半径后点击地图定圆心。"
            return None
        return area, buffer_m

    def _name_export(self, *_: Any) -> None:
        self.export_button.filename = f"area_{self.export_layer.value}.{self.export_format.value}"

    def _export_area(self):
        """The download: the chosen layer inside the area as a file, masked and logged (the service)."""
        import io

        given = self._area()
        if given is None:
            return None
        area, buffer_m = given
        try:
            with self.connect() as conn:
                exported = spatial.export_area(
                    conn, area, self.export_layer.value, self.export_format.value, buffer_m=buffer_m,
                    since=self.since.value, until=self.until.value, special_categories=self.categories)
        except spatial.SpatialError as error:
            self.area_counts.object = f"**无法导出**：{error}"
            return None
        return io.BytesIO(exported.content)

    def _query_area(self, *_: Any) -> None:
        given = self._area()
        if given is None:
            return
        area, buffer_m = given
        if self.since.value and self.until.value and self.since.value > self.until.value:
            self.area_counts.object = "**无法统计**：事件上报起始日期晚于截止日期。"
            return
        try:
            with self.connect() as conn:
                result = spatial.area_query(conn, area, self.area_layers.value, buffer_m=buffer_m,
                                            since=self.since.value, until=self.until.value,
                                            special_categories=self.categories)
        except spatial.SpatialError as error:
            self.area_counts.object = f"**无法统计**：{error}"
            return
        self.show_area_result(result)

    def show_area_result(self, result: spatial.AreaResult) -> None:
        lines = [f"| {spatial.AREA_LAYERS[k]} | {v:,} |" for k, v in result.counts.items()]
        for layer, breakdown in result.breakdown.items():
            lines += [f"| &nbsp;&nbsp;{spatial.AREA_LAYERS[layer]}·{k} | {v:,} |"
                      for k, v in breakdown.items()]
        self.area_counts.object = (f"范围面积 {result.area_m2 / 1e6:.3f} 平方公里\n\n"
                                   "| 类别 | 数量 |\n|:--|--:|\n" + "\n".join(lines))
        rows = result.rows.get("person") or next((r for r in result.rows.values() if r), [])
        self.area_rows.value = pd.DataFrame(rows)
        self.area_rows.visible = bool(rows)

    # ------------------------------------------------------------------ layout
    def sidebar(self, totals_card: pn.viewable.Viewable, user_label: str) -> pn.viewable.Viewable:
        search = pn.Card(self.search_kind, self.search_text, self.search_button, self.search_message,
                         self.results, title="以人找房", collapsible=False, sizing_mode="stretch_width")
        drill = pn.Card(self.crumbs, self.notice_link, self.record_link, self.figure_select,
                        self.children_title, self.children_table, title="逐级下钻", collapsible=False,
                        sizing_mode="stretch_width")
        return pn.Column(totals_card, drill, search, self.map.controls, self.big_select, self.special_select,
                         self.click_info, self.new_registry, self.new_link,
                         pn.pane.Markdown(pn.bind(_selected_text, self.map.param.selected),
                                          sizing_mode="stretch_width", css_classes=["gg-selected"]),
                         pn.pane.Markdown(f"<small>当前用户：{user_label}</small>",
                                          sizing_mode="stretch_width"),
                         sizing_mode="stretch_width")

    def main(self) -> pn.viewable.Viewable:
        workbench = pn.Card(
            pn.pane.Markdown("用工具栏的多边形或矩形工具在地图上绘制范围；或填写半径后点击地图定圆心。",
                             margin=(0, 10)),
            self.area_layers, self.radius, pn.Row(self.since, self.until), self.area_button, self.area_counts,
            self.area_rows, self.export_layer, self.export_format, self.export_button,
            title="范围分析", collapsed=False, sizing_mode="stretch_width", css_classes=["gg-workbench"])
        panels = pn.Column(self.housing, self.household, workbench, width=440, margin=(0, 0, 0, 10))
        return pn.Row(self.map, panels, sizing_mode="stretch_both", min_height=640)


def explorer_page(
    user: Any, connect: Connect, *, basemap: spatial.Basemap | None = None, tile_url: str | None = None,
) -> pn.template.BaseTemplate:
    """Build the page for one session; ``connect()`` opens a connection scoped to ``user``."""
    scope = user.scope
    with connect() as conn:
        top = territory.unit_at_path(conn, scope)
        if top is None:
            return theme.notice_page("地图", "暂无区划数据", "数据库中还没有本辖区的区划边界。"
                                     "请先导入区划或生成演示区 (gridgov demo)。")
        units = territory.territory_units(conn, within_path=scope)
        totals = territory.territory_totals(conn, scope)
    explorer = Explorer(user, connect, spatial.Node(top.level, top.path, top.name), units,
                        basemap or spatial.Basemap(tile_url, "cgcs2000"))
    title_card = pn.pane.Markdown(f"### {top.name}\n{territory.LEVEL_LABELS[top.level]} · 代码 {top.code}",
                                  css_classes=["gg-unit-title"], sizing_mode="stretch_width")
    side = pn.Column(title_card, explorer.sidebar(_totals_card(totals), user.display_name),
                     sizing_mode="stretch_width")
    page = theme.page(f"{top.name} 网格化服务管理 · 地图", main=[explorer.main()], sidebar=[side])
    page.explorer = explorer  # for tests and other pages reusing the session's explorer
    return page


_RASTER_STYLE = dict(cmap="fire", alpha=0.8, colorbar=False, clipping_colors={"NaN": "transparent"},
                     cnorm="eq_hist", tools=["hover"], hover_tooltips=[("数量", "@image")])
def _empty_raster() -> hv.Image:
    return hv.Image(np.full((1, 1), np.nan, dtype="float32"), bounds=(0, 0, 1, 1), kdims=["x", "y"],
                    vdims=["n"]).opts(**_RASTER_STYLE)


def raster_of(points: pd.DataFrame, view: tuple[float, float, float, float],
              width: int = RASTER_WIDTH) -> hv.Image:
    """Weighted points (``x, y, n`` in EPSG:3857) summed by datashader onto a grid over ``view``, square
    pixels; empty pixels are NaN (drawn transparent)."""
    x0, y0, x1, y1 = view
    height = max(1, round(width * (y1 - y0) / (x1 - x0)))
    canvas = ds.Canvas(plot_width=width, plot_height=height, x_range=(x0, x1), y_range=(y0, y1))
    counts = canvas.points(points, "x", "y", agg=ds.sum("n")).astype("float32")
    counts = counts.where(counts > 0).rename("n")
    return hv.Image(counts, kdims=["x", "y"], vdims=["n"]).opts(**_RASTER_STYLE)


def notice_board_url(grid_id: int) -> str:
    """Where a grid's printable notice board (网格服务公示牌) is served, as a PDF."""
    return f"/api/v1/registries/grid/{int(grid_id)}/notice-board"


def _totals_card(totals: dict[str, int]) -> pn.viewable.Viewable:
    rows = "\n".join(
        f"| {territory.TOTAL_LABELS[key]} | {value:,} |" for key, value in totals.items()
    )
    table = pn.pane.Markdown(f"| 类别 | 数量 |\n|:--|--:|\n{rows}", css_classes=["gg-totals"],
                             stylesheets=[theme.TABLE_CSS], sizing_mode="stretch_width")
    return pn.Card(table, title="辖区概况", collapsible=False, sizing_mode="stretch_width")


def _selected_text(selected: dict | None) -> str:
    if not selected:
        return "<small>点击地图上的区域查看详情</small>"
    return f"**已选：{selected['name']}**  \n{selected['level_label']} · 代码 {selected['code']}"
