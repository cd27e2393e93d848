"""综治组织及综治业务: governance bodies, teams, mass-prevention organisations, centres, grids (the territory
tree's grid units), building heads (a view of buildings), responsibility and major cases."""

from __future__ import annotations

from layers.registries.housing import building_fields
from layers.registry import Field, Registry, code, derived, ref

GRID_HOUSEHOLDS = ("(SELECT count(DISTINCT r.house_id) FROM residence r"
                   " WHERE r.until IS NULL AND r.org_path = t.path)")
GRID_AREA = "round(ST_Area(t.boundary::geography)::numeric, 1)"
# A body is drawn as the territory it governs; what hangs on a body, through it.
ORG_AREA = " LEFT JOIN territory_unit a ON a.id = t.area_id"
VIA_ORG = " LEFT JOIN zz_org o ON o.id = t.org_id LEFT JOIN territory_unit a ON a.id = o.area_id"
_VIA_ORG = dict(joins=VIA_ORG, geometry_expr="a.boundary", territory="ref:org_id")
_ORG_NAME = derived("org_name", "所属机构名称", "governance body", "o.name")
_POINT = dict(geometry_column="geom", geometry_type="Point")

REGISTRIES = (
    Registry(
        "zz_org", "综治机构", "governance body", "org", "polygon",
        (Field("name", "机构名称", "name", required=True, search="trgm"),
         code("level", "机构层级", "level", "org_level", required=True),
         ref("parent_id", "上级机构", "parent body", "zz_org"),
         derived("parent_name", "上级机构名称", "parent body's name",
                 "(SELECT po.name FROM zz_org po WHERE po.id = t.parent_id)"),
         ref("area_id", "管辖区域", "territory governed", "territory", required=True),
         derived("area_name", "管辖区域名称", "territory governed (name)", "a.name")),
        ("name", "level"),
        joins=ORG_AREA, geometry_expr="a.boundary", territory="ref:area_id",
        notes="按省、市、区、街道/乡镇、村(社区)层级统一创建和管理。",
    ),
    Registry(
        "zz_team", "综治队伍", "governance team", "org", "via:zz_org",
        (Field("name", "队伍名称", "name", required=True, search="trgm"),
         ref("org_id", "所属机构", "governance body", "zz_org", required=True), _ORG_NAME,
         code("team_type", "队伍类型", "team type", "team_type"),
         Field("leader", "负责人", "leader"),
         Field("member_count", "人数", "members", "int"),
         code("status", "状态", "status", "team_status", required=True),
         Field("established_on", "建立日期", "established on", "date"),
         Field("dissolved_on", "注销日期", "dissolved on", "date")),
        ("name", "org_id", "status"), **_VIA_ORG,
        notes="注销保留历史，不物理删除（状态改为已注销，记录注销日期）。",
    ),
    Registry(
        "mass_org", "群防群治组织", "mass-prevention organisation", "org", "via:zz_org",
        (Field("name", "组织名称", "name", required=True, search="trgm"),
         ref("org_id", "所属机构", "governance body", "zz_org", required=True), _ORG_NAME,
         code("level", "组织层级", "level", "org_level"),
         Field("leader", "负责人", "leader"),
         Field("phone", "联系电话", "phone", "phone")),
        ("name", "org_id"), **_VIA_ORG,
    ),
    Registry(
        "mass_team_member", "群防群治队伍", "mass-prevention team member", "org", "via:mass_org",
        (ref("mass_org_id", "所属组织", "organisation", "mass_org", required=True),
         derived("mass_org_name", "组织名称", "organisation", "m.name", search="trgm"),
         Field("name", "姓名", "name", required=True, search="trgm"),
         code("sex", "性别", "sex", "sex"),
         code("ethnicity", "民族", "ethnicity", "ethnicity"),
         code("political", "政治面貌", "political status", "political"),
         code("document_type", "证件代码", "document type", "document_type"),
         Field("document_number", "证件号码", "document number", "document_number"),
         Field("birth_date", "出生日期", "date of birth", "date"),
         Field("post", "职务", "post"),
         Field("specialty", "专业特长", "special skills"),
         code("education", "学历", "education", "education"),
         Field("mobile", "手机号码", "mobile", "phone"),
         Field("phone", "固定电话", "landline", "phone")),
        ("mass_org_name", "name", "document_number"),
        joins=" JOIN mass_org m ON m.id = t.mass_org_id LEFT JOIN zz_org o ON o.id = m.org_id"
              " LEFT JOIN territory_unit a ON a.id = o.area_id",
        geometry_expr="a.boundary", territory="ref:mass_org_id",
    ),
    Registry(
        "zz_center", "综治中心", "governance centre", "org", "point",
        (Field("name", "综治中心名称", "name", required=True, search="trgm"),
         Field("phone", "综治中心联系方式", "phone", "phone"),
         code("level", "综治中心层级", "level", "org_level"),
         Field("head_name", "负责人姓名", "head"),
         Field("head_phone", "负责人联系方式", "head's phone", "phone"),
         Field("member_units", "组成单位", "member units", "longtext"),
         Field("location", "所在地", "location"),
         Field("address", "所在地详址", "address"),
         Field("lon", "经度", "longitude", "lon"),
         Field("lat", "纬度", "latitude", "lat")),
        ("name", "level"), lonlat=True, **_POINT,
    ),
    Registry(
        "video_center", "综治视联网信息中心", "governance video-network centre", "org", "point",
        (Field("name", "中心名称", "name", required=True, search="trgm"),
         Field("phone", "中心联系方式", "phone", "phone"),
         code("level", "中心层级", "level", "org_level"),
         Field("head_name", "中心负责人姓名", "head"),
         Field("staff_count", "专职工作人员数量", "full-time staff", "int"),
         Field("office_area", "办公用房面积", "office area (m²)", "number"),
         Field("annual_budget", "年度运行经费", "annual running budget (10k yuan)", "number"),
         Field("camera_count", "联网公共安全视频监控摄像机数量", "networked public-security cameras", "int"),
         Field("staffed_24h", "是否24小时有人值守", "staffed around the clock", "bool"),
         Field("location", "所在地", "location"),
         Field("address", "所在地详址", "address")),
        ("name", "level"), **_POINT,
    ),
    Registry(
        "grid", "网格", "grid", "org", "polygon",
        (Field("name", "网格名称", "name", required=True, search="trgm"),
         Field("code", "网格编码", "grid code", required=True, search="exact", pattern=r"^[0-9]{2,15}$"),
         ref("parent_id", "所属社区", "community", "territory", required=True),
         Field("head_name", "网格长姓名", "grid head", search="trgm"),
         code("head_sex", "性别", "grid head's sex", "sex"),
         code("head_ethnicity", "民族", "grid head's ethnicity", "ethnicity"),
         code("head_political", "政治面貌", "grid head's political status", "political"),
         Field("head_birth_date", "出生日期", "grid head's date of birth", "date"),
         code("head_education", "学历", "grid head's education", "education"),
         Field("head_mobile", "手机号码", "grid head's mobile", "phone"),
         Field("head_phone", "固定电话", "grid head's landline", "phone"),
         Field("head_photo", "照片", "grid head's photo (file path)"),
         Field("worker_count", "网格员数量", "grid workers", "int"),
         derived("household_count", "网格户数", "households", GRID_HOUSEHOLDS, "int"),
         derived("area_m2", "网格面积", "area (m²)", GRID_AREA, "number"),
         Field("service_items", "服务事项", "services offered", "longtext")),
        ("name", "head_name"), ops=("print",),
        table="territory_unit", new_table=False, where="t.level = 'grid'", fixed={"level": "grid"},
        territory="trigger", geometry_column="boundary", geometry_type="MultiPolygon",
        notes="网格服务公示牌：网格平面图、网格长姓名、照片、联系电话、服务事项。",
    ),
    Registry(
        "building_head", "楼栋长", "building head", "org", "via:building",
        building_fields(head_required=True),
        ("compound_name", "name", "head_name"),
        table="building", new_table=False, joins=" LEFT JOIN compound c ON c.id = t.compound_id",
        where="t.head_name IS NOT NULL", territory="ref:grid_id", geometry_column="footprint",
        geometry_type="Polygon", notes="楼栋的楼栋长，是楼栋信息的视图。",
    ),
    Registry(
        "leadership_responsibility", "综治领导责任制", "leadership responsibility", "org", "via:zz_org",
        (Field("unit", "责任单位", "responsible unit", required=True, search="trgm"),
         Field("person", "责任人", "responsible person", required=True, search="trgm"),
         ref("org_id", "所属机构", "governance body", "zz_org", required=True), _ORG_NAME,
         Field("content", "责任内容", "responsibilities", "longtext"),
         Field("inspection", "督促检查", "inspection", "longtext"),
         Field("commendation", "表彰奖励", "commendation", "longtext"),
         Field("supervision", "责任督导", "supervision", "longtext"),
         Field("accountability", "责任追究", "accountability", "longtext")),
        ("unit", "person"), title="unit", **_VIA_ORG,
    ),
    Registry(
        "major_case", "重特大案（事）件", "major case", "org", "point",
        (ref("org_id", "所属机构", "governance body", "zz_org"),
         Field("name", "案件名称", "name", required=True, search="trgm"),
         code("grade", "案件分级", "grade", "case_grade"),
         code("case_type", "案件类型", "case type", "case_type"),
         Field("occurred_at", "发生时间", "occurred at", "datetime"),
         Field("place", "发生地点", "place")),
        ("name", "grade", "case_type"), **_POINT,
    ),
)
