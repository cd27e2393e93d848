-- Data loads: old versions of territorial boundaries (validity dates), and the history of loads
-- (boundary files and registers: who, when, which file, counts, outcome, the report).
--
-- Run through Python's str.format by gis.migrate.run_sql: role names are placeholders in curly braces.

-- A boundary that a load replaced, with the dates it was valid. The current version stays in
-- territory_unit (valid_from = the day it took effect); this table holds every earlier one.
CREATE TABLE territory_unit_version (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    unit_id       bigint NOT NULL REFERENCES territory_unit (id) ON DELETE CASCADE,
    level         text NOT NULL,
    code          text NOT NULL,
    name          text NOT NULL,
    boundary      geometry(MultiPolygon, 4490),
    valid_from    date NOT NULL,
    valid_to      date NOT NULL,
    load_id       bigint,
    org_path      ltree NOT NULL,
    district_code char(6),
    CHECK (valid_to >= valid_from)
);
CREATE INDEX territory_unit_version_unit ON territory_unit_version (unit_id, valid_to);
CREATE INDEX territory_unit_version_org_path_gist ON territory_unit_version USING gist (org_path);

-- One row a load, written in the load's own transaction (a refused or dry-run load is recorded too, in
-- a transaction of its own). org_path: the unit the load was for (the parent, or the district).
CREATE TABLE data_load (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind          text NOT NULL CHECK (kind IN ('boundaries', 'register')),
    target        text NOT NULL,                 -- the level (boundaries) or the registry key
    file_name     text NOT NULL,
    user_id       bigint,
    username      text,
    started_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at   timestamptz,
    outcome       text NOT NULL CHECK (outcome IN ('loaded', 'refused', 'dry_run', 'failed')),
    rows_read     integer NOT NULL DEFAULT 0,
    rows_written  integer NOT NULL DEFAULT 0,
    rows_bad      integer NOT NULL DEFAULT 0,
    report        jsonb,
    org_path      ltree NOT NULL,
    district_code char(6)
);
CREATE INDEX data_load_org_path_gist ON data_load USING gist (org_path);
CREATE INDEX data_load_started ON data_load (started_at);

ALTER TABLE territory_unit_version
    ADD CONSTRAINT territory_unit_version_load FOREIGN KEY (load_id) REFERENCES data_load (id);

SELECT app.protect('territory_unit_version', see_ancestors => true);
SELECT app.protect('data_load');
