"""实有房屋: compounds, buildings, houses -- the foundation's tables -- and 出租屋, the rented houses with
their lease (a view of house plus a one-to-one ``house_lease`` sub-record, not a second copy of the house)."""

from __future__ import annotations

from layers.registry import Extension, Field, Registry, code, derived, ref

BUILDING_HOUSEHOLDS = ("(SELECT count(DISTINCT r.house_id) FROM house hh"
                       " JOIN residence r ON r.house_id = hh.id AND r.until IS NULL"
                       " WHERE hh.building_id = t.id)")
BUILDING_PEOPLE = ("(SELECT count(*) FROM house hh JOIN residence r ON r.house_id = hh.id"
                   " AND r.until IS NULL WHERE hh.building_id = t.id)")
OCCUPANTS = ("(SELECT string_agg(p.name, '、' ORDER BY p.id) FROM residence r"
             " JOIN person p ON p.id = r.person_id WHERE r.house_id = t.id AND r.until IS NULL)")


def building_fields(*, head_required: bool = False) -> tuple[Field, ...]:
    return (
        Field("name", "楼栋名称", "building", required=True, search="trgm"),
        derived("compound_name", "小区名称", "compound", "c.name", search="trgm"),
        ref("compound_id", "所属小区", "compound", "compound"),
        derived("household_count", "楼栋户数", "households", BUILDING_HOUSEHOLDS, "int"),
        derived("person_count", "楼栋人数", "residents", BUILDING_PEOPLE, "int"),
        Field("head_name", "楼栋长姓名", "building head", required=head_required, search="trgm"),
        Field("head_phone", "联系方式", "building head's phone", "phone"),
        Field("phone_alarm", "电话报警系统", "phone alarm system", "bool"),
        Field("surveillance", "电子监控系统", "video surveillance", "bool"),
        code("enclosure", "封闭情况", "enclosure", "enclosure"),
        Field("floors", "楼层数", "floors", "int", required=True),
        Field("units", "单元数", "units (stairwells)", "int", required=True),
        ref("grid_id", "所属网格", "grid", "grid", required=True),
        Field("address", "地址", "address"),
    )


def house_fields() -> tuple[Field, ...]:
    return (
        derived("compound_name", "小区名称", "compound", "c.name", search="trgm"),
        derived("building_name", "楼栋名称", "building", "b.name", search="trgm"),
        ref("building_id", "所属楼栋", "building", "building", required=True),
        Field("unit_no", "单元", "unit (stairwell)", "int", required=True),
        Field("floor", "楼层", "floor", "int", required=True),
        Field("room_no", "门牌号", "room number", required=True, search="prefix"),
        code("nature", "住房性质", "housing nature", "housing_nature"),
        Field("owner_name", "房主姓名", "owner", search="trgm"),
        Field("owner_id_number", "房主身份证号", "owner's ID number", "id_number"),
        Field("owner_phone", "房主联系电话", "owner's phone", "phone"),
        derived("occupants", "现居住人", "current occupants", OCCUPANTS),
        Field("surveillance", "电子监控系统", "video surveillance", "bool"),
        code("security_door", "防盗门情况", "security door", "security_door"),
        Field("is_rented", "是否出租", "rented out", "bool"),
    )


_HOUSE_JOINS = " JOIN building b ON b.id = t.building_id LEFT JOIN compound c ON c.id = b.compound_id"
_HOUSE = dict(table="house", new_table=False, joins=_HOUSE_JOINS, territory="ref:building_id",
              geometry_expr="ST_PointOnSurface(b.footprint)", title="room_no")
_BUILDING = dict(table="building", new_table=False, joins=" LEFT JOIN compound c ON c.id = t.compound_id",
                 territory="ref:grid_id", geometry_column="footprint", geometry_type="Polygon")

REGISTRIES = (
    Registry(
        "compound", "小区", "compound", "housing", "polygon",
        (Field("name", "小区名称", "compound", required=True, search="trgm"),
         Field("security_hotspot", "治安乱点", "public-order hotspot", "bool"),
         code("surveillance", "电子监控情况", "video surveillance", "surveillance"),
         code("enclosure", "封闭情况", "enclosure", "enclosure"),
         Field("property_company", "物业公司名称", "property management company", search="trgm"),
         Field("property_manager", "物业负责人姓名", "property manager"),
         Field("property_phone", "联系电话", "property manager's phone", "phone"),
         ref("grid_id", "所属网格", "grid", "grid", required=True),
         Field("address", "地址", "address")),
        ("name", "enclosure", "property_company", "security_hotspot", "surveillance"),
        table="compound", new_table=False, territory="ref:grid_id", geometry_column="boundary",
        geometry_type="Polygon",
    ),
    Registry(
        "building", "楼栋", "building", "housing", "polygon", building_fields(),
        ("compound_name", "name", "head_name", "phone_alarm", "surveillance", "enclosure"), **_BUILDING,
    ),
    Registry(
        "house", "房屋", "house", "housing", "via:building", house_fields(),
        ("compound_name", "owner_name", "building_name", "surveillance", "nature", "security_door",
         "room_no"),
        **_HOUSE,
    ),
    Registry(
        "rental", "出租屋", "rental", "housing", "via:building",
        (*(f for f in house_fields() if f.name != "is_rented"),
         Field("tenant", "承租人", "tenant", store="l", search="trgm"),
         Field("tenant_phone", "承租人联系电话", "tenant's phone", "phone", store="l"),
         Field("lease_start", "租赁起始日期", "lease start", "date", store="l"),
         Field("lease_end", "租赁截止日期", "lease end", "date", store="l")),
        ("compound_name", "building_name", "owner_name", "surveillance", "nature", "security_door",
         "room_no"),
        where="t.is_rented", fixed={"is_rented": True},
        extensions=(Extension("l", "house_lease", "house_id", new_table=True),),
        notes="由房屋信息中“是出租屋”的房屋调取，另加租赁信息；不是另录一份房屋。", **_HOUSE,
    ),
)
