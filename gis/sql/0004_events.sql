-- Events (事件) and their workflow: the case file, its append-only history, attachments, supervision
-- (督办) and cards (红黄牌). The workflow itself -- which action may follow which, by whom -- is data in
-- layers/events/workflow.py; the database keeps the facts and who may see them.
--
-- Run through Python's str.format by gis.migrate.run_sql: the role names are placeholders in curly
-- braces, and no other curly brace may appear in this file.
--
-- Visibility. An event's org_path is, for its whole life, the path of the grid where it happened. The
-- scope policy of app.protect therefore shows it to the grid and to every level above (community,
-- street, district) however far it has been escalated, and to nobody beside. A department (职能部门) is
-- not a territory: its officers see an event because it was dispatched to them. ``departments`` keeps
-- every department an event has ever been dispatched to (a return does not take it off: they keep
-- seeing the case they worked on), and an extra permissive policy shows such events to users of that
-- department in the same district. The child tables are visible exactly when their event is.

-- ---------------------------------------------------------------- the case file
CREATE TABLE event (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    number          text NOT NULL UNIQUE,            -- district code + date + sequence: 320106202410080001
    client_id       uuid UNIQUE,                     -- a mobile client's id for the report: retries are idempotent
    title           text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    type            text NOT NULL,                   -- code table event_type (2-digit class, 4-digit kind)
    content         text,
    urgency         text NOT NULL DEFAULT 'normal' CHECK (urgency IN ('normal', 'urgent', 'major')),
    source          text NOT NULL,                   -- code table event_source
    reporter_name   text,
    reporter_phone  text,
    address         text,
    location        geometry(Point, 4490),
    grid_id         bigint NOT NULL REFERENCES territory_unit (id),
    -- where it is now: the territorial unit holding it and, once dispatched, the department
    status          text NOT NULL CHECK (status IN ('reported', 'registered', 'dispatched', 'handling',
                                                    'extension_requested', 'handled', 'closed',
                                                    'evaluated', 'cancelled')),
    unit_path       ltree NOT NULL,
    unit_level      text NOT NULL CHECK (unit_level IN ('grid', 'community', 'street', 'district')),
    department      text,                            -- code table department; NULL: the unit holds it
    departments     text[] NOT NULL DEFAULT ARRAY[]::text[],
    -- the clock of the current step, computed in working days by layers.events.calendar
    step_no         integer NOT NULL DEFAULT 1,
    step_started_at timestamptz NOT NULL,
    step_limit_days integer,
    yellow_at       timestamptz,                     -- the warning light turns yellow
    due_at          timestamptz,                     -- … red, and a yellow card is due
    red_card_at     timestamptz,                     -- a red card is due (twice the limit by default)
    -- counters the assessment reads
    late_steps      integer NOT NULL DEFAULT 0,
    rework_count    integer NOT NULL DEFAULT 0,
    extension_count integer NOT NULL DEFAULT 0,
    extension_days_requested integer,
    satisfaction    smallint CHECK (satisfaction BETWEEN 1 AND 5),
    handled_level   text,                            -- who solved it: grid … district, or 'department'
    reported_by     bigint,
    reported_at     timestamptz NOT NULL,
    registered_at   timestamptz,
    closed_at       timestamptz,
    evaluated_at    timestamptz,
    version         integer NOT NULL DEFAULT 1,      -- every action names the version it saw
    org_path        ltree NOT NULL,                  -- the grid's path, never changes
    district_code   char(6) NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((department IS NULL) OR (department = ANY (departments)))
);
CREATE INDEX event_org_path_gist ON event USING gist (org_path);
CREATE INDEX event_unit_path_gist ON event USING gist (unit_path);
CREATE INDEX event_status ON event (status);
CREATE INDEX event_due_open ON event (due_at)
    WHERE status IN ('reported', 'registered', 'dispatched', 'handling', 'extension_requested', 'handled');
CREATE INDEX event_department ON event (district_code, department) WHERE department IS NOT NULL;
CREATE INDEX event_departments_gin ON event USING gin (departments);
CREATE INDEX event_type ON event (type);
CREATE INDEX event_reported_at ON event (reported_at);
CREATE INDEX event_grid ON event (grid_id);
CREATE INDEX event_location_gist ON event USING gist (location);

-- ---------------------------------------------------------------- history: one row per action, append-only
CREATE TABLE event_history (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id        bigint NOT NULL REFERENCES event (id) ON DELETE CASCADE,
    at              timestamptz NOT NULL,
    user_id         bigint,
    user_name       text,
    user_role       text,
    action          text NOT NULL,
    from_status     text,
    to_status       text NOT NULL,
    from_unit_path  ltree,
    to_unit_path    ltree,
    from_department text,
    to_department   text,
    comment         text,
    detail          jsonb,                           -- days, satisfaction, outcome, card colour …
    step_no         integer NOT NULL,
    due_at          timestamptz,                     -- the deadline of the step this action ended
    late            boolean NOT NULL DEFAULT false,  -- … and whether it ended after it
    version         integer NOT NULL,                -- the event's version after this action
    org_path        ltree NOT NULL,
    district_code   char(6) NOT NULL
);
CREATE INDEX event_history_event ON event_history (event_id, id);
CREATE INDEX event_history_at ON event_history (at);
CREATE INDEX event_history_user ON event_history (user_id, at);
CREATE INDEX event_history_org_path_gist ON event_history USING gist (org_path);

-- ---------------------------------------------------------------- photos and files
CREATE TABLE event_attachment (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id      bigint NOT NULL REFERENCES event (id) ON DELETE CASCADE,
    history_id    bigint REFERENCES event_history (id),   -- the action it was attached to
    filename      text NOT NULL,
    content_type  text NOT NULL,
    size          integer NOT NULL CHECK (size >= 0),
    sha256        text NOT NULL,
    uploaded_by   bigint,
    uploaded_at   timestamptz NOT NULL DEFAULT now(),
    org_path      ltree NOT NULL,
    district_code char(6) NOT NULL
);
CREATE INDEX event_attachment_event ON event_attachment (event_id);
CREATE INDEX event_attachment_org_path_gist ON event_attachment USING gist (org_path);

-- The bytes apart from the description, so that the change history of attachments (every table with
-- an org_path has one) records who attached what, not megabytes of photo.
CREATE TABLE event_attachment_data (
    attachment_id bigint PRIMARY KEY REFERENCES event_attachment (id) ON DELETE CASCADE,
    data          bytea NOT NULL
);

-- ---------------------------------------------------------------- supervision (督办) and its reply
CREATE TABLE event_supervision (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id        bigint NOT NULL REFERENCES event (id) ON DELETE CASCADE,
    issued_at       timestamptz NOT NULL,
    issued_by       bigint,
    issued_by_name  text,
    issuer_path     ltree,
    note            text NOT NULL,
    unit_path       ltree NOT NULL,                  -- who must reply: the holder when it was issued
    department      text,
    reply_due_at    timestamptz,
    reply           text,
    replied_at      timestamptz,
    replied_by      bigint,
    replied_by_name text,
    org_path        ltree NOT NULL,
    district_code   char(6) NOT NULL
);
CREATE INDEX event_supervision_event ON event_supervision (event_id);
CREATE INDEX event_supervision_open ON event_supervision (event_id) WHERE replied_at IS NULL;
CREATE INDEX event_supervision_org_path_gist ON event_supervision USING gist (org_path);

-- ---------------------------------------------------------------- cards (红黄牌): they count against a unit
CREATE TABLE event_card (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id      bigint NOT NULL REFERENCES event (id) ON DELETE CASCADE,
    step_no       integer NOT NULL,
    color         text NOT NULL CHECK (color IN ('yellow', 'red')),
    kind          text NOT NULL CHECK (kind IN ('auto', 'manual')),
    reason        text NOT NULL,
    unit_path     ltree NOT NULL,                    -- the unit it counts against …
    department    text,                              -- … or the department, when one held the step
    issued_at     timestamptz NOT NULL,
    issued_by     bigint,
    issued_by_name text,
    org_path      ltree NOT NULL,
    district_code char(6) NOT NULL
);
-- An automatic card is issued once per step and colour, however often the job runs.
CREATE UNIQUE INDEX event_card_auto_once ON event_card (event_id, step_no, color) WHERE kind = 'auto';
CREATE INDEX event_card_unit_gist ON event_card USING gist (unit_path);
CREATE INDEX event_card_org_path_gist ON event_card USING gist (org_path);
CREATE INDEX event_card_issued_at ON event_card (issued_at);

-- ---------------------------------------------------------------- numbering: per district and day, no gaps
-- The row lock of the counter serialises two reports of the same district on the same day.
CREATE TABLE event_number (
    district_code char(6) NOT NULL,
    day           date NOT NULL,
    last          integer NOT NULL,
    PRIMARY KEY (district_code, day)
);
GRANT SELECT, INSERT, UPDATE ON event_number TO {app_role};

-- ---------------------------------------------------------------- who may see: scope, and departments
-- The department of the transaction's user (a code of table `department`; users.department may hold
-- the code or its Chinese name) and the district of their scope. SECURITY DEFINER: they read users and
-- territory_unit as the owner, whatever the caller may see of them; NULL without a user, so no match.
CREATE FUNCTION app.current_department() RETURNS text LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public AS $$
    SELECT coalesce(c.code, u.department)
      FROM users u
      LEFT JOIN code_item c ON c.table_key = 'department' AND u.department IN (c.code, c.name_zh)
     WHERE u.id = app.current_user_id() AND u.active AND u.department IS NOT NULL
     LIMIT 1
$$;

CREATE FUNCTION app.current_district() RETURNS text LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public AS $$
    SELECT t.district_code::text
      FROM users u JOIN territory_unit t ON t.path = u.scope_path
     WHERE u.id = app.current_user_id() AND u.active
$$;

SELECT app.protect(t) FROM unnest(ARRAY['event', 'event_history', 'event_attachment', 'event_supervision',
                                         'event_card']::regclass[]) AS t;

CREATE POLICY department_read ON event FOR SELECT TO {app_role}
    USING (district_code = (SELECT app.current_district())
           AND departments @> ARRAY[(SELECT app.current_department())]);
CREATE POLICY department_update ON event FOR UPDATE TO {app_role}
    USING (district_code = (SELECT app.current_district())
           AND departments @> ARRAY[(SELECT app.current_department())])
    WITH CHECK (district_code = (SELECT app.current_district())
                AND departments @> ARRAY[(SELECT app.current_department())]);

-- The child rows of an event the user may see (the subquery on event applies event's own policies).
DO $$
DECLARE
    tbl text;
BEGIN
    FOREACH tbl IN ARRAY ARRAY['event_history', 'event_attachment', 'event_supervision', 'event_card'] LOOP
        EXECUTE format('CREATE POLICY via_event ON %I TO %I '
                       'USING (EXISTS (SELECT 1 FROM event e WHERE e.id = event_id)) '
                       'WITH CHECK (EXISTS (SELECT 1 FROM event e WHERE e.id = event_id))',
                       tbl, '{app_role}');
    END LOOP;
END $$;

-- An attachment's bytes are visible exactly when its description is.
ALTER TABLE event_attachment_data ENABLE ROW LEVEL SECURITY;
CREATE POLICY via_attachment ON event_attachment_data TO {app_role}
    USING (EXISTS (SELECT 1 FROM event_attachment a WHERE a.id = attachment_id))
    WITH CHECK (EXISTS (SELECT 1 FROM event_attachment a WHERE a.id = attachment_id));
GRANT SELECT, INSERT ON event_attachment_data TO {app_role};

-- The history is the record: the app role appends to it and never rewrites it. Events are cancelled
-- (注销, with a reason), never deleted; cards and supervisions stay on record.
REVOKE UPDATE, DELETE ON event_history FROM {app_role};
REVOKE DELETE ON event, event_card, event_supervision, event_attachment FROM {app_role};
