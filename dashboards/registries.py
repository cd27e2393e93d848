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
fields the user changed are saved. Point locations are set by clicking the small map (the shared
:class:`dashboards.map.TerritoryMap`); export and print are links to the API routes, which the login
cookie opens.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any
from urllib.parse import urlencode

import geoviews as gv
import holoviews as hv
import pandas as pd
import panel as pn
import param
from cartopy import crs as ccrs
from pyproj import Transformer
from sqlalchemy import Connection

from dashboards import theme
from dashboards.map import TerritoryMap
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
_TO_LONLAT = Transformer.from_crs("EPSG:3857", "EPSG:4490", always_xy=True)
_TO_MERCATOR = Transformer.from_crs("EPSG:4490", "EPSG:3857", always_xy=True)

Connect = Callable[[], AbstractContextManager[Connection]]


def readable_registries(user: Any) -> list[Registry]:
    """The registries the user's role may read (special populations only with their permission)."""
    return [r for r in REGISTRIES.values() if user.has(r.permission("read"))
            and (not r.special or user.has(f"special:{r.special}"))]


def settable_point(registry: Registry) -> bool:
    """Whether a user sets this registry's location by clicking a point on the map."""
    return registry.lonlat or (registry.geometry_column is not None and registry.geometry_type == "Point")


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


# ---------------------------------------------------------------- the page

class RegistryBrowser(pn.viewable.Viewer):
    """Module and registry pickers, the search, the paged table and the record side panel."""

    registry_key = param.String(default="")
    location = param.Tuple(default=None, allow_None=True, length=2, doc="lon, lat of the point being set")

    def __init__(self, user: Any, connect: Connect, *, units=None, tile_url: str | None = None,
                 initial: str | None = None, **params):
        super().__init__(**params)
        self.user, self.connect = user, connect
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

        self.map = self._point_map(units, tile_url) if units is not None and not units.empty else None
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
        self.new_button.visible = self.registry.crud and self.user.has(self.registry.permission("write"))
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
        if self.user.has(registry.permission("export")):
            parts += [f'<a href="{API}/{registry.key}/export.{fmt}{suffix}" target="_blank" '
                      f'class="gg-export">下载 {label}</a>' for fmt, label in EXPORT_FORMATS.items()]
            parts.append(f'<a href="{API}/{registry.key}/print{suffix}" target="_blank" class="gg-print">'
                         "打印列表</a>")
        return "　".join(parts)

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
        writable = registry.crud and self.user.has(registry.permission("write"))
        self.form = {f.name: form_widget(f, record.get(f.name), self.names, writable)
                     for f in registry.fields}
        title = record.get(registry.title) if record else None
        heading = (f"### {registry.zh}：{title or record_id}\n编号 {record_id} · 第 {record['version']} 版"
                   if record else f"### 新增{registry.zh}")
        objects: list = [pn.pane.Markdown(heading, css_classes=["gg-record-title"])]
        if message:
            objects.append(pn.pane.Alert(message[0], alert_type=message[1], css_classes=["gg-message"]))
        objects += list(self.form.values())
        if settable_point(registry) and self.map is not None and writable:
            objects += [pn.pane.Markdown("**位置**（点击地图设置）", css_classes=["gg-location"]), self.map]
            self._set_marker(_point_of(record))
        if writable:
            save = pn.widgets.Button(label="保存", color="primary", width=100)
            save.on_click(lambda _: self._save())
            objects.append(save)
        if record:
            links = []
            if self.user.has(registry.permission("export")):
                links.append(f'<a href="{API}/{registry.key}/{record_id}/print" target="_blank">打印本条</a>')
            if registry.key == "grid":
                links.append(f'<a href="{API}/grid/{record_id}/notice-board" target="_blank">'
                             "网格服务公示牌</a>")
            objects.append(pn.pane.HTML("　".join(links)))
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
            return {"geometry": "位置", "org_path": "所属区域", "_": "记录"}.get(name, name)

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
        if self.location is not None and self.location != _point_of(original):
            lon, lat = self.location
            if registry.lonlat:
                data |= {"lon": round(lon, 7), "lat": round(lat, 7)}
            else:
                data["geometry"] = {"type": "Point", "coordinates": [round(lon, 7), round(lat, 7)]}
        return data

    def _save(self) -> None:
        registry, data = self.registry, self.changes()
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

    # ------------------------------------------------------------ the small map
    def _point_map(self, units, tile_url: str | None) -> TerritoryMap:
        self._marker_sources: list = []

        def keep_source(plot, element) -> None:
            # The marker's data source in the figure being drawn (not in a document yet): the ones of
            # figures no longer shown have left the document and are dropped.
            source = plot.handles["source"]
            kept = [s for s in self._marker_sources if s.document is not None and s is not source]
            self._marker_sources = [*kept, source]
            source.data = _marker_data(self.location)

        marker = gv.Points([], crs=ccrs.GOOGLE_MERCATOR).opts(
            size=14, color="#d62728", line_color="white", line_width=2, hooks=[keep_source])
        territory_map = TerritoryMap(units, tile_url=tile_url, overlays=[marker], min_height=300)
        territory_map.pane.min_height, territory_map.pane.height = 300, 300
        # A stream on an element of an overlay listens to the whole figure (as TerritoryMap's own does).
        tap = hv.streams.Tap(source=marker, x=None, y=None)
        tap.add_subscriber(self._tapped)
        return territory_map

    def _tapped(self, x: float | None, y: float | None) -> None:
        if x is None or y is None or not settable_point(self.registry):
            return
        lon, lat = _TO_LONLAT.transform(x, y)
        self._set_marker((lon, lat))
        location = next((o for o in self.side.objects
                         if "gg-location" in getattr(o, "css_classes", [])), None)
        if location is not None:
            location.object = f"**位置**：{lon:.6f}, {lat:.6f}（未保存）"

    def _set_marker(self, lonlat: tuple[float, float] | None) -> None:
        self.location = lonlat
        data = _marker_data(lonlat)
        doc = pn.state.curdoc
        shown = [s for s in getattr(self, "_marker_sources", []) if s.document is not None]
        if not shown or doc is None or doc.session_context is None:
            return  # drawn with the current location when the map is (re)drawn: see keep_source

        # A Bokeh model Panel does not manage: change it in a next-tick callback, which Bokeh runs
        # holding the document lock, not in the middle of Panel's event handling.
        def move() -> None:
            for source in shown:
                source.data = data

        doc.add_next_tick_callback(move)


def _marker_data(lonlat: tuple[float, float] | None) -> dict[str, list[float]]:
    if lonlat is None:
        return {"Longitude": [], "Latitude": []}
    x, y = _TO_MERCATOR.transform(*lonlat)
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
                    initial: str | None = None) -> pn.template.BaseTemplate:
    """The page for one session; ``connect()`` opens a connection scoped to ``user``."""
    if not readable_registries(user):
        return theme.notice_page("台账", "无权限", "您的角色没有查看任何台账的权限，请联系管理员。")
    with connect() as conn:
        units = territory.territory_units(conn, within_path=user.scope)
    browser = RegistryBrowser(user, connect, units=units, tile_url=tile_url, initial=initial)
    side = pn.Column(browser.sidebar, pn.pane.Markdown(f"<small>当前用户：{user.display_name}</small>"),
                     sizing_mode="stretch_width")
    return theme.page("台账管理", main=[browser], sidebar=[side])
