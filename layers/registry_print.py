"""Printing (打印): A4 PDFs of any registry's filtered list and of a single record, and the grid notice board
(网格服务公示牌), drawn by WeasyPrint from HTML templates (``layers/templates``) with Chinese fonts.

What is printed is what the screen shows: the same search (:func:`layers.registry_service.list_records`),
the same masking, code names for codes. Paper leaves the system like an export does, so printing a list
or a record needs the ``export`` permission and is written to the access log (action ``print``, with the
filters and the number of rows); the sheet says who printed it and when.

The notice board is different on purpose: it is the sign the seed asks to be posted "in a prominent
place in the grid" (网格平面图、网格长姓名、照片、联系电话、服务事项), so the grid head's *work* phone
numbers (the grid registry's 手机号码 / 固定电话, which are published to be called) are printed in full.
Nothing else about a person is on it. Reading those two numbers unmasked needs only ``registry:grid:read``
and is written to the access log (action ``print_notice_board``, ``revealed: [head_mobile, head_phone]``).

Rendering is offline: the HTML references no URL; a URL fetcher refuses everything but inline ``data:``
images (the grid head's photo is embedded), so a value typed into a record can never make the server
fetch anything.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, select_autoescape
from shapely import wkb
from shapely.geometry import shape
from sqlalchemy import Connection, text

from gis.masking import mask_id_number, mask_phone
from gis.security import audit
from layers.print_map import Layer, svg_map
from layers.registries import REGISTRIES
from layers.registry import Field, Registry
from layers.registry_export import code_names
from layers.registry_service import NotFound, get_record, list_records, require

TEMPLATES = Path(__file__).parent / "templates"
LOCAL_TIME = ZoneInfo("Asia/Shanghai")
MAX_PRINT = 2000  # rows on a printed list; beyond that the sheet says so and points to 下载
MEDIA_TYPE = "application/pdf"
PHOTO_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}
_LIST_TYPES_LEFT_OUT = ("longtext", "ref", "summary")  # too long for a column, or an internal id
# Columns kept on one line in a printed list (numbers and codes read badly when broken).
_UNBROKEN_TYPES = ("id_number", "document_number", "phone", "date", "datetime", "int", "number", "code",
                   "bool", "lon", "lat")


@dataclass(frozen=True)
class Printed:
    content: bytes
    filename: str
    pages: int
    rows: int = 1
    media_type: str = MEDIA_TYPE


@cache
def _templates() -> Environment:
    return Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))


def offline_fetcher():
    """WeasyPrint's URL fetcher: inline ``data:`` images only, nothing from a disk path or the network."""
    from weasyprint.urls import URLFetcher

    return URLFetcher(allowed_protocols={"data"}, allow_redirects=False)


def render_pdf(template: str, **context: Any) -> tuple[bytes, int]:
    """A template rendered to PDF: ``(bytes, page count)``."""
    from weasyprint import HTML  # imported here: it loads pango, which the API need not load to start

    html = _templates().get_template(template).render(**context)
    document = HTML(string=html, url_fetcher=offline_fetcher()).render()
    return document.write_pdf(), len(document.pages)


def _page_text(value: str) -> str:
    """A value for a CSS ``content`` string (the running header): no quotes, escapes or tags."""
    return re.sub(r'["\\<>\n\r]', " ", value)


def _now() -> dt.datetime:
    return dt.datetime.now(LOCAL_TIME)


def _user_label(user: Any) -> str:
    name = getattr(user, "name", None) or user.username
    return f"{name}（{user.username}）" if name != user.username else name


def display_value(f: Field, value: Any, names: dict[tuple[str, str], str]) -> str:
    """A value as a person reads it: code names, 是/否, local times, plain numbers."""
    if value is None or value == "":
        return ""
    if f.code_table:
        return names.get((f.code_table, str(value)), str(value))
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, dt.datetime):
        moment = value.astimezone(LOCAL_TIME) if value.tzinfo else value
        return moment.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal | float):
        number = format(value, "f")
        return number.rstrip("0").rstrip(".") if "." in number else number
    return str(value)


def describe_filters(registry: Registry, filters: dict[str, Any], names: dict) -> str:
    """The search as the sheet states it: 「姓名：张；性别：男；年龄区间：20–40」, ID/phone masked."""
    parts = []
    for f in registry.query_fields:
        if f.search_mode == "range":
            low, high = filters.get(f"{f.name}_min"), filters.get(f"{f.name}_max")
            if low in (None, "") and high in (None, ""):
                continue
            parts.append(f"{f.range_zh or f.zh}：{'' if low is None else low}–{'' if high is None else high}")
            continue
        value = filters.get(f.name)
        if value in (None, ""):
            continue
        if f.sensitive == "id":
            shown = mask_id_number(str(value))
        elif f.sensitive == "phone":
            shown = mask_phone(str(value))
        else:
            shown = display_value(f, value, names)
        parts.append(f"{f.zh}：{shown}")
    return "；".join(parts)


def list_columns(registry: Registry) -> list[Field]:
    return [f for f in registry.fields if f.type not in _LIST_TYPES_LEFT_OUT]


def print_list(conn: Connection, user: Any, registry: Registry, filters: dict[str, Any] | None = None, *,
               sort: str | None = None, within: str | None = None) -> Printed:
    """The filtered list as an A4 PDF (landscape when it is wide), masked; logged as ``print``."""
    require(user, registry, "export")
    filters = {k: v for k, v in (filters or {}).items() if v not in (None, "")}
    page = list_records(conn, user, registry, filters, sort=sort, within=within, limit=MAX_PRINT,
                        max_limit=MAX_PRINT, action="print", note={"format": "pdf"})
    names = code_names(conn)
    columns = list_columns(registry)
    header = ["序号", *(f.zh for f in columns)]
    unbroken = ["nw", *("nw" if f.type in _UNBROKEN_TYPES or f.name == registry.title else ""
                        for f in columns)]
    rows = [[str(i), *(display_value(f, item.get(f.name), names) for f in columns)]
            for i, item in enumerate(page.items, start=1)]
    wide = len(columns) > 8
    title = f"{registry.zh}台账"
    printed_at = _now()
    content, pages = render_pdf(
        "print_list.html", title=title, orientation="landscape" if wide else "portrait",
        font_size="7pt" if len(columns) > 14 else "8pt" if wide else "9pt",
        header_left=_page_text(title), header_right=_page_text(f"打印：{_user_label(user)}"),
        filters=describe_filters(registry, filters, names), total=page.total,
        truncated=page.total > len(page.items), header=header, rows=rows, unbroken=unbroken,
        printed_at=printed_at.strftime("%Y-%m-%d %H:%M"), user_label=_user_label(user))
    return Printed(content, f"{registry.key}_{printed_at:%Y%m%d_%H%M}.pdf", pages, rows=len(rows))


def _geometry(value: Any):
    return shape(value) if value else None


def _territory_names(conn: Connection, path: str | None) -> str:
    """「鼓楼区 宁海路街道 颐和路社区 第一网格」 for a territory path."""
    if not path:
        return ""
    names = conn.execute(text(
        "SELECT name FROM territory_unit WHERE path @> CAST(:p AS ltree)"
        " AND level NOT IN ('province', 'city') ORDER BY nlevel(path)"), {"p": path}).scalars()
    return " ".join(names)


def print_record(conn: Connection, user: Any, registry: Registry, record_id: int) -> Printed:
    """One record as an A4 sheet: every field labelled, masked, with its location drawn; logged."""
    require(user, registry, "export")
    record = get_record(conn, user, registry, record_id, log=False)
    audit.record(conn, "print", target_table=registry.key, target_id=record_id, detail={"format": "pdf"})
    names = code_names(conn)
    rows = [(f.zh, display_value(f, record.get(f.name), names)) for f in registry.fields]
    drawn = _geometry(record.get("geometry"))
    kind = drawn.geom_type if drawn is not None else ""
    style = ({"fill": "#c2452d", "stroke": "#c2452d"} if kind.endswith("Point")
             else {"stroke": "#c2452d", "width": 2.5} if "Line" in kind
             else {"fill": "#fde9b0", "stroke": "#c2452d", "width": 1.5})
    context_shapes = _territory_outline(conn, record.get("org_path"))
    layers = [Layer(context_shapes, fill="#fdfcf7", stroke="#8a8f98", dash="4 3"), Layer([drawn], **style)]
    title_value = record.get(registry.title) if registry.title in record else None
    title = f"{registry.zh}登记表" + (f"：{title_value}" if title_value else "")
    printed_at = _now()
    content, pages = render_pdf(
        "print_record.html", title=title, orientation="portrait", font_size="9pt",
        header_left=_page_text(f"{registry.zh}登记表"), header_right=_page_text(f"打印：{_user_label(user)}"),
        record_id=record_id, version=record["version"],
        territory=_territory_names(conn, record.get("org_path")), rows=rows,
        map=svg_map(layers, width=600, height=300) if drawn is not None else None,
        printed_at=printed_at.strftime("%Y-%m-%d %H:%M"), user_label=_user_label(user))
    return Printed(content, f"{registry.key}_{record_id}.pdf", pages)


def _territory_outline(conn: Connection, path: str | None) -> list:
    """The boundary of the territory unit a record belongs to (its grid, usually), for context."""
    if not path:
        return []
    row = conn.execute(text(
        "SELECT ST_AsBinary(boundary) FROM territory_unit WHERE path = CAST(:p AS ltree)"
        " AND boundary IS NOT NULL"), {"p": path}).scalar()
    return [wkb.loads(bytes(row))] if row else []


# ---------------------------------------------------------------- 网格服务公示牌 (grid notice board)

def photo_data_uri(value: str | None, photo_dir: Path | None) -> str | None:
    """The grid head's photo as an inline image: a ``data:`` URI as stored, or a PNG/JPEG file under
    ``photo_dir`` (a relative path; nothing outside that folder is read)."""
    if not value:
        return None
    value = value.strip()
    if value.startswith("data:image/"):
        return value if re.fullmatch(r"data:image/(png|jpeg);base64,[A-Za-z0-9+/=\s]+", value) else None
    if photo_dir is None:
        return None
    root = photo_dir.resolve()
    path = (root / value).resolve()
    if not path.is_relative_to(root) or path.suffix.lower() not in PHOTO_TYPES or not path.is_file():
        return None
    encoded = base64.b64encode(path.read_bytes()).decode("ascii")
    return f"data:{PHOTO_TYPES[path.suffix.lower()]};base64,{encoded}"


def service_items(value: str | None) -> list[str]:
    """服务事项 as listed items: one a line (or separated by ；/;/、 when written on one line)."""
    if not value:
        return []
    lines = [line for line in re.split(r"[\r\n]+", value) if line.strip()]
    if len(lines) == 1:
        lines = re.split(r"[；;]", lines[0])
    return [re.sub(r"^\s*(\d+[.、．)]|[-•·])\s*", "", line).strip() for line in lines if line.strip()]


def _grid_map(conn: Connection, grid_id: int, boundary, name: str) -> str:
    """The grid's plan (网格平面图): its boundary, its compounds and buildings, its neighbours faintly."""
    def shapes(sql: str) -> list:
        return [wkb.loads(bytes(g)) for g in conn.execute(text(sql), {"id": grid_id}).scalars() if g]

    buildings = shapes("SELECT ST_AsBinary(footprint) FROM building WHERE grid_id = :id"
                       " AND deleted_at IS NULL LIMIT 5000")
    compounds = shapes("SELECT ST_AsBinary(boundary) FROM compound WHERE grid_id = :id"
                       " AND deleted_at IS NULL AND boundary IS NOT NULL LIMIT 1000")
    return svg_map([
        Layer([boundary], fill="#fdf6e3", stroke="#b22222", width=2.5),
        Layer(compounds, fill="#e9f0e4", stroke="#7a9a6a", width=0.8),
        Layer(buildings, fill="#c9ced6", stroke="#6b7280", width=0.5),
        Layer([boundary], stroke="#b22222", width=2.5, label=name if not buildings else None),
    ], width=640, height=400)


def print_notice_board(conn: Connection, user: Any, grid_id: int, *,
                       photo_dir: Path | None = None) -> Printed:
    """The grid notice board as one A4 sheet; the grid head's work phones in full (see module docstring)."""
    registry = REGISTRIES["grid"]
    record = get_record(conn, user, registry, grid_id, log=False)  # read permission, scope (RLS)
    head = conn.execute(text(
        "SELECT head_mobile, head_phone, head_photo, path::text AS path, ST_AsBinary(boundary) AS boundary"
        " FROM territory_unit WHERE id = :id AND level = 'grid' AND deleted_at IS NULL"),
        {"id": grid_id}).mappings().first()
    if head is None:
        raise NotFound(registry, grid_id)
    audit.record(conn, "print_notice_board", target_table="grid", target_id=grid_id,
                 detail={"format": "pdf", "revealed": ["head_mobile", "head_phone"],
                         "reason": "网格服务公示牌公示网格长工作电话"})
    boundary = wkb.loads(bytes(head["boundary"])) if head["boundary"] else None
    where = _territory_names(conn, head["path"].rsplit(".", 1)[0] if "." in head["path"] else None)
    area = record.get("area_m2")
    area_text = (f"{float(area) / 1e6:.2f} 平方千米" if area and area >= 100_000
                 else f"{float(area):,.0f} 平方米" if area else "—")
    printed_at = _now()
    content, pages = render_pdf(
        "notice_board.html", title=f"网格服务公示牌：{record['name']}", orientation="portrait",
        font_size="10pt", header_left="", header_right="", page_numbers=False,
        where=where, grid_name=record["name"], grid_code=record["code"],
        map=_grid_map(conn, grid_id, boundary, record["name"]) if boundary is not None else svg_map([]),
        photo=photo_data_uri(head["head_photo"], photo_dir), head_name=record.get("head_name"),
        head_mobile=head["head_mobile"], head_phone=head["head_phone"],
        worker_count=record.get("worker_count"), household_count=record.get("household_count"),
        area=area_text, services=service_items(record.get("service_items")),
        printed_on=f"{printed_at:%Y年%m月%d日}")
    return Printed(content, f"notice_board_{record['code']}.pdf", pages)
