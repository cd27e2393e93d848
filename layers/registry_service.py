"""One service for every registry: list and search, read, create, update, soft delete, visits, nearby.

Nothing here knows a particular registry: the SQL is built from the declaration (:mod:`layers.registry`).
Every function takes a ``Connection`` in a scoped transaction (:func:`gis.security.scope.scoped_connection`),
so which rows exist for the caller is decided by row-level security; what is decided here is what the
caller may do (the role's ``registry:<key>:read|write|export`` and ``special:<category>``), what they see
(ID and phone numbers masked), and whether what they typed is acceptable (field-level Chinese messages).

>>> with scoped_connection(settings, user) as conn:                               # doctest: +SKIP
...     page = list_records(conn, user, REGISTRIES["drug_user"], {"name": "张"})
...     record = update_record(conn, user, REGISTRIES["drug_user"], page.items[0]["id"],
...                            {"rehab_status": "2"}, version=page.items[0]["version"])

Concurrency is optimistic: every row has a ``version``; an update or delete names the version it was
based on, and a row changed since is refused (409) -- never silently overwritten.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from gis.errors import ServiceError
from gis.masking import mask_id_number, mask_phone
from gis.security import audit
from gis.validation import ValidationError, validate_id_number, validate_phone
from layers.events.calendar import beijing_today
from layers.registries import REGISTRIES
from layers.registry import Extension, Field, Registry

MAX_PAGE = 500
MAX_EXPORT = 100_000
NEARBY_METRES = 200  # 周边: the default distance from a school (settings: school_nearby_metres)
REF_TABLES = {"territory": "territory_unit"}
CITIZEN_ID_DOCUMENT = "111"  # document_type 居民身份证
_ACTIONS = {"read": "查看", "write": "编辑", "export": "导出"}


class RegistryError(ServiceError):
    """A refused request on a registry."""


class NotFound(RegistryError):
    status = 404

    def __init__(self, registry: Registry, record_id: int) -> None:
        super().__init__(f"未找到{registry.zh}记录 {record_id}，或其不在您的辖区内 (not found in your scope)")


class Forbidden(RegistryError):
    status = 403


class StaleVersion(RegistryError):
    status = 409


class Invalid(RegistryError):
    """Input refused; ``errors`` maps each field name to what is wrong with it, in Chinese."""

    status = 422

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("；".join(f"{message}" for message in errors.values()) + " (invalid input)")
        self.errors = errors


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    total: int
    limit: int
    offset: int


# ---------------------------------------------------------------- permissions

def require(user: Any, registry: Registry, action: str) -> None:
    """Refuse unless the user's role may ``action`` (read / write / export) this registry."""
    if not registry.crud and action != "read":
        raise Forbidden(f"{registry.zh}由事件流程办理，不能在台账中{_ACTIONS[action]}"
                        " (handled by the workflow)")
    if not user.has(registry.permission(action)):
        raise Forbidden(f"您没有{_ACTIONS[action]}{registry.zh}的权限"
                        f" ({registry.permission(action)} required)")
    if registry.special and not user.has(f"special:{registry.special}"):
        raise Forbidden(f"您没有查看{registry.zh}信息的权限 (special:{registry.special} required)")


# ---------------------------------------------------------------- SQL built from the declaration

def _from(registry: Registry) -> str:
    extensions = "".join(f" LEFT JOIN {e.table} {e.alias} ON {e.on}" for e in registry.extensions)
    return f"{registry.table_name} t{extensions} {registry.joins}"


def _where(registry: Registry) -> list[str]:
    return ["t.deleted_at IS NULL"] + ([f"({registry.where})"] if registry.where else [])


def _columns(registry: Registry, geometry: bool) -> str:
    columns = ["t.id", "t.version", "t.org_path::text AS org_path", "t.district_code::text AS district_code"]
    columns += [f"{f.read_expr} AS {f.name}" for f in registry.fields]
    if geometry and registry.drawn:
        columns.append(f"ST_AsGeoJSON({registry.drawn}, 7)::json AS geometry")
    return ", ".join(columns)


def _mask(registry: Registry, row: dict[str, Any]) -> dict[str, Any]:
    for f in registry.fields:
        if f.sensitive == "id":
            row[f.name] = mask_id_number(row.get(f.name))
        elif f.sensitive == "phone":
            row[f.name] = mask_phone(row.get(f.name))
    return row


def _masked_filters(registry: Registry, filters: dict[str, Any]) -> dict[str, Any]:
    shown = {}
    for name, value in filters.items():
        base = re.sub(r"_(min|max)$", "", name)
        f = next((f for f in registry.fields if f.name == base), None)
        if f is not None and f.sensitive == "id":
            value = mask_id_number(str(value))
        elif f is not None and f.sensitive == "phone":
            value = mask_phone(str(value))
        shown[name] = value if isinstance(value, str | int | float | bool) or value is None else str(value)
    return shown


def _like(value: str) -> str:
    return re.sub(r"([\\%_])", r"\\\1", value)


def _search_value(f: Field, value: Any) -> Any:
    if f.type in ("id_number", "document_number"):
        return str(value).strip().upper()
    if f.type == "phone":
        try:
            return validate_phone(str(value))
        except ValidationError:
            return str(value).strip()
    return _coerce(f, value)


def _filters(registry: Registry, filters: dict[str, Any]) -> tuple[list[str], dict[str, Any], list[str]]:
    """WHERE clauses, parameters and relevance ORDER BY terms for the search fields given."""
    clauses, params, relevance = [], {}, []
    for i, f in enumerate(registry.query_fields):
        expr, key = f.read_expr, f"q{i}"
        if f.search_mode == "range":
            for suffix, op in (("min", ">="), ("max", "<=")):
                value = filters.get(f"{f.name}_{suffix}")
                if value not in (None, ""):
                    clauses.append(f"{expr} {op} :{key}{suffix}")
                    params[f"{key}{suffix}"] = _coerce(f, value)
            continue
        value = filters.get(f.name)
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        value = _search_value(f, value.strip() if isinstance(value, str) else value)
        if f.search_mode == "exact":
            clauses.append(f"{expr} = :{key}")
        elif f.search_mode == "prefix":
            clauses.append(f"{expr} LIKE :{key}p")
            params[f"{key}p"] = _like(value) + "%"
        else:  # trgm: contains, or similar (pg_trgm), exact and closest first
            clauses.append(f"({expr} LIKE :{key}p OR {expr} % :{key})")
            params[f"{key}p"] = "%" + _like(value) + "%"
            relevance += [f"({expr} = :{key}) DESC", f"similarity({expr}, :{key}) DESC"]
        params[key] = value
    return clauses, params, relevance


def _order(registry: Registry, sort: str | None, relevance: list[str]) -> str:
    if sort:
        descending = sort.startswith("-")
        name = sort.lstrip("-+")
        if name == "id":
            expr = "t.id"
        else:
            try:
                expr = registry.field(name).read_expr
            except KeyError:
                raise Invalid({"sort": f"不能按“{name}”排序：没有这个字段"}) from None
        return f"{expr} {'DESC' if descending else 'ASC'} NULLS LAST, t.id"
    return ", ".join([*relevance, "t.id"])


def list_records(
    conn: Connection,
    user: Any,
    registry: Registry,
    filters: dict[str, Any] | None = None,
    *,
    sort: str | None = None,
    limit: int = 50,
    offset: int = 0,
    geometry: bool = False,
    within: str | None = None,
    action: str = "search_registry",
    max_limit: int = MAX_PAGE,
    note: dict[str, Any] | None = None,
) -> Page:
    """The records matching every search field given (combinable), masked, sorted, one page of them,
    with the total. ``within`` narrows to a territory path. The search is written to the access log."""
    require(user, registry, "read")
    filters = {k: v for k, v in (filters or {}).items() if v not in (None, "")}
    limit = max(1, min(int(limit), max_limit))
    offset = max(0, int(offset))
    clauses, params, relevance = _filters(registry, filters)
    clauses = _where(registry) + clauses
    if within:
        clauses.append("t.org_path <@ CAST(:within AS ltree)")
        params["within"] = within
    where = " AND ".join(clauses)
    total = conn.execute(text(f"SELECT count(*) FROM {_from(registry)} WHERE {where}"), params).scalar_one()
    rows = conn.execute(text(
        f"SELECT {_columns(registry, geometry)} FROM {_from(registry)} WHERE {where}"
        f" ORDER BY {_order(registry, sort, relevance)} LIMIT :limit OFFSET :offset"
    ), {**params, "limit": limit, "offset": offset}).mappings()
    items = [_mask(registry, dict(row)) for row in rows]
    audit.record(conn, action, target_table=registry.key, detail={
        "filters": _masked_filters(registry, filters), "within": within, "total": total, "offset": offset,
        "rows": len(items), **(note or {}),
    })
    return Page(items=items, total=total, limit=limit, offset=offset)


def _row(conn: Connection, registry: Registry, record_id: int, geometry: bool = True) -> dict | None:
    row = conn.execute(text(
        f"SELECT {_columns(registry, geometry)} FROM {_from(registry)}"
        f" WHERE {' AND '.join(_where(registry))} AND t.id = :id"
    ), {"id": record_id}).mappings().first()
    return dict(row) if row else None


def get_record(conn: Connection, user: Any, registry: Registry, record_id: int, *, log: bool = True) -> dict:
    """One record with its geometry (GeoJSON), masked; the read is written to the access log."""
    require(user, registry, "read")
    row = _row(conn, registry, record_id)
    if row is None:
        raise NotFound(registry, record_id)
    if log:
        audit.record(conn, "read_record", target_table=registry.key, target_id=record_id)
    return _mask(registry, row)


# ---------------------------------------------------------------- validation

_TRUE = {"1", "true", "t", "yes", "y", "是", "有"}
_FALSE = {"0", "false", "f", "no", "n", "否", "无"}


def _coerce(f: Field, value: Any) -> Any:
    """The value as the field's type; raises ``ValueError`` with a Chinese message."""
    if f.type in ("int",):
        if isinstance(value, bool) or not re.fullmatch(r"-?\d+", str(value).strip()):
            raise ValueError(f"{f.zh}应为整数")
        return int(str(value).strip())
    if f.type in ("number", "lon", "lat"):
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            raise ValueError(f"{f.zh}应为数字") from None
        if not number.is_finite():
            raise ValueError(f"{f.zh}应为数字")
        if f.type == "lon" and not 73 <= number <= 136:
            raise ValueError(f"{f.zh}应在 73 到 136 之间（中国境内，CGCS2000 经度）")
        if f.type == "lat" and not 3 <= number <= 54:
            raise ValueError(f"{f.zh}应在 3 到 54 之间（中国境内，CGCS2000 纬度）")
        return float(number) if f.type in ("lon", "lat") else number
    if f.type == "date":
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        try:
            return dt.date.fromisoformat(str(value).strip())
        except ValueError:
            raise ValueError(f"{f.zh}“{value}”不是有效日期，请按 2024-01-31 的格式填写") from None
    if f.type == "datetime":
        if isinstance(value, dt.datetime):
            return value
        try:
            return dt.datetime.fromisoformat(str(value).strip())
        except ValueError:
            raise ValueError(f"{f.zh}“{value}”不是有效时间，请按 2024-01-31 08:30 的格式填写") from None
    if f.type == "bool":
        if isinstance(value, bool):
            return value
        word = str(value).strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
        raise ValueError(f"{f.zh}应为“是”或“否”")
    if f.type == "ref":
        if isinstance(value, bool) or not re.fullmatch(r"\d{1,18}", str(value).strip()):
            raise ValueError(f"{f.zh}应为记录编号")
        return int(str(value).strip())
    value = str(value).strip()
    if len(value) > 5000:
        raise ValueError(f"{f.zh}太长（最多 5000 字）")
    return value


def _ref_row(conn: Connection, f: Field, record_id: int) -> dict | None:
    if f.ref in REF_TABLES:
        source, where = f"{REF_TABLES[f.ref]} t", ""
    else:
        target = REGISTRIES[f.ref]
        source = _from(target)
        where = f" AND ({target.where})" if target.where else ""
    row = conn.execute(text(
        f"SELECT t.org_path::text AS org_path, t.district_code::text AS district_code FROM {source}"
        f" WHERE t.id = :id AND t.deleted_at IS NULL{where}"
    ), {"id": record_id}).mappings().first()
    return dict(row) if row else None


def _code_exists(conn: Connection, table: str, value: str) -> bool:
    return conn.execute(text("SELECT EXISTS (SELECT 1 FROM code_item WHERE table_key = :t AND code = :c)"),
                        {"t": table, "c": value}).scalar_one()


@dataclass
class _Clean:
    values: dict[str, Any]           # field name -> value (stored fields only)
    refs: dict[str, dict]            # ref field name -> the referenced row's org_path, district_code
    geometry: Any = None             # GeoJSON text, when given
    geometry_given: bool = False
    org_path: str | None = None


def _clean(conn: Connection, registry: Registry, data: dict[str, Any], *, creating: bool,
           current: dict | None = None) -> _Clean:
    """Check every value given (and, when creating, that the required ones are there)."""
    errors: dict[str, str] = {}
    fields = {f.name: f for f in registry.fields}
    clean = _Clean(values={}, refs={})
    for name, value in data.items():
        if name in ("geometry", "org_path"):
            continue
        f = fields.get(name)
        if f is None:
            errors[name] = f"{registry.zh}没有“{name}”这个字段"
            continue
        if f.derived:
            continue  # computed: a form may send it back, it is not written
        if value is None or (isinstance(value, str) and not value.strip()):
            if f.required:
                errors[name] = f"请填写{f.zh}"
            else:
                clean.values[name] = None
            continue
        try:
            clean.values[name] = _coerce(f, value)
        except ValueError as error:
            errors[name] = str(error)
    if creating:
        for f in registry.stored_fields:
            if f.required and f.name not in data and f.name not in errors:
                errors[f.name] = f"请填写{f.zh}"
    merged = {**(current or {}), **clean.values}
    for name, value in list(clean.values.items()):
        if value is None or name in errors:
            continue
        f = fields[name]
        try:
            clean.values[name] = _check(conn, registry, f, value, merged, clean)
        except ValidationError as error:
            errors[error.field if error.field in fields and error.field != name else name] = error.message
    if "geometry" in data:
        clean.geometry_given = True
        if data["geometry"] is not None:
            clean.geometry = _geometry_text(registry, data["geometry"], errors)
    if "org_path" in data and data["org_path"]:
        clean.org_path = str(data["org_path"]).strip()
    if errors:
        raise Invalid(errors)
    return clean


def _check(conn: Connection, registry: Registry, f: Field, value: Any, merged: dict, clean: _Clean) -> Any:
    """The checks that need more than the value's type: codes, ID numbers, phones, references."""
    if f.pattern and not re.fullmatch(f.pattern, str(value)):
        raise ValidationError(f"{f.zh}“{value}”格式不正确", f.name)
    if f.type == "code" and not _code_exists(conn, f.code_table, value):
        raise ValidationError(f"{f.zh}的代码“{value}”不在代码表 {f.code_table} 中，请从列表中选择", f.name)
    if f.type == "id_number":
        sex = merged.get("sex") if any(x.name == "sex" and not x.derived for x in registry.fields) else None
        parsed = validate_id_number(value, sex=sex, birth_date=merged.get("birth_date"))
        return parsed.number
    if f.type == "document_number":
        if merged.get(_sibling_type(registry, f)) == CITIZEN_ID_DOCUMENT:
            return validate_id_number(value).number
        return str(value).upper()
    if f.type == "phone":
        try:
            return validate_phone(value)
        except ValidationError as error:
            raise ValidationError(f"{f.zh}：{error.message}", f.name) from None
    if f.type == "ref":
        row = _ref_row(conn, f, value)
        if row is None:
            raise ValidationError(f"所选{f.zh}（编号 {value}）不存在或不在您的辖区内", f.name)
        clean.refs[f.name] = row
    return value


def _sibling_type(registry: Registry, f: Field) -> str | None:
    """The document-type field that says what kind of number ``f`` is."""
    for candidate in registry.fields:
        if (candidate.type, candidate.code_table, candidate.store) == ("code", "document_type", f.store):
            if candidate.name.removesuffix("document_type") == f.name.removesuffix("document_number"):
                return candidate.name
    return None


def _geometry_text(registry: Registry, value: Any, errors: dict[str, str]) -> str | None:
    if not registry.geometry_column or registry.lonlat:
        errors["geometry"] = f"{registry.zh}的位置不能直接绘制（由所属记录或经纬度决定）"
        return None
    if isinstance(value, dict):
        return json.dumps(value)
    if isinstance(value, str):
        return value
    errors["geometry"] = "位置应为 GeoJSON 几何对象"
    return None


# What a drawn shape may be, per column type (a single polygon or line goes into a Multi column).
_GEOMETRY_KINDS = {
    "Point": ("ST_Point",), "Polygon": ("ST_Polygon",), "MultiPolygon": ("ST_Polygon", "ST_MultiPolygon"),
    "MultiLineString": ("ST_LineString", "ST_MultiLineString"), "LineString": ("ST_LineString",),
}
_KIND_ZH = {"Point": "点", "Polygon": "面", "MultiPolygon": "面", "MultiLineString": "线", "LineString": "线"}


def _geometry_sql(registry: Registry) -> str:
    g = "ST_SetSRID(ST_GeomFromGeoJSON(:geometry), 4490)"
    return f"ST_Multi({g})" if (registry.geometry_type or "").startswith("Multi") else g


def _check_geometry(conn: Connection, registry: Registry, geometry: str) -> None:
    try:
        with conn.begin_nested():
            kind, valid, reason = conn.execute(text(
                "SELECT ST_GeometryType(g), ST_IsValid(g), ST_IsValidReason(g)"
                " FROM (SELECT ST_GeomFromGeoJSON(:geometry) AS g) x"), {"geometry": geometry}).one()
    except DBAPIError:
        raise Invalid({"geometry": "位置不是有效的 GeoJSON 几何对象，请重新绘制"}) from None
    allowed = _GEOMETRY_KINDS.get(registry.geometry_type or "")
    if allowed and kind not in allowed:
        raise Invalid({"geometry": f"{registry.zh}的位置应绘制为{_KIND_ZH[registry.geometry_type]}"})
    if not valid:
        raise Invalid({"geometry": f"位置图形无效（{reason}），请重新绘制"})


# ---------------------------------------------------------------- territory

def _territory(conn: Connection, user: Any, registry: Registry, clean: _Clean,
               current: dict | None) -> tuple[str, str] | None:
    """The (org_path, district_code) a new or moved row belongs to, or ``None`` to leave it."""
    if registry.territory == "trigger":
        return None
    if registry.territory.startswith("ref:"):
        field_name = registry.territory[4:]
        if field_name in clean.refs:
            row = clean.refs[field_name]
            return row["org_path"], row["district_code"]
        if current is not None and clean.org_path is None:
            return None
    if current is not None and clean.org_path is None:
        return None
    path = clean.org_path or user.scope_path
    row = conn.execute(text(
        "SELECT path::text AS path, district_code::text AS district_code FROM territory_unit"
        " WHERE path = CAST(:p AS ltree) AND deleted_at IS NULL AND path <@ CAST(:scope AS ltree)"
    ), {"p": path, "scope": user.scope_path}).mappings().first() if re.fullmatch(r"[0-9.]+", path) else None
    if row is None:
        raise Invalid({"org_path": f"所属区域 {path} 不存在或不在您的辖区内"})
    if not row["district_code"]:
        raise Invalid({"org_path": "请选择区县或以下的区域（街道、社区或网格）"})
    return row["path"], row["district_code"]


def _check_inside(conn: Connection, registry: Registry, org_path: str, geometry_sql: str,
                  params: dict, field: str) -> None:
    """A location must lie inside the territory unit the record belongs to (where its boundary is known)."""
    row = conn.execute(text(
        f"SELECT u.name, ST_Covers(u.boundary, {geometry_sql}) AS inside FROM territory_unit u"
        " WHERE u.path = CAST(:org_path AS ltree) AND u.boundary IS NOT NULL"
    ), {**params, "org_path": org_path}).mappings().first()
    if row is not None and row["inside"] is False:
        raise Invalid({field: f"位置不在所属区域“{row['name']}”范围内，请检查位置或所属区域"})


# ---------------------------------------------------------------- writing

def _split(registry: Registry, values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Values by the table alias they are stored in, keyed by column."""
    out: dict[str, dict[str, Any]] = {"t": {}, **{e.alias: {} for e in registry.extensions}}
    for name, value in values.items():
        f = registry.field(name)
        out[f.store][f.stored_column] = value
    return out


def _fixed(registry: Registry) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for key, value in registry.fixed.items():
        alias, _, column = key.rpartition(".")
        out.setdefault(alias or "t", {})[column] = value
    return out


def _lonlat(registry: Registry, merged: dict) -> tuple[str, dict] | None:
    lon, lat = merged.get("lon"), merged.get("lat")
    if registry.lonlat and lon is not None and lat is not None:
        return "ST_SetSRID(ST_MakePoint(:lon_, :lat_), 4490)", {"lon_": float(lon), "lat_": float(lat)}
    return None


def _location(conn: Connection, registry: Registry, clean: _Clean, merged: dict,
              org_path: str | None) -> tuple[str, dict] | None:
    """The SQL and parameters of the row's new location, checked (valid, inside its territory)."""
    location = None
    if clean.geometry is not None:
        _check_geometry(conn, registry, clean.geometry)
        location = (_geometry_sql(registry), {"geometry": clean.geometry})
        field = "geometry"
    elif (location := _lonlat(registry, merged)) is not None:
        field = "lon"
    if location is not None and org_path:
        _check_inside(conn, registry, org_path, location[0], location[1], field)
    return location


def _database_errors(registry: Registry, error: DBAPIError) -> RegistryError:
    """A constraint the database enforced, as a field-level message."""
    diag = getattr(error.orig, "diag", None)
    sqlstate = getattr(error.orig, "sqlstate", None)
    column = getattr(diag, "column_name", None)
    by_column = {f.stored_column: f for f in registry.stored_fields}
    if sqlstate == "23505":
        names = [n for n in registry.unique if n in by_column]
        if names:
            return Invalid({names[0]: f"该{by_column[names[0]].zh}已在{registry.zh}中登记，不能重复登记"})
        return Invalid({"_": f"{registry.zh}中已有相同的记录 (duplicate)"})
    if sqlstate == "23502":
        if column == registry.geometry_column:
            return Invalid({"geometry": "请在地图上绘制位置"})
        f = by_column.get(column)
        return Invalid({f.name if f else (column or "_"): f"请填写{f.zh if f else column}"})
    if sqlstate in ("23514", "23503", "22001", "22003", "22P02"):
        return Invalid({"_": f"数据不符合{registry.zh}的约束，请检查填写内容 ({sqlstate})"})
    if sqlstate == "42501":
        return Forbidden("记录不在您的辖区内，不能保存 (outside your territory)")
    raise error


def create_record(conn: Connection, user: Any, registry: Registry, data: dict[str, Any]) -> dict:
    """Validate and insert one record (with its sub-records); returns it as read back, masked."""
    require(user, registry, "write")
    clean = _clean(conn, registry, data, creating=True)
    territory = _territory(conn, user, registry, clean, None)
    location = _location(conn, registry, clean, clean.values, territory[0] if territory else None)
    by_alias = _split(registry, clean.values)
    for alias, values in _fixed(registry).items():
        by_alias.setdefault(alias, {}).update(values)
    base = {k: v for k, v in by_alias["t"].items() if v is not None}
    base |= {"created_by": user.id, "updated_by": user.id}
    if territory:
        base |= {"org_path": territory[0], "district_code": territory[1]}
    columns = list(base)
    params = {f"v{i}": value for i, value in enumerate(base.values())}
    placeholders = [f":v{i}" if c != "org_path" else f"CAST(:v{i} AS ltree)" for i, c in enumerate(columns)]
    if location:
        columns.append(registry.geometry_column)
        placeholders.append(location[0])
        params |= location[1]
    try:
        with conn.begin_nested():
            record_id = conn.execute(text(
                f"INSERT INTO {registry.table_name} ({', '.join(columns)}) VALUES ({', '.join(placeholders)})"
                " RETURNING id"), params).scalar_one()
            for extension in registry.extensions:
                values = by_alias.get(extension.alias, {})
                _write_extension(conn, extension, record_id, values, inserting=True)
    except DBAPIError as error:
        raise _database_errors(registry, error) from None
    row = _row(conn, registry, record_id)
    if row is None:  # e.g. a household head without a house: saved, but not in this view
        raise Invalid({"_": f"已保存，但记录不符合{registry.zh}的条件 (saved, but outside this view)"})
    return _mask(registry, row)


def _write_extension(conn: Connection, extension: Extension, record_id: int, values: dict[str, Any], *,
                     inserting: bool) -> None:
    if extension.derive:
        values = {**values, **extension.derive(values, inserting)}
    if not inserting and values:
        assignments = ", ".join(f"{column} = :{column}" for column in values)
        condition = f"{extension.alias}.{extension.key} = :record_id"
        if extension.filter:
            condition += f" AND {extension.filter}"
        updated = conn.execute(text(
            f"UPDATE {extension.table} {extension.alias} SET {assignments} WHERE {condition}"
        ), {**values, "record_id": record_id}).rowcount
        if updated:
            return
    if not values and not inserting:
        return
    if extension.needs and values.get(extension.needs) is None:
        return
    values = {k: v for k, v in values.items() if v is not None}
    columns = [extension.key, *values]
    placeholders = [":record_id", *(f":{c}" for c in values)]
    if extension.has_org_path:
        columns += ["org_path", "district_code"]
        placeholders += [f"(SELECT org_path FROM {_base_table(extension)} WHERE id = :record_id)",
                         f"(SELECT district_code FROM {_base_table(extension)} WHERE id = :record_id)"]
    conn.execute(text(
        f"INSERT INTO {extension.table} ({', '.join(columns)}) VALUES ({', '.join(placeholders)})"
    ), {**values, "record_id": record_id})


def _base_table(extension: Extension) -> str:
    for registry in REGISTRIES.values():
        if extension in registry.extensions:
            return registry.table_name
    raise KeyError(extension.table)


def _lock(conn: Connection, registry: Registry, record_id: int, version: int | None) -> dict:
    row = conn.execute(text(
        f"SELECT t.version, t.org_path::text AS org_path FROM {_from(registry)}"
        f" WHERE {' AND '.join(_where(registry))} AND t.id = :id FOR UPDATE OF t"
    ), {"id": record_id}).mappings().first()
    if row is None:
        raise NotFound(registry, record_id)
    if version is not None and int(version) != row["version"]:
        raise StaleVersion(
            f"该{registry.zh}记录已被他人修改（当前为第 {row['version']} 版，您编辑的是第 {version} 版），"
            "为免覆盖他人的修改，本次未保存。请刷新后重新编辑 (stale version)")
    return dict(row)


def update_record(conn: Connection, user: Any, registry: Registry, record_id: int, data: dict[str, Any],
                  version: int) -> dict:
    """Change the fields given of a record based on ``version``; a stale version is refused (409)."""
    require(user, registry, "write")
    locked = _lock(conn, registry, record_id, version)
    current = _row(conn, registry, record_id, geometry=False) or {}
    clean = _clean(conn, registry, data, creating=False, current=current)
    territory = _territory(conn, user, registry, clean, current)
    merged = {**current, **clean.values}
    location = _location(conn, registry, clean, merged, territory[0] if territory else locked["org_path"])
    by_alias = _split(registry, clean.values)
    assignments = [f"{column} = :v{i}" for i, column in enumerate(by_alias["t"])]
    params: dict[str, Any] = {f"v{i}": value for i, value in enumerate(by_alias["t"].values())}
    if territory:
        assignments += ["org_path = CAST(:org_path_ AS ltree)", "district_code = :district_code_"]
        params |= {"org_path_": territory[0], "district_code_": territory[1]}
    if location:
        assignments.append(f"{registry.geometry_column} = {location[0]}")
        params |= location[1]
    elif clean.geometry_given and clean.geometry is None:
        assignments.append(f"{registry.geometry_column} = NULL")
    assignments += ["version = version + 1", "updated_at = now()", "updated_by = :user_id"]
    try:
        with conn.begin_nested():
            conn.execute(text(
                f"UPDATE {registry.table_name} SET {', '.join(assignments)} WHERE id = :id"
            ), {**params, "id": record_id, "user_id": user.id})
            for extension in registry.extensions:
                values = by_alias.get(extension.alias, {})
                _write_extension(conn, extension, record_id, values, inserting=False)
                if territory and extension.has_org_path and extension.table != "residence":
                    conn.execute(text(
                        f"UPDATE {extension.table} SET org_path = CAST(:p AS ltree), district_code = :d"
                        f" WHERE {extension.key} = :id"),
                        {"p": territory[0], "d": territory[1], "id": record_id})
    except DBAPIError as error:
        raise _database_errors(registry, error) from None
    row = _row(conn, registry, record_id)
    if row is None:
        raise Invalid({"_": f"已保存，但记录已不符合{registry.zh}的条件 (saved, but no longer in this view)"})
    return _mask(registry, row)


def delete_record(conn: Connection, user: Any, registry: Registry, record_id: int,
                  version: int | None = None) -> None:
    """Soft delete: the row stays, with who deleted it and when, and is no longer listed."""
    require(user, registry, "write")
    _lock(conn, registry, record_id, version)
    conn.execute(text(
        f"UPDATE {registry.table_name} SET deleted_at = now(), deleted_by = :user_id, version = version + 1,"
        " updated_at = now(), updated_by = :user_id WHERE id = :id"
    ), {"id": record_id, "user_id": user.id})


# ---------------------------------------------------------------- 帮扶记录 (assistance / visit records)

_VISIT_FIELDS = (
    Field("visited_on", "走访日期", "visited on", "date", required=True),
    Field("visitor", "走访人", "visitor", required=True),
    Field("content", "帮扶内容", "what was done", "longtext", required=True),
    Field("next_due", "下次走访日期", "next visit due", "date"),
)


def _visit_registry(registry: Registry) -> None:
    if not registry.visits:
        raise NotFound(registry, 0)


def list_visits(conn: Connection, user: Any, registry: Registry, record_id: int) -> list[dict]:
    _visit_registry(registry)
    get_record(conn, user, registry, record_id, log=False)
    rows = conn.execute(text(
        "SELECT id, visited_on, visitor, content, next_due, created_at FROM assistance_visit"
        " WHERE registry = :r AND record_id = :id ORDER BY visited_on DESC, id DESC"
    ), {"r": registry.key, "id": record_id}).mappings()
    return [dict(row) for row in rows]


def add_visit(conn: Connection, user: Any, registry: Registry, record_id: int, data: dict[str, Any]) -> dict:
    """Record a visit (who, when, what, next visit due) on a special-population record."""
    _visit_registry(registry)
    require(user, registry, "write")
    get_record(conn, user, registry, record_id, log=False)
    errors, values = {}, {}
    for f in _VISIT_FIELDS:
        value = data.get(f.name)
        if value is None or (isinstance(value, str) and not value.strip()):
            if f.required:
                errors[f.name] = f"请填写{f.zh}"
            values[f.name] = None
            continue
        try:
            values[f.name] = _coerce(f, value)
        except ValueError as error:
            errors[f.name] = str(error)
    if not errors and values["visited_on"] > beijing_today():
        errors["visited_on"] = "走访日期不能晚于今天"
    if not errors and values["next_due"] and values["next_due"] < values["visited_on"]:
        errors["next_due"] = "下次走访日期不能早于本次走访日期"
    if errors:
        raise Invalid(errors)
    row = conn.execute(text(
        "INSERT INTO assistance_visit (registry, record_id, person_id, visited_on, visitor, content,"
        " next_due, org_path, district_code, created_by)"
        " SELECT :r, t.id, t.person_id, :visited_on, :visitor, :content, :next_due, t.org_path,"
        f" t.district_code, :user_id FROM {registry.table_name} t WHERE t.id = :id"
        " RETURNING id, visited_on, visitor, content, next_due, created_at"
    ), {**values, "r": registry.key, "id": record_id, "user_id": user.id}).mappings().one()
    return dict(row)


# ---------------------------------------------------------------- 周边重点人员 (key persons near a school)

def key_person_categories(user: Any) -> list[Registry]:
    """The special-population registries whose people count as key persons, and the user may see."""
    return [r for r in REGISTRIES.values() if r.special and user.has(f"special:{r.special}")
            and user.has(r.permission("read"))]


def key_persons_near_school(conn: Connection, user: Any, school_id: int,
                            distance_m: float = NEARBY_METRES) -> dict[str, Any]:
    """People on a special-population register living within ``distance_m`` metres of a school, found by
    the database (distance on the ellipsoid, from the school's outline or point to the person's building),
    nearest first -- and the key persons registered for the school by hand. Masked, and logged."""
    school = REGISTRIES["school"]
    get_record(conn, user, school, school_id, log=False)
    categories = key_person_categories(user)
    found: list[dict] = []
    if categories:
        union = " UNION ALL ".join(
            f"SELECT person_id, '{r.key}' AS category FROM {r.table_name} WHERE deleted_at IS NULL"
            for r in categories)
        found = [dict(row) for row in conn.execute(text(f"""
            WITH s AS (SELECT geom::geography AS g FROM school WHERE id = :id AND deleted_at IS NULL),
                 k AS ({union})
            SELECT p.id AS person_id, p.name, p.id_number, p.phone,
                   array_agg(DISTINCT k.category ORDER BY k.category) AS categories,
                   nullif(concat_ws(' ', c.name, b.name, h.room_no), '') AS address,
                   round(min(ST_Distance(s.g, ST_PointOnSurface(b.footprint)::geography))::numeric, 1)
                       AS distance_m
              FROM k JOIN person p ON p.id = k.person_id AND p.deleted_at IS NULL AND p.died_on IS NULL
              JOIN residence r ON r.person_id = p.id AND r.until IS NULL
              JOIN house h ON h.id = r.house_id
              JOIN building b ON b.id = h.building_id
              LEFT JOIN compound c ON c.id = b.compound_id
              CROSS JOIN s
             WHERE ST_DWithin(s.g, ST_PointOnSurface(b.footprint)::geography, :d)
             GROUP BY p.id, c.name, b.name, h.room_no
             ORDER BY distance_m, p.id"""), {"id": school_id, "d": float(distance_m)}).mappings()]
    for row in found:
        row["id_number"], row["phone"] = mask_id_number(row["id_number"]), mask_phone(row["phone"])
        row["distance_m"] = float(row["distance_m"])
    registered_rows = []
    if user.has("registry:school_key_person:read"):
        registered = list_records(conn, user, REGISTRIES["school_key_person"], {}, limit=MAX_PAGE)
        registered_rows = [r for r in registered.items if r["school_id"] == school_id]
    audit.record(conn, "search_nearby_key_persons", target_table="school", target_id=school_id,
                 detail={"distance_m": float(distance_m), "found": len(found)})
    return {"school_id": school_id, "distance_m": float(distance_m), "found": found,
            "registered": registered_rows}
