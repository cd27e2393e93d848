"""社会治安管理 and 护路护线: key areas under remediation, homicide cases, logistics firms, protected road and
line sections (lines) and the cases on them."""

from __future__ import annotations

from layers.registry import Field, Registry, code, ref

_POINT = dict(geometry_column="geom", geometry_type="Point")

REGISTRIES = (
    Registry(
        "key_area", "重点地区整治", "key-area remediation", "public_security", "polygon",
        (Field("name", "治安重点地区", "key area", required=True, search="trgm"),
         Field("lead_unit", "整治牵头单位", "lead unit", search="trgm"),
         Field("lead_head", "整治牵头单位负责人", "lead unit's head"),
         Field("lead_phone", "整治牵头单位负责人电话", "lead unit head's phone", "phone"),
         Field("solved_cases", "整治期间破获刑事案件数", "criminal cases solved", "int"),
         Field("deadline", "整改时限", "deadline", "date"),
         Field("extent", "涉及区域范围", "extent (described; drawn as the polygon)"),
         Field("partners", "整治参与单位", "participating units"),
         Field("progress", "整治情况", "progress", "longtext")),
        ("name", "lead_unit"), geometry_column="geom", geometry_type="MultiPolygon",
    ),
    Registry(
        "homicide_case", "命案", "homicide case", "public_security", "point",
        (Field("name", "案件名称", "name", required=True, search="trgm"),
         Field("case_no", "案件编号", "case number", required=True, search="exact"),
         Field("started_on", "案件发生开始日期", "occurred from", "date"),
         Field("closed_on", "侦查终结日期", "investigation closed", "date")),
        ("name", "case_no"), **_POINT,
    ),
    Registry(
        "logistics_firm", "寄递物流安全管理", "logistics firm", "public_security", "point",
        (Field("name", "名称", "name", required=True, search="trgm"),
         Field("phone", "联系方式", "phone", "phone"),
         Field("place", "地点", "place"),
         code("firm_type", "企业类型", "firm type", "logistics_type"),
         Field("staff_count", "从业人员数量", "staff", "int")),
        ("name", "firm_type"), **_POINT,
    ),
    Registry(
        "road_line_section", "护路护线", "protected road or line section", "road_line", "line",
        (Field("name", "地段名称", "section", required=True, search="trgm"),
         Field("owner_address", "隶属单位详址", "owning unit's address"),
         Field("owner_head", "隶属单位负责人", "owning unit's head"),
         Field("authority", "管辖单位名称", "responsible authority"),
         Field("security_head", "分管治保负责人", "security officer in charge"),
         code("risk_level", "治安隐患等级", "hazard level", "risk_level"),
         Field("risk", "治安隐患情况", "hazards", "longtext")),
        ("name", "risk_level"), geometry_column="geom", geometry_type="MultiLineString",
    ),
    Registry(
        "road_line_case", "涉及线路案（事）件", "road or line case", "road_line", "point",
        (Field("case_no", "案（事）件编号", "case number", required=True, search="exact"),
         Field("name", "案（事）件名称", "name", required=True, search="trgm"),
         code("nature", "案（事）件性质", "nature", "case_nature"),
         Field("occurred_on", "发生日期", "occurred on", "date"),
         ref("section_id", "涉及地段", "section", "road_line_section")),
        ("case_no", "name"), **_POINT,
    ),
)
