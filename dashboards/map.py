"""The one map every page shares: territory layers in Web Mercator over an offline ground.

Geometries are stored in CGCS2000 (EPSG:4490) and drawn in Web Mercator (EPSG:3857): the layers are
reprojected once with GeoPandas and handed to GeoViews already in Mercator, so nothing is projected in
the browser. The background is a plain ground colour plus our own layers, which works with no network;
an XYZ tile URL (our own ``/tiles/`` folder, or an opt-in internet source) goes underneath when given.
A Gaode basemap is drawn in GCJ-02, so over it every overlay is shifted into GCJ-02 before it is
projected (:meth:`TerritoryMap.to_draw_frame`) and every click is shifted back (:meth:`to_lonlat`).

Layers are switched by hiding their Bokeh renderers rather than redrawing the plot, so the user's zoom
survives a toggle. A click selects the smallest shown unit under the cursor (``TerritoryMap.selected``),
which pages use for their side panels and for drill-down.

>>> territory_map = TerritoryMap(units)  # doctest: +SKIP  (units from layers.territory.territory_units)
>>> pn.Row(territory_map.controls, territory_map)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import geopandas as gpd
import geoviews as gv
import holoviews as hv
import panel as pn
import param
from bokeh.events import MouseMove
from bokeh.models import CustomJS, DataRange1d, GlyphRenderer, HoverTool, Label, ScaleBar
from bokeh.models.annotations.dimensional import ImperialLength
from cartopy import crs as ccrs
from pyproj import Transformer
from shapely.geometry import Point

from layers.events.position import to_cgcs2000
from layers.spatial import Basemap, shift_to_gcj02

DRAW_CRS = "EPSG:3857"
GROUND = "#eeeee4"  # a quiet paper colour: the "basemap" when there are no tiles

# Drawn bottom to top; only these levels are layers (provinces and cities lie outside a district map).
LAYER_STYLES: dict[str, dict] = {
    "grid": dict(color="#fdfcf7", fill_alpha=0.9, line_color="#8a8f98", line_width=0.8,
                 line_dash="dashed", hover_fill_color="#fde9b0", hover_fill_alpha=0.9),
    "community": dict(fill_alpha=0, line_color="#3a7cb8", line_width=1.4,
                      hover_fill_color="#3a7cb8", hover_fill_alpha=0.12),
    "street": dict(fill_alpha=0, line_color="#c2452d", line_width=2.2,
                   hover_fill_color="#c2452d", hover_fill_alpha=0.10),
    "district": dict(fill_alpha=0, line_color="#5b1f12", line_width=3.5,
                     hover_fill_color="#5b1f12", hover_fill_alpha=0.06),
}
SWITCHABLE = {"街道": "street", "社区": "community", "网格": "grid"}
# One tooltip at a time: only the finest shown layer answers the hover, naming the units above it.
_TOOLTIPS = {
    "grid": [("网格", "@name"), ("社区", "@community_name"), ("街道", "@street_name"), ("代码", "@code")],
    "community": [("社区", "@name"), ("街道", "@street_name"), ("代码", "@code")],
    "street": [("街道", "@name"), ("代码", "@code")],
    "district": [("区(县)", "@name"), ("代码", "@code")],
}
_FINEST_FIRST = ("grid", "community", "street", "district")

# The toolbar's reset, from a button: data ranges re-fit to the layers at the frame's current aspect.
_RESET_VIEW = "const view = Bokeh.index.find_one(figure); if (view != null) { view.reset() }"
# A zoom asked for by the server ([x0, y0, x1, y1, serial] in the widget's value): done in the browser,
# where the frame's size is known, and marked as an interactive change so the data ranges keep it
# instead of re-fitting to the layers when an overlay's data changes.
_ZOOM_VIEW = """
const request = JSON.parse(cb_obj.value || "null");
const view = Bokeh.index.find_one(figure);
if (request == null || view == null) { return }
let [x0, y0, x1, y1] = request;
const pad = 0.08;
const width = Math.max(x1 - x0, 50) * (1 + 2 * pad), height = Math.max(y1 - y0, 50) * (1 + 2 * pad);
const frame = view.frame.bbox;
const aspect = frame.width > 0 && frame.height > 0 ? frame.width / frame.height : 1.6;
const [w, h] = width / height < aspect ? [height * aspect, height] : [width, width / aspect];
const cx = (x0 + x1) / 2, cy = (y0 + y1) / 2;
for (const range of [figure.x_range, figure.y_range]) { range.have_updated_interactively = true }
figure.x_range.setv({start: cx - w / 2, end: cx + w / 2});
figure.y_range.setv({start: cy - h / 2, end: cy + h / 2});
"""

# The cursor's coordinates, written in the browser on every mouse move (a server round trip per move
# would flood the websocket). Web Mercator → lon/lat; over a GCJ-02 basemap the drawn frame is GCJ-02,
# so CGCS2000 is the GCJ-02 point shifted back (the published transform, inverted by a few fixed-point
# steps — sub-metre, plenty for a readout).
_CURSOR_JS = """
const R = 6378137, deg = 180 / Math.PI;
const lon = cb_obj.x / R * deg, lat = (2 * Math.atan(Math.exp(cb_obj.y / R)) - Math.PI / 2) * deg;
function offset(x, y) {
  const a = 6378245.0, ee = 0.00669342162296594323, PI = Math.PI;
  const X = x - 105.0, Y = y - 35.0;
  let dlat = -100.0 + 2.0 * X + 3.0 * Y + 0.2 * Y * Y + 0.1 * X * Y + 0.2 * Math.sqrt(Math.abs(X));
  dlat += (20.0 * Math.sin(6.0 * X * PI) + 20.0 * Math.sin(2.0 * X * PI)) * 2.0 / 3.0;
  dlat += (20.0 * Math.sin(Y * PI) + 40.0 * Math.sin(Y / 3.0 * PI)) * 2.0 / 3.0;
  dlat += (160.0 * Math.sin(Y / 12.0 * PI) + 320 * Math.sin(Y * PI / 30.0)) * 2.0 / 3.0;
  let dlon = 300.0 + X + 2.0 * Y + 0.1 * X * X + 0.1 * X * Y + 0.1 * Math.sqrt(Math.abs(X));
  dlon += (20.0 * Math.sin(6.0 * X * PI) + 20.0 * Math.sin(2.0 * X * PI)) * 2.0 / 3.0;
  dlon += (20.0 * Math.sin(X * PI) + 40.0 * Math.sin(X / 3.0 * PI)) * 2.0 / 3.0;
  dlon += (150.0 * Math.sin(X / 12.0 * PI) + 300.0 * Math.sin(X / 30.0 * PI)) * 2.0 / 3.0;
  const rad = y / 180.0 * PI, magic = 1 - ee * Math.sin(rad) ** 2, sq = Math.sqrt(magic);
  return [(dlon * 180.0) / (a / sq * Math.cos(rad) * PI),
          (dlat * 180.0) / ((a * (1 - ee)) / (magic * sq) * PI)];
}
let text;
if (gcj02) {
  let [gx, gy] = [lon, lat];
  for (let i = 0; i < 8; i++) { const [dx, dy] = offset(gx, gy); gx = lon - dx; gy = lat - dy; }
  text = `CGCS2000 ${gx.toFixed(6)}, ${gy.toFixed(6)}  ·  GCJ-02 ${lon.toFixed(6)}, ${lat.toFixed(6)}`;
} else {
  text = `CGCS2000 ${lon.toFixed(6)}, ${lat.toFixed(6)}`;
}
label.text = text;
"""
CURSOR_LABEL = "gg-cursor"  # the readout's Bokeh model name (tests and pages can find it by it)


_TO_MERCATOR = Transformer.from_crs("EPSG:4490", DRAW_CRS, always_xy=True)
_TO_LONLAT = Transformer.from_crs(DRAW_CRS, "EPSG:4490", always_xy=True)


def to_draw_crs(units: gpd.GeoDataFrame, frame: str = "cgcs2000") -> gpd.GeoDataFrame:
    """Units with a boundary, reprojected for drawing (EPSG:4490 → EPSG:3857, through GCJ-02 when the
    basemap's ``frame`` is ``gcj02``), with the names of the street and community each lies in
    (``street_name``, ``community_name``) for the tooltips."""
    named = {(level, code): name for level, code, name in units[["level", "code", "name"]].itertuples(False)}

    def ancestor(path: str, level: str) -> str:
        return next((named[(level, code)] for code in path.split(".") if (level, code) in named), "")

    drawable = units[units.geometry.notna() & ~units.geometry.is_empty].copy()
    drawable["street_name"] = [ancestor(path, "street") for path in drawable.path]
    drawable["community_name"] = [ancestor(path, "community") for path in drawable.path]
    if frame == "gcj02":
        drawable["geometry"] = shift_to_gcj02(drawable.geometry)
    return drawable.to_crs(DRAW_CRS)


def mercator_scale(latitude: float) -> float:
    """Ground metres per Web Mercator metre at a latitude (Mercator stretches by 1/cos φ)."""
    return math.cos(math.radians(latitude))


def _scale_bar(latitude: float) -> ScaleBar:
    # Bokeh's metric scale bar takes the axis unit for metres, which Web Mercator's is not: at Nanjing
    # (32°N) it would read 18% long. This basis converts Mercator units to ground metres at the
    # centre of the map, which is exact enough over a district. (BokehJS registers no plain
    # CustomDimensional, so a concrete subclass carries the basis; only the basis matters.)
    factor = mercator_scale(latitude)
    dimensional = ImperialLength(
        basis={"merc": (factor, "m"), "m": (1, "m"), "km": (1000, "km")},
        ticks=[1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500],
    )
    return ScaleBar(
        range="auto", unit="merc", dimensional=dimensional, location="bottom_left",
        bar_length=0.18, background_fill_alpha=0.8, label_text_font_size="12px",
    )


def _share_ranges(plot, element) -> None:
    """Point the plot's range handles at the data ranges :meth:`TerritoryMap._frame` put on the figure.

    HoloViews' range streams (``RangeXY``, which per-viewport layers depend on) read the viewport from
    ``plot.handles["x_range"]`` whenever it is not the figure's own range: left on the replaced ranges
    they would report the first extent (or nothing) forever, however the user pans."""
    figure = plot.state
    for sub in [plot, *getattr(plot, "subplots", {}).values()]:
        if hasattr(sub, "handles"):
            sub.handles["x_range"], sub.handles["y_range"] = figure.x_range, figure.y_range


class TerritoryMap(pn.viewable.Viewer):
    """The territory map: district outline, streets, communities and grids, switchable, with hover.

    ``units`` is a GeoDataFrame from :func:`layers.territory.territory_units` (EPSG:4490, with
    ``level, level_label, code, name, path``). ``overlays`` are extra HoloViews elements drawn on top,
    already in EPSG:3857 (events, cameras, a datashaded building layer...).
    """

    shown = param.ListSelector(default=["street", "community", "grid"], objects=list(SWITCHABLE.values()),
                               doc="Which switchable layers are visible.")
    selected = param.Dict(default=None, allow_None=True,
                          doc="The unit last clicked: level, level_label, code, name, path.")
    clicked = param.Tuple(default=None, allow_None=True, length=2,
                          doc="The point last clicked, as drawn (EPSG:3857; see to_lonlat).")

    def __init__(self, units: gpd.GeoDataFrame, *, tile_url: str | None = None,
                 basemap: Basemap | None = None, overlays: Sequence[hv.Element] = (),
                 min_height: int = 560, **params):
        super().__init__(**params)
        self.basemap = basemap or Basemap(tile_url, "cgcs2000", "底图" if tile_url else "无底图（离线）")
        self._units = to_draw_crs(units, self.basemap.frame)
        self._tile_url = self.basemap.url
        self._overlays = list(overlays)
        # level → (glyph renderer, hover tool) as drawn, once per Bokeh root showing this map
        self._drawn: dict[str, list[tuple[GlyphRenderer, HoverTool]]] = {}
        self._figures: list = []
        self.layer_switch = pn.widgets.CheckButtonGroup(
            label="图层", options=SWITCHABLE, value=list(self.shown), color="primary", variant="outline",
            sizing_mode="stretch_width",
        )
        self.layer_switch.link(self, value="shown")
        # No icon: Panel loads its icon font (Tabler) from a CDN. The click is handled in the browser:
        # only BokehJS knows the frame's size, which the home extent must be fitted to.
        self.home_button = pn.widgets.Button(label="回到全区", sizing_mode="stretch_width")
        self.pane = pn.pane.HoloViews(self._plot(), sizing_mode="stretch_both", min_height=min_height,
                                      linked_axes=False)
        self.home_button.jscallback(clicks=_RESET_VIEW, args={"figure": self.pane})
        self._zoom_request = pn.widgets.TextInput(value="", visible=False, css_classes=["gg-zoom-request"])
        self._zoom_request.jscallback(value=_ZOOM_VIEW, args={"figure": self.pane})
        self._zooms = 0

    # ------------------------------------------------------------------ layout
    @property
    def controls(self) -> pn.viewable.Viewable:
        """The layer switcher and the zoom-home button, for a page's side panel."""
        return pn.Column(pn.pane.Markdown("**图层**", margin=(0, 10)), self.layer_switch, self.home_button,
                         sizing_mode="stretch_width")

    def __panel__(self) -> pn.viewable.Viewable:
        notice = []
        if self.basemap.notice:  # e.g. Tianditu chosen without a key: say so, and draw offline
            notice = [pn.pane.Alert(self.basemap.notice, alert_type="warning", margin=(0, 0, 5, 0),
                                    css_classes=["gg-basemap-notice"], sizing_mode="stretch_width")]
        return pn.Column(*notice, self.pane, self._zoom_request, sizing_mode="stretch_both", margin=0)

    # ------------------------------------------------------------------ frames
    @property
    def drawn_units(self) -> gpd.GeoDataFrame:
        """The territory units as drawn: EPSG:3857, shifted into GCJ-02 over a Gaode basemap."""
        return self._units

    def to_draw_frame(self, frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
        """Any EPSG:4490 layer as this map draws it (shifted first when the basemap is GCJ-02)."""
        frame = frame[frame.geometry.notna()].copy()
        if self.basemap.frame == "gcj02":
            frame["geometry"] = shift_to_gcj02(frame.geometry)
        return frame.to_crs(DRAW_CRS)

    def to_draw(self, lon: float, lat: float) -> tuple[float, float]:
        """A CGCS2000 lon/lat as a drawn Mercator point."""
        if self.basemap.frame == "gcj02":
            lon, lat = shift_to_gcj02(gpd.GeoSeries([Point(lon, lat)])).iloc[0].coords[0]
        return _TO_MERCATOR.transform(lon, lat)

    def to_lonlat(self, x: float, y: float) -> tuple[float, float]:
        """A drawn Mercator point (a click) as CGCS2000 lon/lat (shifted back from GCJ-02 if need be)."""
        lon, lat = _TO_LONLAT.transform(x, y)
        if self.basemap.frame == "gcj02":
            lon, lat = to_cgcs2000(lon, lat, "gcj02")
        return lon, lat

    def zoom_to(self, bounds: Sequence[float]) -> None:
        """Show ``bounds`` (x0, y0, x1, y1 in EPSG:3857), padded, at the frame's aspect (Mercator is
        conformal: one unit across is one unit up). The browser does it: only it knows the frame."""
        self._zooms += 1
        self._zoom_request.value = json.dumps([*(round(float(v), 2) for v in bounds), self._zooms])

    # ------------------------------------------------------------------ behaviour
    def _is_shown(self, level: str) -> bool:
        return level in self.shown or level not in SWITCHABLE.values()

    @param.depends("shown", watch=True)
    def _apply_shown(self) -> None:
        finest = next((lvl for lvl in _FINEST_FIRST if self._is_shown(lvl) and lvl in self._drawn), None)
        for level, drawn in self._drawn.items():
            for renderer, hover in drawn:
                renderer.visible = self._is_shown(level)
                # Emptying a hover tool's renderers silences it; which tools are active cannot be
                # changed once BokehJS has built the toolbar.
                hover.renderers = [renderer] if level == finest else []

    def unit_at(self, x: float, y: float) -> dict | None:
        """The smallest shown unit containing a point given in EPSG:3857 (deepest level wins)."""
        point = Point(x, y)
        candidates = self._units[self._units.level.isin([*self.shown, "district"])]
        hits = candidates[candidates.geometry.contains(point)]
        if hits.empty:
            return None
        deepest = hits.iloc[hits.path.str.count(r"\.").argmax()]
        return {key: deepest[key] for key in ("level", "level_label", "code", "name", "path")}

    def _on_tap(self, x: float | None, y: float | None) -> None:
        if x is not None and y is not None:
            self.selected = self.unit_at(x, y)
            self.clicked = (x, y)

    # ------------------------------------------------------------------ drawing
    def _centre_latitude(self) -> float:
        if self._units.empty:
            return 32.07  # the demo district's; only the scale bar uses it
        _, y0, _, y1 = self._units.total_bounds
        lat = gpd.GeoSeries([Point(0, (y0 + y1) / 2)], crs=DRAW_CRS).to_crs("EPSG:4490").y.iloc[0]
        return float(lat)

    def _frame(self, figure) -> None:
        # HoloViews gives fixed ranges, which a stretching layout then distorts (Bokeh only keeps the
        # aspect of data ranges). Data ranges over our layers, with the aspect matched, keep the
        # territory true to shape at any window size and are what the reset button returns to.
        figure.x_range = DataRange1d(range_padding=0.04)
        figure.y_range = DataRange1d(range_padding=0.04)
        figure.match_aspect = True
        figure.aspect_scale = 1
        figure.add_layout(_scale_bar(self._centre_latitude()))
        figure.toolbar.logo = None
        # Just above the scale bar, where the eye already looks for measures.
        cursor = Label(name=CURSOR_LABEL, text="", x=8, y=46, x_units="screen", y_units="screen",
                       text_font_size="11px", background_fill_color="white", background_fill_alpha=0.8,
                       text_color="#333333")
        figure.add_layout(cursor)
        figure.js_on_event(MouseMove, CustomJS(args={"label": cursor, "gcj02": self.basemap.frame == "gcj02"},
                                               code=_CURSOR_JS))

    def _remember(self, level: str):
        """A HoloViews hook keeping the layer's renderer and hover tool, to switch them later."""

        def hook(plot, element):
            drawn = (plot.handles["glyph_renderer"], plot.handles["hover"])
            if plot.state not in self._figures:
                self._figures.append(plot.state)
                self._frame(plot.state)
            for data_range in (plot.state.x_range, plot.state.y_range):
                # Fit the territory, not the overlays (an empty raster or marker would pull in 0, 0).
                fitted = data_range.renderers if isinstance(data_range.renderers, list) else []
                if isinstance(data_range, DataRange1d) and drawn[0] not in fitted:
                    data_range.renderers = [*fitted, drawn[0]]
            if drawn not in self._drawn.setdefault(level, []):
                self._drawn[level].append(drawn)
            self._apply_shown()

        return hook

    def _layer(self, level: str) -> gv.Polygons:
        vdims = ["name", "code", "level_label", "path", "street_name", "community_name"]
        data = self._units[self._units.level == level][["geometry", *vdims]]
        element = gv.Polygons(data, vdims=vdims, crs=ccrs.GOOGLE_MERCATOR, label=level)
        hover = HoverTool(tooltips=_TOOLTIPS[level], description=f"{_TOOLTIPS[level][0][0]}信息")
        style = dict(LAYER_STYLES[level])
        if self._tile_url and level == "grid":
            style["fill_alpha"] = 0.12  # let the basemap show through
        return element.opts(tools=[hover], hooks=[self._remember(level)], **style)

    def _plot(self) -> hv.Overlay:
        # An empty layer is left out: GeoViews cannot build an empty element from pandas string columns.
        present = set(self._units.level)
        layers = [self._layer(level) for level in LAYER_STYLES if level in present]
        base = [gv.WMTS(self._tile_url)] if self._tile_url else []
        static = [o for o in self._overlays if not isinstance(o, hv.DynamicMap)]
        overlay = hv.Overlay([*base, *layers, *static])
        for dynamic in (o for o in self._overlays if isinstance(o, hv.DynamicMap)):
            overlay = overlay * dynamic
        overlay = overlay.opts(
            hooks=[_share_ranges], data_aspect=1, responsive=True, xaxis=None, yaxis=None,
            bgcolor=GROUND, show_legend=False, active_tools=["pan", "wheel_zoom"],
            default_tools=["pan", "wheel_zoom", "reset"], toolbar="above",
        )
        if layers:
            tap = hv.streams.Tap(source=layers[-1], x=None, y=None)
            tap.add_subscriber(self._on_tap)
        return overlay
