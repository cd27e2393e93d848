"""特殊人群 and 重点青少年: a record links to a person (one person may be in several categories) and keeps
dated 帮扶记录 (``assistance_visit``: who visited, when, what, next visit due). Name, ID number, sex, birth
date, phone and address are the person's, read through the link -- never typed twice. Reading a category needs
its permission (``special:<category>``)."""

from __future__ import annotations

from layers.registries.population import AGE, HOME_ADDRESS, HOME_POINT
from layers.registry import Field, Registry, code, derived, ref

PERSON_JOINS = """
JOIN person p ON p.id = t.person_id
LEFT JOIN residence r ON r.person_id = p.id AND r.until IS NULL
LEFT JOIN house h ON h.id = r.house_id
LEFT JOIN building b ON b.id = h.building_id
LEFT JOIN compound c ON c.id = b.compound_id"""

VISITS = ("(SELECT CASE WHEN count(*) > 0 THEN concat('共', count(*), '次，最近 ', max(v.visited_on),"
          " coalesce('，下次 ' || max(v.next_due)::text, '')) END"
          " FROM assistance_visit v WHERE v.registry = '{key}' AND v.record_id = t.id)")


def linked_person(key: str, *names: str, address_zh: str = "现居地址") -> tuple[Field, ...]:
    """The person link and the person's own facts, read through it (``names`` picks and orders them)."""
    available = {
        "name": derived("name", "姓名", "name", "p.name", search="trgm"),
        "sex": derived("sex", "性别", "sex", "p.sex", "code", code_table="sex"),
        "id_number": derived("id_number", "身份证号", "citizen ID number", "p.id_number", "id_number",
                             search="exact"),
        "birth_date": derived("birth_date", "出生日期", "date of birth", "p.birth_date", "date"),
        "age": derived("age", "年龄", "age", AGE.format(p="p"), "int", search="range", range_zh="年龄区间"),
        "phone": derived("phone", "联系方式", "phone", "p.phone", "phone"),
        "address": derived("address", address_zh, "address", HOME_ADDRESS),
    }
    return (ref("person_id", "人员", "person", "person", required=True),
            *(available[n] for n in names))


def visits_field(key: str) -> Field:
    return derived("visits", "帮扶信息", "assistance and visits", VISITS.format(key=key), "summary")


def special(key: str, zh: str, en: str, fields: tuple[Field, ...], query: tuple[str, ...],
            module: str = "special_population") -> Registry:
    return Registry(key, zh, en, module, "via:person", (*fields, visits_field(key)), query,
                    joins=PERSON_JOINS, geometry_expr=HOME_POINT, territory="ref:person_id", special=key,
                    visits=True, unique=("person_id",), ops=("print", "export"))


_GUARDIAN = (Field("guardian", "监护人", "guardian"),
             Field("guardian_phone", "监护人联系方式", "guardian's phone", "phone"))

REGISTRIES = (
    special("released_prisoner", "刑满释放人员", "released prisoner",
            (*linked_person("released_prisoner", "name", "id_number", "sex", "birth_date", "address",
                            "phone"),
             Field("crime", "原罪名", "original offence"),
             Field("sentence", "原判刑期", "original sentence"),
             Field("released_on", "释放日期", "released on", "date")),
            ("name", "id_number")),
    special("community_correction", "社区矫正人员", "community-correction subject",
            (*linked_person("community_correction", "name", "sex", "id_number", "phone"),
             code("correction_type", "矫正类别", "correction type", "correction_type"),
             Field("start_on", "矫正起始日期", "correction starts", "date"),
             Field("end_on", "矫正截止日期", "correction ends", "date")),
            ("name", "id_number")),
    special("mental_patient", "肇事肇祸严重精神障碍患者", "severe mental-disorder patient",
            (*linked_person("mental_patient", "name", "sex", "id_number", "address", address_zh="常住地址"),
             *_GUARDIAN,
             Field("dangerous", "发病是否有危险", "dangerous when ill", "bool"),
             Field("treated", "是否接受过精神病治疗", "treated for mental illness", "bool")),
            ("name", "id_number", "dangerous")),
    special("drug_user", "吸毒人员", "drug user",
            (*linked_person("drug_user", "name", "sex", "id_number", "address"),
             Field("cause", "吸毒原因", "cause"),
             Field("drug_source", "毒品来源", "source of drugs"),
             code("rehab_status", "戒毒情况", "rehabilitation status", "rehab_status"),
             Field("methadone", "是否服用美沙酮戒毒", "on methadone maintenance", "bool")),
            ("name", "id_number", "rehab_status")),
    special("aids_risk", "艾滋病危险人员", "HIV-risk person",
            (*linked_person("aids_risk", "name", "sex", "id_number", "address", address_zh="常住地址"),
             *_GUARDIAN,
             Field("dangerous", "发病是否有危险", "dangerous when ill", "bool"),
             Field("treated", "是否接受过艾滋病治疗", "treated for HIV/AIDS", "bool")),
            ("name", "id_number")),
    special("cult_member", "邪教人员", "cult member",
            linked_person("cult_member", "name", "sex", "id_number", "address"),
            ("name", "id_number")),
    special("key_youth", "重点青少年", "key youth",
            (*linked_person("key_youth", "name", "sex", "id_number", "birth_date", "age"),
             code("category", "重点青少年类别", "key-youth category", "youth_category", required=True),
             *_GUARDIAN),
            ("name", "category"), module="key_youth"),
)
