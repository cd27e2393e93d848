-- 民情日记 (the diary) as a workflow, and 帮扶走访 (follow-up visits) recorded from the phone.
--
-- Run through Python's str.format by gis.migrate.run_sql: the role names are placeholders in curly
-- braces, and no other curly brace may appear in this file.
--
-- The diary table of 0003 stays the registry's table (its list, form and exports keep working); this adds
-- what the workflow needs: whose entry it is (the logged-in worker, ``worker_id``), its state
-- (submitted -> approved | returned, a returned entry edited goes back to submitted), who reviewed it,
-- and the phone's ``client_id`` for an idempotent resend. ``approval`` (code table approval_status) is
-- kept in step with ``state`` by the service, so the registry view shows the same thing; ``visited`` and
-- ``comment`` become summaries derived from the link and comment tables below.
--
-- Visibility. Every new row carries the org_path of what it hangs on (the diary's grid, the visited
-- record's person) and is protected like every other table: under an unset scope it raises, and a user
-- sees only rows inside their scope. A photo's bytes are visible exactly when its description is.

ALTER TABLE diary
    ADD COLUMN worker_id        bigint,            -- users.id of the author (no FK: users is not distributed)
    ADD COLUMN state            text NOT NULL DEFAULT 'submitted'
                                CHECK (state IN ('submitted', 'approved', 'returned')),
    ADD COLUMN client_id        text CHECK (client_id ~ '^[A-Za-z0-9_.:-]+$'
                                            AND length(client_id) BETWEEN 8 AND 64),
    ADD COLUMN source_crs       text CHECK (source_crs IN ('cgcs2000', 'wgs84', 'gcj02', 'bd09')),
    ADD COLUMN submitted_at     timestamptz,
    ADD COLUMN reviewed_at      timestamptz,
    ADD COLUMN reviewed_by      bigint,
    ADD COLUMN reviewed_by_name text;
-- A resend from the phone's offline queue: the same worker, the same client id, one entry.
CREATE UNIQUE INDEX diary_client_id ON diary (worker_id, client_id) WHERE client_id IS NOT NULL;
CREATE INDEX diary_worker_date ON diary (worker_id, diary_date);
CREATE INDEX diary_state ON diary (state) WHERE deleted_at IS NULL;

-- Persons and houses visited, linked to the registries (not free text).
CREATE TABLE diary_person (
    diary_id      bigint NOT NULL REFERENCES diary (id) ON DELETE CASCADE,
    person_id     bigint NOT NULL REFERENCES person (id),
    org_path      ltree NOT NULL,                  -- the diary's
    district_code char(6) NOT NULL,
    PRIMARY KEY (diary_id, person_id)
);
CREATE INDEX diary_person_person ON diary_person (person_id);
CREATE INDEX diary_person_org_path_gist ON diary_person USING gist (org_path);

CREATE TABLE diary_house (
    diary_id      bigint NOT NULL REFERENCES diary (id) ON DELETE CASCADE,
    house_id      bigint NOT NULL REFERENCES house (id),
    org_path      ltree NOT NULL,
    district_code char(6) NOT NULL,
    PRIMARY KEY (diary_id, house_id)
);
CREATE INDEX diary_house_house ON diary_house (house_id);
CREATE INDEX diary_house_org_path_gist ON diary_house USING gist (org_path);

-- 点评: leaders' comments, each with who and when; append-only.
CREATE TABLE diary_comment (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    diary_id      bigint NOT NULL REFERENCES diary (id) ON DELETE CASCADE,
    user_id       bigint,
    user_name     text NOT NULL,
    at            timestamptz NOT NULL DEFAULT now(),
    body          text NOT NULL CHECK (length(body) BETWEEN 1 AND 2000),
    org_path      ltree NOT NULL,
    district_code char(6) NOT NULL
);
CREATE INDEX diary_comment_diary ON diary_comment (diary_id, id);
CREATE INDEX diary_comment_org_path_gist ON diary_comment USING gist (org_path);

SELECT app.protect(t) FROM unnest(ARRAY['diary_person', 'diary_house', 'diary_comment']::regclass[]) AS t;
REVOKE UPDATE, DELETE ON diary_comment FROM {app_role};

-- ---------------------------------------------------------------- 帮扶记录 from the phone
ALTER TABLE assistance_visit
    ADD COLUMN visitor_id  bigint,                 -- users.id of who recorded it, when from the app
    ADD COLUMN client_id   text CHECK (client_id ~ '^[A-Za-z0-9_.:-]+$'
                                       AND length(client_id) BETWEEN 8 AND 64),
    ADD COLUMN geom        geometry(Point, 4490),  -- where the visit was recorded (CGCS2000)
    ADD COLUMN source_crs  text CHECK (source_crs IN ('cgcs2000', 'wgs84', 'gcj02', 'bd09'));
CREATE UNIQUE INDEX assistance_visit_client_id ON assistance_visit (created_by, client_id)
    WHERE client_id IS NOT NULL;
-- The latest visit of a record, which the due date is counted from.
CREATE INDEX assistance_visit_latest ON assistance_visit (registry, record_id, visited_on DESC, id DESC);

-- ---------------------------------------------------------------- photos taken in the field
-- One table for the photos of diary entries and visits (what they belong to: owner_table, owner_id),
-- described apart from their bytes like event attachments (0004), so the change history records who
-- attached what, not megabytes of photo.
CREATE TABLE field_photo (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner_table   text NOT NULL CHECK (owner_table IN ('diary', 'assistance_visit')),
    owner_id      bigint NOT NULL,
    filename      text NOT NULL,
    content_type  text NOT NULL,
    size          integer NOT NULL CHECK (size >= 0),
    sha256        text NOT NULL,
    uploaded_by   bigint,
    uploaded_at   timestamptz NOT NULL DEFAULT now(),
    org_path      ltree NOT NULL,
    district_code char(6) NOT NULL
);
CREATE INDEX field_photo_owner ON field_photo (owner_table, owner_id);
CREATE INDEX field_photo_org_path_gist ON field_photo USING gist (org_path);

CREATE TABLE field_photo_data (
    photo_id bigint PRIMARY KEY REFERENCES field_photo (id) ON DELETE CASCADE,
    data     bytea NOT NULL
);

SELECT app.protect('field_photo');
REVOKE UPDATE ON field_photo FROM {app_role};
ALTER TABLE field_photo_data ENABLE ROW LEVEL SECURITY;
CREATE POLICY via_photo ON field_photo_data TO {app_role}
    USING (EXISTS (SELECT 1 FROM field_photo f WHERE f.id = photo_id))
    WITH CHECK (EXISTS (SELECT 1 FROM field_photo f WHERE f.id = photo_id));
GRANT SELECT, INSERT ON field_photo_data TO {app_role};
