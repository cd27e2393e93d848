"""实有人口: the person registry and its views -- 户主, 常驻, 流动, 境外, 死亡 are the same people,
filtered or with a one-to-one sub-record (person_floating, person_foreign), never a second copy of anyone.

A person is drawn at the building of the house they live in now (their current ``residence``).
"""

from __future__ import annotations

from layers.registry import Extension, Field, Registry, code, derived, ref

# Where a person lives now, for every registry over ``person t``.
HOME_JOINS = """
LEFT JOIN house h ON h.id = r.house_id
LEFT JOIN building b ON b.id = h.building_id
LEFT JOIN compound c ON c.id = b.compound_id"""
HOME_POINT = "ST_PointOnSurface(b.footprint)"
HOME_ADDRESS = "nullif(concat_ws(' ', c.name, b.name, h.room_no), '')"
AGE = "date_part('year', age(coalesce({p}.died_on, current_date), {p}.birth_date))::int"
ORG_NAME = "(SELECT u.name FROM territory_unit u WHERE u.path = {p}.org_path)"


def _residence_facts(values: dict, inserting: bool) -> dict:
    """The household head is the one whose relation to the head is 户主 (GB/T 4761 code 02)."""
    if "relation" not in values and not inserting:
        return {}
    relation = values.get("relation") or "99"  # 其他
    return {"relation": relation, "is_head": relation == "02"}


RESIDENCE = Extension("r", "residence", "person_id", filter="r.until IS NULL", needs="house_id",
                      derive=_residence_facts)

# Every field a person has, once; each registry over person picks its own.
PERSON = {f.name: f for f in (
    Field("name", "姓名", "name", required=True, search="trgm"),
    code("sex", "性别", "sex", "sex", required=True),
    Field("id_number", "身份证号", "citizen ID number", "id_number"),
    Field("birth_date", "出生日期", "date of birth", "date", required=True),
    derived("age", "年龄", "age", AGE.format(p="t"), "int", search="range", range_zh="年龄区间"),
    code("ethnicity", "民族", "ethnicity", "ethnicity"),
    code("political", "政治面貌", "political status", "political"),
    code("education", "文化程度", "education", "education"),
    code("health", "健康状况", "health", "health"),
    code("marital", "婚姻状况", "marital status", "marital"),
    Field("phone", "联系电话", "phone", "phone"),
    code("hukou_type", "户口类型", "hukou type", "hukou_type"),
    Field("hukou_address", "户籍地址", "hukou address"),
    Field("native_place", "籍贯", "native place"),
    Field("religion", "宗教信仰", "religion"),
    Field("occupation", "职业", "occupation"),
    Field("employer", "工作单位", "employer"),
    Field("former_name", "曾用名", "former name"),
    Field("died_on", "死亡时间", "date of death", "date"),
    ref("house_id", "居住房屋", "house lived in", "house", store="r"),
    code("relation", "与户主关系", "relation to household head", "relation", store="r"),
    derived("org_name", "所属机构", "territory unit", ORG_NAME.format(p="t")),
    derived("compound_name", "小区名称", "compound", "c.name", search="trgm"),
    derived("building_name", "楼栋名称", "building", "b.name", search="trgm"),
    derived("room_no", "门牌号", "room number", "h.room_no", search="prefix"),
    derived("address", "房屋信息", "house", HOME_ADDRESS),
    derived("has_house", "有无用房", "owns a house",
            "EXISTS (SELECT 1 FROM house o WHERE o.deleted_at IS NULL"
            " AND o.owner_id_number = t.id_number)", "bool"),
)}


def person_fields(*names: str, **overrides: dict) -> tuple[Field, ...]:
    """The named person fields, in order; ``overrides`` replace attributes (``name={"required": False}``)."""
    from dataclasses import replace

    return tuple(replace(PERSON[n], **overrides.get(n, {})) for n in names)


def over_person(key: str, zh: str, en: str, fields: tuple[Field, ...], query: tuple[str, ...], *,
                where: str = "", fixed: dict | None = None, extensions: tuple[Extension, ...] = (),
                geometry: str = "via:house", **kw) -> Registry:
    """A registry over ``person``: the same people, a filter, perhaps a sub-record."""
    return Registry(
        key, zh, en, "population", geometry, fields, query, ops=("print", "export"), table="person",
        new_table=False, joins=HOME_JOINS, where=where, fixed=fixed or {},
        extensions=(RESIDENCE, *extensions), territory="ref:house_id",
        geometry_expr=HOME_POINT if geometry != "none" else None, **kw,
    )


_ALIVE = "t.died_on IS NULL"

REGISTRIES = (
    over_person(
        "person", "人口信息", "population",
        person_fields("name", "sex", "id_number", "org_name", "building_name", "compound_name", "room_no",
                      "age", "birth_date", "ethnicity", "political", "education", "health", "marital",
                      "phone", "relation", "house_id", "hukou_type", "hukou_address", "native_place",
                      "religion", "occupation", "employer", "former_name"),
        ("name", "sex", "id_number", "health", "room_no", "ethnicity", "political", "education", "age"),
        where=_ALIVE,
        notes="实有人口基础信息；户主、常驻、流动、境外、死亡人员都是它的视图或子登记。",
    ),
    over_person(
        "household_head", "户主信息", "household head",
        person_fields("name", "sex", "id_number", "org_name", "building_name", "compound_name", "room_no",
                      "age", "birth_date", "ethnicity", "education", "health", "political", "phone",
                      "has_house", "house_id", house_id={"required": True}),
        ("name", "sex", "health", "room_no", "ethnicity", "political", "education", "age", "has_house"),
        where=f"{_ALIVE} AND r.is_head", fixed={"r.relation": "02"},
    ),
    over_person(
        "resident", "常驻人口", "resident population",
        person_fields("name", "sex", "id_number", "org_name", "building_name", "compound_name", "room_no",
                      "age", "birth_date", "ethnicity", "political", "education", "marital", "phone",
                      "relation", "house_id"),
        ("name", "sex", "id_number", "room_no", "ethnicity", "political", "age"),
        where=f"{_ALIVE} AND t.residency = 'resident'", fixed={"residency": "resident"},
    ),
    over_person(
        "floating_person", "流动人口", "floating population",
        (*person_fields("name", "id_number", "ethnicity", "hukou_type", "sex", "birth_date", "age", "phone",
                        "house_id", "address"),
         Field("landlord", "房东信息", "landlord", store="pf"),
         Field("permit_no", "暂住证号", "residence permit number", store="pf", search="exact"),
         code("stay_reason", "暂住事由", "reason for stay", "stay_reason", store="pf", column="reason"),
         code("flow", "流动类型", "inflow or outflow", "flow", store="pf", required=True),
         Field("arrived_on", "流入日期", "arrived on", "date", store="pf")),
        ("name", "id_number", "flow"),
        where=f"{_ALIVE} AND t.residency = 'floating'", fixed={"residency": "floating"},
        extensions=(Extension("pf", "person_floating", "person_id"),),
        notes="从实有人口中选出的流动人口（流入、流出），附流动信息；不是另录一份。",
    ),
    over_person(
        "foreigner", "境外人员", "foreigner",
        (Field("english_name", "英文名", "English name", store="fo", required=True, search="trgm"),
         *person_fields("name", "sex", "birth_date"),
         code("nationality", "国籍", "nationality (GB/T 2659)", "nationality", store="fo", required=True),
         code("document_type", "证件类型", "document type", "document_type", store="fo", required=True),
         Field("document_number", "证件号码", "document number", "document_number", store="fo",
               required=True),
         Field("document_expiry", "证件有效期", "document valid until", "date", store="fo"),
         *person_fields("address", "house_id"),
         Field("entry_reason", "流入事由", "reason for coming", store="fo", column="reason"),
         *person_fields("occupation", "employer", "phone")),
        ("english_name", "name", "nationality", "document_number"),
        where=f"{_ALIVE} AND t.residency = 'foreign'", fixed={"residency": "foreign"},
        extensions=(Extension("fo", "person_foreign", "person_id"),),
    ),
    over_person(
        "deceased", "死亡人员", "deceased",
        person_fields("name", "sex", "died_on", "health", "education", "ethnicity", "political", "id_number",
                      "birth_date", "age", died_on={"required": True}),
        ("name", "sex"),
        where="t.died_on IS NOT NULL", geometry="none",
        notes="从人口基本信息中提取（有死亡时间的人），不是另录一份。",
    ),
)
