"""The notebook API: read any layer as a GeoDataFrame, as a user, under the same rules as the server.

    >>> import gis.notebook as gg
    >>> client = gg.connect(username="grid_worker", password="...")     # or token="..."
    >>> client.layers()
    {'district': '区县', 'street': '街道', ...}
    >>> people = client.read("person", path="320000.320100.320106.320106001")
    >>> grids = client.read("grid", bbox=(118.75, 32.06, 118.78, 32.09))

Rows are those inside the user's territory (row-level security in the database, not a filter here) and
ID and phone numbers come back masked. With no ``DATABASE_URL`` the embedded cluster is used.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
from shapely.geometry.base import BaseGeometry
from sqlalchemy import text

from gis.masking import mask_id_number, mask_phone
from gis.security.scope import scoped_connection
from gis.security.sessions import CurrentUser, login, resolve
from gis.settings import Settings
from layers.catalogue import LAYERS, Layer

_MASKS = {"id_number": mask_id_number, "phone": mask_phone}


class LayerError(ValueError):
    pass


@dataclass
class Client:
    settings: Settings
    user: CurrentUser

    def layers(self) -> dict[str, str]:
        """Layer keys and their Chinese names."""
        return {key: layer.zh for key, layer in LAYERS.items()}

    def read(
        self,
        layer: str,
        *,
        bbox: tuple[float, float, float, float] | None = None,
        polygon: BaseGeometry | None = None,
        path: str | None = None,
        limit: int | None = None,
    ) -> gpd.GeoDataFrame:
        """Rows of ``layer`` (EPSG:4490) intersecting ``bbox`` / ``polygon`` (lon/lat, CGCS2000) and inside
        territory ``path``; personal numbers masked."""
        spec = _layer(layer)
        sql, params = layer_query(spec, bbox=bbox, polygon=polygon, path=path, limit=limit)
        with scoped_connection(self.settings, self.user) as conn:
            frame = gpd.read_postgis(text(sql), conn, geom_col="geom", params=params, crs=4490)
        for column in spec.pii:
            frame[column] = frame[column].map(_MASKS.get(column, mask_phone), na_action="ignore")
        return frame

    def area_query(self, area: BaseGeometry, layers=("person", "household", "building"), *,
                   buffer_m: float = 0.0, since=None, until=None, limit: int = 200):
        """Counts by category and masked rows of ``layers`` inside ``area`` (lon/lat, CGCS2000), as
        ``POST /api/v1/spatial/query`` answers them; see :func:`layers.spatial.area_query`.

        >>> client.area_query(shapely.Point(118.78, 32.06), ["person"], buffer_m=200).counts  # doctest: +SKIP
        {'person': 1234}
        """
        from layers import housing_grid, spatial

        categories = housing_grid.visible_categories(self.user)
        with scoped_connection(self.settings, self.user) as conn:
            return spatial.area_query(conn, area, list(layers), buffer_m=buffer_m, since=since, until=until,
                                      limit=limit, special_categories=categories)


def _layer(key: str) -> Layer:
    try:
        return LAYERS[key]
    except KeyError:
        raise LayerError(f"未知图层 {key!r}，可选: {', '.join(LAYERS)} (unknown layer)") from None


def layer_query(spec: Layer, *, bbox=None, polygon=None, path=None, limit=None) -> tuple[str, dict]:
    """The SQL (with bound parameters) that reads a layer with the given filters."""
    where, params = [spec.where], {}
    if bbox is not None:
        xmin, ymin, xmax, ymax = (float(v) for v in bbox)
        if not (xmin < xmax and ymin < ymax):
            raise LayerError("范围无效：应为 (最小经度, 最小纬度, 最大经度, 最大纬度) (invalid bbox)")
        where.append(f"{spec.indexed_geometry} && ST_MakeEnvelope(:xmin, :ymin, :xmax, :ymax, 4490)")
        params.update(xmin=xmin, ymin=ymin, xmax=xmax, ymax=ymax)
    if polygon is not None:
        where.append(f"ST_Intersects({spec.indexed_geometry}, ST_GeomFromText(:polygon, 4490))")
        params["polygon"] = polygon.wkt
    if path is not None:
        where.append(f"{spec.org_path} <@ CAST(:path AS ltree)")
        params["path"] = path
    sql = f"SELECT {spec.columns}, {spec.geometry} AS geom FROM {spec.source} WHERE {' AND '.join(where)}"
    if limit is not None:
        sql += " LIMIT :limit"
        params["limit"] = int(limit)
    return sql, params


def connect(
    *,
    username: str | None = None,
    password: str | None = None,
    token: str | None = None,
    settings: Settings | None = None,
) -> Client:
    """Open a session as a user, by password or by an API token from ``POST /api/v1/auth/login``."""
    settings = settings or Settings()
    if token is None:
        if not (username and password):
            raise LayerError("请提供用户名和密码，或登录令牌 (username and password, or a token)")
        token, _ = login(settings, username, password, client_addr="notebook")
    return Client(settings=settings, user=resolve(settings, token))
