"""Registers (台账) from Excel or CSV: Chinese headers mapped to a registry's fields, every row validated
as the forms validate it, addresses matched to the district's houses, and either everything written or
nothing.

- Headers: a registry's own labels (姓名, 身份证号 …), its English names, and the synonyms people type
  (公民身份号码, 证件号码, 手机号 …); columns that map to nothing are listed, not guessed.
- Values: the registry service's checks (:func:`layers.registry_service._coerce`, ID check digit and
  birth date via :mod:`gis.validation`, phones); codes by code or Chinese name (男 → 1); a missing sex or
  birth date is read from the ID number.
- Duplicates by ID number, within the file and against the database.
- Addresses: one 地址 column (…小区3幢2单元502室) or separate 小区/楼栋/单元/楼层/门牌 columns, matched to a
  house of the district in one query; an address that matches no house is an error, never a guess.
- All-or-nothing unless ``skip_bad``: a bad row refuses the file, and the error workbook lists each bad
  row with its row number, column and reason. Everything is one transaction.

Two ways of writing. The person registries (人口信息, 常驻人口, 户主信息: millions of rows in a city) are
written while they are read: each chunk's addresses, ID numbers and household heads are checked against
the database in one query each (the lookup keys staged by ``COPY``), and each chunk's good rows are
written by ``COPY`` (people, then residences) while the next is checked (see :func:`_load_people`). Every
other registry (organisations, special populations, schools …: hundreds to thousands of rows) goes row by
row through the registry service's own create, in one transaction, so territory, location, links and
sub-records are made exactly as the forms make them; the file supplies what the forms would: a person
by 身份证号 (a special-population record links to a registered person), a building by the address (its
point becomes the record's location and its grid the territory), or a territory unit by name or code
(所属网格, 所属社区 …).
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import io
import itertools
import json
import re
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from psycopg.copy import FileWriter
from sqlalchemy import text as sql_text

from etl.bulk_keys import lock_all, triggers_skipped, triggers_stood_in_for
from etl.encoding import text_file_encoding
from gis import db
from gis.paths import DATA_DIR
from gis.security.scope import scoped_connection
from gis.settings import Settings
from gis.validation import ValidationError, known_region_codes, validate_id_number, validate_phone
from layers.registries import REGISTRIES
from layers.registry import Field, Registry
from layers.registry_service import _coerce

# Header spellings seen in the field, beyond each field's own label.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "name": ("姓名", "名字", "人员姓名", "居民姓名"),
    "id_number": ("身份证号", "身份证号码", "公民身份号码", "公民身份证号", "证件号码", "身份证", "证件号"),
    "sex": ("性别",),
    "birth_date": ("出生日期", "出生年月", "出生年月日", "生日"),
    "phone": ("联系电话", "手机号", "手机号码", "电话", "联系方式", "手机"),
    "ethnicity": ("民族",),
    "political": ("政治面貌",),
    "education": ("文化程度", "学历"),
    "marital": ("婚姻状况", "婚姻"),
    "health": ("健康状况",),
    "hukou_type": ("户口类型", "户口性质", "户籍类型"),
    "hukou_address": ("户籍地址", "户籍地", "户籍所在地", "户籍详址"),
    "native_place": ("籍贯",),
    "relation": ("与户主关系", "关系"),
    "employer": ("工作单位", "服务处所", "工作单位名称"),
    "occupation": ("职业",),
    "religion": ("宗教信仰", "宗教"),
    "former_name": ("曾用名",),
}
ADDRESS_SYNONYMS: dict[str, tuple[str, ...]] = {
    "address": ("地址", "居住地址", "现住址", "住址", "现居住地址", "实际居住地址", "房屋地址"),
    "compound": ("小区", "小区名称", "所在小区"),
    "building": ("楼栋", "楼号", "楼栋号", "幢", "栋", "幢号"),
    "unit": ("单元", "单元号"),
    "floor": ("楼层", "层"),
    "room": ("门牌", "门牌号", "房号", "房间号", "室", "户号"),
}
# The territory unit a record belongs to, by name or code (for registries that are not placed by address).
TERRITORY_SYNONYMS = ("所属区域", "所属网格", "网格", "网格名称", "网格编码", "所属社区", "社区", "社区名称",
                      "所属街道", "街道", "区域编码")
ADDRESS_LABELS = {"address": "地址", "compound": "小区", "building": "楼栋", "unit": "单元", "floor": "楼层",
                  "room": "门牌号"}
WRITABLE = ("person", "resident", "household_head")
_HEADER_NOISE = re.compile(r"[\s*＊:：()（）]|必填|选填")
_ADDRESS = re.compile(
    r"^(?P<compound>.+?)\s*(?P<building>\d+)\s*(?:幢|栋|号楼|座)\s*"
    r"(?:(?P<unit>\d+)\s*单元)?\s*(?:(?P<floor>\d+)\s*(?:层|楼))?\s*(?P<room>\d+(?:-\d+)?)\s*(?:室|号|户)?$")
_BUILDING = re.compile(r"^(?P<compound>.+?)(?P<building>\d+)(?:幢|栋|号楼|座)")
# Province / city / district prefixes: cut off the front here; named (and checked) by cpca below.
_REGION_PREFIX = re.compile(r"^(?:\S{2,7}?(?:省|自治区|市))?(?:\S{2,7}?市)?(?:\S{1,7}?(?:区|县))?"
                            r"(?:\S{2,9}?(?:街道|镇))?(?:\S{2,9}?社区)?")

Progress = Callable[[str, int, int], None]


class RegisterLoadError(RuntimeError):
    """The file cannot be taken at all (unreadable, unknown registry, no header); message in Chinese."""


@dataclass
class RegisterOptions:
    dry_run: bool = False
    skip_bad: bool = False
    district_code: str = "320106"
    user_id: int | None = None
    username: str | None = None
    # Called once the first chunk's people are written, before their residences (tests cut the connection
    # or delete a house there).
    mid_load: Callable[[psycopg.Connection], None] | None = None


@dataclass
class RowError:
    row: int          # the spreadsheet row number (header = 1)
    column: str       # the header as written in the file
    value: str
    reason: str       # Chinese


@dataclass
class RegisterReport:
    registry: str
    file: str
    outcome: str = "refused"
    encoding: str | None = None
    columns: dict = field(default_factory=dict)       # header → field
    unmapped: list = field(default_factory=list)
    rows: int = 0
    good: int = 0
    errors: list[RowError] = field(default_factory=list)
    written: dict = field(default_factory=dict)
    seconds: float = 0.0
    load_id: int | None = None

    @property
    def bad_rows(self) -> list[int]:
        return sorted({e.row for e in self.errors})

    def as_dict(self) -> dict:
        out = dict(self.__dict__)
        out["errors"] = [e.__dict__ for e in self.errors]
        out["bad_rows"] = self.bad_rows
        return out

    def write_workbook(self, path: Path) -> None:
        """The error workbook: one line a problem (row number, column, value, reason), in Chinese."""
        from openpyxl import Workbook
        from openpyxl.styles import Font

        book = Workbook()
        sheet = book.active
        sheet.title = "错误清单"
        sheet.append(["行号", "列", "填写的值", "原因"])
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for e in sorted(self.errors, key=lambda e: (e.row, e.column)):
            sheet.append([e.row, e.column, e.value, e.reason])
        for column, width in zip("ABCD", (8, 14, 24, 60), strict=True):
            sheet.column_dimensions[column].width = width
        summary = book.create_sheet("概况")
        for key, value in (("台账", self.registry), ("文件", self.file), ("结果", self.outcome),
                           ("总行数", self.rows), ("合格行数", self.good), ("问题行数", len(self.bad_rows)),
                           ("未识别的列", "、".join(self.unmapped) or "无")):
            summary.append([key, value])
        book.save(path)


# ---------------------------------------------------------------- reading
def read_rows(path: Path, registry: Registry | None = None
              ) -> tuple[list[str], Iterator[tuple[int, list]], str | None]:
    """``(header, rows, encoding)``: rows as ``(row number, values)``, the header found in the first rows
    (a title line above it is skipped): the first with two headers known for ``registry``."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        from openpyxl import load_workbook

        book = load_workbook(path, read_only=True, data_only=True)
        lines = enumerate(book.worksheets[0].iter_rows(values_only=True), start=1)
        encoding = None
    elif suffix in (".csv", ".txt"):
        encoding = text_file_encoding(path)
        handle = path.open(encoding="utf-8-sig" if encoding == "UTF-8" else "gb18030", newline="")
        lines = enumerate(csv.reader(handle), start=1)
    else:
        raise RegisterLoadError(f"不支持的文件类型 {suffix}，请提供 .xlsx 或 .csv (unsupported file type)")
    for number, values in lines:
        cells = [_text(v) for v in values]
        if sum(1 for c in cells if c and _field_for_header(c, registry) is not None) >= 2:
            header = cells
            break
        if number >= 10:
            raise RegisterLoadError("前 10 行中找不到表头（至少两列应是已知的列名，如 姓名、身份证号）(no "
                                    "header row)")
    else:
        raise RegisterLoadError("文件是空的 (empty file)")

    def rows() -> Iterator[tuple[int, list]]:
        for number, values in lines:
            cells = list(values)
            try:  # a CSV's cells are all text: blank or not in one C call, not a _text call per cell
                blank = not "".join(cells).strip()
            except TypeError:  # a workbook's numbers, dates and empty cells
                blank = not any(_text(v) for v in cells)
            if not blank:
                yield number, cells

    return header, rows(), encoding


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value).strip()


def _field_for_header(header: str, registry: Registry | None = None) -> str | None:
    key = _HEADER_NOISE.sub("", header).lower()
    if registry is not None:
        for f in registry.stored_fields:
            if key in (f.zh, f.name.lower(), f.en.lower()):
                return f.name
    for name, spellings in SYNONYMS.items():
        if key in spellings and (registry is None or _has(registry, name)):
            return name
    # A record linked to a person (特殊人群 …) names the person by ID number: read, never stored twice.
    if key in SYNONYMS["id_number"] and registry is not None and _has(registry, "person_id"):
        return "id_number"
    for name, spellings in ADDRESS_SYNONYMS.items():
        if key in spellings:
            return f"@{name}"
    if key in TERRITORY_SYNONYMS:
        return "@territory"
    return None


def _has(registry: Registry, name: str) -> bool:
    return any(f.name == name and not f.derived for f in registry.fields)


def map_headers(header: list[str], registry: Registry) -> tuple[dict[int, str], list[str]]:
    """Column index → field name (``@address`` … for address parts), and the headers that map to nothing."""
    mapping, unmapped, taken = {}, [], set()
    for index, text in enumerate(header):
        if not text:
            continue
        name = _field_for_header(text, registry)
        if name is None or name in taken:
            unmapped.append(text)
            continue
        mapping[index] = name
        taken.add(name)
    return mapping, unmapped


# ---------------------------------------------------------------- validating
class CodeBook:
    """Every code table a registry uses, keyed by code and by Chinese name (男 → 1)."""

    def __init__(self, conn: psycopg.Connection, tables: set[str]):
        self.tables: dict[str, dict[str, str]] = {t: {} for t in tables}
        rows = conn.execute("SELECT table_key, code, name_zh FROM code_item WHERE table_key = ANY(%s)",
                            (list(tables),)).fetchall()
        for table, code, name in rows:
            self.tables[table][code] = code
            self.tables[table].setdefault(name, code)

    def code(self, table: str, value: str) -> str | None:
        return self.tables.get(table, {}).get(value)


def parse_address(text: str) -> dict[str, str] | None:
    """小区 / 楼栋 / 单元 / 楼层 / 门牌 from one written address, or None when it cannot be read.

    >>> parse_address("江苏省南京市鼓楼区宁海路街道 山西路小区 3幢2单元502室")
    {'compound': '山西路小区', 'building': '3', 'unit': '2', 'floor': None, 'room': '502'}
    >>> parse_address("鼓楼区第7小区13栋1单元1002室")["compound"]
    '第7小区'
    >>> parse_address("第7小区13幢602室")["building"]
    '13'
    """
    compact = re.sub(r"\s+", "", text.replace("－", "-").replace("—", "-"))
    rest = _REGION_PREFIX.sub("", compact, count=1)
    # The prefix pattern can take a compound for a district (第7小区 ends in 区): a reading whose compound
    # is only digits is such a mistake, and the whole text is read instead.
    for candidate in (rest, compact):
        match = _ADDRESS.search(candidate)
        if match and re.search(r"\D", match["compound"]):
            return match.groupdict()
    return None


def building_of(address: dict[str, str]) -> dict[str, str] | None:
    """``{compound, building}`` named by an address (one text, or 小区/楼栋 columns), or None.

    >>> building_of({"address": "鼓楼区山西路小区3幢"})
    {'compound': '山西路小区', 'building': '3'}
    """
    if address.get("building"):
        number = re.search(r"\d+", address["building"])
        return {"compound": address.get("compound") or "", "building": number.group()} if number else None
    text = re.sub(r"\s+", "", address.get("address", ""))
    for candidate in (_REGION_PREFIX.sub("", text, count=1), text):
        match = _BUILDING.search(candidate)
        if match and re.search(r"\D", match["compound"]):
            return {"compound": match["compound"], "building": match["building"]}
    return None


# What a written region must end in for cpca's reading to be taken: cpca also finds provinces in
# street names (山西路 → 山西省), which a region prefix never is.
_REGION_END = re.compile(r"(?:省|自治区|市|区|县|旗)$")
# Up to four administrative-looking pieces (省 市 区 and a 小区 that only looks like one).
_ADMIN_PREFIXES = re.compile(r"^(?:\S{1,12}?(?:省|自治区|市|区|县|旗)){1,4}")


def region_adcode(text: str, district_code: str) -> tuple[str, str] | None:
    """``(adcode, region name)`` of the province/city/district an address starts with, or None when it
    names none. cpca reads the region (ambiguous district names such as 鼓楼区 — in Nanjing, Fuzhou,
    Xuzhou and Kaifeng — resolved towards our district); cached per distinct prefix, so a million rows
    cost a handful of lookups.

    >>> region_adcode("上海市黄浦区南京东路1号", "320106")
    ('310101', '上海市黄浦区')
    >>> region_adcode("山西路小区3幢", "320106") is None
    True
    """
    prefix = _ADMIN_PREFIXES.match(text)
    if prefix is None:
        return None
    # Only the administrative prefix is read: the rest (road, compound, door) names no region, and keying
    # the cache by the prefix makes a register of a hundred thousand distinct addresses a few dozen calls.
    return _region_of_prefix(prefix.group(), district_code)


@functools.lru_cache(maxsize=4096)
def _region_of_prefix(text: str, district_code: str) -> tuple[str, str] | None:
    import cpca  # its data takes a few seconds to load: only when an address names a region

    district = _district_names().get(district_code)
    found = cpca.transform([text], umap={district: district_code} if district else {}).iloc[0]
    region = "".join(p for p in (found["省"], found["市"], found["区"]) if p and p != "市辖区")
    written = text[: len(text) - len(found["地址"] or "")]
    if not found["adcode"] or not _REGION_END.search(written):
        return None
    return found["adcode"], region


@functools.cache
def _district_names() -> dict[str, str]:
    """The demo's and the loaded districts' names by code: from the shipped division files."""
    names = {}
    for path in (DATA_DIR / "divisions").glob("*.csv"):
        with path.open(encoding="utf-8") as f:
            for row in csv.DictReader(f):
                if len(row.get("code", "")) == 6:
                    names[row["code"]] = row["name"]
    return names


def outside_district(text: str, district_code: str) -> str | None:
    """The region an address names when that is not (within) our district, else None."""
    found = region_adcode(text, district_code)
    if found is None:
        return None
    adcode, region = found
    # A province- or city-level adcode (…0000, …00) says only that much: compare what it says.
    known = adcode[:2] if adcode.endswith("0000") else adcode[:4] if adcode.endswith("00") else adcode
    return None if district_code.startswith(known) else region


def _room_key(unit: str | None, room: str) -> tuple[int | None, str]:
    """``(unit, room)`` with a ``2-502`` room split into its unit and door number."""
    if "-" in room:
        head, tail = room.split("-", 1)
        return int(head), tail
    return (int(unit) if unit else None), room


@dataclass
class _Row:
    number: int
    values: dict[str, Any]
    address: dict[str, Any] | None
    raw_address: str
    house_key: tuple | None = None   # a person's (compound, building, unit, room), for the house match


def _fields_of(registry: Registry) -> dict[str, Field]:
    return _fields_by_key(registry.key)


@functools.cache
def _fields_by_key(key: str) -> dict[str, Field]:
    return {f.name: f for f in REGISTRIES[key].fields}


@functools.cache
def _required_of_key(key: str) -> tuple[Field, ...]:
    return tuple(f for f in REGISTRIES[key].stored_fields if f.required and f.type != "ref")


def _required_of(registry: Registry) -> tuple[Field, ...]:
    return _required_of_key(registry.key)


def validate_row(number: int, cells: list, mapping: dict[int, str], header: list[str], registry: Registry,
                 codes: CodeBook, errors: list[RowError], district_code: str | None = None) -> _Row | None:
    """The row's clean values, or None (with its errors appended) when anything is wrong."""
    fields = _fields_of(registry)
    values: dict[str, Any] = {}
    address: dict[str, str] = {}
    raw: dict[str, str] = {}
    before = len(errors)

    def bad(name: str, reason: str) -> None:
        column = next((header[i] for i, n in mapping.items() if n == name), fields[name].zh
                      if name in fields else ADDRESS_LABELS.get(name.lstrip("@"), name))
        errors.append(RowError(number, column, raw.get(name, ""), reason))

    for index, name in mapping.items():
        text = _text(cells[index]) if index < len(cells) else ""
        raw[name] = text
        if name == "@territory":
            values["@territory"] = text or None
            continue
        if name.startswith("@"):
            if text:
                address[name[1:]] = text
            continue
        if not text:
            continue
        f = fields[name]
        try:
            value = _coerce(f, cells[index] if isinstance(cells[index], dt.date) else text)
            if f.type == "code":
                value = codes.code(f.code_table, str(value))
                if value is None:
                    raise ValueError(f"{f.zh}“{text}”不在代码表中（可填代码或中文名称）")
            elif f.type == "phone":
                value = validate_phone(value)
            values[name] = value
        except ValidationError as error:
            bad(name, error.message)
        except ValueError as error:
            bad(name, str(error))

    if "id_number" in values:
        try:
            parsed = validate_id_number(values["id_number"], sex=values.get("sex"),
                                        birth_date=values.get("birth_date"))
            values["id_number"] = parsed.number
            for name, value in (("sex", parsed.sex), ("birth_date", parsed.birth_date)):
                if _has(registry, name):
                    values.setdefault(name, value)
        except ValidationError as error:
            bad(error.field if error.field in mapping.values() else "id_number", error.message)
    # Sex and birth date come from a valid ID number; when it is wrong, that is the one error to fix.
    implied = {"sex", "birth_date"} if raw.get("id_number") else set()
    reported = {e.column for e in errors[before:]}
    for f in _required_of(registry):
        if (f.name not in values and f.name not in implied
                and _header_of(header, mapping, f.name, f.zh) not in reported):
            bad(f.name, f"请填写{f.zh}")

    if registry.key not in WRITABLE:
        # Not a person: the address is the record's own text, and (when it names a building) where the
        # record is; an address naming no building is no error.
        text_address = address.get("address") or "".join(
            address.get(k, "") for k in ("compound", "building"))
        if text_address and _has(registry, "address") and "address" not in values:
            values["address"] = text_address
        if len(errors) > before:
            return None
        if not address and isinstance(values.get("address"), str):  # the registry's own address field
            address = {"address": values["address"]}
        return _Row(number, values, building_of(address), text_address)
    parsed_address, problems = _person_address(address, district_code)
    for name, reason in problems:
        bad(name, reason)
    if len(errors) > before:
        return None
    return _Row(number, values, parsed_address, _raw_address(raw), _house_key(parsed_address))


def _raw_address(raw: dict[str, str]) -> str:
    return raw.get("@address") or " ".join(
        raw.get(f"@{k}", "") for k in ("compound", "building", "unit", "room")).strip()


def _person_address(address: dict[str, str], district_code: str | None
                    ) -> tuple[dict[str, Any] | None, list[tuple[str, str]]]:
    """A person's address columns read as ``{compound, building, unit, room}`` for the house match, and
    the problems found as ``(column name, reason)``; depends on the texts alone, so a load reads each
    distinct address once."""
    problems: list[tuple[str, str]] = []
    parsed_address = None
    written = address.get("address")
    elsewhere = district_code and written and outside_district(written, district_code)
    if elsewhere:
        problems.append(("@address", f"地址属于{elsewhere}，不在本区，请核对"))
    elif address:
        if "address" in address and not {"building", "room"} <= address.keys():
            parsed_address = parse_address(address["address"])
            if parsed_address is None:
                problems.append(("@address",
                                 "地址无法识别出 小区/楼栋/单元/门牌，请按“某某小区3幢2单元502室”填写"))
        else:
            parsed_address = {k: address.get(k) for k in ("compound", "building", "unit", "floor", "room")}
            for part in ("building", "room"):
                if not parsed_address.get(part):
                    problems.append((f"@{part}", f"缺少{ADDRESS_LABELS[part]}"))
                    parsed_address = None
                    break
            if parsed_address:
                building = re.search(r"\d+", parsed_address["building"])
                if building is None:
                    problems.append(("@building", "楼栋应含楼号数字，如 3幢"))
                    parsed_address = None
                else:
                    parsed_address["building"] = building.group()
                    room = re.sub(r"[室号户\s]", "", parsed_address["room"])
                    parsed_address["room"] = room
                    unit = re.search(r"\d+", parsed_address.get("unit") or "")
                    parsed_address["unit"] = unit.group() if unit else None
    else:
        problems.append(("@address", "缺少居住地址（小区/楼栋/单元/门牌），无法落到房屋"))
    if problems or not parsed_address:
        return None, problems
    unit, room = _room_key(parsed_address.get("unit"), parsed_address["room"])
    return {"compound": parsed_address.get("compound") or "", "building": parsed_address["building"],
            "unit": unit, "room": room}, problems


_PLAIN_MOBILE = re.compile(r"1[3-9]\d{9}", re.ASCII)
_PLAIN_ID = re.compile(r"\d{17}[\dX]", re.ASCII)
_PLAIN_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_ID_WEIGHTS = np.array([pow(2, 17 - i, 11) for i in range(17)], dtype=np.int64)
_CHECK = np.frombuffer(b"10X98765432", dtype=np.uint8)


def validate_columns(numbered: list[tuple[int, list]], mapping: dict[int, str], registry: Registry,
                     codes: CodeBook, district_code: str | None, addresses: dict[tuple, tuple] | None = None
                     ) -> list[_Row | None]:
    """The clean rows of a person register, checked a column at a time: one regex or dict lookup a
    column, the ID numbers' check digits and birth dates as numpy arithmetic, each distinct address read
    once. A row gets its :class:`_Row` here only when every check passes in its plainest form (ASCII
    digits, ISO dates, known codes, an 11-digit mobile …); anything else is None and goes through
    :func:`validate_row`, so every error keeps its row, column and reason, and every unusual but valid
    spelling is read exactly as the forms read it."""
    n = len(numbered)
    ok = np.ones(n, dtype=bool)
    fields = _fields_of(registry)
    columns: dict[str, list] = {}
    full = all(len(cells) > max(mapping) for _, cells in numbered) if mapping else True
    for index, name in mapping.items():
        cells = ([cells[index] for _, cells in numbered] if full
                 else [cells[index] if index < len(cells) else None for _, cells in numbered])
        if set(map(type, cells)) <= {str}:  # a CSV's column: stripped in C, nothing to refuse here
            columns[name] = list(map(str.strip, cells))
            continue
        # Only text (a CSV, or a text cell) and blanks take the fast path: a workbook's dates and numbers
        # are read by _text and _coerce row by row.
        texts = [c.strip() if type(c) is str else "" for c in cells]
        ok &= np.fromiter((c is None or type(c) is str for c in cells), dtype=bool, count=n)
        columns[name] = texts
    values_by_field: dict[str, list] = {}
    for name, texts in columns.items():
        if name.startswith("@"):
            continue
        f = fields[name]
        if f.type == "code":
            table = codes.tables.get(f.code_table, {})
            mapped = [table.get(t) if t else "" for t in texts]
            ok &= np.fromiter((v is not None for v in mapped), dtype=bool, count=n)
            values_by_field[name] = mapped
        elif f.type == "phone":
            ok &= np.fromiter((not t or _PLAIN_MOBILE.fullmatch(t) is not None for t in texts), dtype=bool,
                              count=n)
            values_by_field[name] = texts
        elif f.type == "date":
            dates = _iso_dates(texts)
            ok &= np.fromiter((not t or d is not None for t, d in zip(texts, dates, strict=True)),
                              dtype=bool, count=n)
            values_by_field[name] = dates
        elif f.type in ("text", "id_number"):
            ok &= np.fromiter((len(t) <= 5000 for t in texts), dtype=bool, count=n)
            values_by_field[name] = texts
        else:
            ok[:] = False  # a type no person register has: everything row by row
            values_by_field[name] = texts
    id_sex: list | None = None
    id_birth: list | None = None
    if "id_number" in columns:
        id_ok, id_sex, id_birth = _check_ids(columns["id_number"])
        ok &= id_ok
        # A sex or birth date beside the number must agree with it (validate_id_number's message else).
        if "sex" in values_by_field:
            ok &= np.fromiter((v not in ("1", "2") or not i or v == s for v, i, s in
                               zip(values_by_field["sex"], columns["id_number"], id_sex, strict=True)),
                              dtype=bool, count=n)
        if "birth_date" in values_by_field:
            ok &= np.fromiter((not t or d == b for t, d, b in zip(columns["birth_date"],
                                                                  values_by_field["birth_date"], id_birth,
                                                                  strict=True)), dtype=bool, count=n)
    derive = [name for name in ("sex", "birth_date") if _has(registry, name)] if id_sex is not None else []
    required = {f.name for f in _required_of(registry)}
    address_names = [name for name in columns if name.startswith("@") and name != "@territory"]
    # Each distinct address (a house's residents repeat it) is read once — per load, when the caller keeps
    # ``addresses`` between chunks: (house key, problems, raw text).
    addresses = {} if addresses is None else addresses
    keys = list(zip(*(columns[name] for name in address_names), strict=True)) if address_names else [()] * n
    out: list[_Row | None] = [None] * n
    ordered = [(name, values_by_field[name], columns[name]) for name in values_by_field]
    # A row with every cell filled (most of them) takes its values as one zip; the others leave out blanks.
    names = list(values_by_field)
    value_rows = list(zip(*values_by_field.values(), strict=True)) if names else [()] * n
    filled = np.ones(n, dtype=bool)
    for name in names:
        filled &= np.fromiter(map(bool, columns[name]), dtype=bool, count=n)
    filled_rows = filled.tolist()
    territory = columns.get("@territory")
    ids = columns.get("id_number") if id_sex is not None else None
    for i in np.flatnonzero(ok).tolist():
        values = (dict(zip(names, value_rows[i], strict=True)) if filled_rows[i] else
                  {name: field_values[i] for name, field_values, texts in ordered if texts[i]})
        if territory is not None:
            values["@territory"] = territory[i] or None
        if ids is not None and ids[i]:
            if "sex" in derive:
                values.setdefault("sex", id_sex[i])
            if "birth_date" in derive:
                values.setdefault("birth_date", id_birth[i])
        if not values.keys() >= required:
            continue
        key = keys[i]
        found = addresses.get(key)
        if found is None:
            address = {name[1:]: text for name, text in zip(address_names, key, strict=True) if text}
            raw = dict(zip(address_names, key, strict=True))
            try:
                parsed, problems = _person_address(address, district_code)
                found = addresses[key] = (parsed, problems, _raw_address(raw), _house_key(parsed))
            except ValueError:  # (a room such as A-1 fails in _room_key: the row path says how)
                found = addresses[key] = (None, [("@room", "")], "", None)
        parsed, problems, raw_address, house_key = found
        if problems:
            continue
        # (The parsed address is shared by the rows of one house: read, never changed.)
        out[i] = _Row(numbered[i][0], values, parsed, raw_address, house_key)
    return out


def _iso_dates(texts: list[str]) -> list[dt.date | None]:
    """YYYY-MM-DD texts as dates (None for a blank or anything else), each distinct text parsed once."""
    seen: dict[str, dt.date | None] = {}
    out = []
    for t in texts:
        if t not in seen:
            try:
                seen[t] = dt.date.fromisoformat(t) if _PLAIN_DATE.fullmatch(t) else None
            except ValueError:
                seen[t] = None
        out.append(seen[t])
    return out


def _check_ids(texts: list[str]) -> tuple[np.ndarray, list, list]:
    """For each text: whether it is a valid 18-character ID number as written (upper-case, ASCII), and
    the sex and birth date it carries — the check character for all of them in one numpy sum."""
    n = len(texts)
    shaped = np.fromiter((not t or _PLAIN_ID.fullmatch(t) is not None for t in texts), dtype=bool, count=n)
    present = np.fromiter((bool(t) for t in texts), dtype=bool, count=n)
    candidates = np.flatnonzero(shaped & present)
    ok = shaped.copy()
    sex: list = [None] * n
    birth: list = [None] * n
    if len(candidates) == 0:
        return ok, sex, birth
    picked = [texts[i] for i in candidates.tolist()]
    digits = np.frombuffer("".join(picked).encode("ascii"), dtype=np.uint8).reshape(-1, 18)
    check = _CHECK[((digits[:, :17].astype(np.int64) - 48) @ _ID_WEIGHTS) % 11]
    good = check == digits[:, 17]
    regions = known_region_codes()
    today = dt.date.today()
    dates: dict[str, dt.date | None] = {}
    for k, (i, text) in enumerate(zip(candidates.tolist(), picked, strict=True)):
        if not good[k] or text[:6] not in regions:
            ok[i] = False
            continue
        raw_birth = text[6:14]
        if raw_birth not in dates:
            try:
                born = dt.date(int(raw_birth[:4]), int(raw_birth[4:6]), int(raw_birth[6:]))
                dates[raw_birth] = born if _EARLIEST <= born <= today else None
            except ValueError:
                dates[raw_birth] = None
        born = dates[raw_birth]
        if born is None:
            ok[i] = False
            continue
        birth[i] = born
        sex[i] = "1" if int(text[16]) % 2 else "2"
    return ok, sex, birth


_EARLIEST = dt.date(1900, 1, 1)


# ---------------------------------------------------------------- the load
PERSON_COLUMNS = ("name", "sex", "id_number", "birth_date", "ethnicity", "political", "education", "health",
                  "marital", "religion", "occupation", "employer", "phone", "hukou_type", "hukou_address",
                  "native_place", "former_name")


def load_register(settings: Settings, key: str, path: Path, options: RegisterOptions | None = None,
                  progress: Progress | None = None) -> RegisterReport:
    """Check ``path`` as registry ``key`` and write it (all good, or ``skip_bad``); returns the report."""
    options = options or RegisterOptions()
    tick = progress or (lambda stage, done, total: None)
    if key not in REGISTRIES:
        raise RegisterLoadError(f"没有名为 {key} 的台账，可用 gridgov registries 查看 (unknown "
                                "registry)")
    registry = REGISTRIES[key]
    started = time.perf_counter()
    report = RegisterReport(registry=key, file=Path(path).name)
    header, rows, report.encoding = read_rows(Path(path), registry)
    mapping, report.unmapped = map_headers(header, registry)
    report.columns = {header[i]: name for i, name in mapping.items()}

    with psycopg.connect(db.libpq_dsn(db.owner_url(settings)), autocommit=True) as conn:
        codes = CodeBook(conn, {f.code_table for f in registry.fields if f.code_table})
        chunks = _validated_chunks(rows, mapping, header, registry, codes, options, report, tick)
        if key in WRITABLE:
            report.good = _load_people(settings, conn, registry, chunks, header, mapping, options, report,
                                       tick, started)
        else:
            good = _places_and_links(conn, registry, [row for chunk in chunks for row in chunk], header,
                                     mapping, options, report)
            # The service's own checks (territory, location inside it, links) run in a rehearsal too, so
            # a dry run promises what the load does.
            report.written = _write_records(settings, registry, good, header, mapping, options, report, tick)
            report.good = len(good) - len({e.row for e in report.errors} & {r.number for r in good})
            report.outcome = _outcome(report, options)
            if report.outcome == "loaded":
                with conn.transaction():
                    report.load_id = _record(conn, report, options, "loaded")
                    _finish(conn, report.load_id, report)
        if report.outcome != "loaded":
            report.written = {}
            report.seconds = round(time.perf_counter() - started, 3)
            with conn.transaction():
                report.load_id = _record(conn, report, options, report.outcome)
                _finish(conn, report.load_id, report)
    return report


def _outcome(report: RegisterReport, options: RegisterOptions) -> str:
    if report.errors and not options.skip_bad:
        return "refused"
    return "dry_run" if options.dry_run else "loaded"


CHUNK_ROWS = 20_000


def _validated_chunks(rows: Iterator[tuple[int, list]], mapping: dict[int, str], header: list[str],
                      registry: Registry, codes: CodeBook, options: RegisterOptions, report: RegisterReport,
                      tick: Progress) -> Iterator[list[_Row]]:
    """The rows that pass every check of their own, ``CHUNK_ROWS`` file rows at a time (the failures go to
    ``report.errors``), so a person register is written while the rest of it is still being read.

    Person registers (millions of rows) are checked column-wise first; the rows that are not plainly
    clean, and every row of the other registries, go through the row-by-row check and its messages. An ID
    number seen before is the later row's error, whatever happens to the earlier row."""
    seen_ids: dict[str, int] = {}
    addresses: dict[tuple, tuple] = {}
    id_column = _header_of(header, mapping, "id_number", "身份证号")
    while chunk := list(itertools.islice(rows, CHUNK_ROWS)):
        fast = (validate_columns(chunk, mapping, registry, codes, options.district_code, addresses)
                if registry.key in WRITABLE else [None] * len(chunk))
        good = []
        for (number, cells), row in zip(chunk, fast, strict=True):
            if row is None:
                row = validate_row(number, cells, mapping, header, registry, codes, report.errors,
                                   options.district_code)
            if row is None:
                continue
            id_number = row.values.get("id_number")
            if id_number:
                first = seen_ids.setdefault(id_number, number)
                if first != number:
                    report.errors.append(RowError(number, id_column, id_number,
                                                  f"身份证号与第 {first} 行重复"))
                    continue
            good.append(row)
        report.rows += len(chunk)
        tick("校验", report.rows, 0)
        yield good
    tick("校验", report.rows, report.rows)


def _header_of(header: list[str], mapping: dict[int, str], name: str, default: str) -> str:
    return next((header[i] for i, n in mapping.items() if n == name), default)


def _load_people(settings: Settings, conn: psycopg.Connection, registry: Registry,
                 chunks: Iterator[list[_Row]], header, mapping, options: RegisterOptions,
                 report: RegisterReport, tick: Progress, started: float) -> int:
    """Write a person register while it is being read; returns the number of good rows.

    Each chunk of checked rows is matched against the database on a second connection (its addresses to
    houses, its ID numbers to the people already registered, its household heads to the houses' heads),
    and its good rows are written by a thread of their own — the chunk's people, then their residences,
    each one ``COPY`` — while this thread reads and checks the next chunk: the server's writing overlaps
    Python's reading, the residences' included; the load holds two chunks, not a file's residences; and no
    row is written twice (a staging copy of a million rows and an ``INSERT … SELECT`` from it cost more
    than the checks). Everything is one transaction: a refused file, a dry run or a cut connection leaves
    the database as it was. Once a row fails without
    ``skip_bad`` nothing more is sent, but the rest of the file is still checked, so the report lists every
    bad row."""
    head_by_default = "02" if registry.key == "household_head" else "99"
    good = written = 0
    with (psycopg.connect(db.libpq_dsn(db.owner_url(settings)), autocommit=True) as lookup,
          conn.transaction(), ThreadPoolExecutor(1, thread_name_prefix="register-writer") as sender):
        matcher = _DatabaseMatch(lookup, options.district_code, header, mapping)
        writer = None if options.dry_run else _PeopleWriter(conn, registry, mapping, options.mid_load)
        formatting = lookup.cursor()
        pending: deque[Future[None]] = deque()
        for chunk in chunks:
            placed = matcher.check(chunk, head_by_default, report)
            good += len(placed)
            if writer is None or not placed or (report.errors and not options.skip_bad):
                continue
            formatted = writer.format(formatting, matcher.person_ids(len(placed)), placed)
            pending.append(sender.submit(writer.write, *formatted))
            written += len(placed)
            # One chunk being written and one waiting while the next is checked: enough to keep the
            # server busy, and a refused file stops sending within a chunk or two.
            while len(pending) > 1:
                pending.popleft().result()
                tick("写入", written - len(placed), 0)
        while pending:
            pending.popleft().result()
        report.outcome = _outcome(report, options)
        if report.outcome != "loaded":
            raise psycopg.Rollback
        report.written = {"people": written, "residences": written}
        tick("写入", written, written)
        report.seconds = round(time.perf_counter() - started, 3)
        report.load_id = _record(conn, report, options, "loaded")
        _finish(conn, report.load_id, report)
    return good


def _buildings_of(addresses: str) -> str:
    """``FROM … JOIN building b``: each address of the staged ``addresses`` (a table with ``compound`` and
    ``building`` columns, aliased ``a``) with the district's buildings it can name — its compound by name
    (exactly or in part; none named: any), its building by the number in the name (3幢, 3栋, 3号楼). The
    compound names (a few hundred in a district) are resolved first, so buildings are joined by compound
    and number, never every address against every compound's buildings. Takes the district code as the
    statement's first parameter."""
    table = addresses.split()[0]
    return (f"FROM {addresses} JOIN (SELECT n.compound, c.id FROM (SELECT DISTINCT compound FROM {table}) n "
            "  JOIN compound c ON c.district_code = %s AND c.deleted_at IS NULL "
            "  AND (n.compound = '' OR c.name = n.compound OR c.name LIKE '%%' || n.compound || '%%') "
            "  OFFSET 0) c ON c.compound = a.compound "
            "JOIN building b ON b.compound_id = c.id AND b.deleted_at IS NULL "
            "  AND substring(b.name FROM '[0-9]+') = a.building")


class _DatabaseMatch:
    """What a chunk of rows must agree with in the database, read on a connection of its own (outside
    the load's transaction, whose ``COPY`` is busy): each distinct address matched to one house once per
    load, ID numbers already registered, household heads already present — one query each per chunk."""

    def __init__(self, conn: psycopg.Connection, district_code: str, header, mapping):
        self.conn = conn
        self.district_code = district_code
        self.houses: dict[tuple, tuple | None] = {}    # address key → (house id, org_path, district)
        self.heads: dict[int, int] = {}                # house id → the row that made its head
        self.sequence = conn.execute("SELECT pg_get_serial_sequence('person', 'id')").fetchone()[0]
        self.id_column = _header_of(header, mapping, "id_number", "身份证号")
        self.address_column = _header_of(header, mapping, "@address", "地址")
        self.relation_column = _header_of(header, mapping, "relation", self.address_column)
        conn.execute("CREATE TEMP TABLE register_address (k int, compound text, building text, unit int, "
                     "room text)")

    def check(self, rows: list[_Row], head_by_default: str, report: RegisterReport
              ) -> list[tuple[_Row, str, tuple]]:
        """``(row, relation, house)`` for the rows that pass; the others' errors go to the report."""
        self._match_addresses(rows)
        ids = [row.values["id_number"] for row in rows if row.values.get("id_number")]
        # (The numbers go as one text: psycopg composes a 20,000-element array parameter in Python.)
        known = dict(self.conn.execute(
            "SELECT id_number, id FROM person WHERE id_number = ANY(string_to_array(%s, ',')) "
            "AND deleted_at IS NULL", (",".join(ids),)).fetchall()) if ids else {}
        relations = [row.values.get("relation") or head_by_default for row in rows]
        houses = [self.houses[row.house_key] for row in rows]
        heads_of = {house[0] for house, relation in zip(houses, relations, strict=True)
                    if house and relation == "02"}
        with_head = dict(self.conn.execute(
            "SELECT house_id, person_id FROM residence WHERE house_id = ANY(%s) AND until IS NULL "
            "AND is_head",
            (list(heads_of),)).fetchall()) if heads_of else {}
        placed = []
        for row, relation, house in zip(rows, relations, houses, strict=True):
            errors = []
            id_number = row.values.get("id_number")
            if id_number in known:
                errors.append(RowError(row.number, self.id_column, id_number,
                                       f"库中已有此身份证号的人员（编号 {known[id_number]}），请勿重复登记"))
            if house is None:
                errors.append(RowError(row.number, self.address_column, row.raw_address,
                                       "地址未能匹配到本区的房屋，请核对小区、楼栋、单元和门牌"))
            elif relation == "02" and house[0] in with_head:
                errors.append(RowError(row.number, self.relation_column, row.raw_address,
                                       f"该房屋已登记户主（人员编号 {with_head[house[0]]}），"
                                       "一户只能有一名户主"))
            elif relation == "02" and house[0] in self.heads:
                errors.append(RowError(row.number, self.relation_column, row.raw_address,
                                       f"与第 {self.heads[house[0]]} 行是同一房屋的户主，一户只能有一名户主"))
            if errors:
                report.errors.extend(errors)
                continue
            if relation == "02":
                self.heads[house[0]] = row.number
            placed.append((row, relation, house))
        return placed

    def _match_addresses(self, rows: list[_Row]) -> None:
        """Match the addresses not seen before, in one query. A building is known by the number in its
        name (3幢, 3栋, 3号楼); a door by the number after the unit; an address matching no house, or
        more than one, matches none."""
        fresh = {row.house_key for row in rows if row.house_key not in self.houses}
        if not fresh:
            return
        numbered = dict(enumerate(fresh))
        self.conn.execute("TRUNCATE register_address")
        with self.conn.cursor().copy("COPY register_address FROM STDIN") as copy:
            for k, address in numbered.items():
                copy.write_row((k, *address))
        self.conn.execute("ANALYZE register_address")
        found = self.conn.execute(
            "SELECT a.k, min(h.id), min(h.org_path::text), min(h.district_code) "
            f"{_buildings_of('register_address a')} "
            "JOIN house h ON h.building_id = b.id AND h.deleted_at IS NULL "
            "  AND regexp_replace(h.room_no, '^[0-9]+-', '') = a.room "
            "  AND (a.unit IS NULL OR h.unit_no = a.unit) "
            "WHERE a.room IS NOT NULL GROUP BY a.k HAVING count(DISTINCT h.id) = 1",
            (self.district_code,)).fetchall()
        self.houses.update(dict.fromkeys(fresh))
        self.houses.update((numbered[k], (house, path, district)) for k, house, path, district in found)

    def person_ids(self, n: int) -> list[str]:
        """``n`` ids drawn from person's sequence (a refused file leaves a gap, as any rolled-back insert
        does), as the text COPY takes — one value to fetch, not ``n`` rows."""
        if not n:
            return []
        return self.conn.execute("SELECT string_agg(nextval(%s)::text, ',') FROM generate_series(1, %s)",
                                 (self.sequence, n)).fetchone()[0].split(",")


def _house_key(address: dict | None) -> tuple | None:
    if address is None:
        return None
    return address.get("compound"), address.get("building"), address.get("unit"), address.get("room")


class _PeopleWriter:
    """A chunk's people and their residences: formatted as ``COPY`` text by the reading thread
    (:meth:`format`) and sent by the writer thread (:meth:`write`) as one block per ``COPY``, so the
    writer does no Python per row."""

    def __init__(self, conn: psycopg.Connection, registry: Registry, mapping: dict[int, str],
                 mid_load: Callable[[psycopg.Connection], None] | None):
        self.conn = conn
        # Only the columns the file can fill (sex and birth date come with an ID number): a register has a
        # handful of the 17, and a NULL copied is as much work to send and parse as a value.
        given = set(mapping.values()) | ({"sex", "birth_date"} if "id_number" in mapping.values() else set())
        self.columns = [c for c in _person_columns(registry) if c in given]
        self.residency = dict(registry.fixed).get("residency", "resident")
        self.copy_person = (f"COPY person (id, {', '.join(self.columns)}, residency, org_path, "
                            "district_code) FROM STDIN")
        self.mid_load = mid_load
        # The residences' keys are checked by write(); the path trigger fires only for rows without a path
        # (these carry their house's), and the person was written there, as the move trigger would do.
        self.skip_triggers = triggers_stood_in_for(conn, "residence",
                                                   ("residence_org_path", "residence_moves_person"))

    def format(self, cursor: psycopg.Cursor, person_ids: list[str], placed: list[tuple[_Row, str, tuple]]
               ) -> tuple[bytes, bytes, list[int]]:
        """``(people, residences, houses)``: the two COPY texts of a chunk and the houses it names, formatted
        by psycopg with ``cursor``'s adapters (a cursor of the reading thread's own connection)."""
        people, residences = io.BytesIO(), io.BytesIO()
        houses = set()
        with (psycopg.Copy(cursor, writer=FileWriter(people)) as person_copy,
              psycopg.Copy(cursor, writer=FileWriter(residences)) as residence_copy):
            for person_id, (row, relation, house) in zip(person_ids, placed, strict=True):
                house_id, org_path, district_code = house
                person_copy.write_row((person_id, *map(row.values.get, self.columns), self.residency,
                                       org_path, district_code))
                residence_copy.write_row((person_id, house_id, relation, relation == "02", org_path,
                                          district_code))
                houses.add(house_id)
        return people.getvalue(), residences.getvalue(), list(houses)

    def write(self, people: bytes, residences: bytes, houses: list[int]) -> None:
        """Write a formatted chunk (the writer thread)."""
        with self.conn.cursor() as cursor:
            with cursor.copy(self.copy_person) as copy:
                copy.write(people)
            if self.mid_load:
                self.mid_load(self.conn)
                self.mid_load = None
            if not lock_all(self.conn, "house", houses):
                raise RegisterLoadError("导入期间有房屋被删除，请重新导入 (a matched house was deleted "
                                        "during the load)")
            # The residences' foreign keys as one set: the people were just written by this transaction,
            # the houses are locked and counted (see etl.bulk_keys).
            with triggers_skipped(self.conn, self.skip_triggers), cursor.copy(
                    "COPY residence (person_id, house_id, relation, is_head, org_path, district_code) "
                    "FROM STDIN") as copy:
                copy.write(residences)


def _person_columns(registry: Registry) -> list[str]:
    return [c for c in PERSON_COLUMNS if _has(registry, c)]


def _places_and_links(conn, registry: Registry, good: list[_Row], header, mapping, options: RegisterOptions,
                      report: RegisterReport) -> list[_Row]:
    """For a registry other than the person ones: the person behind each 身份证号 (when the registry links a
    person), the building an address names, and the territory unit named — in three queries. A person
    not registered or a territory not found is the row's error; an address naming no known building
    leaves the record unplaced (the service then asks for a location only if the registry needs one)."""
    if not good:
        return good
    links_person = any(f.name == "person_id" for f in registry.fields)
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS register_places (n int, id_number text, compound text, "
                 "building text, territory text) ON COMMIT PRESERVE ROWS")
    conn.execute("TRUNCATE register_places")
    with conn.cursor().copy("COPY register_places FROM STDIN") as copy:
        for row in good:
            a = row.address or {}
            copy.write_row((row.number, row.values.get("id_number") if links_person else None,
                            a.get("compound"), a.get("building"), row.values.get("@territory")))
    people = dict(conn.execute(
        "SELECT l.n, p.id FROM register_places l JOIN person p ON p.id_number = l.id_number "
        "AND p.deleted_at IS NULL").fetchall())
    buildings = {n: (path, lon, lat) for n, path, lon, lat in conn.execute(
        "SELECT a.n, min(b.org_path::text), min(ST_X(ST_PointOnSurface(b.footprint))), "
        f"       min(ST_Y(ST_PointOnSurface(b.footprint))) {_buildings_of('register_places a')} "
        "WHERE a.building IS NOT NULL GROUP BY a.n HAVING count(DISTINCT b.id) = 1",
        (options.district_code,)).fetchall()}
    units = dict(conn.execute(
        "SELECT l.n, min(t.path::text) FROM register_places l JOIN territory_unit t "
        "  ON (t.code = l.territory OR t.name = l.territory) AND t.deleted_at IS NULL "
        "  AND t.district_code = %s "
        "WHERE l.territory IS NOT NULL GROUP BY l.n HAVING count(DISTINCT t.id) = 1",
        (options.district_code,)).fetchall())
    id_column = _header_of(header, mapping, "id_number", "身份证号")
    territory_column = _header_of(header, mapping, "@territory", "所属区域")
    kept = []
    for row in good:
        territory = row.values.pop("@territory", None)
        if links_person:
            if row.number not in people:
                report.errors.append(RowError(row.number, id_column, row.values.get("id_number") or "",
                                              "库中没有此身份证号的人员，请先在人口信息中登记"))
                continue
            row.values["person_id"] = people[row.number]
        if territory is not None:
            if row.number not in units:
                report.errors.append(RowError(row.number, territory_column, territory,
                                              "找不到该名称或编码的区域（或名称不唯一），请填写网格/社区的编码"))
                continue
            row.values["org_path"] = units[row.number]
        if row.number in buildings:
            path, lon, lat = buildings[row.number]
            row.values.setdefault("org_path", path)
            if registry.geometry_column and registry.geometry_type == "Point":
                row.values["geometry"] = {"type": "Point", "coordinates": [lon, lat]}
        kept.append(row)
    return kept


class _Rehearsal(Exception):
    """Raised inside the records' transaction to roll it back (a dry run, or a refused file)."""


def _write_records(settings: Settings, registry: Registry, rows: list[_Row], header, mapping,
                   options: RegisterOptions, report: RegisterReport, tick: Progress) -> dict:
    """Each row through the registry service's create, in one transaction, as the loading user (or, from
    the command line, a data-staff actor over the district); the service's refusals become the rows'
    errors. Committed only for a real load that is clean, or ``skip_bad``."""
    from layers import registry_service as service

    actor = _loader(settings, options)
    labels = {f.name: f.zh for f in registry.fields} | {"geometry": "位置", "org_path": "所属区域"}
    derived = {f.name for f in registry.fields if f.derived}
    written, total = 0, len(rows)
    try:
        with scoped_connection(settings, actor) as conn:
            for i, row in enumerate(rows, start=1):
                data = {k: v for k, v in row.values.items() if k not in derived}
                try:
                    with conn.begin_nested():
                        service.create_record(conn, actor, registry, data)
                    written += 1
                except service.RegistryError as error:
                    for name, message in getattr(error, "errors", {"_": str(error)}).items():
                        value = row.values.get(name)
                        column = _header_of(header, mapping, name, labels.get(name, ""))
                        report.errors.append(RowError(row.number, column, "" if value is None else str(value),
                                                      message))
                if i % 500 == 0:
                    tick("写入", i, total)
            tick("写入", total, total)
            if options.dry_run or (report.errors and not options.skip_bad):
                raise _Rehearsal
    except _Rehearsal:
        pass
    return {"records": written}


def _loader(settings: Settings, options: RegisterOptions):
    from gis.security import roles
    from gis.security.sessions import CurrentUser

    with db.owner_engine(settings).connect() as conn:
        row = conn.execute(sql_text("SELECT path::text FROM territory_unit WHERE code = :code"),
                           {"code": options.district_code}).first()
    if row is None:
        raise RegisterLoadError(f"没有代码为 {options.district_code} 的区县 (unknown district)")
    return CurrentUser(id=options.user_id, username=options.username or "etl", name="数据导入",
                       role="data_staff", scope_path=row[0],
                       permissions=roles.ROLES["data_staff"].permissions | {"special:*"})


def _record(conn, report: RegisterReport, options: RegisterOptions, outcome: str) -> int:
    row = conn.execute("SELECT path::text FROM territory_unit WHERE code = "
                       "%s", (options.district_code,)).fetchone()
    return conn.execute(
        "INSERT INTO data_load (kind, target, file_name, user_id, username, outcome, rows_read, org_path, "
        "district_code) VALUES ('register', %s, %s, %s, %s, %s, %s, %s::ltree, %s) RETURNING id",
        (report.registry, report.file, options.user_id, options.username, outcome, report.rows,
         row[0] if row else options.district_code, options.district_code)).fetchone()[0]


def _finish(conn, load_id: int, report: RegisterReport) -> None:
    conn.execute(
        "UPDATE data_load SET outcome = %s, finished_at = clock_timestamp(), rows_written = %s, "
        "rows_bad = %s, report = %s::jsonb WHERE id = %s",
        (report.outcome, report.written.get("people", report.written.get("records", 0)), len(report.bad_rows),
         json.dumps(report.as_dict(), ensure_ascii=False, default=str), load_id))
