"""Exports (下载) of any filtered registry list: CSV (UTF-8 with BOM, so Excel opens Chinese correctly),
XLSX, GeoJSON, GeoPackage and zipped Shapefile. What is exported is exactly what the list shows -- the same
search, the same masking -- and every export is written to the access log (action ``export``, with the
format, the filters and the number of rows).

Tables for people (CSV, XLSX) carry the Chinese labels as headers and the code tables' names for codes;
GIS formats (GeoJSON, GeoPackage, Shapefile) carry the field identifiers as attribute names (what QGIS and
GDAL handle best) and the codes as stored, with the geometry drawn for each row in CGCS2000 (EPSG:4490).
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, text

from layers.registry import Registry
from layers.registry_service import MAX_EXPORT, list_records, require

FORMATS = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "geojson": "application/geo+json",
    "gpkg": "application/geopackage+sqlite3",
    "shp": "application/zip",
}
CRS = "EPSG:4490"


@dataclass(frozen=True)
class Export:
    content: bytes
    filename: str
    media_type: str
    rows: int


def code_names(conn: Connection) -> dict[tuple[str, str], str]:
    """(code table, code) -> Chinese name, for every code table."""
    return {(r.table_key, r.code): r.name_zh
            for r in conn.execute(text("SELECT table_key, code, name_zh FROM code_item"))}


def table_rows(registry: Registry, items: list[dict[str, Any]], names: dict) -> tuple[list[str], list[list]]:
    """The list as a table for people: Chinese headers, code names, 是/否 for yes/no."""
    header = ["编号", *(f.zh for f in registry.fields), "所属区域", "版本"]
    rows = []
    for item in items:
        row: list[Any] = [item["id"]]
        for f in registry.fields:
            value = item.get(f.name)
            if value is not None and f.code_table:
                value = names.get((f.code_table, str(value)), value)
            elif isinstance(value, bool):
                value = "是" if value else "否"
            row.append(value)
        rows.append([*row, item["org_path"], item["version"]])
    return header, rows


def _csv(header: list[str], rows: list[list]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(["" if v is None else v for v in row] for row in rows)
    return buffer.getvalue().encode("utf-8-sig")


def _xlsx(registry: Registry, header: list[str], rows: list[list]) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = registry.zh[:31]
    sheet.append(header)
    for row in rows:
        sheet.append([float(v) if hasattr(v, "as_tuple") else v for v in row])  # Decimal → number
    sheet.freeze_panes = "A2"
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _properties(registry: Registry, item: dict[str, Any]) -> dict[str, Any]:
    props = {"id": item["id"], "version": item["version"], "org_path": item["org_path"]}
    for f in registry.fields:
        value = item.get(f.name)
        props[f.name] = value.isoformat() if hasattr(value, "isoformat") else (
            float(value) if hasattr(value, "as_tuple") else value)
    return props


def _geojson(registry: Registry, items: list[dict[str, Any]]) -> bytes:
    features = [{"type": "Feature", "id": item["id"], "geometry": item.get("geometry"),
                 "properties": _properties(registry, item)} for item in items]
    document = {"type": "FeatureCollection", "name": registry.key, "features": features,
                "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::4490"}}}
    return json.dumps(document, ensure_ascii=False, default=str).encode("utf-8")


def _frame(registry: Registry, items: list[dict[str, Any]]):
    import geopandas as gpd
    from shapely.geometry import shape

    records = [_properties(registry, item) for item in items]
    geometries = [shape(item["geometry"]) if item.get("geometry") else None for item in items]
    return gpd.GeoDataFrame(records, geometry=geometries, crs=CRS,
                            columns=["id", "version", "org_path", *(f.name for f in registry.fields)])


def _gpkg(registry: Registry, items: list[dict[str, Any]]) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"{registry.key}.gpkg"
        _frame(registry, items).to_file(path, layer=registry.key, driver="GPKG", engine="pyogrio")
        return path.read_bytes()


def shapefile_names(names: list[str]) -> dict[str, str]:
    """Field identifier → a unique DBF column name of at most 10 characters (the format's limit).

    >>> shapefile_names(["household_head", "household_size", "id"])
    {'household_head': 'household_', 'household_size': 'househol_1', 'id': 'id'}
    """
    short: dict[str, str] = {}
    for name in names:
        candidate, n = name[:10], 0
        while candidate in short.values():
            n += 1
            candidate = f"{name[:9 - len(str(n))]}_{n}"
        short[name] = candidate
    return short


def _shp(registry: Registry, items: list[dict[str, Any]]) -> bytes:
    """A zipped Shapefile with a ``.cpg`` saying UTF-8 — without it ArcGIS and older QGIS read the DBF as
    the system's code page and the Chinese names come out garbled — and ``<key>_fields.csv`` mapping the
    10-character column names back to the fields and their Chinese labels."""
    frame = _frame(registry, items)
    short = shapefile_names([c for c in frame.columns if c != "geometry"])
    frame = frame.rename(columns=short)
    labels = {"id": "编号", "version": "版本", "org_path": "所属区域",
              **{f.name: f.zh for f in registry.fields}}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"{registry.key}.shp"
        frame.to_file(path, driver="ESRI Shapefile", engine="pyogrio", encoding="UTF-8")
        (Path(folder) / f"{registry.key}.cpg").write_text("UTF-8")  # written by GDAL too; never missing
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for member in sorted(Path(folder).iterdir()):
                archive.write(member, member.name)
            archive.writestr(f"{registry.key}_fields.csv", _csv(
                ["字段列名", "字段标识", "中文名称"], [[short[n], n, labels[n]] for n in short]))
        return buffer.getvalue()


def export_records(conn: Connection, user: Any, registry: Registry, fmt: str,
                   filters: dict[str, Any] | None = None, *, sort: str | None = None,
                   within: str | None = None) -> Export:
    """The filtered list in ``fmt`` (csv, xlsx, geojson, gpkg, shp), masked; logged as an export."""
    if fmt not in FORMATS:
        raise ValueError(f"不支持的导出格式 {fmt}，可选 {', '.join(FORMATS)}")
    require(user, registry, "export")
    page = list_records(conn, user, registry, filters, sort=sort, within=within, limit=MAX_EXPORT,
                        max_limit=MAX_EXPORT, geometry=fmt in ("geojson", "gpkg", "shp"), action="export",
                        note={"format": fmt})
    if fmt in ("csv", "xlsx"):
        header, rows = table_rows(registry, page.items, code_names(conn))
        content = _csv(header, rows) if fmt == "csv" else _xlsx(registry, header, rows)
    elif fmt == "geojson":
        content = _geojson(registry, page.items)
    elif fmt == "gpkg":
        content = _gpkg(registry, page.items)
    else:
        content = _shp(registry, page.items)
    suffix = "zip" if fmt == "shp" else fmt
    return Export(content, f"{registry.key}.{suffix}", FORMATS[fmt], len(page.items))
