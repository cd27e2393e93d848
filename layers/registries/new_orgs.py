"""两新组织: private enterprises (at a building's address) and social organisations."""

from __future__ import annotations

from layers.registry import Field, Registry, code, ref

REGISTRIES = (
    Registry(
        "private_enterprise", "非公有制经济组织", "private enterprise", "new_orgs", "point",
        (Field("name", "企业名称", "name", required=True, search="trgm"),
         code("category", "企业类别", "category", "enterprise_category"),
         Field("address", "企业地址", "address"),
         ref("building_id", "所在楼栋", "building", "building"),
         Field("legal_person", "法人姓名", "legal representative"),
         Field("security_head", "治保负责人姓名", "security officer"),
         code("hazard_type", "安全隐患类型", "hazard type", "hazard_type")),
        ("name", "category", "hazard_type"), geometry_column="geom", geometry_type="Point",
    ),
    Registry(
        "social_org", "社会组织", "social organisation", "new_orgs", "point",
        (ref("org_id", "所属机构", "governance body", "zz_org"),
         Field("name", "组织名称", "name", required=True, search="trgm"),
         Field("registration_no", "登记证号", "registration number", search="exact"),
         code("category", "组织类别", "category", "social_org_category"),
         Field("address", "地址", "address"),
         Field("supervisor", "业务主管单位", "supervising authority"),
         Field("legal_rep", "法人代表", "legal representative"),
         Field("founded_on", "成立时间", "founded on", "date")),
        ("name", "category", "registration_no"), ops=("print", "export"),
        geometry_column="geom", geometry_type="Point",
    ),
)
