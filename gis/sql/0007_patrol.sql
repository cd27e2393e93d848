-- Grid workers' GPS fixes (智能巡查): every fix a phone sends, partitioned by day, and the latest fix of
-- each worker, which the command wall draws live.
--
-- Run through Python's str.format by gis.migrate.run_sql: the role names are placeholders in curly
-- braces, and no other curly brace may appear in this file.
--
-- Whose rows. A fix belongs to the worker who sent it (the logged-in user, never a field of the
-- request) and carries the path of that worker's own unit as its org_path, not the grid it was taken
-- in: a worker stepping into the next street still writes inside their scope, and their grid, community,
-- street and district see where they walked. ``grid_id`` records the grid the fix lies in, for coverage.
--
-- Size. A worker sends a fix every 10-30 s for 8 hours: ~1,500 fixes a day, ~2 million a day in a
-- district of 1,300 workers. Partitions by day keep a day's playback and the retention (DROP a
-- partition) cheap; the primary key (worker, time) makes a resent fix a no-op, so an offline queue can
-- send its batch again. The registry table ``worker_track`` (0003) stays the hand-kept register.

CREATE TABLE worker_position (
    user_id       bigint NOT NULL,                  -- users.id of the worker (no FK: partitions, Citus)
    fixed_at      timestamptz NOT NULL,             -- when the phone took the fix
    lon           double precision NOT NULL,        -- CGCS2000, converted from the client's crs
    lat           double precision NOT NULL,
    accuracy      real CHECK (accuracy >= 0),       -- metres
    speed         real CHECK (speed >= 0),          -- metres per second
    source_crs    text NOT NULL DEFAULT 'cgcs2000' CHECK (source_crs IN ('cgcs2000', 'wgs84', 'gcj02', 'bd09')),
    grid_id       bigint,                           -- the grid the fix lies in, NULL outside every grid
    org_path      ltree NOT NULL,                   -- the worker's unit
    district_code char(6) NOT NULL,
    received_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, fixed_at)
) PARTITION BY RANGE (fixed_at);
CREATE INDEX worker_position_org_path_gist ON worker_position USING gist (org_path);
CREATE INDEX worker_position_grid ON worker_position (grid_id, fixed_at);
COMMENT ON TABLE worker_position IS '网格员定位点（按日分区）';

-- The latest fix of each worker: one row each, moved forward only (an old fix resent late never
-- moves a worker back in time).
CREATE TABLE worker_latest (
    user_id       bigint PRIMARY KEY,
    worker_name   text NOT NULL,
    fixed_at      timestamptz NOT NULL,
    lon           double precision NOT NULL,
    lat           double precision NOT NULL,
    accuracy      real,
    speed         real,
    grid_id       bigint,
    org_path      ltree NOT NULL,
    district_code char(6) NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX worker_latest_org_path_gist ON worker_latest USING gist (org_path);
CREATE INDEX worker_latest_fixed_at ON worker_latest (fixed_at);
COMMENT ON TABLE worker_latest IS '网格员最新位置';

SELECT app.protect('worker_position');
SELECT app.protect('worker_latest');
-- Fixes are facts from a device, not edits of a register: the change history would only double the
-- write volume of the busiest table. Who sent what is the row itself (user_id, received_at).
DROP TRIGGER change_log ON worker_position;
DROP TRIGGER change_log ON worker_latest;
REVOKE UPDATE, DELETE ON worker_position FROM {app_role};
REVOKE DELETE ON worker_latest FROM {app_role};

-- The day partitions a batch needs, made on demand: the app role may not create tables, this function
-- (running as the owner) may, and only day partitions of worker_position. A call covers at most 31 days.
CREATE FUNCTION app.ensure_position_days(first_day date, last_day date) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    day date;
    made integer := 0;
    name text;
BEGIN
    IF last_day < first_day OR last_day - first_day > 31 THEN
        RAISE EXCEPTION '定位日期范围无效 (at most 31 days per call): % .. %', first_day, last_day;
    END IF;
    day := first_day;
    WHILE day <= last_day LOOP
        name := 'worker_position_p' || to_char(day, 'YYYYMMDD');
        IF to_regclass('public.' || name) IS NULL THEN
            -- Beijing days: a partition holds one local working day, whatever the server's time zone.
            EXECUTE format('CREATE TABLE public.%I PARTITION OF public.worker_position FOR VALUES FROM (%L) TO (%L)',
                           name, (day::timestamp AT TIME ZONE 'Asia/Shanghai'),
                           ((day + 1)::timestamp AT TIME ZONE 'Asia/Shanghai'));
            made := made + 1;
        END IF;
        day := day + 1;
    END LOOP;
    RETURN made;
END $$;
REVOKE ALL ON FUNCTION app.ensure_position_days(date, date) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.ensure_position_days(date, date) TO {app_role};

-- The grid a point lies in, whoever asks: a worker may walk beyond their own grid, whose neighbours
-- their scope does not show. It answers an id only.
CREATE FUNCTION app.grid_at(lon double precision, lat double precision) RETURNS bigint
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT id FROM territory_unit
     WHERE level = 'grid' AND boundary && ST_SetSRID(ST_MakePoint(lon, lat), 4490)
       AND ST_Intersects(boundary, ST_SetSRID(ST_MakePoint(lon, lat), 4490))
     ORDER BY id LIMIT 1
$$;
REVOKE ALL ON FUNCTION app.grid_at(double precision, double precision) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.grid_at(double precision, double precision) TO {app_role};
