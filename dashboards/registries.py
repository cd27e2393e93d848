"""The registry pages (台账): pick a module and a registry, search it, page through it, open a record in the
side panel, correct it and save -- everything generated from the declarations (:mod:`layers.registry`).

Nothing here knows a particular registry. The search fields are the declaration's ``query`` fields (a
range field gets a 起/止 pair, a code field a list of the code table's names), the table's columns are its
fields, the side panel's form widgets follow the field types and code tables. Every read and write goes
through :mod:`layers.registry_service` on a connection scoped to the user, so row-level security, the
role's permissions, masking, validation and the access log are the same as for the API: a page is just
another face of the same service.

The table is paged by the service (one page of rows is read per request, with the total), not loaded
whole. Saving sends the version the form was loaded with; if someone saved in between, the service
refuses and the side panel shows its Chinese message. Masked numbers are never sent back: only the
fields the user changed are saved. Export and print are links to the API routes, which the login cookie
opens.

Locations, on a small copy of the shared :class:`dashboards.map.TerritoryMap`:

- a point is set by clicking the map, or typed as lon/lat in CGCS2000, WGS84, GCJ-02 or BD-09 (a
  selector) and converted with :mod:`gis.crs` on the way in;
- a line or polygon (road sections, key areas, buildings...) is drawn and its vertices edited with Bokeh's
  PolyDrawTool / PolyEditTool (HoloViews ``PolyDraw`` / ``PolyEdit`` streams); saving sends it as GeoJSON
  and the service checks it is valid and inside the record's territory.

The shared map shows the cursor's coordinates. A record can be soft-deleted after a confirmation (with the
version it was loaded with); a special-population record lists its 帮扶记录 and takes new ones; a school
lists the key persons living within the configured distance (周边重点人员), masked.

The map links here (:func:`record_url`, :func:`new_record_url`): ``?registry=<key>&id=<id>`` opens a record
in the side panel, ``&new=1&lon=..&lat=..`` a new record with its point set there (or, for a line or
polygon, its drawing map centred there); saving validates it like any other.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any
from urllib.parse import urlencode

import geoviews as gv
import holoviews as hv
import pandas as pd
import panel as pn
import param
from bokeh.models import PolyDrawTool
from cartopy import crs as ccrs
from sqlalchemy import Connection

from dashboards import theme
from dashboards.map import TerritoryMap
from gis.crs import PositionError, to_cgcs2000
from layers import registry_service as service
from layers import territory
from layers.registries import REGISTRIES
from layers.registry import Field, Registry
from layers.registry_export import code_names
from layers.registry_print import display_value, list_columns

PAGE_SIZE = 20
API = "/api/v1/registries"
MODULE_LABELS = {
    "org": "综治组织及综治业务", "population": "实有人口服务管理", "housing": "实有房屋服务管理",
    "special_population": "特殊人群服务管理", "key_youth": "重点青少年服务管理",
    "new_orgs": "两新组织服务管理", "public_security": "社会治安管理", "disputes": "矛盾纠纷排查调处",
    "road_line": "护路护线", "campus": "校园及周边安全", "diary": "民情日记", "patrol": "智能巡查",
    "video": "视频监控平台", "notices": "通知公告",
}
EXPORT_FORMATS = {"csv": "CSV", "xlsx": "Excel", "geojson": "GeoJSON", "gpkg": "GeoPackage"}
_YES_NO = {"是": "true", "否": "false"}
INPUT_CRS = {"CGCS2000（默认）": "cgcs2000", "WGS84（GPS）": "wgs84", "GCJ-02（高德/腾讯）": "gcj02",
             "BD-09（百度）": "bd09"}
# Bokeh 3.9's draw tools start and finish a shape with a press-and-hold, not a double click.
_DRAW_HELP = {
    "polygon": "在地图上绘制面：长按开始，单击添加顶点，长按结束；"
               "修改时选工具栏的“编辑顶点”，长按图形显示顶点后拖动",
    "line": "在地图上绘制线：长按开始，单击添加顶点，长按结束；"
            "修改时选工具栏的“编辑顶点”，长按线显示顶点后拖动",
}
Connect = Callable[[], AbstractContextManager[Connection]]


def readable_registries(user: Any) -> list[Registry]:
    """The registries the user's role may read (special populations only with their permission).
    Events are left out: their rows belong to the event workflow, which has its own page (/events)."""
    return [r for r in REGISTRIES.values() if r.crud and user.has(r.permission("read"))
            and (not r.special or user.has(f"special:{r.special}"))]


def draw_kind(registry: Registry) -> str | None:
    """How a user sets this registry's own location: ``point``, ``line``, ``polygon``, or ``None`` (drawn
    through the record it hangs on). A column of any geometry type (schools) is drawn as the
    registry's declared kind."""
    if registry.lonlat:
        return "point"
    if registry.geometry_column is None:
        return None
    column_type = registry.geometry_type or ""
    if column_type == "Point":
        return "point"
    if "Polygon" in column_type or (column_type == "Geometry" and registry.geometry == "polygon"):
        return "polygon"
    if "LineString" in column_type or (column_type == "Geometry" and registry.geometry == "line"):
        return "line"
    return None


def exportable(user: Any, registry: Registry) -> bool:
    """Whether the export and print links would open (rows of the event workflow are not exported here)."""
    return registry.crud and user.has(registry.permission("export"))


def settable_point(registry: Registry) -> bool:
    """Whether a user sets this registry's location by clicking a point on the map."""
    return draw_kind(registry) == "point"


def many_shapes(registry: Registry) -> bool:
    """Whether the record may have several lines / polygons (a Multi* column) rather than one."""
    return (registry.geometry_type or "").startswith("Multi")


def shapes_of(geometry: dict | None) -> list[list[tuple[float, float]]]:
    """A stored GeoJSON line or polygon as the drawn shapes' vertices (lon, lat): one list a line or
    polygon exterior, the closing vertex of a ring left out (the drawing tool closes polygons itself).

    >>> shapes_of({"type": "Polygon", "coordinates": [[[1, 2], [3, 2], [3, 4], [1, 2]]]})
    [[(1.0, 2.0), (3.0, 2.0), (3.0, 4.0)]]
    """
    if not geometry:
        return []
    kind, coords = geometry.get("type"), geometry.get("coordinates") or []
    if kind == "LineString":
        lines = [coords]
    elif kind == "MultiLineString":
        lines = coords
    elif kind == "Polygon":
        lines = [coords[0][:-1]] if coords else []
    elif kind == "MultiPolygon":
        lines = [polygon[0][:-1] for polygon in coords if polygon]
    else:
        return []
    return [[(float(x), float(y)) for x, y, *_ in line] for line in lines]


def shapes_geojson(kind: str, shapes: list[list[tuple[float, float]]], many: bool) -> dict | None:
    """Drawn shapes (lon, lat vertices) as the GeoJSON the service takes; ``None`` when nothing is drawn.
    A shape with too few vertices raises ``ValueError`` with a Chinese message.

    >>> shapes_geojson("line", [[(1, 2), (3, 4)]], many=True)
    {'type': 'MultiLineString', 'coordinates': [[[1, 2], [3, 4]]]}
    """
    if not shapes:
        return None
    parts = []
    for shape in shapes:
        vertices = [[round(lon, 7), round(lat, 7)] for lon, lat in shape]
        if kind == "polygon":
            if len({tuple(v) for v in vertices}) < 3:
                raise ValueError("面至少需要 3 个不同的顶点，请继续绘制或清除后重画")
            parts.append([[*vertices, vertices[0]]] if vertices[0] != vertices[-1] else [vertices])
        else:
            if len({tuple(v) for v in vertices}) < 2:
                raise ValueError("线至少需要 2 个不同的顶点，请继续绘制或清除后重画")
            parts.append(vertices)
    if kind == "polygon":
        return ({"type": "MultiPolygon", "coordinates": parts} if many or len(parts) > 1
                else {"type": "Polygon", "coordinates": parts[0]})
    return ({"type": "MultiLineString", "coordinates": parts} if many or len(parts) > 1
            else {"type": "LineString", "coordinates": parts[0]})


# ---------------------------------------------------------------- widgets from field declarations

def code_options(names: dict[tuple[str, str], str], table: str, blank: str) -> dict[str, str]:
    """A code table as Select options, name → code (a name used twice shows its code)."""
    options = {blank: ""}
    for code, name in sorted((code, name) for (t, code), name in names.items() if t == table):
        options[name if name not in options else f"{name}（{code}）"] = code
    return options


def search_widgets(registry: Registry, names: dict) -> dict[str, pn.widgets.Widget]:
    """One widget per search parameter of the registry (``<name>``, or ``<name>_min``/``_max``)."""
    widgets: dict[str, pn.widgets.Widget] = {}
    for f in registry.query_fields:
        if f.search_mode == "range":
            label = f.range_zh or f.zh
            for suffix, zh in (("min", "起"), ("max", "止")):
                widgets[f"{f.name}_{suffix}"] = pn.widgets.TextInput(
                    label=f"{label}（{zh}）", sizing_mode="stretch_width",
                    placeholder="2024-01-31" if f.type in ("date", "datetime") else "")
        elif f.code_table:
            widgets[f.name] = pn.widgets.Select(label=f.zh, options=code_options(names, f.code_table, "全部"),
                                                sizing_mode="stretch_width")
        elif f.type == "bool":
            widgets[f.name] = pn.widgets.Select(label=f.zh, options={"全部": "", **_YES_NO},
                                                sizing_mode="stretch_width")
        else:
            widgets[f.name] = pn.widgets.TextInput(label=f.zh, sizing_mode="stretch_width")
    return widgets


def form_value(f: Field, value: Any) -> Any:
    """A stored value as its form widget holds it."""
    if value is None:
        return None if f.type == "date" else ""
    if f.type == "bool":
        return "true" if value else "false"
    if f.type == "date":
        return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))
    if f.type == "datetime" and isinstance(value, dt.datetime):
        return value.isoformat(sep=" ", timespec="minutes")
    if f.type in ("number", "lon", "lat"):
        return display_value(f, value, {})
    return str(value)


def form_widget(f: Field, value: Any, names: dict, writable: bool) -> pn.widgets.Widget:
    label = f.zh + (" *" if f.required and writable and not f.derived else "")
    common = dict(label=label, sizing_mode="stretch_width", disabled=f.derived or not writable)
    if f.derived:
        return pn.widgets.TextInput(value=display_value(f, value, names), **common)
    current = form_value(f, value)
    if f.code_table:
        options = code_options(names, f.code_table, "（未填）")
        if current and current not in options.values():
            options[current] = current
        return pn.widgets.Select(options=options, value=current, **common)
    if f.type == "bool":
        return pn.widgets.Select(options={"（未填）": "", **_YES_NO}, value=current, **common)
    if f.type == "date":
        return pn.widgets.DatePicker(value=current, **common)
    if f.type == "longtext":
        return pn.widgets.TextAreaInput(value=current, height=80, **common)
    placeholder = {"datetime": "2024-01-31 08:30", "ref": "记录编号", "id_number": "18位身份证号",
                   "phone": "手机或固定电话"}.get(f.type, "")
    widget = pn.widgets.TextInput(value=current, placeholder=placeholder, **common)
    if f.sensitive and current:
        widget.description = "已脱敏显示；如需更正，请输入完整号码"
    return widget


def _blank(value: Any) -> Any:
    return None if value in ("", None) else value


class RegistryBrowser(pn.viewable.Viewer):
    """Module and registry pickers, the search, the paged table and the record side panel."""

    registry_key = param.String(default="")
    location = param.Tuple(default=None, allow_None=True, length=2,
                           doc="lon, lat (CGCS2000) of the point being set")

    def __init__(self, user: Any, connect: Connect, *, units=None, tile_url: str | None = None,
                 initial: str | None = None, nearby_metres: float = service.NEARBY_METRES,
                 record_id: int | None = None, new_at: tuple[float, float] | None = None, **params):
        super().__init__(**params)
        self.user, self.connect = user, connect
        self.nearby_metres = float(nearby_metres)
        self.registries = {r.key: r for r in readable_registries(user)}
        with connect() as conn:
            self.names = code_names(conn)
        modules = [m for m in MODULE_LABELS if any(r.module == m for r in self.registries.values())]
        self.module_select = pn.widgets.Select(
            label="模块", options={MODULE_LABELS[m]: m for m in modules}, sizing_mode="stretch_width")
        self.registry_select = pn.widgets.Select(label="台账", sizing_mode="stretch_width")
        self.search_box = pn.Column(sizing_mode="stretch_width")
        self.search_button = pn.widgets.Button(label="查询", color="primary",
                                               sizing_mode="stretch_width")
        self.reset_button = pn.widgets.Button(label="重置", sizing_mode="stretch_width")
        self.table = pn.widgets.Tabulator(
            pd.DataFrame(), show_index=False, disabled=True, selectable=1, pagination=None,
            sizing_mode="stretch_width", height=560, layout="fit_data_fill",
            css_classes=["gg-registry-table"])
        self.previous_button = pn.widgets.Button(label="上一页", width=90, disabled=True)
        self.next_button = pn.widgets.Button(label="下一页", width=90, disabled=True)
        self.page_info = pn.pane.Markdown("", css_classes=["gg-page-info"])
        self.links = pn.pane.HTML("", sizing_mode="stretch_width")
        self.side = pn.Column(sizing_mode="stretch_width", css_classes=["gg-side-panel"])
        self.new_button = pn.widgets.Button(label="新增记录", color="success", width=110)
        self.widgets: dict[str, pn.widgets.Widget] = {}
        self.form: dict[str, pn.widgets.Widget] = {}
        self.record: dict | None = None
        self.offset, self.total, self.items = 0, 0, []

        # The small maps, one per kind of location (point / line / polygon), made when first needed.
        self._units = units if units is not None and not units.empty else None
        self._tile_url = tile_url
        self.maps: dict[str, TerritoryMap] = {}
        self._marker_sources: list = []
        self._shape_sources: list = []
        self._loaded_xy: tuple[list, list] = ([], [])  # the record's shapes as pushed to the map
        self.location_inputs: dict[str, pn.widgets.Widget] = {}
        self._typed: tuple | None = None  # the location inputs as the page last filled them

        start = self.registries.get(initial or "")
        if start is not None:
            self.module_select.value = start.module
        self.module_select.param.watch(self._module_changed, "value")
        self.registry_select.param.watch(lambda e: self._open_registry(e.new), "value")
        self.search_button.on_click(lambda _: self._search(0))
        self.reset_button.on_click(self._reset)
        self.previous_button.on_click(lambda _: self._search(max(0, self.offset - PAGE_SIZE)))
        self.next_button.on_click(lambda _: self._search(self.offset + PAGE_SIZE))
        self.new_button.on_click(lambda _: self._show_record(None))
        self.table.param.watch(self._selected, "selection")

        self._module_changed()
        if start is not None:
            self.registry_select.value = start.key
            self._open_from_link(record_id, new_at)

    # ------------------------------------------------------------ layout
    @property
    def sidebar(self) -> pn.viewable.Viewable:
        return pn.Column(self.module_select, self.registry_select, pn.pane.Markdown("**精准查询**"),
                         self.search_box, pn.Row(self.search_button, self.reset_button),
                         sizing_mode="stretch_width")

    def __panel__(self) -> pn.viewable.Viewable:
        pager = pn.Row(self.previous_button, self.next_button, self.page_info, self.new_button,
                       sizing_mode="stretch_width")
        listing = pn.Column(self.links, self.table, pager, sizing_mode="stretch_width")
        return pn.Row(listing, pn.Column(self.side, width=420, margin=(0, 0, 0, 12)),
                      sizing_mode="stretch_width")

    @property
    def registry(self) -> Registry:
        return self.registries[self.registry_key]

    @property
    def writable(self) -> bool:
        return self.registry.crud and self.user.has(self.registry.permission("write"))

    # ------------------------------------------------------------ choosing and searching
    def _module_changed(self, *_: Any) -> None:
        options = {r.zh: r.key for r in self.registries.values() if r.module == self.module_select.value}
        self.registry_select.options = options
        first = next(iter(options.values()), None)
        if self.registry_select.value == first:
            self._open_registry(first)
        else:
            self.registry_select.value = first

    def _open_registry(self, key: str | None) -> None:
        if not key:
            return
        self.registry_key = key
        self.widgets = search_widgets(self.registry, self.names)
        self.search_box.objects = list(self.widgets.values())
        self.new_button.visible = self.writable
        self.side.objects = [pn.pane.Markdown(f"### {self.registry.zh}\n点击表格中的一行查看或编辑。")]
        self._search(0)

    def filters(self) -> dict[str, Any]:
        return {name: w.value for name, w in self.widgets.items() if _blank(w.value) is not None}

    def _reset(self, *_: Any) -> None:
        for widget in self.widgets.values():
            widget.value = ""  # every search widget's "all" is the empty value
        self._search(0)

    def _search(self, offset: int) -> None:
        registry, filters = self.registry, self.filters()
        try:
            with self.connect() as conn:
                page = service.list_records(conn, self.user, registry, filters, limit=PAGE_SIZE,
                                            offset=offset)
        except service.RegistryError as error:
            self._message(str(error), "danger", errors=getattr(error, "errors", None))
            return
        self.offset, self.total, self.items = page.offset, page.total, page.items
        columns = list_columns(registry)
        frame = pd.DataFrame(
            [[item["id"], *(display_value(f, item.get(f.name), self.names) for f in columns)]
             for item in page.items], columns=["id", *(f.name for f in columns)])
        self.table.titles = {"id": "编号", **{f.name: f.zh for f in columns}}
        self.table.selection = []
        self.table.value = frame
        pages = max(1, -(-page.total // PAGE_SIZE))
        self.page_info.object = f"第 {offset // PAGE_SIZE + 1} / {pages} 页，共 {page.total} 条"
        self.previous_button.disabled = offset == 0
        self.next_button.disabled = offset + PAGE_SIZE >= page.total
        self.links.object = self._links(filters)

    def _links(self, filters: dict[str, Any]) -> str:
        registry, query = self.registry, urlencode(filters)
        suffix = f"?{query}" if query else ""
        parts = []
        if exportable(self.user, registry):
            parts += [f'<a href="{API}/{registry.key}/export.{fmt}{suffix}" target="_blank" '
                      f'class="gg-export">下载 {label}</a>' for fmt, label in EXPORT_FORMATS.items()]
            parts.append(f'<a href="{API}/{registry.key}/print{suffix}" target="_blank" class="gg-print">'
                         "打印列表</a>")
        return "　".join(parts)

    def _open_from_link(self, record_id: int | None, new_at: tuple[float, float] | None) -> None:
        """A link from another page (the map): open a record, or a new one placed at ``new_at`` (CGCS2000
        lon/lat) -- a point registry gets the point set (still to be saved), a line or polygon registry
        its drawing map centred there."""
        if record_id is not None:
            self._show_record(record_id)
            return
        if new_at is None:
            return
        if not self.writable:
            self._message(f"您的角色不能新增{self.registry.zh}记录", "warning")
            return
        self._show_record(None)
        kind = draw_kind(self.registry)
        if kind == "point":
            self._show_point(new_at)
        elif kind in ("line", "polygon") and kind in self.maps:
            territory_map = self.maps[kind]
            x, y = territory_map.to_draw(*new_at)

            def centre() -> None:  # once the page is shown: the browser does the zoom (see zoom_to)
                territory_map.zoom_to((x - 150, y - 150, x + 150, y + 150))

            pn.state.onload(centre)

    # ------------------------------------------------------------ the side panel
    def _selected(self, event: param.parameterized.Event) -> None:
        if event.new:
            self._show_record(self.items[event.new[0]]["id"])

    def _show_record(self, record_id: int | None, message: tuple[str, str] | None = None) -> None:
        registry = self.registry
        record: dict = {}
        if record_id is not None:
            try:
                with self.connect() as conn:
                    record = service.get_record(conn, self.user, registry, record_id)
            except service.RegistryError as error:
                self._message(str(error), "danger")
                return
        self.record = record or None
        writable, kind = self.writable, draw_kind(registry)
        # A lon/lat registry's 经度/纬度 are typed in the location section, where their system is chosen.
        typed_elsewhere = {"lon", "lat"} if registry.lonlat else set()
        self.form = {f.name: form_widget(f, record.get(f.name), self.names, writable)
                     for f in registry.fields if f.name not in typed_elsewhere}
        self.location_inputs, self._typed = {}, None
        title = record.get(registry.title) if record else None
        heading = (f"### {registry.zh}：{title or record_id}\n编号 {record_id} · 第 {record['version']} 版"
                   if record else f"### 新增{registry.zh}")
        objects: list = [pn.pane.Markdown(heading, css_classes=["gg-record-title"])]
        if message:
            objects.append(pn.pane.Alert(message[0], alert_type=message[1], css_classes=["gg-message"]))
        objects += list(self.form.values())
        if kind == "point":
            objects += self._point_section(record, writable)
        elif kind is not None:
            objects += self._shape_section(kind, record, writable)
        if writable:
            save = pn.widgets.Button(label="保存", color="primary", width=100)
            save.on_click(lambda _: self._save())
            buttons = [save]
            if record:
                delete = pn.widgets.Button(label="删除", color="danger", button_type="danger", width=100)
                delete.on_click(lambda _: self._confirm_delete())
                buttons.append(delete)
            objects.append(pn.Row(*buttons))
        if record:
            links = []
            if exportable(self.user, registry):
                links.append(f'<a href="{API}/{registry.key}/{record_id}/print" target="_blank">打印本条</a>')
            if registry.key == "grid":
                links.append(f'<a href="{API}/grid/{record_id}/notice-board" target="_blank">'
                             "网格服务公示牌</a>")
            objects.append(pn.pane.HTML("　".join(links)))
            if registry.visits:
                objects.append(self._visits_section(record_id, writable))
            if registry.key == "school":
                objects.append(self._nearby_section(record_id))
        self.side.objects = objects

    def _message(self, text: str, kind: str, errors: dict[str, str] | None = None) -> None:
        detail = "".join(f"\n- {self._label(name)}：{message}" for name, message in (errors or {}).items())
        alert = pn.pane.Alert(text if not errors else f"请修改后再保存：{detail}", alert_type=kind,
                              css_classes=["gg-message"])
        objects = [o for o in self.side.objects if "gg-message" not in getattr(o, "css_classes", [])]
        self.side.objects = objects[:1] + [alert] + objects[1:]

    def _label(self, name: str) -> str:
        try:
            return self.registry.field(name).zh
        except KeyError:
            return {"geometry": "位置", "org_path": "所属区域", "_": "记录", "lon": "位置"}.get(name, name)

    def changes(self) -> dict[str, Any]:
        """The fields the user changed (all filled ones for a new record); masked numbers stay unsent."""
        registry, original = self.registry, self.record or {}
        data: dict[str, Any] = {}
        for f in registry.stored_fields:
            widget = self.form.get(f.name)
            if widget is None:
                continue
            value = widget.value.isoformat() if isinstance(widget.value, dt.date) else widget.value
            before = form_value(f, original.get(f.name))
            before = before.isoformat() if isinstance(before, dt.date) else before
            if self.record is None and _blank(value) is None:
                continue
            if _blank(value) != _blank(before):
                data[f.name] = _blank(value)
        kind = draw_kind(registry)
        if kind == "point" and self.location is not None and self.location != _point_of(original):
            lon, lat = self.location
            if registry.lonlat:
                data |= {"lon": round(lon, 7), "lat": round(lat, 7)}
            else:
                data["geometry"] = {"type": "Point", "coordinates": [round(lon, 7), round(lat, 7)]}
        elif kind in ("line", "polygon"):
            drawn = self.drawn_shapes()
            if drawn is not None:
                data["geometry"] = shapes_geojson(kind, drawn, many_shapes(registry))
        return data

    def _save(self) -> None:
        registry = self.registry
        try:
            if self.location_inputs and self._typed_now() != self._typed:
                self._locate()  # typed but not yet placed: the typed position is what is meant
            data = self.changes()
        except (PositionError, ValueError) as error:
            self._message(str(error), "danger")
            return
        if self.record is not None and not data:
            self._message("没有修改，无需保存", "info")
            return
        try:
            with self.connect() as conn:
                if self.record is None:
                    saved = service.create_record(conn, self.user, registry, data)
                else:
                    saved = service.update_record(conn, self.user, registry, self.record["id"], data,
                                                  version=self.record["version"])
        except service.RegistryError as error:
            self._message(str(error), "danger" if error.status != 409 else "warning",
                          errors=getattr(error, "errors", None))
            return
        self._search(self.offset)
        self._show_record(saved["id"], ("已保存（第 {} 版）".format(saved["version"]), "success"))

    # ------------------------------------------------------------ delete (soft, confirmed)
    def _confirm_delete(self) -> None:
        if self.record is None:
            return
        confirm = pn.widgets.Button(label="确认删除", button_type="danger", width=100)
        cancel = pn.widgets.Button(label="取消", width=80)
        box = pn.Column(
            pn.pane.Alert(f"确定删除这条{self.registry.zh}记录吗？删除后不再列出，但记录本身连同删除人、"
                          "删除时间一并保留，可由管理员查询。", alert_type="warning"),
            pn.Row(confirm, cancel), css_classes=["gg-message", "gg-confirm"], sizing_mode="stretch_width")
        confirm.on_click(lambda _: self._delete())
        cancel.on_click(lambda _: self.side.remove(box) if box in self.side.objects else None)
        objects = [o for o in self.side.objects if "gg-message" not in getattr(o, "css_classes", [])]
        self.side.objects = objects[:1] + [box] + objects[1:]

    def _delete(self) -> None:
        registry, record = self.registry, self.record
        if record is None:
            return
        try:
            with self.connect() as conn:
                service.delete_record(conn, self.user, registry, record["id"], version=record["version"])
        except service.RegistryError as error:
            self._message(str(error), "danger" if error.status != 409 else "warning")
            return
        self.record = None
        self._search(self.offset)
        if not self.items and self.offset > 0:  # the last row of the last page: show the page before
            self._search(max(0, self.offset - PAGE_SIZE))
        title = record.get(registry.title) or record["id"]
        self.side.objects = [
            pn.pane.Markdown(f"### {registry.zh}", css_classes=["gg-record-title"]),
            pn.pane.Alert(f"已删除{registry.zh}记录“{title}”（编号 {record['id']}）", alert_type="success",
                          css_classes=["gg-message"])]

    # ------------------------------------------------------------ 帮扶记录
    def _visits_section(self, record_id: int, writable: bool) -> pn.Column:
        box = pn.Column(sizing_mode="stretch_width", css_classes=["gg-visits"])
        self._fill_visits(box, record_id, writable)
        return box

    def _fill_visits(self, box: pn.Column, record_id: int, writable: bool,
                     message: tuple[str, str] | None = None) -> None:
        try:
            with self.connect() as conn:
                visits = service.list_visits(conn, self.user, self.registry, record_id)
        except service.RegistryError as error:
            box.objects = [pn.pane.Alert(str(error), alert_type="danger")]
            return
        objects: list = [pn.pane.Markdown(f"**帮扶记录**（{len(visits)} 条）"),
                         pn.pane.HTML(visits_table(visits), sizing_mode="stretch_width",
                                      stylesheets=[_SMALL_TABLE_CSS])]
        if message:
            objects.append(pn.pane.Alert(message[0], alert_type=message[1]))
        if writable:
            inputs = {
                "visited_on": pn.widgets.TextInput(label="走访日期 *", value=dt.date.today().isoformat(),
                                                   placeholder="2024-01-31", width=130),
                "visitor": pn.widgets.TextInput(label="走访人 *", value=self.user.display_name, width=130),
                "next_due": pn.widgets.TextInput(label="下次走访日期", placeholder="2024-02-29", width=130),
                "content": pn.widgets.TextAreaInput(label="帮扶内容 *", height=70,
                                                    sizing_mode="stretch_width"),
            }
            add = pn.widgets.Button(label="添加帮扶记录", button_type="primary", width=120)
            add.on_click(lambda _: self._add_visit(box, record_id, inputs))
            objects += [pn.Row(inputs["visited_on"], inputs["visitor"], inputs["next_due"]),
                        inputs["content"], add]
        box.objects = objects

    def _add_visit(self, box: pn.Column, record_id: int, inputs: dict[str, pn.widgets.Widget]) -> None:
        data = {name: _blank(widget.value) for name, widget in inputs.items()}
        try:
            with self.connect() as conn:
                service.add_visit(conn, self.user, self.registry, record_id, data)
        except service.RegistryError as error:
            errors = getattr(error, "errors", None) or {}
            detail = "；".join(f"{VISIT_LABELS.get(k, k)}：{v}" for k, v in errors.items())
            text = f"请修改后再添加：{detail}" if errors else str(error)
            objects = [o for o in box.objects if not isinstance(o, pn.pane.Alert)]
            box.objects = objects[:2] + [pn.pane.Alert(text, alert_type="danger")] + objects[2:]
            return
        self._fill_visits(box, record_id, True, ("已添加帮扶记录", "success"))

    # ------------------------------------------------------------ 周边重点人员
    def _nearby_section(self, school_id: int) -> pn.Column:
        heading = f"**周边重点人员**（学校 {self.nearby_metres:g} 米内居住的重点人员）"
        try:
            with self.connect() as conn:
                nearby = service.key_persons_near_school(conn, self.user, school_id, self.nearby_metres)
        except service.RegistryError as error:
            return pn.Column(pn.pane.Markdown(heading), pn.pane.Alert(str(error), alert_type="warning"))
        registered = "、".join(html.escape(str(r.get("name") or r["id"])) for r in nearby["registered"])
        return pn.Column(
            pn.pane.Markdown(f"{heading}：共 {len(nearby['found'])} 人"),
            pn.pane.HTML(nearby_table(nearby["found"]), sizing_mode="stretch_width",
                         stylesheets=[_SMALL_TABLE_CSS]),
            pn.pane.HTML(f"<small>手工登记的周边重点人员：{registered or '无'}</small>"),
            sizing_mode="stretch_width", css_classes=["gg-nearby"])

    # ------------------------------------------------------------ a point: typed or clicked
    def _point_section(self, record: dict, writable: bool) -> list:
        # The status line changes as the user works: it goes under the map, so the map never moves
        # between two clicks.
        lonlat = _point_of(record)
        saved = f"{lonlat[0]:.6f}, {lonlat[1]:.6f}（CGCS2000）" if lonlat else "未设置"
        status = pn.pane.Markdown(f"位置：{saved}", css_classes=["gg-location"])
        self.location = lonlat
        if not writable:
            return [pn.pane.Markdown("**位置**"), status]
        crs = pn.widgets.Select(label="坐标系", options=INPUT_CRS, value="cgcs2000", width=150)
        lon = pn.widgets.TextInput(label="经度", value=f"{lonlat[0]:.7f}" if lonlat else "", width=115)
        lat = pn.widgets.TextInput(label="纬度", value=f"{lonlat[1]:.7f}" if lonlat else "", width=115)
        locate = pn.widgets.Button(label="按坐标定位", width=100)
        locate.on_click(lambda _: self._locate_clicked())
        self.location_inputs = {"crs": crs, "lon": lon, "lat": lat}
        self._typed = self._typed_now()
        objects: list = [pn.pane.Markdown("**位置**（点击地图设置，或输入坐标后定位）"),
                         pn.Row(crs, lon, lat), locate]
        territory_map = self.map_for("point")
        if territory_map is not None:
            objects.append(territory_map)
        self._set_marker(lonlat)
        return [*objects, status]

    def _typed_now(self) -> tuple:
        return tuple(self.location_inputs[k].value for k in ("crs", "lon", "lat"))

    def _typed_location(self) -> tuple[float, float] | None:
        """The lon/lat typed, in CGCS2000 (converted from the chosen system); ``None`` if left blank."""
        crs, lon_text, lat_text = (str(v).strip() for v in self._typed_now())
        if not lon_text and not lat_text:
            return None
        try:
            lon, lat = float(lon_text), float(lat_text)
        except ValueError:
            raise PositionError("经度、纬度应为以度为单位的数字，如 118.75、32.08") from None
        return to_cgcs2000(lon, lat, crs)

    def _locate(self) -> None:
        """Place the point typed (converted to CGCS2000); the inputs then show the CGCS2000 values."""
        crs = self.location_inputs["crs"].value
        lonlat = self._typed_location()
        if lonlat is None:
            return
        self._show_point(lonlat, "" if crs == "cgcs2000" else f"由 {_crs_label(crs)} 换算为 CGCS2000，")

    def _locate_clicked(self) -> None:
        try:
            self._locate()
        except PositionError as error:
            self._message(str(error), "danger")

    def _show_point(self, lonlat: tuple[float, float], note: str = "") -> None:
        self._set_marker(lonlat)
        if self.location_inputs:
            self.location_inputs["crs"].value = "cgcs2000"
            self.location_inputs["lon"].value = f"{lonlat[0]:.7f}"
            self.location_inputs["lat"].value = f"{lonlat[1]:.7f}"
            self._typed = self._typed_now()
        status = next((o for o in self.side.objects if "gg-location" in getattr(o, "css_classes", [])), None)
        if status is not None:
            status.object = f"位置：{lonlat[0]:.6f}, {lonlat[1]:.6f}（{note}未保存）"

    def _tapped(self, x: float | None, y: float | None) -> None:
        if x is None or y is None or not settable_point(self.registry) or "point" not in self.maps:
            return
        self._show_point(self.maps["point"].to_lonlat(x, y))

    def _set_marker(self, lonlat: tuple[float, float] | None) -> None:
        self.location = lonlat
        territory_map = self.maps.get("point")
        if territory_map is None:
            return
        data = _marker_data(territory_map, lonlat)
        self._push([s for s in self._marker_sources if s.document is not None], data)

    # ------------------------------------------------------------ a line or polygon: drawn
    def _shape_section(self, kind: str, record: dict, writable: bool) -> list:
        shapes = shapes_of(record.get("geometry"))
        saved = f"已绘制 {len(shapes)} 个{_KIND_ZH[kind]}" if shapes else f"尚未绘制{_KIND_ZH[kind]}"
        status = pn.pane.Markdown(f"位置：{saved}", css_classes=["gg-shape"])  # under the map: see above
        territory_map = self.map_for(kind) if writable else None
        self._loaded_xy = ([], [])
        if territory_map is None:
            return [pn.pane.Markdown("**位置**"), status]
        xy = [[territory_map.to_draw(lon, lat) for lon, lat in shape] for shape in shapes]
        self._loaded_xy = ([[x for x, _ in s] for s in xy], [[y for _, y in s] for s in xy])
        self._push(self._live_shape_sources(), self._shape_data(*self._loaded_xy))
        clear = pn.widgets.Button(label="清除图形", width=100)
        clear.on_click(lambda _: self._clear_shapes())
        return [pn.pane.Markdown(f"**位置**（{_DRAW_HELP[kind]}）"), territory_map, status, clear]

    def _live_shape_sources(self) -> list:
        kind = draw_kind(self.registry)
        return [s for s, k in self._shape_sources if s.document is not None and k == kind]

    @staticmethod
    def _shape_data(xs: list, ys: list) -> dict[str, list]:
        return {"xs": [list(x) for x in xs], "ys": [list(y) for y in ys]}

    def drawn_shapes(self) -> list[list[tuple[float, float]]] | None:
        """The shapes on the map now (lon, lat vertices), or ``None`` if they are as loaded (or no map is
        shown). Read from the map's data source, which Bokeh keeps in step with the browser as soon as
        an edit arrives (the streams' copies follow a moment later)."""
        sources = self._live_shape_sources()
        territory_map = self.maps.get(draw_kind(self.registry) or "")
        if not sources or territory_map is None:
            return None
        xs, ys = _clean_xy(sources[-1].data)
        if _same_shapes((xs, ys), self._loaded_xy):
            return None
        return [[territory_map.to_lonlat(x, y) for x, y in zip(sx, sy, strict=True)]
                for sx, sy in zip(xs, ys, strict=True)]

    def _shapes_edited(self, data: dict | None) -> None:
        """Stream subscriber: say that the drawing changed (and is not saved yet)."""
        if not data or self.record is None and not data.get("xs"):
            return
        xs, ys = _clean_xy(data)
        if _same_shapes((xs, ys), self._loaded_xy):
            return
        kind = draw_kind(self.registry) or "polygon"
        status = next((o for o in self.side.objects if "gg-shape" in getattr(o, "css_classes", [])), None)
        if status is not None:
            vertices = sum(len(x) for x in xs)
            status.object = (f"位置：已绘制 {len(xs)} 个{_KIND_ZH.get(kind, '图形')}，"
                             f"共 {vertices} 个顶点（未保存）")

    def _clear_shapes(self) -> None:
        self._push(self._live_shape_sources(), self._shape_data([], []))
        status = next((o for o in self.side.objects if "gg-shape" in getattr(o, "css_classes", [])), None)
        if status is not None:
            status.object = "位置：已清除图形（未保存）"

    def _push(self, sources: list, data: dict) -> None:
        doc = pn.state.curdoc
        if not sources or doc is None or doc.session_context is None:
            return  # drawn with the current data when the map is (re)drawn: see the maps' hooks

        # A Bokeh model Panel does not manage: change it in a next-tick callback, which Bokeh runs
        # holding the document lock, not in the middle of Panel's event handling.
        def push() -> None:
            rows = len(next(iter(data.values())))
            for source in sources:  # other columns (styles the draw tool adds) padded to the rows
                source.data = {**{c: [None] * rows for c in source.data if c not in data}, **data}

        doc.add_next_tick_callback(push)

    # ------------------------------------------------------------ the small maps
    def map_for(self, kind: str) -> TerritoryMap | None:
        """The small map for setting a ``point`` or drawing a ``line`` / ``polygon`` (made once)."""
        if self._units is None:
            return None
        if kind not in self.maps:
            self.maps[kind] = self._point_map() if kind == "point" else self._shape_map(kind)
        return self.maps[kind]

    def _small_map(self, overlay: hv.Element) -> TerritoryMap:
        territory_map = TerritoryMap(self._units, tile_url=self._tile_url, overlays=[overlay], min_height=300)
        territory_map.pane.min_height, territory_map.pane.height = 300, 300
        return territory_map

    def _point_map(self) -> TerritoryMap:
        def keep_source(plot, element) -> None:
            # The marker's data source in the figure being drawn (not in a document yet): the ones of
            # figures no longer shown have left the document and are dropped.
            source = plot.handles["source"]
            kept = [s for s in self._marker_sources if s.document is not None and s is not source]
            self._marker_sources = [*kept, source]
            source.data = _marker_data(territory_map, self.location)

        marker = gv.Points([], crs=ccrs.GOOGLE_MERCATOR).opts(
            size=14, color="#d62728", line_color="white", line_width=2, hooks=[keep_source])
        territory_map = self._small_map(marker)
        # A stream on an element of an overlay listens to the whole figure (as TerritoryMap's own does).
        tap = hv.streams.Tap(source=marker, x=None, y=None)
        tap.add_subscriber(self._tapped)
        return territory_map

    def _shape_map(self, kind: str) -> TerritoryMap:
        def keep_source(plot, element) -> None:
            source = plot.handles["cds"]
            kept = [(s, k) for s, k in self._shape_sources if s.document is not None and s is not source]
            self._shape_sources = [*kept, (source, kind)]
            source.data = {**source.data, **self._shape_data(*self._loaded_xy)}
            figure = plot.state
            # Drawing, not panning, is what this map is for: the draw tool starts active (the toolbar
            # switches to pan or to editing vertices).
            draw = next((t for t in figure.tools if isinstance(t, PolyDrawTool)), None)
            if draw is not None:
                figure.toolbar.active_multi = draw

        style = dict(color="#d62728", line_width=3, hooks=[keep_source])
        if kind == "polygon":
            shapes = gv.Polygons([], crs=ccrs.GOOGLE_MERCATOR).opts(fill_alpha=0.25, line_color="#d62728",
                                                                    **style)
        else:
            shapes = gv.Path([], crs=ccrs.GOOGLE_MERCATOR).opts(**style)
        vertices = {"size": 9, "fill_color": "white", "line_color": "#d62728"}
        single = 0 if many_shapes(self.registry) else 1  # a new drawing replaces the one shape
        draw = hv.streams.PolyDraw(source=shapes, drag=False, num_objects=single, show_vertices=True,
                                   vertex_style=vertices, tooltip=f"绘制{_KIND_ZH[kind]}")
        edit = hv.streams.PolyEdit(source=shapes, vertex_style=vertices, tooltip="编辑顶点")
        for stream in (draw, edit):
            stream.add_subscriber(lambda data=None, **_: self._shapes_edited(data))
        territory_map = self._small_map(shapes)
        return territory_map


_KIND_ZH = {"polygon": "面", "line": "线"}
VISIT_LABELS = {"visited_on": "走访日期", "visitor": "走访人", "content": "帮扶内容",
                "next_due": "下次走访日期"}
_SMALL_TABLE_CSS = """
table { width: 100%; border-collapse: collapse; font-size: 13px; }
th, td { border-bottom: 1px solid #e3e6ea; padding: 3px 5px; text-align: left; vertical-align: top; }
th { color: #555; font-weight: 600; }
"""


def record_url(key: str, record_id: int) -> str:
    """The registry page opened on one record (the link the map gives a clicked feature)."""
    return f"/registries?{urlencode({'registry': key, 'id': int(record_id)})}"


def new_record_url(key: str, lon: float, lat: float) -> str:
    """The registry page opened on a new record placed at a CGCS2000 lon/lat."""
    return f"/registries?{urlencode({'registry': key, 'new': 1, 'lon': f'{lon:.7f}', 'lat': f'{lat:.7f}'})}"


def placeable_registries(user: Any) -> list[Registry]:
    """The registries the user may create from a point on the map: a point, line or polygon of their own,
    and the role may write them."""
    return [r for r in readable_registries(user)
            if draw_kind(r) is not None and user.has(r.permission("write"))]


def link_args(args: dict[str, list[bytes]]) -> dict[str, Any]:
    """``record_id`` / ``new_at`` for :func:`registries_page` from the page's query arguments
    (``id=<record id>``, or ``new=1&lon=..&lat=..``); malformed ones are ignored, as a plain link is
    better than an error page."""
    def arg(name: str) -> str:
        return (args.get(name) or [b""])[0].decode("utf-8", "replace").strip()

    out: dict[str, Any] = {"record_id": None, "new_at": None}
    if arg("id").isdigit():
        out["record_id"] = int(arg("id"))
    elif arg("new") == "1":
        try:
            lon, lat = float(arg("lon")), float(arg("lat"))
        except ValueError:
            return out
        if -180 <= lon <= 180 and -90 <= lat <= 90:
            out["new_at"] = (lon, lat)
    return out


def _crs_label(crs: str) -> str:
    return next(label for label, value in INPUT_CRS.items() if value == crs).split("（")[0]


def visits_table(visits: list[dict]) -> str:
    """A record's 帮扶记录 as an HTML table, newest first."""
    if not visits:
        return "<p>暂无帮扶记录</p>"
    rows = "".join(
        f"<tr><td>{v['visited_on']}</td><td>{html.escape(v['visitor'])}</td>"
        f"<td>{html.escape(v['content'])}</td><td>{v['next_due'] or ''}</td></tr>" for v in visits)
    return ("<table class='gg-visit-table'><thead><tr><th>走访日期</th><th>走访人</th><th>帮扶内容</th>"
            f"<th>下次走访</th></tr></thead><tbody>{rows}</tbody></table>")


def nearby_table(found: list[dict]) -> str:
    """The key persons found near a school (already masked by the service), nearest first."""
    if not found:
        return "<p>范围内没有登记在册的重点人员</p>"
    rows = "".join(
        f"<tr data-person='{p['person_id']}'><td>{html.escape(p['name'] or '')}</td>"
        f"<td>{html.escape(p['id_number'] or '')}</td>"
        f"<td>{'、'.join(REGISTRIES[c].zh for c in p['categories'] if c in REGISTRIES)}</td>"
        f"<td>{html.escape(p['address'] or '')}</td><td>{p['distance_m']:.0f} 米</td></tr>" for p in found)
    return ("<table class='gg-nearby-table'><thead><tr><th>姓名</th><th>身份证号</th><th>类别</th>"
            f"<th>住址</th><th>距离</th></tr></thead><tbody>{rows}</tbody></table>")


def _clean_xy(data: dict) -> tuple[list[list[float]], list[list[float]]]:
    """The drawn shapes' vertices as plain lists, repeated vertices (a double click's) dropped."""
    xs_out, ys_out = [], []
    for sx, sy in zip(data.get("xs") or [], data.get("ys") or [], strict=False):
        xs, ys = [], []
        for x, y in zip(sx, sy, strict=False):
            if x is None or y is None or x != x or y != y:
                continue
            if xs and abs(xs[-1] - x) < 1e-6 and abs(ys[-1] - y) < 1e-6:
                continue
            xs.append(float(x))
            ys.append(float(y))
        if xs:
            xs_out.append(xs)
            ys_out.append(ys)
    return xs_out, ys_out


def _same_shapes(a: tuple[list, list], b: tuple[list, list]) -> bool:
    (ax, ay), (bx, by) = _clean_xy({"xs": a[0], "ys": a[1]}), _clean_xy({"xs": b[0], "ys": b[1]})
    if [len(s) for s in ax] != [len(s) for s in bx]:
        return False
    pairs = zip([v for s in ax + ay for v in s], [v for s in bx + by for v in s], strict=True)
    return all(abs(p - q) < 0.01 for p, q in pairs)  # a hundredth of a Mercator metre


def _marker_data(territory_map: TerritoryMap, lonlat: tuple[float, float] | None) -> dict[str, list]:
    if lonlat is None:
        return {"Longitude": [], "Latitude": []}
    x, y = territory_map.to_draw(*lonlat)
    return {"Longitude": [x], "Latitude": [y]}


def _point_of(record: dict | None) -> tuple[float, float] | None:
    geometry = (record or {}).get("geometry")
    if geometry and geometry.get("type") == "Point":
        lon, lat = geometry["coordinates"][:2]
        return float(lon), float(lat)
    if record and record.get("lon") is not None and record.get("lat") is not None:
        return float(record["lon"]), float(record["lat"])
    return None


def registries_page(user: Any, connect: Connect, *, tile_url: str | None = None,
                    initial: str | None = None,
                    nearby_metres: float = service.NEARBY_METRES, record_id: int | None = None,
                    new_at: tuple[float, float] | None = None) -> pn.template.BaseTemplate:
    """The page for one session; ``connect()`` opens a connection scoped to ``user``; ``nearby_metres``
    is the distance of 周边重点人员 (settings: ``school_nearby_metres``). ``initial`` opens a registry, and
    in it ``record_id`` a record or ``new_at`` (CGCS2000 lon, lat) a new record placed there (links from
    the map: :func:`record_url`, :func:`new_record_url`)."""
    if not readable_registries(user):
        return theme.notice_page("台账", "无权限", "您的角色没有查看任何台账的权限，请联系管理员。")
    with connect() as conn:
        units = territory.territory_units(conn, within_path=user.scope)
    browser = RegistryBrowser(user, connect, units=units, tile_url=tile_url, initial=initial,
                              nearby_metres=nearby_metres, record_id=record_id, new_at=new_at)
    side = pn.Column(browser.sidebar, pn.pane.Markdown(f"<small>当前用户：{user.display_name}</small>"),
                     sizing_mode="stretch_width")
    return theme.page("台账管理", main=[browser], sidebar=[side])
