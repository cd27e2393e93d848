"""The registry declaration (台账声明): one dataclass a registry, one a field, everything derived from them.

A registry is *declared*, never hand-written: its fields with Chinese and English labels, types, code
tables, required and sensitive flags and search modes; its geometry kind; where its rows live (a table of
its own, or a view over a foundation table). The list and its filters, the form and its validation, the
API routes and schemas, the exports, the metadata (``GET /api/v1/meta/registries``) and the tests are all
built from these declarations -- see :mod:`layers.registry_service`, :mod:`gis.api.registries`.

The declarations live in ``layers/registries/<module>.py``, one module of the seed's "9+X" a file::

    Registry("drug_user", "吸毒人员", "drug user", "special_population", "via:person",
             special="drug_user", fields=(
                 *special_person_fields(),
                 Field("cause", "吸毒原因", "cause of drug use"),
                 code("rehab_status", "戒毒情况", "rehabilitation status", "rehab_status", search="exact"),
                 Field("methadone", "是否服用美沙酮戒毒", "on methadone", "bool"),
             ), query=("name", "id_number", "rehab_status"))

Where a row's columns come from:

- a stored field is a column of the registry's table (alias ``t``) or of a one-to-one extension table
  (``store`` = the extension's alias), written by create and update;
- a derived field has an SQL expression (``expr``) over the registry's FROM clause and is read-only:
  ages, counts, areas, a person's name on a special-population record -- computed, never typed.

Physical tables: the tables of registries with ``new_table=True`` were generated from these
declarations by :mod:`layers.registry_ddl` into ``gis/sql/0003_registries.sql`` and are frozen there,
like any migration; ``tests/test_registries.py`` checks that every stored field has its column.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

FieldType = Literal[
    "text", "longtext", "int", "number", "date", "datetime", "bool", "code", "id_number", "document_number",
    "phone", "ref", "lon", "lat", "summary",
]
SearchMode = Literal["exact", "prefix", "range", "trgm"]
GEOMETRY_KINDS = ("point", "line", "polygon", "none")

# Types whose values are masked in every list, detail and export unless revealed.
SENSITIVE_TYPES = {"id_number": "id", "document_number": "id", "phone": "phone"}


@dataclass(frozen=True)
class Field:
    """One labelled field of a registry.

    ``name`` is the identifier (API, exports' English header); ``zh`` the label users see, spelled as in
    the seed. ``expr`` makes the field derived (read-only). ``ref`` names the registry a ``ref`` field
    points at (its row id). ``search`` says how 精准查询 matches it: ``exact`` (codes, numbers), ``prefix``,
    ``trgm`` (Chinese names: contains or similar, pg_trgm) or ``range`` (``<name>_min`` / ``<name>_max``).
    """

    name: str
    zh: str
    en: str
    type: FieldType = "text"
    code_table: str | None = None
    required: bool = False
    search: SearchMode | None = None
    expr: str | None = None
    store: str = "t"
    column: str | None = None
    ref: str | None = None
    range_zh: str | None = None  # the label of a range search, e.g. 年龄区间
    pattern: str | None = None   # a regular expression the value must match (e.g. a code of digits)

    @property
    def sensitive(self) -> str | None:
        """``id`` or ``phone``: masked unless revealed (:mod:`gis.masking`)."""
        return SENSITIVE_TYPES.get(self.type)

    @property
    def search_mode(self) -> SearchMode:
        """How the field is searched when a registry's ``query`` names it (names match by trgm)."""
        if self.search:
            return self.search
        return "trgm" if self.type in ("text", "longtext") else "exact"

    @property
    def derived(self) -> bool:
        return self.expr is not None or self.type == "summary"

    @property
    def stored_column(self) -> str:
        return self.column or self.name

    @property
    def read_expr(self) -> str:
        return self.expr if self.expr is not None else f"{self.store}.{self.stored_column}"


def code(name: str, zh: str, en: str, table: str, **kw: Any) -> Field:
    """A field whose values are codes of the code table ``table`` (数据字典)."""
    return Field(name, zh, en, "code", code_table=table, **kw)


def derived(name: str, zh: str, en: str, expr: str, type: FieldType = "text", **kw: Any) -> Field:
    """A computed, read-only field."""
    return Field(name, zh, en, type, expr=expr, **kw)


def ref(name: str, zh: str, en: str, registry: str, **kw: Any) -> Field:
    """The id of a record of another registry (the row this one hangs on)."""
    return Field(name, zh, en, "ref", ref=registry, **kw)


@dataclass(frozen=True)
class Extension:
    """A one-to-one sub-record written together with the base row: ``table`` keyed by ``key`` = base id.

    ``join`` is the ON condition (defaults to ``<alias>.<key> = t.id``); ``derive`` adds computed column
    values before an insert or update (e.g. a residence's is_head from the relation to the head);
    ``needs`` names the field without which no sub-record is written (a person without a house).
    """

    alias: str
    table: str
    key: str
    join: str | None = None
    needs: str | None = None
    derive: Callable[[dict[str, Any], bool], dict[str, Any]] | None = None  # (values, inserting)
    has_org_path: bool = True
    filter: str = ""      # which of several sub-rows is the current one (a residence: until IS NULL)
    new_table: bool = False  # created from this declaration in migration 0003

    @property
    def on(self) -> str:
        condition = self.join or f"{self.alias}.{self.key} = t.id"
        return f"{condition} AND {self.filter}" if self.filter else condition


@dataclass(frozen=True)
class Registry:
    """A registry (台账). See the module docstring.

    - ``geometry``: ``point`` / ``line`` / ``polygon`` / ``via:<registry>`` (drawn through the record it
      hangs on) / ``none`` -- what the record is drawn as. ``geometry_column`` is the column a user sets
      (own geometry), ``geometry_expr`` what is drawn (defaults to the column), ``geometry_type`` the
      PostGIS type of the column; ``lonlat`` = a point set from the 经度/纬度 fields.
    - ``table``: the table holding the rows (default: ``key``); ``new_table``: created from this
      declaration in migration 0003. ``joins`` / ``where``: the rest of the FROM clause and the filter of
      a view registry (户主 over person, 出租屋 over house); ``fixed``: column values every new row of the
      view gets (a 流动人口 record is a person with residency 'floating').
    - ``territory``: how a new row gets its ``org_path``: ``input`` (the ``org_path`` given, default the
      user's scope), ``ref:<field>`` (that of the row the field points at; else input), ``trigger`` (the
      table's own triggers, as the territory tree does).
    - ``special``: the special-population category whose permission (``special:<category>``) reading it
      needs; ``visits``: keeps dated 帮扶记录 (assistance / visit records).
    """

    key: str
    zh: str
    en: str
    module: str
    geometry: str
    fields: tuple[Field, ...]
    query: tuple[str, ...]
    ops: tuple[str, ...] = ()
    table: str | None = None
    new_table: bool = True
    joins: str = ""
    where: str = ""
    extensions: tuple[Extension, ...] = ()
    fixed: Mapping[str, Any] = field(default_factory=dict)
    territory: str = "input"
    geometry_column: str | None = None
    geometry_expr: str | None = None
    geometry_type: str | None = None
    lonlat: bool = False
    special: str | None = None
    visits: bool = False
    title: str = "name"
    notes: str = ""
    crud: bool = True  # False: rows are written by a workflow of their own; metadata only
    unique: tuple[str, ...] = ()  # columns unique among live rows (a person is in a category once)

    def __post_init__(self) -> None:
        names = [f.name for f in self.fields]
        duplicates = {n for n in names if names.count(n) > 1}
        assert not duplicates, f"{self.key}: duplicate fields {duplicates}"
        unknown = set(self.query) - set(names)
        assert not unknown, f"{self.key}: query names unknown fields {unknown}"
        assert self.geometry in GEOMETRY_KINDS or self.geometry.startswith("via:"), self.geometry
        stores = {"t"} | {e.alias for e in self.extensions}
        for f in self.fields:
            assert f.derived or f.store in stores, f"{self.key}.{f.name}: unknown store {f.store}"
            assert f.type != "code" or f.code_table, f"{self.key}.{f.name}: a code field needs a code table"

    @property
    def table_name(self) -> str:
        return self.table or self.key

    @property
    def drawn(self) -> str | None:
        """The SQL expression of the geometry drawn for a row, or ``None``."""
        if self.geometry_expr:
            return self.geometry_expr
        if self.geometry_column:
            return f"t.{self.geometry_column}"
        return None

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"{self.key} has no field {name!r}")

    @property
    def stored_fields(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if not f.derived)

    @property
    def query_fields(self) -> tuple[Field, ...]:
        return tuple(self.field(n) for n in self.query)

    def permission(self, action: str) -> str:
        return f"registry:{self.key}:{action}"

    def metadata(self) -> dict[str, Any]:
        """The registry as ``GET /api/v1/meta/registries`` and ``gridgov registries --json`` show it."""
        return {
            "key": self.key, "zh": self.zh, "en": self.en, "module": self.module, "geometry": self.geometry,
            "table": self.table_name, "special": self.special, "visits": self.visits,
            "ops": list(self.ops), "crud": self.crud,
            "fields": [
                {"name": f.name, "zh": f.zh, "en": f.en, "type": f.type, "code_table": f.code_table,
                 "required": f.required, "sensitive": f.sensitive, "derived": f.derived, "ref": f.ref}
                for f in self.fields
            ],
            "query": [query_metadata(f) for f in self.query_fields],
        }


def query_metadata(f: Field) -> dict[str, Any]:
    """One search field: its label, how it matches and the parameters it takes."""
    if f.search_mode == "range":
        return {"name": f.name, "zh": f.range_zh or f.zh, "mode": "range",
                "params": [f"{f.name}_min", f"{f.name}_max"]}
    return {"name": f.name, "zh": f.zh, "mode": f.search_mode, "params": [f.name]}
