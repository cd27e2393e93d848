-- Access: territory-scoped row-level security, users and sessions, the access log and the change history.
--
-- This file is run through Python's str.format by gis.migrate.run_sql: the three role names below are
-- placeholders in curly braces, and no other curly brace may appear in it.
--
-- Who is who:
--   owner role   owns every table, runs migrations and bulk loads. Owners are exempt from row-level
--                security unless a table is FORCE'd, and we deliberately do not FORCE: pg_dump and
--                pg_restore run with row_security = off, which makes PostgreSQL raise on any table whose
--                policies would apply to the current role ("query would be affected by row-level security
--                policy"), so a FORCE'd table could no longer be restored by its owner. The owner's
--                exemption is therefore ownership itself, and the scope policies are written TO the app
--                role only: any other role that is ever granted access sees nothing (no policy = deny).
--   app role     what the server and the notebook API connect as: not the owner, not superuser, not
--                BYPASSRLS, so every protected table shows it only rows inside app.current_scope().
--   backup role  BYPASSRLS + pg_read_all_data (granted by gis.cluster.provision): pg_dump, nothing else.

GRANT USAGE ON SCHEMA app TO {app_role};

-- ---------------------------------------------------------------- the scope of the current transaction
-- Set per transaction by gis.security.scope with set_config('app.scope', ..., true). Outside such a
-- transaction the setting is unset or '' -- and '' as an ltree is the ancestor of every path, so an
-- unset scope must raise, never quietly mean "everything".
CREATE FUNCTION app.current_scope() RETURNS ltree LANGUAGE plpgsql STABLE AS $$
DECLARE
    scope text := current_setting('app.scope', true);
BEGIN
    IF scope IS NULL OR btrim(scope) = '' THEN
        RAISE EXCEPTION USING ERRCODE = '42501',
            MESSAGE = '未设置访问范围，拒绝访问 (no access scope is set for this transaction; refusing)',
            HINT = 'Use gis.security.scope.scoped_connection / scoped_session.';
    END IF;
    RETURN scope::ltree;
END $$;

CREATE FUNCTION app.current_user_id() RETURNS bigint LANGUAGE sql STABLE AS $$
    SELECT nullif(current_setting('app.user_id', true), '')::bigint
$$;

-- ---------------------------------------------------------------- change history (who, when, before/after)
CREATE TABLE change_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    table_name  text NOT NULL,
    row_id      text,
    op          text NOT NULL CHECK (op IN ('insert', 'update', 'delete')),
    user_id     bigint,
    org_path    ltree,
    before      jsonb,             -- for an update: only the columns that changed
    after       jsonb
);
CREATE INDEX change_log_row ON change_log (table_name, row_id);
CREATE INDEX change_log_at ON change_log (at);
CREATE INDEX change_log_org_path_gist ON change_log USING gist (org_path);

-- SECURITY DEFINER: the app role may read the history of its scope but not write it directly.
CREATE FUNCTION app.log_change() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public AS $$
DECLARE
    old_row jsonb;
    new_row jsonb;
    before_doc jsonb;
    after_doc jsonb;
    row_doc jsonb;
BEGIN
    IF TG_OP <> 'INSERT' THEN old_row := to_jsonb(OLD); END IF;
    IF TG_OP <> 'DELETE' THEN new_row := to_jsonb(NEW); END IF;
    IF TG_OP = 'UPDATE' THEN
        SELECT jsonb_object_agg(n.key, o.value), jsonb_object_agg(n.key, n.value)
          INTO before_doc, after_doc
          FROM jsonb_each(new_row) n JOIN jsonb_each(old_row) o ON o.key = n.key
         WHERE n.value IS DISTINCT FROM o.value AND n.key <> 'updated_at';
        IF before_doc IS NULL THEN
            RETURN NULL;  -- nothing but the timestamp changed
        END IF;
    ELSE
        before_doc := old_row;
        after_doc := new_row;
    END IF;
    row_doc := coalesce(new_row, old_row);
    INSERT INTO change_log (table_name, row_id, op, user_id, org_path, before, after)
    VALUES (TG_TABLE_NAME, coalesce(row_doc ->> 'id', row_doc ->> 'person_id'), lower(TG_OP),
            app.current_user_id(), (row_doc ->> 'org_path')::ltree,
            app.mask_pii(before_doc), app.mask_pii(after_doc));
    RETURN NULL;
END $$;
REVOKE ALL ON FUNCTION app.log_change() FROM PUBLIC;

ALTER TABLE change_log ENABLE ROW LEVEL SECURITY;
CREATE POLICY scope ON change_log FOR SELECT TO {app_role}
    USING (org_path <@ (SELECT app.current_scope()));
GRANT SELECT ON change_log TO {app_role};

-- ---------------------------------------------------------------- app.protect: how a table is declared
-- Every table with personal or territorial rows (an org_path column) is declared protected by calling
-- SELECT app.protect('the_table') in its migration. It turns on row-level security with the scope policy
-- for the app role, grants the app role its DML, and records the change history -- except for writes by
-- the owner role, i.e. migrations and bulk loads: a demo load of two million rows must not write two
-- million history rows (the WHEN clause keeps the trigger function from even being called).
-- With see_ancestors the app role also sees the rows ABOVE its scope (the territory tree: breadcrumbs and
-- the parents' names), but writes only inside.
CREATE FUNCTION app.protect(tbl regclass, see_ancestors boolean DEFAULT false) RETURNS void
    LANGUAGE plpgsql AS $$
DECLARE
    inside constant text := 'org_path <@ (SELECT app.current_scope())';
    above constant text := '(SELECT app.current_scope()) <@ org_path';
    policy record;
BEGIN
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', tbl);
    FOR policy IN SELECT polname FROM pg_policy WHERE polrelid = tbl LOOP
        EXECUTE format('DROP POLICY %I ON %s', policy.polname, tbl);
    END LOOP;
    IF see_ancestors THEN
        EXECUTE format('CREATE POLICY scope_read ON %s FOR SELECT TO %I USING (%s OR %s)',
                       tbl, '{app_role}', inside, above);
        EXECUTE format('CREATE POLICY scope_insert ON %s FOR INSERT TO %I WITH CHECK (%s)',
                       tbl, '{app_role}', inside);
        EXECUTE format('CREATE POLICY scope_update ON %s FOR UPDATE TO %I USING (%s) WITH CHECK (%s)',
                       tbl, '{app_role}', inside, inside);
        EXECUTE format('CREATE POLICY scope_delete ON %s FOR DELETE TO %I USING (%s)',
                       tbl, '{app_role}', inside);
    ELSE
        EXECUTE format('CREATE POLICY scope ON %s TO %I USING (%s) WITH CHECK (%s)',
                       tbl, '{app_role}', inside, inside);
    END IF;
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO %I', tbl, '{app_role}');
    EXECUTE format('DROP TRIGGER IF EXISTS change_log ON %s', tbl);
    EXECUTE format('CREATE TRIGGER change_log AFTER INSERT OR UPDATE OR DELETE ON %s FOR EACH ROW '
                   'WHEN (current_user <> %L) EXECUTE FUNCTION app.log_change()', tbl, '{owner_role}');
END $$;
REVOKE ALL ON FUNCTION app.protect(regclass, boolean) FROM PUBLIC;

SELECT app.protect('territory_unit', see_ancestors => true);
SELECT app.protect(t) FROM unnest(ARRAY['compound', 'building', 'house', 'person', 'person_floating',
                                         'person_foreign', 'residence']::regclass[]) AS t;

-- The derived figures count what the reader may see, not what the view's owner may see.
ALTER VIEW grid_figures SET (security_invoker = true);
ALTER VIEW building_figures SET (security_invoker = true);
GRANT SELECT ON grid_figures, building_figures, code_item TO {app_role};

-- ---------------------------------------------------------------- users, login attempts, sessions
-- Roles and their permissions are a catalogue in code (gis/security/roles.py); a user has one role and
-- one scope, the path of the territory unit they belong to.
CREATE TABLE users (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username             text NOT NULL UNIQUE
                         CHECK (username = lower(username) AND length(username) BETWEEN 2 AND 64
                                AND username !~ '\s'),
    name                 text NOT NULL,
    password_hash        text NOT NULL,                 -- Argon2id, PHC string
    role                 text NOT NULL CHECK (role ~ '^[a-z_]+$'),
    scope_path           ltree NOT NULL REFERENCES territory_unit (path) ON UPDATE CASCADE
                         CHECK (nlevel(scope_path) >= 1),
    department           text,
    active               boolean NOT NULL DEFAULT true,
    must_change_password boolean NOT NULL DEFAULT false,
    password_changed_at  timestamptz NOT NULL DEFAULT now(),
    last_login_at        timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX users_scope_path_gist ON users USING gist (scope_path);

-- Attempts and locks are keyed by the name typed, not by user id: a name that does not exist locks
-- exactly like one that does, so the lockout message tells nobody whether an account exists.
CREATE TABLE login_attempt (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username    text NOT NULL,
    at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    succeeded   boolean NOT NULL,
    client_addr text
);
CREATE INDEX login_attempt_username_at ON login_attempt (username, at);

CREATE TABLE login_lock (
    username     text PRIMARY KEY,
    locked_until timestamptz,
    reset_at     timestamptz           -- failures before this (a success, an unlock) no longer count
);

-- Opaque random tokens; only their SHA-256 is stored, so a copy of this table opens no session.
CREATE TABLE user_session (
    token_hash   text PRIMARY KEY,
    user_id      bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    revoked_at   timestamptz,
    client_addr  text
);
CREATE INDEX user_session_user ON user_session (user_id);

GRANT SELECT, INSERT, UPDATE ON users, login_lock, user_session TO {app_role};
GRANT SELECT, INSERT ON login_attempt TO {app_role};

-- ---------------------------------------------------------------- access log (访问日志), hash-chained
-- Append-only for the app role (SELECT and INSERT only), and nobody may UPDATE, DELETE or TRUNCATE it
-- without first disabling the guard trigger -- which only a superuser or the owner can, and which the
-- hash chain then exposes: each row's hash is sha256(previous hash || canonical row), so an edited row
-- no longer matches its hash, a deleted one breaks the next row's link and the gapless ids, and a cut-off
-- tail no longer matches the head kept in app.access_log_head (`gridgov audit verify`).
CREATE TABLE access_log (
    id           bigint PRIMARY KEY,   -- assigned by the chain trigger: gapless, in chain order
    at           timestamptz NOT NULL,
    user_id      bigint,
    username     text,
    action       text NOT NULL,        -- login, login_failed, logout, read_person, search_people, reveal,
                                       -- reveal_denied, export, ...
    target_table text,
    target_id    text,
    reason       text,
    outcome      text NOT NULL DEFAULT 'ok',  -- ok, granted, denied, failed, not_found
    client_addr  text,
    detail       jsonb,
    prev_hash    text NOT NULL,
    hash         text NOT NULL
);
CREATE INDEX access_log_at ON access_log (at);
CREATE INDEX access_log_user_at ON access_log (user_id, at);
CREATE INDEX access_log_target ON access_log (target_table, target_id);

-- The end of the chain. Its row lock serialises writers (as an advisory lock would) and, unlike one,
-- stays right under REPEATABLE READ: a second writer fails with a serialisation error instead of
-- forking the chain from a stale snapshot. It also anchors the tail.
CREATE TABLE app.access_log_head (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    seq       bigint NOT NULL,
    hash      text NOT NULL
);
INSERT INTO app.access_log_head (seq, hash) VALUES (0, repeat('0', 64));

-- The canonical form of a row: a jsonb document (keys in jsonb's fixed order), the time in UTC, so the
-- hash does not depend on the session's time zone or on column order.
CREATE FUNCTION app.access_log_digest(prev_hash text, r access_log) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT encode(sha256(convert_to(prev_hash || jsonb_build_object(
        'id', r.id,
        'at', to_char(r.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'user_id', r.user_id,
        'username', r.username,
        'action', r.action,
        'target_table', r.target_table,
        'target_id', r.target_id,
        'reason', r.reason,
        'outcome', r.outcome,
        'client_addr', r.client_addr,
        'detail', r.detail
    )::text, 'UTF8')), 'hex')
$$;

CREATE FUNCTION app.access_log_chain() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public AS $$
DECLARE
    head app.access_log_head%ROWTYPE;
BEGIN
    -- pg_restore, run by the owner, brings rows with their hashes: keep them as they were.
    IF NEW.hash IS NOT NULL AND session_user = '{owner_role}' THEN
        RETURN NEW;
    END IF;
    SELECT * INTO STRICT head FROM app.access_log_head FOR UPDATE;
    NEW.id := head.seq + 1;
    NEW.at := clock_timestamp();
    NEW.user_id := coalesce(NEW.user_id, app.current_user_id());
    IF NEW.username IS NULL AND NEW.user_id IS NOT NULL THEN
        SELECT u.username INTO NEW.username FROM users u WHERE u.id = NEW.user_id;
    END IF;
    NEW.client_addr := coalesce(NEW.client_addr, nullif(current_setting('app.client_addr', true), ''));
    NEW.prev_hash := head.hash;
    NEW.hash := app.access_log_digest(head.hash, NEW);
    UPDATE app.access_log_head SET seq = NEW.id, hash = NEW.hash;
    RETURN NEW;
END $$;
REVOKE ALL ON FUNCTION app.access_log_chain() FROM PUBLIC;
CREATE TRIGGER access_log_chain BEFORE INSERT ON access_log FOR EACH ROW
    EXECUTE FUNCTION app.access_log_chain();

CREATE FUNCTION app.access_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = '42501',
        MESSAGE = '访问日志只能追加，不能修改或删除 (the access log is append-only)';
END $$;
CREATE TRIGGER access_log_append_only BEFORE UPDATE OR DELETE ON access_log FOR EACH ROW
    EXECUTE FUNCTION app.access_log_append_only();
CREATE TRIGGER access_log_no_truncate BEFORE TRUNCATE ON access_log FOR EACH STATEMENT
    EXECUTE FUNCTION app.access_log_append_only();

GRANT SELECT, INSERT ON access_log TO {app_role};
GRANT SELECT ON app.access_log_head TO {app_role};  -- so an auditor in the app can verify too
