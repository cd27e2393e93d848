-- The registries (台账) of the "9+X" modules: tables generated from layers/registries/*.py by
-- layers/registry_ddl.py (see there why generated once and frozen here). Do not edit by hand: change the
-- declaration, generate, and put the difference in a new migration.

-- ---------------------------------------------------------------- the foundation's tables as registries
-- Optimistic concurrency (version), who changed it, soft delete; the building head (楼栋长) and the grid
-- head's photo (网格服务公示牌).
ALTER TABLE territory_unit
    ADD COLUMN version       integer NOT NULL DEFAULT 1,
    ADD COLUMN created_by    bigint,
    ADD COLUMN updated_by    bigint,
    ADD COLUMN deleted_at    timestamptz,
    ADD COLUMN deleted_by    bigint;
ALTER TABLE compound
    ADD COLUMN version       integer NOT NULL DEFAULT 1,
    ADD COLUMN created_by    bigint,
    ADD COLUMN updated_by    bigint,
    ADD COLUMN deleted_at    timestamptz,
    ADD COLUMN deleted_by    bigint;
ALTER TABLE building
    ADD COLUMN version       integer NOT NULL DEFAULT 1,
    ADD COLUMN created_by    bigint,
    ADD COLUMN updated_by    bigint,
    ADD COLUMN deleted_at    timestamptz,
    ADD COLUMN deleted_by    bigint;
ALTER TABLE house
    ADD COLUMN version       integer NOT NULL DEFAULT 1,
    ADD COLUMN created_by    bigint,
    ADD COLUMN updated_by    bigint,
    ADD COLUMN deleted_at    timestamptz,
    ADD COLUMN deleted_by    bigint;
ALTER TABLE person
    ADD COLUMN version       integer NOT NULL DEFAULT 1,
    ADD COLUMN created_by    bigint,
    ADD COLUMN updated_by    bigint,
    ADD COLUMN deleted_at    timestamptz,
    ADD COLUMN deleted_by    bigint;
ALTER TABLE building ADD COLUMN head_name text, ADD COLUMN head_phone text;
ALTER TABLE territory_unit ADD COLUMN head_photo text;

-- 帮扶记录: dated assistance / visit records of a special-population (or key-youth) record.
CREATE TABLE assistance_visit (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    registry      text NOT NULL,
    record_id     bigint NOT NULL,
    person_id     bigint NOT NULL REFERENCES person (id),
    visited_on    date NOT NULL,
    visitor       text NOT NULL,
    content       text NOT NULL,
    next_due      date,
    org_path      ltree NOT NULL,
    district_code char(6) NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    created_by    bigint,
    CHECK (next_due IS NULL OR next_due >= visited_on)
);
CREATE INDEX assistance_visit_record ON assistance_visit (registry, record_id, visited_on);
CREATE INDEX assistance_visit_person ON assistance_visit (person_id);
CREATE INDEX assistance_visit_org_path_gist ON assistance_visit USING gist (org_path);
COMMENT ON TABLE assistance_visit IS '帮扶记录';
SELECT app.protect('assistance_visit');

-- 综治机构 (governance body), module org
CREATE TABLE zz_org (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          text NOT NULL,
    level         text NOT NULL,
    parent_id     bigint REFERENCES zz_org (id),
    area_id       bigint REFERENCES territory_unit (id) NOT NULL,
    org_path      ltree NOT NULL,
    district_code char(6) NOT NULL,
    version       integer NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now(),
    created_by    bigint,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    updated_by    bigint,
    deleted_at    timestamptz,
    deleted_by    bigint
);
CREATE INDEX zz_org_org_path_gist ON zz_org USING gist (org_path);
CREATE INDEX zz_org_name_trgm ON zz_org USING gin (name gin_trgm_ops);
CREATE INDEX zz_org_level ON zz_org (level);
CREATE INDEX zz_org_parent_id ON zz_org (parent_id);
CREATE INDEX zz_org_area_id ON zz_org (area_id);
COMMENT ON TABLE zz_org IS '综治机构';
COMMENT ON COLUMN zz_org.name IS '机构名称';
COMMENT ON COLUMN zz_org.level IS '机构层级';
COMMENT ON COLUMN zz_org.parent_id IS '上级机构';
COMMENT ON COLUMN zz_org.area_id IS '管辖区域';
SELECT app.protect('zz_org');

-- 综治队伍 (governance team), module org
CREATE TABLE zz_team (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          text NOT NULL,
    org_id        bigint REFERENCES zz_org (id) NOT NULL,
    team_type     text,
    leader        text,
    member_count  integer,
    status        text NOT NULL,
    established_on date,
    dissolved_on  date,
    org_path      ltree NOT NULL,
    district_code char(6) NOT NULL,
    version       integer NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now(),
    created_by    bigint,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    updated_by    bigint,
    deleted_at    timestamptz,
    deleted_by    bigint
);
CREATE INDEX zz_team_org_path_gist ON zz_team USING gist (org_path);
CREATE INDEX zz_team_name_trgm ON zz_team USING gin (name gin_trgm_ops);
CREATE INDEX zz_team_org_id ON zz_team (org_id);
CREATE INDEX zz_team_status ON zz_team (status);
COMMENT ON TABLE zz_team IS '综治队伍';
COMMENT ON COLUMN zz_team.name IS '队伍名称';
COMMENT ON COLUMN zz_team.org_id IS '所属机构';
COMMENT ON COLUMN zz_team.team_type IS '队伍类型';
COMMENT ON COLUMN zz_team.leader IS '负责人';
COMMENT ON COLUMN zz_team.member_count IS '人数';
COMMENT ON COLUMN zz_team.status IS '状态';
COMMENT ON COLUMN zz_team.established_on IS '建立日期';
COMMENT ON COLUMN zz_team.dissolved_on IS '注销日期';
SELECT app.protect('zz_team');

-- 群防群治组织 (mass-prevention organisation), module org
CREATE TABLE mass_org (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          text NOT NULL,
    org_id        bigint REFERENCES zz_org (id) NOT NULL,
    level         text,
    leader        text,
    phone         text,
    org_path      ltree NOT NULL,
    district_code char(6) NOT NULL,
    version       integer NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now(),
    created_by    bigint,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    updated_by    bigint,
    deleted_at    timestamptz,
    deleted_by    bigint
);
CREATE INDEX mass_org_org_path_gist ON mass_org USING gist (org_path);
CREATE INDEX mass_org_name_trgm ON mass_org USING gin (name gin_trgm_ops);
CREATE INDEX mass_org_org_id ON mass_org (org_id);
COMMENT ON TABLE mass_org IS '群防群治组织';
COMMENT ON COLUMN mass_org.name IS '组织名称';
COMMENT ON COLUMN mass_org.org_id IS '所属机构';
COMMENT ON COLUMN mass_org.level IS '组织层级';
COMMENT ON COLUMN mass_org.leader IS '负责人';
COMMENT ON COLUMN mass_org.phone IS '联系电话';
SELECT app.protect('mass_org');

-- 群防群治队伍 (mass-prevention team member), module org
CREATE TABLE mass_team_member (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    mass_org_id   bigint REFERENCES mass_org (id) NOT NULL,
    name          text NOT NULL,
    sex           text,
    ethnicity     text,
    political     text,
    document_type text,
    document_number text,
    birth_date    date,
    post          text,
    specialty     text,
    education     text,
    mobile        text,
    phone         text,
    org_path      ltree NOT NULL,
    district_code char(6) NOT NULL,
    version       integer NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now(),
    created_by    bigint,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    updated_by    bigint,
    deleted_at    timestamptz,
    deleted_by    bigint
);
CREATE INDEX mass_team_member_org_path_gist ON mass_team_member USING gist (org_path);
CREATE INDEX mass_team_member_mass_org_id ON mass_team_member (mass_org_id);
CREATE INDEX mass_team_member_name_trgm ON mass_team_member USING gin (name gin_trgm_ops);
CREATE INDEX mass_team_member_document_number ON mass_team_member (document_number);
COMMENT ON TABLE mass_team_member IS '群防群治队伍';
COMMENT ON COLUMN mass_team_member.mass_org_id IS '所属组织';
COMMENT ON COLUMN mass_team_member.name IS '姓名';
COMMENT ON COLUMN mass_team_member.sex IS '性别';
COMMENT ON COLUMN mass_team_member.ethnicity IS '民族';
COMMENT ON COLUMN mass_team_member.political IS '政治面貌';
COMMENT ON COLUMN mass_team_member.document_type IS '证件代码';
COMMENT ON COLUMN mass_team_member.document_number IS '证件号码';
COMMENT ON COLUMN mass_team_member.birth_date IS '出生日期';
COMMENT ON COLUMN mass_team_member.post IS '职务';
COMMENT ON COLUMN mass_team_member.specialty IS '专业特长';
COMMENT ON COLUMN mass_team_member.education IS '学历';
COMMENT ON COLUMN mass_team_member.mobile IS '手机号码';
COMMENT ON COLUMN mass_team_member.phone IS '固定电话';
SELECT app.protect('mass_team_member');

-- 综治中心 (governance centre), module org
CREATE TABLE zz_center (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          text NOT NULL,
    phone         text,
    level         text,
    head_name     text,
    head_phone    text,
    member_units  text,
    location      text,
    address       text,
    lon           double precision,
    lat           double precision,
    geom          geometry(Point, 4490),
    org_path      ltree NOT NULL,
    district_code char(6) NOT NULL,
    version       integer NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now(),
    created_by    bigint,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    updated_by    bigint,
    deleted_at    timestamptz,
    deleted_by    bigint
);
CREATE INDEX zz_center_org_path_gist ON zz_center USING gist (org_path);
CREATE INDEX zz_center_name_trgm ON zz_center USING gin (name gin_trgm_ops);
CREATE INDEX zz_center_level ON zz_center (level);
CREATE INDEX zz_center_geom_gist ON zz_center USING gist (geom);
COMMENT ON TABLE zz_center IS '综治中心';
COMMENT ON COLUMN zz_center.name IS '综治中心名称';
COMMENT ON COLUMN zz_center.phone IS '综治中心联系方式';
COMMENT ON COLUMN zz_center.level IS '综治中心层级';
COMMENT ON COLUMN zz_center.head_name IS '负责人姓名';
COMMENT ON COLUMN zz_center.head_phone IS '负责人联系方式';
COMMENT ON COLUMN zz_center.member_units IS '组成单位';
COMMENT ON COLUMN zz_center.location IS '所在地';
COMMENT ON COLUMN zz_center.address IS '所在地详址';
COMMENT ON COLUMN zz_center.lon IS '经度';
COMMENT ON COLUMN zz_center.lat IS '纬度';
SELECT app.protect('zz_center');

-- 综治视联网信息中心 (governance video-network centre), module org
CREATE TABLE video_center (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          text NOT NULL,
    phone         text,
    level         text,
    head_name     text,
    staff_count   integer,
    office_area   numeric,
    annual_budget numeric,
    camera_count  integer,
    staffed_24h   boolean,
    location      text,
    address       text,
    geom          geometry(Point, 4490),
    org_path      ltree NOT NULL,
    district_code char(6) NOT NULL,
    version       integer NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now(),
    created_by    bigint,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    updated_by    bigint,
    deleted_at    timestamptz,
    deleted_by    bigint
);
CREATE INDEX video_center_org_path_gist ON video_center USING gist (org_path);
CREATE INDEX video_center_name_trgm ON video_center USING gin (name gin_trgm_ops);
CREATE INDEX video_center_level ON video_center (level);
CREATE INDEX video_center_geom_gist ON video_center USING gist (geom);
COMMENT ON TABLE video_center IS '综治视联网信息中心';
COMMENT ON COLUMN video_center.name IS '中心名称';
COMMENT ON COLUMN video_center.phone IS '中心联系方式';
COMMENT ON COLUMN video_center.level IS '中心层级';
COMMENT ON COLUMN video_center.head_name IS '中心负责人姓名';
COMMENT ON COLUMN video_center.staff_count IS '专职工作人员数量';
COMMENT ON COLUMN video_center.office_area IS '办公用房面积';
COMMENT ON COLUMN video_center.annual_budget IS '年度运行经费';
COMMENT ON COLUMN video_center.camera_count IS '联网公共安全视频监控摄像机数量';
COMMENT ON COLUMN video_center.staffed_24h IS '是否24小时有人值守';
COMMENT ON COLUMN video_center.location IS '所在地';
COMMENT ON COLUMN video_center.address IS '所在地详址';
SELECT app.protect('video_center');

-- 综治领导责任制 (leadership responsibility), module org
CREATE TABLE leadership_responsibility (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    unit          text NOT NULL,
    person        text NOT NULL,
    org_id        bigint REFERENCES zz_org (id) NOT NULL,
    content       text,
    inspection    text,
    commendation  text,
    supervision   text,
    accountability text,
    org_path      ltree NOT NULL,
    district_code char(6) NOT NULL,
    version       integer NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now(),
    created_by    bigint,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    updated_by    bigint,
    deleted_at    timestamptz,
    deleted_by    bigint
);
CREATE INDEX leadership_responsibility_org_path_gist ON leadership_responsibility USING gist (org_path);
CREATE INDEX leadership_responsibility_unit_trgm ON leadership_responsibility USING gin (unit gin_trgm_ops);
CREATE INDEX leadership_responsibility_person_trgm ON leadership_responsibility USING gin (person gin_trgm_ops);
CREATE INDEX leadership_responsibility_org_id ON leadership_responsibility (org_id);
COMMENT ON TABLE leadership_responsibility IS '综治领导责任制';
COMMENT ON COLUMN leadership_responsibility.unit IS '责任单位';
COMMENT ON COLUMN leadership_responsibility.person IS '责任人';
COMMENT ON COLUMN leadership_responsibility.org_id IS '所属机构';
COMMENT ON COLUMN leadership_responsibility.content IS '责任内容';
COMMENT ON COLUMN leadership_responsibility.inspection IS '督促检查';
COMMENT ON COLUMN leadership_responsibility.commendation IS '表彰奖励';
COMMENT ON COLUMN leadership_responsibility.supervision IS '责任督导';
COMMENT ON COLUMN leadership_responsibility.accountability IS '责任追究';
SELECT app.protect('leadership_responsibility');

-- 重特大案（事）件 (major case), module org
CREATE TABLE major_case (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id        bigint REFERENCES zz_org (id),
    name          text NOT NULL,
    grade         text,
    case_type     text,
    occurred_at   timestamptz,
    place         text,
    geom          geometry(Point, 4490),
    org_path      ltree NOT NULL,
    district_code char(6) NOT NULL,
    version       integer NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now(),
    created_by    bigint,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    updated_by    bigint,
    deleted_at    timestamptz,
    deleted_by    bigint
);
CREATE INDEX major_case_org_path_gist ON major_case USING gist (org_path);
CREATE INDEX major_case_org_id ON major_case (org_id);
CREATE INDEX major_case_name_trgm ON major_case USING gin (name gin_trgm_ops);
CREATE INDEX major_case_grade ON major_case (grade);
CREATE INDEX major_case_case_type ON major_case (case_type);
CREATE INDEX major_case_geom_gist ON major_case USING gist (geom);
COMMENT ON TABLE major_case IS '重特大案（事）件';
COMMENT ON COLUMN major_case.org_id IS '所属机构';
COMMENT ON COLUMN major_case.name IS '案件名称';
COMMENT ON COLUMN major_case.grade IS '案件分级';
COMMENT ON COLUMN major_case.case_type IS '案件类型';
COMMENT ON COLUMN major_case.occurred_at IS '发生时间';
COMMENT ON COLUMN major_case.place IS '发生地点';
SELECT app.protect('major_case');

-- 出租屋: the sub-record house_lease of house
CREATE TABLE house_lease (
    house_id      bigint PRIMARY KEY REFERENCES house (id) ON DELETE CASCADE,
    tenant        text,
    tenant_phone  text,
    lease_start   date,
    lease_end     date,
    org_path      ltree NOT NULL,
    district_code char(6) NOT NULL
);
CREATE INDEX house_lease_org_path_gist ON house_lease USING gist (org_path);
COMMENT ON TABLE house_lease IS '出租屋';
COMMENT ON COLUMN house_lease.tenant IS '承租人';
COMMENT ON COLUMN house_lease.tenant_phone IS '承租人联系电话';
COMMENT ON COLUMN house_lease.lease_start IS '租赁起始日期';
COMMENT ON COLUMN house_lease.lease_end IS '租赁截止日期';
SELECT app.protect('house_lease');

-- 刑满释放人员 (released prisoner), module special_population
CREATE TABLE released_prisoner (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    person_id     bigint REFERENCES person (id) NOT NULL,
    crime         text,
    sentence      text,
    released_on   date,
    org_path      ltree NOT NULL,
    district_code char(6) NOT NULL,
    version       integer NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now(),
    created_by    bigint,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    updated_by    bigint,
    deleted_at    timestamptz,
    deleted_by    bigint
);
CREATE INDEX released_prisoner_org_path_gist ON released_prisoner USING gist (org_path);
CREATE INDEX released_prisoner_person_id ON released_prisoner (person_id);
CREATE UNIQUE INDEX released_prisoner_unique ON released_prisoner (person_id) WHERE deleted_at IS NULL;
COMMENT ON TABLE released_prisoner IS '刑满释放人员';
COMMENT ON COLUMN released_prisoner.person_id IS '人员';
COMMENT ON COLUMN released_prisoner.crime IS '原罪名';
COMMENT ON COLUMN released_prisoner.sentence IS '原判刑期';
COMMENT ON COLUMN released_prisoner.released_on IS '释放日期';
SELECT app.protect('released_prisoner');

-- 社区矫正人员 (community-correction subject), module special_population
CREATE TABLE community_correction (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    person_id     bigint REFERENCES person (id) NOT NULL,
    correction_type text,
    start_on      date,
    end_on        date,
    org_path      ltree NOT NULL,
    district_code char(6) NOT NULL,
    version       integer NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now(),
    created_by    bigint,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    updated_by    bigint,
    deleted_at    timestamptz,
    deleted_by    bigint
);
CREATE INDEX community_correction_org_path_gist ON community_correction USING gist (org_path);
CREATE INDEX community_correction_person_id ON community_correction (person_id);
CREATE UNIQUE INDEX community_correction_unique ON community_correction (person_id) WHERE deleted_at IS NULL;
COMMENT ON TABLE community_correction IS '社区矫正人员';
COMMENT ON COLUMN community_correction.person_id IS '人员';
COMMENT ON COLUMN community_correction.correction_type IS '矫正类别';
COMMENT ON COLUMN community_correction.start_on IS '矫正起始日期';
COMMENT ON COLUMN community_correction.end_on IS '矫正截止日期';
SELECT app.protect('community_correction');

-- 肇事肇祸严重精神障碍患者 (severe mental-disorder patient), module special_population
CREATE TABLE mental_patient (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    person_id     bigint REFERENCES person (id) NOT NULL,
    guardian      text,
    guardian_phone text,
    dangerous     boolean,
    treated       boolean,
    org_path      ltree NOT NULL,
    district_code char(6) NOT NULL,
    version       integer NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now(),
    created_by    bigint,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    updated_by    bigint,
    deleted_at    timestamptz,
    deleted_by    bigint
);
CREATE INDEX mental_patient_org_path_gist ON mental_patient USING gist (org_path);
CREATE INDEX mental_patient_person_id ON mental_patient (person_id);
CREATE INDEX mental_patient_dangerous ON mental_patient (dangerous);
CREATE UNIQUE INDEX mental_patient_unique ON mental_patient (person_id) WHERE deleted_at IS NULL;
COMMENT ON TABLE mental_patient IS '肇事肇祸严重精神障碍患者';
COMMENT ON COLUMN mental_patient.person_id IS '人员';
COMMENT ON COLUMN mental_patient.guardian IS '监护人';
COMMENT ON COLUMN mental_patient.guardian_phone IS '监护人联系方式';
COMMENT ON COLUMN mental_patient.dangerous IS '发病是否有危险';
COMMENT ON COLUMN mental_patient.treated IS '是否接受过精神病治疗';
SELECT app.protect('mental_patient');

-- 吸毒人员 (drug user), module special_population
CREATE TABLE drug_user (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    person_id     bigint REFERENCES person (id) NOT NULL,
    cause         text,
    drug_source   text,
    rehab_status  text,
    methadone     boolean,
    org_path      ltree NOT NULL,
    district_code char(6) NOT NULL,
    version       integer NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now(),
    created_by    bigint,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    updated_by    bigint,
    deleted_at    timestamptz,
    deleted_by    bigint
);
CREATE INDEX drug_user_org_path_gist ON drug_user USING gist (org_path);
CREATE INDEX drug_user_person_id ON drug_user (person_id);
CREATE INDEX drug_user_rehab_status ON drug_user (rehab_status);
CREATE UNIQUE INDEX drug_user_unique ON drug_user (person_id) WHERE deleted_at IS NULL;
COMMENT ON TABLE drug_user IS '吸毒人员';
COMMENT ON COLUMN drug_user.person_id IS '人员';
COMMENT ON COLUMN drug_user.cause IS '吸毒原因';
COMMENT ON COLUMN drug_user.drug_source IS '毒品来源';
COMMENT ON COLUMN drug_user.rehab_status IS '戒毒情况';
COMMENT ON COLUMN drug_user.methadone IS '是否服用美沙酮戒毒';
SELECT app.protect('drug_user');

-- 艾滋病危险人员 (HIV-risk person), module special_population
CREATE TABLE aids_risk (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    person_id     bigint REFERENCES person (id) NOT NULL,
    guardian      text,
    guardian_phone text,
    dangerous     boolean,
    treated       boolean,
    org_path      ltree NOT NULL,
    district_code char(6) NOT NULL,
    version       integer NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now(),
    created_by    bigint,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    updated_by    bigint,
    deleted_at    timestamptz,
    deleted_by    bigint
);
CREATE INDEX aids_risk_org_path_gist ON aids_risk USING gist (org_path);
CREATE INDEX aids_risk_person_id ON aids_risk (person_id);
CREATE UNIQUE INDEX aids_risk_unique ON aids_risk (person_id) WHERE deleted_at IS NULL;
COMMENT ON TABLE aids_risk IS '艾滋病危险人员';
COMMENT ON COLUMN aids_risk.person_id IS '人员';
COMMENT ON COLUMN aids_risk.guardian IS '监护人';
COMMENT ON COLUMN aids_risk.guardian_phone IS '监护人联系方式';
COMMENT ON COLUMN aids_risk.dangerous IS '发病是否有危险';
COMMENT ON COLUMN aids_risk.treated IS '是否接受过艾滋病治疗';
SELECT app.protect('aids_risk');

-- 邪教人员 (cult member), module special_population
CREATE TABLE cult_member (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    person_id     bigint REFERENCES person (id) NOT NULL,
    org_path      ltree NOT NULL,
    district_code char(6) NOT NULL,
    version       integer NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now(),
    created_by    bigint,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    updated_by    bigint,
    deleted_at    timestamptz,
    deleted_by    bigint
);
CREATE INDEX cult_member_org_path_gist ON cult_member USING gist (org_path);
CREATE INDEX cult_member_person_id ON cult_member (person_id);
CREATE UNIQUE INDEX cult_member_unique ON cult_member (person_id) WHERE deleted_at IS NULL;
COMMENT ON TABLE cult_member IS '邪教人员';
COMMENT ON COLUMN cult_member.person_id IS '人员';
SELECT app.protect('cult_member');

-- 重点青少年 (key youth), module key_youth
CREATE TABLE key_youth (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    person_id     bigint REFERENCES person (id) NOT NULL,
    category      text NOT NULL,
    guardian      text,
    guardian_phone text,
    org_path      ltree NOT NULL,
    district_code char(6) NOT NULL,
    version       integer NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now(),
    created_by    bigint,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    updated_by    bigint,
    deleted_at    timestamptz,
    deleted_by    bigint
);
CREATE INDEX key_youth_org_path_gist ON key_youth USING gist (org_path);
CREATE INDEX key_youth_person_id ON key_youth (person_id);
CREATE INDEX key_youth_category ON key_youth (category);
CREATE UNIQUE INDEX key_youth_unique ON key_youth (person_id) WHERE deleted_at IS NULL;
COMMENT ON TABLE key_youth IS '重点青少年';
COMMENT ON COLUMN key_youth.person_id IS '人员';
COMMENT ON COLUMN key_youth.category IS '重点青少年类别';
COMMENT ON COLUMN key_youth.guardian IS '监护人';
COMMENT ON COLUMN key_youth.guardian_phone IS '监护人联系方式';
SELECT app.protect('key_youth');

-- 非公有制经济组织 (private enterprise), module new_orgs
CREATE TABLE private_enterprise (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          text NOT NULL,
    category      text,
    address       text,
    building_id   bigint REFERENCES building (id),
    legal_person  text,
    security_head text,
    hazard_type   text,
    geom          geometry(Point, 4490),
    org_path      ltree NOT NULL,
    district_code char(6) NOT NULL,
    version       integer NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now(),
    created_by    bigint,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    updated_by    bigint,
    deleted_at    timestamptz,
    deleted_by    bigint
);
CREATE INDEX private_enterprise_org_path_gist ON private_enterprise USING gist (org_path);
CREATE INDEX private_enterprise_name_trgm ON private_enterprise USING gin (name gin_trgm_ops);
CREATE INDEX private_enterprise_category ON private_enterprise (category);
CREATE INDEX private_enterprise_building_id ON private_enterprise (building_id);
CREATE INDEX private_enterprise_hazard_type ON private_enterprise (hazard_type);
CREATE INDEX private_enterprise_geom_gist ON private_enterprise USING gist (geom);
COMMENT ON TABLE private_enterprise IS '非公有制经济组织';
COMMENT ON COLUMN private_enterprise.name IS '企业名称';
COMMENT ON COLUMN private_enterprise.category IS '企业类别';
COMMENT ON COLUMN private_enterprise.address IS '企业地址';
COMMENT ON COLUMN private_enterprise.building_id IS '所在楼栋';
COMMENT ON COLUMN private_enterprise.legal_person IS '法人姓名';
COMMENT ON COLUMN private_enterprise.security_head IS '治保负责人姓名';
COMMENT ON COLUMN private_enterprise.hazard_type IS '安全隐患类型';
SELECT app.protect('private_enterprise');

-- 社会组织 (social organisation), module new_orgs
CREATE TABLE social_org (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id        bigint REFERENCES zz_org (id),
    name          text NOT NULL,
    registration_no text,
    category      text,
    address       text,
    supervisor    text,
    legal_rep     text,
    founded_on    date,
    geom          geometry(Point, 4490),
    org_path      ltree NOT NULL,
    district_code char(6) NOT NULL,
    version       integer NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now(),
    created_by    bigint,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    updated_by    bigint,
    deleted_at    timestamptz,
    deleted_by    bigint
);
CREATE INDEX social_org_org_path_gist ON social_org USING gist (org_path);
CREATE INDEX social_org_org_id ON social_org (org_id);
CREATE INDEX social_org_name_trgm ON social_org USING gin (name gin_trgm_ops);
CREATE INDEX social_org_registration_no ON social_org (registration_no);
CREATE INDEX social_org_category ON social_org (category);
CREATE INDEX social_org_geom_gist ON social_org USING gist (geom);
COMMENT ON TABLE social_org IS '社会组织';
COMMENT ON COLUMN social_org.org_id IS '所属机构';
COMMENT ON COLUMN social_org.name IS '组织名称';
COMMENT ON COLUMN social_org.registration_no IS '登记证号';
COMMENT ON COLUMN social_org.category IS '组织类别';
COMMENT ON COLUMN social_org.address IS '地址';
COMMENT ON COLUMN social_org.supervisor IS '业务主管单位';
COMMENT ON COLUMN social_org.legal_rep IS '法人代表';
COMMENT ON COLUMN social_org.founded_on IS '成立时间';
SELECT app.protect('social_org');

-- 重点地区整治 (key-area remediation), module public_security
CREATE TABLE key_area (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          text NOT NULL,
    lead_unit     text,
    lead_head     text,
    lead_phone    text,
    solved_cases  integer,
    deadline      date,
    extent        text,
    partners      text,
    progress      text,
    geom          geometry(MultiPolygon, 4490),
    org_path      ltree NOT NULL,
    district_code char(6) NOT NULL,
    version       integer NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now(),
    created_by    bigint,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    updated_by    bigint,
    deleted_at    timestamptz,
    deleted_by    bigint
);
CREATE INDEX key_area_org_path_gist ON key_area USING gist (org_path);
CREATE INDEX key_area_name_trgm ON key_area USING gin (name gin_trgm_ops);
CREATE INDEX key_area_lead_unit_trgm ON key_area USING gin (lead_unit gin_trgm_ops);
CREATE INDEX key_area_geom_gist ON key_area USING gist (geom);
COMMENT ON TABLE key_area IS '重点地区整治';
COMMENT ON COLUMN key_area.name IS '治安重点地区';
COMMENT ON COLUMN key_area.lead_unit IS '整治牵头单位';
COMMENT ON COLUMN key_area.lead_head IS '整治牵头单位负责人';
COMMENT ON COLUMN key_area.lead_phone IS '整治牵头单位负责人电话';
COMMENT ON COLUMN key_area.solved_cases IS '整治期间破获刑事案件数';
COMMENT ON COLUMN key_area.deadline IS '整改时限';
COMMENT ON COLUMN key_area.extent IS '涉及区域范围';
COMMENT ON COLUMN key_area.partners IS '整治参与单位';
COMMENT ON COLUMN key_area.progress IS '整治情况';
SELECT app.protect('key_area');

-- 命案 (homicide case), module public_security
CREATE TABLE homicide_case (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          text NOT NULL,
    case_no       text NOT NULL,
    started_on    date,
    closed_on     date,
    geom          geometry(Point, 4490),
    org_path      ltree NOT NULL,
    district_code char(6) NOT NULL,
    version       integer NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now(),
    created_by    bigint,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    updated_by    bigint,
    deleted_at    timestamptz,
    deleted_by    bigint
);
CREATE INDEX homicide_case_org_path_gist ON homicide_case USING gist (org_path);
CREATE INDEX homicide_case_name_trgm ON homicide_case USING gin (name gin_trgm_ops);
CREATE INDEX homicide_case_case_no ON homicide_case (case_no);
CREATE INDEX homicide_case_geom_gist ON homicide_case USING gist (geom);
COMMENT ON TABLE homicide_case IS '命案';
COMMENT ON COLUMN homicide_case.name IS '案件名称';
COMMENT ON COLUMN homicide_case.case_no IS '案件编号';
COMMENT ON COLUMN homicide_case.started_on IS '案件发生开始日期';
COMMENT ON COLUMN homicide_case.closed_on IS '侦查终结日期';
SELECT app.protect('homicide_case');

-- 寄递物流安全管理 (logistics firm), module public_security
CREATE TABLE logistics_firm (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          text NOT NULL,
    phone         text,
    place         text,
    firm_type     text,
    staff_count   integer,
    geom          geometry(Point, 4490),
    org_path      ltree NOT NULL,
    district_code char(6) NOT NULL,
    version       integer NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now(),
    created_by    bigint,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    updated_by    bigint,
    deleted_at    timestamptz,
    deleted_by    bigint
);
CREATE INDEX logistics_firm_org_path_gist ON logistics_firm USING gist (org_path);
CREATE INDEX logistics_firm_name_trgm ON logistics_firm USING gin (name gin_trgm_ops);
CREATE INDEX logistics_firm_firm_type ON logistics_firm (firm_type);
CREATE INDEX logistics_firm_geom_gist ON logistics_firm USING gist (geom);
COMMENT ON TABLE logistics_firm IS '寄递物流安全管理';
COMMENT ON COLUMN logistics_firm.name IS '名称';
COMMENT ON COLUMN logistics_firm.phone IS '联系方式';
COMMENT ON COLUMN logistics_firm.place IS '地点';
COMMENT ON COLUMN logistics_firm.firm_type IS '企业类型';
COMMENT ON COLUMN logistics_firm.staff_count IS '从业人员数量';
SELECT app.protect('logistics_firm');

-- 护路护线 (protected road or line section), module road_line
CREATE TABLE road_line_section (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          text NOT NULL,
    owner_address text,
    owner_head    text,
    authority     text,
    security_head text,
    risk_level    text,
    risk          text,
    geom          geometry(MultiLineString, 4490),
    org_path      ltree NOT NULL,
    district_code char(6) NOT NULL,
    version       integer NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now(),
    created_by    bigint,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    updated_by    bigint,
    deleted_at    timestamptz,
    deleted_by    bigint
);
CREATE INDEX road_line_section_org_path_gist ON road_line_section USING gist (org_path);
CREATE INDEX road_line_section_name_trgm ON road_line_section USING gin (name gin_trgm_ops);
CREATE INDEX road_line_section_risk_level ON road_line_section (risk_level);
CREATE INDEX road_line_section_geom_gist ON road_line_section USING gist (geom);
COMMENT ON TABLE road_line_section IS '护路护线';
COMMENT ON COLUMN road_line_section.name IS '地段名称';
COMMENT ON COLUMN road_line_section.owner_address IS '隶属单位详址';
COMMENT ON COLUMN road_line_section.owner_head IS '隶属单位负责人';
COMMENT ON COLUMN road_line_section.authority IS '管辖单位名称';
COMMENT ON COLUMN road_line_section.security_head IS '分管治保负责人';
COMMENT ON COLUMN road_line_section.risk_level IS '治安隐患等级';
COMMENT ON COLUMN road_line_section.risk IS '治安隐患情况';
SELECT app.protect('road_line_section');

-- 涉及线路案（事）件 (road or line case), module road_line
CREATE TABLE road_line_case (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    case_no       text NOT NULL,
    name          text NOT NULL,
    nature        text,
    occurred_on   date,
    section_id    bigint REFERENCES road_line_section (id),
    geom          geometry(Point, 4490),
    org_path      ltree NOT NULL,
    district_code char(6) NOT NULL,
    version       integer NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now(),
    created_by    bigint,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    updated_by    bigint,
    deleted_at    timestamptz,
    deleted_by    bigint
);
CREATE INDEX road_line_case_org_path_gist ON road_line_case USING gist (org_path);
CREATE INDEX road_line_case_case_no ON road_line_case (case_no);
CREATE INDEX road_line_case_name_trgm ON road_line_case USING gin (name gin_trgm_ops);
CREATE INDEX road_line_case_section_id ON road_line_case (section_id);
CREATE INDEX road_line_case_geom_gist ON road_line_case USING gist (geom);
COMMENT ON TABLE road_line_case IS '涉及线路案（事）件';
COMMENT ON COLUMN road_line_case.case_no IS '案（事）件编号';
COMMENT ON COLUMN road_line_case.name IS '案（事）件名称';
COMMENT ON COLUMN road_line_case.nature IS '案（事）件性质';
COMMENT ON COLUMN road_line_case.occurred_on IS '发生日期';
COMMENT ON COLUMN road_line_case.section_id IS '涉及地段';
SELECT app.protect('road_line_case');

-- 学校 (school), module campus
CREATE TABLE school (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          text NOT NULL,
    address       text,
    head          text,
    phone         text,
    guard_count   integer,
    cameras       integer,
    liaison       text,
    liaison_phone text,
    geom          geometry(Geometry, 4490),
    org_path      ltree NOT NULL,
    district_code char(6) NOT NULL,
    version       integer NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now(),
    created_by    bigint,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    updated_by    bigint,
    deleted_at    timestamptz,
    deleted_by    bigint
);
CREATE INDEX school_org_path_gist ON school USING gist (org_path);
CREATE INDEX school_name_trgm ON school USING gin (name gin_trgm_ops);
CREATE INDEX school_geom_gist ON school USING gist (geom);
COMMENT ON TABLE school IS '学校';
COMMENT ON COLUMN school.name IS '学校名称';
COMMENT ON COLUMN school.address IS '学校地址';
COMMENT ON COLUMN school.head IS '学校负责人';
COMMENT ON COLUMN school.phone IS '联系方式';
COMMENT ON COLUMN school.guard_count IS '保安人数';
COMMENT ON COLUMN school.cameras IS '技防探头';
COMMENT ON COLUMN school.liaison IS '分包领导';
COMMENT ON COLUMN school.liaison_phone IS '分包领导联系方式';
SELECT app.protect('school');

-- 周边重点人员 (key person near a school), module campus
CREATE TABLE school_key_person (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    person_id     bigint REFERENCES person (id) NOT NULL,
    school_id     bigint REFERENCES school (id) NOT NULL,
    harm_level    text,
    org_path      ltree NOT NULL,
    district_code char(6) NOT NULL,
    version       integer NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now(),
    created_by    bigint,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    updated_by    bigint,
    deleted_at    timestamptz,
    deleted_by    bigint
);
CREATE INDEX school_key_person_org_path_gist ON school_key_person USING gist (org_path);
CREATE INDEX school_key_person_person_id ON school_key_person (person_id);
CREATE INDEX school_key_person_school_id ON school_key_person (school_id);
CREATE INDEX school_key_person_harm_level ON school_key_person (harm_level);
CREATE UNIQUE INDEX school_key_person_unique ON school_key_person (person_id, school_id) WHERE deleted_at IS NULL;
COMMENT ON TABLE school_key_person IS '周边重点人员';
COMMENT ON COLUMN school_key_person.person_id IS '人员';
COMMENT ON COLUMN school_key_person.school_id IS '学校';
COMMENT ON COLUMN school_key_person.harm_level IS '危害程度';
SELECT app.protect('school_key_person');

-- 师生安全案件 (case involving teachers or students), module campus
CREATE TABLE campus_case (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    case_no       text NOT NULL,
    name          text NOT NULL,
    school_id     bigint REFERENCES school (id),
    occurred_on   date,
    nature        text,
    details       text,
    suspect_document_type text,
    suspect_document_number text,
    suspect_name  text,
    offenders     integer,
    arrested      integer,
    at_large      integer,
    geom          geometry(Point, 4490),
    org_path      ltree NOT NULL,
    district_code char(6) NOT NULL,
    version       integer NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now(),
    created_by    bigint,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    updated_by    bigint,
    deleted_at    timestamptz,
    deleted_by    bigint
);
CREATE INDEX campus_case_org_path_gist ON campus_case USING gist (org_path);
CREATE INDEX campus_case_case_no ON campus_case (case_no);
CREATE INDEX campus_case_name_trgm ON campus_case USING gin (name gin_trgm_ops);
CREATE INDEX campus_case_school_id ON campus_case (school_id);
CREATE INDEX campus_case_geom_gist ON campus_case USING gist (geom);
COMMENT ON TABLE campus_case IS '师生安全案件';
COMMENT ON COLUMN campus_case.case_no IS '事件编号';
COMMENT ON COLUMN campus_case.name IS '事件名称';
COMMENT ON COLUMN campus_case.school_id IS '学校';
COMMENT ON COLUMN campus_case.occurred_on IS '发生日期';
COMMENT ON COLUMN campus_case.nature IS '事件性质';
COMMENT ON COLUMN campus_case.details IS '事件情况';
COMMENT ON COLUMN campus_case.suspect_document_type IS '嫌疑人证件类型';
COMMENT ON COLUMN campus_case.suspect_document_number IS '嫌疑人证件号';
COMMENT ON COLUMN campus_case.suspect_name IS '嫌疑人姓名';
COMMENT ON COLUMN campus_case.offenders IS '作案人数';
COMMENT ON COLUMN campus_case.arrested IS '抓捕人数';
COMMENT ON COLUMN campus_case.at_large IS '在逃人数';
SELECT app.protect('campus_case');

-- 民情日记 (diary), module diary
CREATE TABLE diary (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    worker        text NOT NULL,
    grid_id       bigint REFERENCES territory_unit (id) NOT NULL,
    diary_date    date NOT NULL,
    content       text NOT NULL,
    visited       text,
    approval      text,
    approval_note text,
    comment       text,
    geom          geometry(Point, 4490),
    org_path      ltree NOT NULL,
    district_code char(6) NOT NULL,
    version       integer NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now(),
    created_by    bigint,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    updated_by    bigint,
    deleted_at    timestamptz,
    deleted_by    bigint
);
CREATE INDEX diary_org_path_gist ON diary USING gist (org_path);
CREATE INDEX diary_worker_trgm ON diary USING gin (worker gin_trgm_ops);
CREATE INDEX diary_grid_id ON diary (grid_id);
CREATE INDEX diary_diary_date ON diary (diary_date);
CREATE INDEX diary_approval ON diary (approval);
CREATE INDEX diary_geom_gist ON diary USING gist (geom);
COMMENT ON TABLE diary IS '民情日记';
COMMENT ON COLUMN diary.worker IS '网格员';
COMMENT ON COLUMN diary.grid_id IS '所属网格';
COMMENT ON COLUMN diary.diary_date IS '日记日期';
COMMENT ON COLUMN diary.content IS '工作内容';
COMMENT ON COLUMN diary.visited IS '走访对象';
COMMENT ON COLUMN diary.approval IS '审批状态';
COMMENT ON COLUMN diary.approval_note IS '审批意见';
COMMENT ON COLUMN diary.comment IS '点评';
SELECT app.protect('diary');

-- 网格员轨迹 (grid worker's track), module patrol
CREATE TABLE worker_track (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    worker        text NOT NULL,
    located_at    timestamptz NOT NULL,
    lon           double precision NOT NULL,
    lat           double precision NOT NULL,
    speed         numeric,
    accuracy      numeric,
    geom          geometry(Point, 4490),
    org_path      ltree NOT NULL,
    district_code char(6) NOT NULL,
    version       integer NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now(),
    created_by    bigint,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    updated_by    bigint,
    deleted_at    timestamptz,
    deleted_by    bigint
);
CREATE INDEX worker_track_org_path_gist ON worker_track USING gist (org_path);
CREATE INDEX worker_track_worker_trgm ON worker_track USING gin (worker gin_trgm_ops);
CREATE INDEX worker_track_located_at ON worker_track (located_at);
CREATE INDEX worker_track_geom_gist ON worker_track USING gist (geom);
COMMENT ON TABLE worker_track IS '网格员轨迹';
COMMENT ON COLUMN worker_track.worker IS '网格员';
COMMENT ON COLUMN worker_track.located_at IS '定位时间';
COMMENT ON COLUMN worker_track.lon IS '经度';
COMMENT ON COLUMN worker_track.lat IS '纬度';
COMMENT ON COLUMN worker_track.speed IS '速度';
COMMENT ON COLUMN worker_track.accuracy IS '精度';
SELECT app.protect('worker_track');

-- 视频监控点位 (camera), module video
CREATE TABLE camera (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          text NOT NULL,
    device_no     text,
    location      text,
    heading       numeric,
    view_angle    numeric,
    stream_url    text,
    status        text,
    owner_unit    text,
    geom          geometry(Point, 4490),
    org_path      ltree NOT NULL,
    district_code char(6) NOT NULL,
    version       integer NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now(),
    created_by    bigint,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    updated_by    bigint,
    deleted_at    timestamptz,
    deleted_by    bigint
);
CREATE INDEX camera_org_path_gist ON camera USING gist (org_path);
CREATE INDEX camera_name_trgm ON camera USING gin (name gin_trgm_ops);
CREATE INDEX camera_status ON camera (status);
CREATE INDEX camera_geom_gist ON camera USING gist (geom);
COMMENT ON TABLE camera IS '视频监控点位';
COMMENT ON COLUMN camera.name IS '点位名称';
COMMENT ON COLUMN camera.device_no IS '设备编号';
COMMENT ON COLUMN camera.location IS '安装位置';
COMMENT ON COLUMN camera.heading IS '朝向';
COMMENT ON COLUMN camera.view_angle IS '视角';
COMMENT ON COLUMN camera.stream_url IS '视频流地址';
COMMENT ON COLUMN camera.status IS '在线状态';
COMMENT ON COLUMN camera.owner_unit IS '所属单位';
SELECT app.protect('camera');

-- 通知公告 (notice), module notices
CREATE TABLE notice (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    title         text NOT NULL,
    notice_type   text,
    body          text NOT NULL,
    sender        text,
    sent_at       timestamptz,
    recipients    text,
    attachment    text,
    read_count    integer,
    unread_count  integer,
    org_path      ltree NOT NULL,
    district_code char(6) NOT NULL,
    version       integer NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now(),
    created_by    bigint,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    updated_by    bigint,
    deleted_at    timestamptz,
    deleted_by    bigint
);
CREATE INDEX notice_org_path_gist ON notice USING gist (org_path);
CREATE INDEX notice_title_trgm ON notice USING gin (title gin_trgm_ops);
CREATE INDEX notice_notice_type ON notice (notice_type);
CREATE INDEX notice_sent_at ON notice (sent_at);
COMMENT ON TABLE notice IS '通知公告';
COMMENT ON COLUMN notice.title IS '标题';
COMMENT ON COLUMN notice.notice_type IS '通知类型';
COMMENT ON COLUMN notice.body IS '正文';
COMMENT ON COLUMN notice.sender IS '发送人';
COMMENT ON COLUMN notice.sent_at IS '发送时间';
COMMENT ON COLUMN notice.recipients IS '接收对象';
COMMENT ON COLUMN notice.attachment IS '附件';
COMMENT ON COLUMN notice.read_count IS '已读人数';
COMMENT ON COLUMN notice.unread_count IS '未读人数';
SELECT app.protect('notice');

-- 内部硬盘共享 (shared file), module notices
CREATE TABLE shared_file (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    file_name     text NOT NULL,
    uploader      text,
    uploaded_at   timestamptz,
    size          integer,
    org_path      ltree NOT NULL,
    district_code char(6) NOT NULL,
    version       integer NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now(),
    created_by    bigint,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    updated_by    bigint,
    deleted_at    timestamptz,
    deleted_by    bigint
);
CREATE INDEX shared_file_org_path_gist ON shared_file USING gist (org_path);
CREATE INDEX shared_file_file_name_trgm ON shared_file USING gin (file_name gin_trgm_ops);
CREATE INDEX shared_file_uploader_trgm ON shared_file USING gin (uploader gin_trgm_ops);
COMMENT ON TABLE shared_file IS '内部硬盘共享';
COMMENT ON COLUMN shared_file.file_name IS '文件名';
COMMENT ON COLUMN shared_file.uploader IS '上传人';
COMMENT ON COLUMN shared_file.uploaded_at IS '上传时间';
COMMENT ON COLUMN shared_file.size IS '文件大小';
SELECT app.protect('shared_file');
