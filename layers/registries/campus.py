"""校园及周边安全: schools, key persons near a school, and cases involving teachers and students.

周边重点人员 is two things: the ones registered by hand (this registry, a person linked to a school with a
harm level) and the ones the database finds -- people on any special-population register who live within
a configurable distance of the school (:func:`layers.registry_service.key_persons_near_school`)."""

from __future__ import annotations

from layers.registries.population import HOME_POINT
from layers.registries.special_population import PERSON_JOINS
from layers.registry import Field, Registry, code, derived, ref

_POINT = dict(geometry_column="geom", geometry_type="Point")


def _p(name: str, zh: str, en: str, type: str = "text", **kw) -> Field:
    return derived(name, zh, en, f"p.{name}", type, **kw)


REGISTRIES = (
    Registry(
        "school", "学校", "school", "campus", "polygon",
        (Field("name", "学校名称", "name", required=True, search="trgm"),
         Field("address", "学校地址", "address"),
         Field("head", "学校负责人", "head"),
         Field("phone", "联系方式", "phone", "phone"),
         Field("guard_count", "保安人数", "security guards", "int"),
         Field("cameras", "技防探头", "surveillance cameras", "int"),
         Field("liaison", "分包领导", "liaison leader"),
         Field("liaison_phone", "分包领导联系方式", "liaison leader's phone", "phone")),
        ("name",), geometry_column="geom", geometry_type="Geometry",
        notes="校园轮廓（面）；不知轮廓时为点。",
    ),
    Registry(
        "school_key_person", "周边重点人员", "key person near a school", "campus", "via:person",
        (ref("person_id", "人员", "person", "person", required=True),
         ref("school_id", "学校", "school", "school", required=True),
         derived("school_name", "学校名称", "school",
                 "(SELECT s.name FROM school s WHERE s.id = t.school_id)"),
         _p("name", "姓名", "name", search="trgm"),
         _p("id_number", "身份证号", "citizen ID number", "id_number", search="exact"),
         _p("birth_date", "出生日期", "date of birth", "date"),
         _p("native_place", "籍贯", "native place"),
         _p("political", "政治面貌", "political status", "code", code_table="political"),
         _p("religion", "宗教信仰", "religion"),
         _p("phone", "联系电话", "phone", "phone"),
         derived("address", "详细地址", "address", "nullif(concat_ws(' ', c.name, b.name, h.room_no), '')"),
         _p("former_name", "曾用名", "former name"),
         _p("sex", "性别", "sex", "code", code_table="sex"),
         _p("ethnicity", "民族", "ethnicity", "code", code_table="ethnicity"),
         _p("marital", "婚姻状况", "marital status", "code", code_table="marital"),
         _p("education", "文化程度", "education", "code", code_table="education"),
         _p("occupation", "职业", "occupation"),
         _p("hukou_address", "户籍地址", "hukou address"),
         code("harm_level", "危害程度", "harm level", "harm_level")),
        ("name", "id_number", "harm_level"),
        joins=PERSON_JOINS, geometry_expr=HOME_POINT, territory="ref:person_id",
        unique=("person_id", "school_id"),
        notes="手工登记的周边重点人员；按距离自动找出的见 /registries/school/{id}/nearby。",
    ),
    Registry(
        "campus_case", "师生安全案件", "case involving teachers or students", "campus", "point",
        (Field("case_no", "事件编号", "case number", required=True, search="exact"),
         Field("name", "事件名称", "name", required=True, search="trgm"),
         ref("school_id", "学校", "school", "school"),
         Field("occurred_on", "发生日期", "occurred on", "date"),
         code("nature", "事件性质", "nature", "case_nature"),
         Field("details", "事件情况", "details", "longtext"),
         code("suspect_document_type", "嫌疑人证件类型", "suspect's document type", "document_type"),
         Field("suspect_document_number", "嫌疑人证件号", "suspect's document number", "document_number"),
         Field("suspect_name", "嫌疑人姓名", "suspect's name"),
         Field("offenders", "作案人数", "offenders", "int"),
         Field("arrested", "抓捕人数", "arrested", "int"),
         Field("at_large", "在逃人数", "at large", "int")),
        ("case_no", "name"), **_POINT,
    ),
)
