-- The foundation: code tables, the territory tree, compounds, buildings, houses, persons, residence.
-- Every geometry is CGCS2000 (EPSG:4490). Every territorial row carries org_path (the ltree path of the
-- grid or unit it belongs to) and district_code, maintained by triggers when a record moves; a bulk
-- loader may supply both itself (the triggers only fire when they are missing or a parent changes).

CREATE SCHEMA IF NOT EXISTS app;

-- ---------------------------------------------------------------- code tables (数据字典)
CREATE TABLE code_item (
    table_key text NOT NULL,
    code      text NOT NULL,
    name_zh   text NOT NULL,
    name_en   text,
    sort      integer NOT NULL DEFAULT 0,
    PRIMARY KEY (table_key, code)
);

-- ---------------------------------------------------------------- territory (行政区划 + 网格)
CREATE TABLE territory_unit (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    level         text NOT NULL CHECK (level IN ('province','city','district','street','community','grid')),
    code          text NOT NULL UNIQUE CHECK (code ~ '^[0-9]{2,15}$'),
    name          text NOT NULL,
    parent_id     bigint REFERENCES territory_unit(id),
    path          ltree NOT NULL UNIQUE,
    org_path      ltree NOT NULL,
    district_code char(6),
    boundary      geometry(MultiPolygon, 4490),
    -- grid fields (registry `grid`): the grid head (网格长) and staffing; counts and area are derived
    head_name      text,
    head_sex       text,
    head_ethnicity text,
    head_political text,
    head_birth_date date,
    head_education text,
    head_mobile    text,
    head_phone     text,
    worker_count   integer CHECK (worker_count >= 0),
    service_items  text,
    valid_from    date NOT NULL DEFAULT current_date,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX territory_unit_boundary_gist ON territory_unit USING gist (boundary);
CREATE INDEX territory_unit_org_path_gist ON territory_unit USING gist (org_path);
CREATE INDEX territory_unit_parent ON territory_unit (parent_id);
CREATE INDEX territory_unit_level ON territory_unit (level);

-- A unit's path is its parent's path plus its own code; org_path is the path itself.
CREATE FUNCTION app.territory_unit_path() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE parent_path ltree;
BEGIN
    IF NEW.parent_id IS NULL THEN
        NEW.path := text2ltree(NEW.code);
    ELSE
        SELECT path INTO STRICT parent_path FROM territory_unit WHERE id = NEW.parent_id;
        NEW.path := parent_path || text2ltree(NEW.code);
    END IF;
    NEW.org_path := NEW.path;
    IF NEW.district_code IS NULL AND length(NEW.code) >= 6 AND NEW.level NOT IN ('province', 'city') THEN
        NEW.district_code := substr(NEW.code, 1, 6);
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER territory_unit_path BEFORE INSERT OR UPDATE OF parent_id, code ON territory_unit
    FOR EACH ROW EXECUTE FUNCTION app.territory_unit_path();

-- ---------------------------------------------------------------- places (小区, 楼栋, 房屋)
CREATE TABLE compound (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    grid_id           bigint NOT NULL REFERENCES territory_unit(id),
    name              text NOT NULL,
    address           text,
    security_hotspot  boolean NOT NULL DEFAULT false,   -- 治安乱点
    surveillance      text,                              -- 电子监控情况 (code table surveillance)
    enclosure         text,                              -- 封闭情况 (code table enclosure)
    property_company  text,
    property_manager  text,
    property_phone    text,
    boundary          geometry(Polygon, 4490),
    org_path          ltree NOT NULL,
    district_code     char(6) NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE building (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    compound_id      bigint REFERENCES compound(id),
    grid_id          bigint NOT NULL REFERENCES territory_unit(id),
    name             text NOT NULL,
    address          text,
    floors           smallint NOT NULL CHECK (floors BETWEEN 1 AND 200),
    units            smallint NOT NULL DEFAULT 1 CHECK (units BETWEEN 1 AND 50),
    phone_alarm      boolean NOT NULL DEFAULT false,     -- 电话报警系统
    surveillance     boolean NOT NULL DEFAULT false,     -- 电子监控系统
    enclosure        text,                               -- 封闭情况
    footprint        geometry(Polygon, 4490) NOT NULL,
    org_path         ltree NOT NULL,
    district_code    char(6) NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE house (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    building_id     bigint NOT NULL REFERENCES building(id),
    unit_no         smallint NOT NULL DEFAULT 1,
    floor           smallint NOT NULL,
    room_no         text NOT NULL,                      -- 门牌号 as written on the door, e.g. 1-502
    nature          text,                               -- 住房性质 (code table housing_nature)
    owner_name      text,
    owner_id_number text,
    owner_phone     text,
    is_rented       boolean NOT NULL DEFAULT false,
    surveillance    boolean NOT NULL DEFAULT false,
    security_door   text,                               -- 防盗门情况 (code table security_door)
    org_path        ltree NOT NULL,
    district_code   char(6) NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (building_id, unit_no, room_no)
);

-- ---------------------------------------------------------------- people (实有人口)
CREATE TABLE person (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            text NOT NULL,
    former_name     text,
    sex             text NOT NULL,          -- GB/T 2261.1
    id_number       text,                   -- GB 11643 citizen ID; NULL for foreigners without one
    birth_date      date NOT NULL,
    ethnicity       text,                   -- GB/T 3304
    political       text,                   -- GB/T 4762
    education       text,                   -- GB/T 4658
    health          text,                   -- GB/T 2261.3
    marital         text,                   -- GB/T 2261.2
    religion        text,
    occupation      text,
    employer        text,
    phone           text,
    hukou_type      text,                   -- 户口类型 (code table hukou_type)
    hukou_address   text,
    native_place    text,                   -- 籍贯
    residency       text NOT NULL DEFAULT 'resident'
                    CHECK (residency IN ('resident','floating','foreign')),
    died_on         date,                   -- 死亡时间: a deceased person stays, with this date
    org_path        ltree NOT NULL,
    district_code   char(6) NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- 流动人口: the floating facts of a person (inflow to or outflow from the district).
CREATE TABLE person_floating (
    person_id        bigint PRIMARY KEY REFERENCES person(id) ON DELETE CASCADE,
    flow             text NOT NULL CHECK (flow IN ('inflow','outflow')),
    landlord         text,                -- 房东信息
    permit_no        text,                -- 暂住证号
    reason           text,                -- 暂住事由 (code table stay_reason)
    arrived_on       date,
    org_path         ltree NOT NULL,
    district_code    char(6) NOT NULL
);

-- 境外人员: the foreign facts of a person.
CREATE TABLE person_foreign (
    person_id        bigint PRIMARY KEY REFERENCES person(id) ON DELETE CASCADE,
    english_name     text NOT NULL,
    nationality      text NOT NULL,       -- GB/T 2659 alpha-3
    document_type    text NOT NULL,       -- code table document_type
    document_number  text NOT NULL,
    document_expiry  date,
    reason           text,                -- 流入事由
    org_path         ltree NOT NULL,
    district_code    char(6) NOT NULL
);

-- 居住: who lives in which house, their relation to the household head, since and until when.
CREATE TABLE residence (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    person_id     bigint NOT NULL REFERENCES person(id) ON DELETE CASCADE,
    house_id      bigint NOT NULL REFERENCES house(id),
    relation      text NOT NULL,          -- GB/T 4761 与户主关系
    is_head       boolean NOT NULL DEFAULT false,
    since         date NOT NULL DEFAULT current_date,
    until         date,
    org_path      ltree NOT NULL,
    district_code char(6) NOT NULL,
    CHECK (until IS NULL OR until >= since)
);
-- A person lives in one house at a time; a household has one head.
CREATE UNIQUE INDEX residence_current_person ON residence (person_id) WHERE until IS NULL;
CREATE UNIQUE INDEX residence_current_head ON residence (house_id) WHERE until IS NULL AND is_head;

-- ---------------------------------------------------------------- indexes drill-down and search use
CREATE INDEX compound_boundary_gist ON compound USING gist (boundary);
CREATE INDEX building_footprint_gist ON building USING gist (footprint);
CREATE INDEX compound_grid ON compound (grid_id);
CREATE INDEX building_grid ON building (grid_id);
CREATE INDEX building_compound ON building (compound_id);
CREATE INDEX house_building ON house (building_id);
CREATE INDEX residence_house ON residence (house_id) WHERE until IS NULL;
CREATE INDEX person_id_number ON person (id_number);
CREATE INDEX person_phone ON person (phone);
CREATE INDEX person_name_trgm ON person USING gin (name gin_trgm_ops);
CREATE INDEX compound_org_path_gist ON compound USING gist (org_path);
CREATE INDEX building_org_path_gist ON building USING gist (org_path);
CREATE INDEX house_org_path_gist ON house USING gist (org_path);
CREATE INDEX person_org_path_gist ON person USING gist (org_path);
CREATE INDEX person_floating_org_path_gist ON person_floating USING gist (org_path);
CREATE INDEX person_foreign_org_path_gist ON person_foreign USING gist (org_path);
CREATE INDEX residence_org_path_gist ON residence USING gist (org_path);

-- ---------------------------------------------------------------- keeping org_path right
-- Each child takes org_path and district_code from its parent row; when a parent moves, its children
-- follow. Triggers fire only when the path is missing or the parent changes, so bulk COPY that
-- supplies correct paths pays nothing.
CREATE FUNCTION app.inherit_org_path() RETURNS trigger LANGUAGE plpgsql AS $$
-- TG_ARGV: parent table, foreign-key column, parent's path column
DECLARE parent_id bigint;
BEGIN
    parent_id := (to_jsonb(NEW) ->> TG_ARGV[1])::bigint;
    EXECUTE format('SELECT %I, district_code FROM %I WHERE id = $1', TG_ARGV[2], TG_ARGV[0])
        INTO NEW.org_path, NEW.district_code USING parent_id;
    IF NEW.org_path IS NULL THEN
        RAISE EXCEPTION '上级记录 %(%) 不存在 (parent row not found)', TG_ARGV[0], parent_id;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER compound_org_path BEFORE INSERT ON compound FOR EACH ROW
    WHEN (NEW.org_path IS NULL) EXECUTE FUNCTION app.inherit_org_path('territory_unit', 'grid_id', 'path');
CREATE TRIGGER compound_org_path_move BEFORE UPDATE OF grid_id ON compound FOR EACH ROW
    WHEN (OLD.grid_id IS DISTINCT FROM NEW.grid_id)
    EXECUTE FUNCTION app.inherit_org_path('territory_unit', 'grid_id', 'path');
CREATE TRIGGER building_org_path BEFORE INSERT ON building FOR EACH ROW
    WHEN (NEW.org_path IS NULL) EXECUTE FUNCTION app.inherit_org_path('territory_unit', 'grid_id', 'path');
CREATE TRIGGER building_org_path_move BEFORE UPDATE OF grid_id ON building FOR EACH ROW
    WHEN (OLD.grid_id IS DISTINCT FROM NEW.grid_id)
    EXECUTE FUNCTION app.inherit_org_path('territory_unit', 'grid_id', 'path');
CREATE TRIGGER house_org_path BEFORE INSERT ON house FOR EACH ROW
    WHEN (NEW.org_path IS NULL) EXECUTE FUNCTION app.inherit_org_path('building', 'building_id', 'org_path');
CREATE TRIGGER house_org_path_move BEFORE UPDATE OF building_id ON house FOR EACH ROW
    WHEN (OLD.building_id IS DISTINCT FROM NEW.building_id)
    EXECUTE FUNCTION app.inherit_org_path('building', 'building_id', 'org_path');
CREATE TRIGGER residence_org_path BEFORE INSERT ON residence FOR EACH ROW
    WHEN (NEW.org_path IS NULL) EXECUTE FUNCTION app.inherit_org_path('house', 'house_id', 'org_path');
CREATE TRIGGER residence_org_path_move BEFORE UPDATE OF house_id ON residence FOR EACH ROW
    WHEN (OLD.house_id IS DISTINCT FROM NEW.house_id)
    EXECUTE FUNCTION app.inherit_org_path('house', 'house_id', 'org_path');
CREATE TRIGGER person_floating_org_path BEFORE INSERT ON person_floating FOR EACH ROW
    WHEN (NEW.org_path IS NULL) EXECUTE FUNCTION app.inherit_org_path('person', 'person_id', 'org_path');
CREATE TRIGGER person_foreign_org_path BEFORE INSERT ON person_foreign FOR EACH ROW
    WHEN (NEW.org_path IS NULL) EXECUTE FUNCTION app.inherit_org_path('person', 'person_id', 'org_path');

-- When a row's org_path changes, the rows hanging on it follow. (The WHEN clauses compare paths as text:
-- pg_restore runs with an empty search_path, where ltree's own "=" — in schema public — is not found,
-- and IS DISTINCT FROM cannot be schema-qualified.)
CREATE FUNCTION app.cascade_org_path() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'building' THEN
        UPDATE house SET org_path = NEW.org_path, district_code = NEW.district_code
         WHERE building_id = NEW.id;
    ELSIF TG_TABLE_NAME = 'house' THEN
        UPDATE residence SET org_path = NEW.org_path, district_code = NEW.district_code
         WHERE house_id = NEW.id AND until IS NULL;
    ELSIF TG_TABLE_NAME = 'residence' THEN
        IF NEW.until IS NULL THEN
            UPDATE person SET org_path = NEW.org_path, district_code = NEW.district_code
             WHERE id = NEW.person_id AND org_path IS DISTINCT FROM NEW.org_path;
        END IF;
    ELSIF TG_TABLE_NAME = 'person' THEN
        UPDATE person_floating SET org_path = NEW.org_path, district_code = NEW.district_code
         WHERE person_id = NEW.id;
        UPDATE person_foreign SET org_path = NEW.org_path, district_code = NEW.district_code
         WHERE person_id = NEW.id;
    END IF;
    RETURN NULL;
END $$;

-- Plain AFTER UPDATE (no column list): a move through grid_id / building_id / house_id changes org_path
-- in a BEFORE trigger, and "UPDATE OF org_path" looks only at the statement's own SET list.
CREATE TRIGGER building_org_path_cascade AFTER UPDATE ON building FOR EACH ROW
    WHEN (OLD.org_path::text IS DISTINCT FROM NEW.org_path::text) EXECUTE FUNCTION app.cascade_org_path();
CREATE TRIGGER house_org_path_cascade AFTER UPDATE ON house FOR EACH ROW
    WHEN (OLD.org_path::text IS DISTINCT FROM NEW.org_path::text) EXECUTE FUNCTION app.cascade_org_path();
CREATE TRIGGER person_org_path_cascade AFTER UPDATE ON person FOR EACH ROW
    WHEN (OLD.org_path::text IS DISTINCT FROM NEW.org_path::text) EXECUTE FUNCTION app.cascade_org_path();
-- A new current residence, or a residence whose path changed, moves the person.
CREATE TRIGGER residence_moves_person AFTER INSERT OR UPDATE ON residence FOR EACH ROW
    WHEN (NEW.until IS NULL) EXECUTE FUNCTION app.cascade_org_path();

-- ---------------------------------------------------------------- derived figures (never typed)
-- 网格户数 (households = occupied houses), 网格人数, 网格面积 (square metres on the ellipsoid).
CREATE VIEW grid_figures AS
SELECT g.id AS grid_id,
       (SELECT count(DISTINCT r.house_id) FROM residence r
         WHERE r.until IS NULL AND r.org_path = g.path) AS household_count,
       (SELECT count(*) FROM residence r
         WHERE r.until IS NULL AND r.org_path = g.path) AS person_count,
       round(ST_Area(g.boundary::geography)::numeric, 1) AS area_m2
  FROM territory_unit g
 WHERE g.level = 'grid';

-- 楼栋户数 / 楼栋人数.
CREATE VIEW building_figures AS
SELECT b.id AS building_id,
       count(DISTINCT r.house_id) AS household_count,
       count(r.id) AS person_count
  FROM building b
  LEFT JOIN house h ON h.building_id = b.id
  LEFT JOIN residence r ON r.house_id = h.id AND r.until IS NULL
 GROUP BY b.id;

CREATE INDEX residence_org_path_btree ON residence (org_path) WHERE until IS NULL;
