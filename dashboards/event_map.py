"""A small map with one marker, for the event pages: where an event is, or where a report says it is.

It is the shared :class:`dashboards.map.TerritoryMap` (offline ground, our own layers, an optional tile
URL) with one red marker on top. A click on the map is reported as a CGCS2000 lon/lat (shifted back from
GCJ-02 over a Gaode basemap), which the report form uses to set the position.
"""

from __future__ import annotations

from collections.abc import Callable

import geopandas as gpd
import geoviews as gv
import panel as pn
from cartopy import crs as ccrs

from dashboards.map import TerritoryMap

# How much ground is shown around a marker when the map zooms to it (metres of Web Mercator).
ZOOM_HALF_WIDTH = 600


class _FixedHeightMap(TerritoryMap):
    """The territory map at a fixed height: among a detail's rows, a map stretching both ways would make
    every layout around it stretch too, and the rows below it would overlap the forms above."""

    def __init__(self, *args, height: int, **kwargs):
        super().__init__(*args, min_height=height, **kwargs)
        self.pane.sizing_mode, self.pane.height = "stretch_width", height
        self._height = height

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(self.pane, self._zoom_request, sizing_mode="stretch_width", height=self._height,
                         margin=0)


class PointMap:
    """A territory map with one marker; ``on_pick(lon, lat)`` is called when the user clicks it."""

    def __init__(self, units: gpd.GeoDataFrame, *, tile_url: str | None = None, height: int = 300,
                 on_pick: Callable[[float, float], None] | None = None):
        self.point: tuple[float, float] | None = None
        self._sources: list = []
        marker = gv.Points([], crs=ccrs.GOOGLE_MERCATOR).opts(
            size=14, color="#d62728", line_color="white", line_width=2, hooks=[self._keep_source])
        self.map = _FixedHeightMap(units, tile_url=tile_url, overlays=[marker], height=height)
        self._on_pick = on_pick
        if on_pick is not None:
            self.map.param.watch(self._clicked, "clicked")

    def __panel__(self) -> pn.viewable.Viewable:
        return self.map

    def _marker_data(self) -> dict[str, list[float]]:
        if self.point is None:
            return {"Longitude": [], "Latitude": []}
        x, y = self.map.to_draw(*self.point)
        return {"Longitude": [x], "Latitude": [y]}

    def _keep_source(self, plot, element) -> None:
        # The marker's data source in the figure being drawn; those of figures no longer shown have
        # left the document and are dropped.
        source = plot.handles["source"]
        kept = [s for s in self._sources if s.document is not None and s is not source]
        self._sources = [*kept, source]
        source.data = self._marker_data()

    def _clicked(self, event) -> None:
        if event.new is None:
            return
        lon, lat = self.map.to_lonlat(*event.new)
        self.show((lon, lat), zoom=False)
        self._on_pick(lon, lat)

    def show(self, lonlat: tuple[float, float] | None, *, zoom: bool = True) -> None:
        """Put the marker at ``lonlat`` (CGCS2000), or take it away; zoom to it unless told not to."""
        self.point = lonlat
        data = self._marker_data()
        if lonlat is not None and zoom:
            x, y = data["Longitude"][0], data["Latitude"][0]
            self.map.zoom_to((x - ZOOM_HALF_WIDTH, y - ZOOM_HALF_WIDTH, x + ZOOM_HALF_WIDTH,
                              y + ZOOM_HALF_WIDTH))
        shown = [s for s in self._sources if s.document is not None]
        doc = pn.state.curdoc
        if not shown or doc is None or doc.session_context is None:
            return  # drawn with the current point when the map is drawn: see _keep_source

        # A Bokeh model Panel does not manage: change it in a next-tick callback, which Bokeh runs
        # holding the document lock, not in the middle of Panel's event handling.
        def move() -> None:
            for source in shown:
                source.data = data

        doc.add_next_tick_callback(move)
