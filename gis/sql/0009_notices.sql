-- Notices with read receipts (通知公告) and shared files in folders (内部硬盘共享), on the registry tables
-- ``notice`` and ``shared_file`` of 0003.
--
-- Run through Python's str.format by gis.migrate.run_sql: the role names are placeholders in curly
-- braces, and no other curly brace may appear in this file.
--
-- Who sees a notice. A notice carries its sender's unit as org_path, so the scope policy app.protect
-- gave it (0003) shows it to the sender's unit and everyone above. Its recipients are often elsewhere
-- (a street's notice to the district's departments; a district notice to every grid worker), so two
-- more read policies: the sender sees their notices, a recipient sees what was addressed to them. The
-- recipients are resolved once, AT SEND TIME, into notice_recipient rows (one per user, with read_at):
-- who joins a community next week does not receive last week's notice, and the read counts are exact.
--
-- Policies that look at another table go through SECURITY DEFINER functions (notice_recipient's policy
-- asks about notice, notice's asks about notice_recipient: direct subqueries would recurse). Every
-- added policy also evaluates app.current_scope(), so a transaction without a scope still fails closed.

-- ---------------------------------------------------------------- notice: sender, 文号, targets
ALTER TABLE notice
    ADD COLUMN sender_id      bigint,                       -- users.id (no FK: Citus, and users go)
    ADD COLUMN doc_no         text,                         -- 文号, e.g. 鼓综治〔2026〕3号
    ADD COLUMN issuing_office text,                         -- 发文机关
    ADD COLUMN targets        jsonb NOT NULL DEFAULT '[]'::jsonb;  -- what the sender chose, as chosen
ALTER TABLE notice ALTER COLUMN read_count SET DEFAULT 0, ALTER COLUMN unread_count SET DEFAULT 0;
-- A red-header document without its number is not one, whichever way it is written.
ALTER TABLE notice ADD CONSTRAINT notice_red_header_numbered CHECK (
    notice_type IS DISTINCT FROM 'red_header'
    OR (coalesce(btrim(doc_no), '') <> '' AND coalesce(btrim(issuing_office), '') <> ''));
CREATE INDEX notice_sender ON notice (sender_id, id DESC) WHERE sender_id IS NOT NULL;
COMMENT ON COLUMN notice.sender_id IS '发送人（用户编号）';
COMMENT ON COLUMN notice.doc_no IS '文号';
COMMENT ON COLUMN notice.issuing_office IS '发文机关';
COMMENT ON COLUMN notice.targets IS '发送对象（用户、角色、区划、部门）';

CREATE TABLE notice_recipient (
    notice_id     bigint NOT NULL REFERENCES notice (id) ON DELETE CASCADE,
    user_id       bigint NOT NULL,                  -- users.id
    user_name     text NOT NULL,                    -- as it was when sent
    unit_name     text,                             -- the recipient's unit, as it was when sent
    department    text,
    read_at       timestamptz,
    org_path      ltree NOT NULL,                   -- the recipient's scope when sent
    district_code char(6) NOT NULL,
    PRIMARY KEY (notice_id, user_id)
);
CREATE INDEX notice_recipient_user ON notice_recipient (user_id, notice_id DESC);
CREATE INDEX notice_recipient_unread ON notice_recipient (user_id) WHERE read_at IS NULL;
CREATE INDEX notice_recipient_org_path_gist ON notice_recipient USING gist (org_path);
COMMENT ON TABLE notice_recipient IS '通知接收人与阅读回执';

CREATE TABLE notice_attachment (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    notice_id     bigint NOT NULL REFERENCES notice (id) ON DELETE CASCADE,
    file_name     text NOT NULL CHECK (length(file_name) BETWEEN 1 AND 255),
    content_type  text NOT NULL,
    size          bigint NOT NULL CHECK (size >= 0),
    sha256        text NOT NULL CHECK (sha256 ~ '^[0-9a-f]+$' AND length(sha256) = 64),  -- the file store's key
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notice_attachment_notice ON notice_attachment (notice_id);
COMMENT ON TABLE notice_attachment IS '通知附件（文件内容在文件库中，按 SHA-256 存放）';

-- SECURITY DEFINER: they answer for the transaction's user whatever that user may see of the tables.
CREATE FUNCTION app.is_notice_recipient(nid bigint) RETURNS boolean LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public AS $$
    SELECT EXISTS (SELECT 1 FROM notice_recipient r WHERE r.notice_id = nid AND r.user_id = app.current_user_id())
$$;
CREATE FUNCTION app.is_notice_sender(nid bigint) RETURNS boolean LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public AS $$
    SELECT EXISTS (SELECT 1 FROM notice n WHERE n.id = nid AND n.sender_id = app.current_user_id())
$$;
-- The receipts of a notice: its sender's, and those of the units above the sender (who supervise).
CREATE FUNCTION app.can_see_receipts(nid bigint) RETURNS boolean LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public AS $$
    SELECT EXISTS (SELECT 1 FROM notice n WHERE n.id = nid
                      AND (n.sender_id = app.current_user_id() OR n.org_path <@ app.current_scope()))
$$;
REVOKE ALL ON FUNCTION app.is_notice_recipient(bigint), app.is_notice_sender(bigint),
    app.can_see_receipts(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.is_notice_recipient(bigint), app.is_notice_sender(bigint),
    app.can_see_receipts(bigint) TO {app_role};

-- notice keeps the scope policy of 0003 (its unit and above: read, and write inside the scope) and gains:
CREATE POLICY addressed ON notice FOR SELECT TO {app_role}
    USING ((SELECT app.current_scope()) IS NOT NULL
           AND (sender_id = app.current_user_id() OR app.is_notice_recipient(id)));

-- Receipts keep the change history like every table with an org_path (who was sent what, who opened it
-- when), but no deletes (a notice is withdrawn by soft delete). A recipient may set only their read_at.
ALTER TABLE notice_recipient ENABLE ROW LEVEL SECURITY;
CREATE TRIGGER change_log AFTER INSERT OR UPDATE OR DELETE ON notice_recipient FOR EACH ROW
    WHEN (current_user <> '{owner_role}') EXECUTE FUNCTION app.log_change();
CREATE POLICY own_or_receipts ON notice_recipient FOR SELECT TO {app_role}
    USING ((SELECT app.current_scope()) IS NOT NULL
           AND (user_id = app.current_user_id() OR app.can_see_receipts(notice_id)));
CREATE POLICY sender_adds ON notice_recipient FOR INSERT TO {app_role}
    WITH CHECK ((SELECT app.current_scope()) IS NOT NULL AND app.is_notice_sender(notice_id));
CREATE POLICY reader_marks ON notice_recipient FOR UPDATE TO {app_role}
    USING ((SELECT app.current_scope()) IS NOT NULL AND user_id = app.current_user_id())
    WITH CHECK (user_id = app.current_user_id());
GRANT SELECT, INSERT ON notice_recipient TO {app_role};
GRANT UPDATE (read_at) ON notice_recipient TO {app_role};

-- An attachment is visible exactly when its notice is; only the sender adds one.
ALTER TABLE notice_attachment ENABLE ROW LEVEL SECURITY;
CREATE POLICY via_notice ON notice_attachment FOR SELECT TO {app_role}
    USING (EXISTS (SELECT 1 FROM notice n WHERE n.id = notice_id));
CREATE POLICY sender_attaches ON notice_attachment FOR INSERT TO {app_role}
    WITH CHECK ((SELECT app.current_scope()) IS NOT NULL AND app.is_notice_sender(notice_id));
GRANT SELECT, INSERT ON notice_attachment TO {app_role};

-- read_count / unread_count follow the receipts. Increments, not recounts: two recipients opening the
-- notice at the same moment each add one under the row lock, where two recounts from two snapshots could
-- both write a stale figure. SECURITY DEFINER: a recipient outside the sender's unit may not (and need
-- not) update the notice itself; as the owner, the counts write no change history either.
CREATE FUNCTION app.notice_recipients_added() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public AS $$
BEGIN
    UPDATE notice n SET read_count = coalesce(n.read_count, 0) + a.read,
                        unread_count = coalesce(n.unread_count, 0) + a.unread
      FROM (SELECT notice_id, count(read_at) AS read, count(*) - count(read_at) AS unread
              FROM added GROUP BY notice_id) a
     WHERE n.id = a.notice_id;
    RETURN NULL;
END $$;
CREATE TRIGGER notice_recipient_counts_insert AFTER INSERT ON notice_recipient
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION app.notice_recipients_added();

CREATE FUNCTION app.notice_recipient_read() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public AS $$
DECLARE
    delta integer := CASE WHEN NEW.read_at IS NOT NULL THEN 1 ELSE -1 END;
BEGIN
    UPDATE notice SET read_count = coalesce(read_count, 0) + delta,
                      unread_count = coalesce(unread_count, 0) - delta
     WHERE id = NEW.notice_id;
    RETURN NULL;
END $$;
CREATE TRIGGER notice_recipient_counts_read AFTER UPDATE OF read_at ON notice_recipient FOR EACH ROW
    WHEN ((OLD.read_at IS NULL) <> (NEW.read_at IS NULL)) EXECUTE FUNCTION app.notice_recipient_read();
REVOKE ALL ON FUNCTION app.notice_recipients_added(), app.notice_recipient_read() FROM PUBLIC;

-- Who a notice reaches, resolved by the database for the sender's transaction: active users of the
-- sender's district named one by one, holding one of the roles (inside the sender's scope), whose unit
-- is one of the units (exactly) or inside one of the subtrees, or in one of the departments (a code of
-- table `department`; users.department may hold the code or the Chinese name). SECURITY DEFINER: the
-- sender may not see other streets' territory rows, yet a department officer's unit must be named.
CREATE FUNCTION app.notice_audience(user_ids bigint[], roles text[], unit_paths ltree[],
                                    subtree_paths ltree[], departments text[])
    RETURNS TABLE (user_id bigint, user_name text, unit_name text, department text, org_path ltree,
                   district_code char(6))
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT u.id, u.name, t.name, u.department, u.scope_path, t.district_code
      FROM users u JOIN territory_unit t ON t.path = u.scope_path
     WHERE u.active
       AND t.district_code = app.current_district()
       AND (u.id = ANY (user_ids)
            OR (u.role = ANY (roles) AND u.scope_path <@ app.current_scope())
            OR u.scope_path = ANY (unit_paths)
            OR subtree_paths @> u.scope_path
            OR EXISTS (SELECT 1 FROM code_item c
                        WHERE c.table_key = 'department' AND c.code = ANY (departments)
                          AND u.department IN (c.code, c.name_zh)))
$$;
REVOKE ALL ON FUNCTION app.notice_audience(bigint[], text[], ltree[], ltree[], text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.notice_audience(bigint[], text[], ltree[], ltree[], text[]) TO {app_role};

-- ---------------------------------------------------------------- shared files and their folders
-- A folder or file is shared with one territory unit (org_path) -- with its subtree or not -- and/or
-- one department. The scope policy of app.protect shows it to that unit and the units above it (who
-- manage it); the added read policy shows it to the units below (when shared with the subtree) and to
-- the department's officers of the same district. The bytes live on disk in the file store (files_dir),
-- named by their SHA-256, never by the user's file name.
CREATE TABLE shared_folder (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 100 AND name !~ '[/\\[:cntrl:]]'),
    parent_id     bigint REFERENCES shared_folder (id),
    share_subtree boolean NOT NULL DEFAULT true,
    department    text,
    created_by_name text,
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
CREATE UNIQUE INDEX shared_folder_name ON shared_folder (coalesce(parent_id, 0), org_path, name)
    WHERE deleted_at IS NULL;
CREATE INDEX shared_folder_org_path_gist ON shared_folder USING gist (org_path);
COMMENT ON TABLE shared_folder IS '共享文件夹';

ALTER TABLE shared_file
    ADD COLUMN folder_id     bigint REFERENCES shared_folder (id),
    ADD COLUMN content_type  text,
    ADD COLUMN sha256        text CHECK (sha256 ~ '^[0-9a-f]+$' AND length(sha256) = 64),
    ADD COLUMN uploader_id   bigint,
    ADD COLUMN share_subtree boolean NOT NULL DEFAULT true,
    ADD COLUMN department    text;
CREATE INDEX shared_file_folder ON shared_file (folder_id) WHERE deleted_at IS NULL;
COMMENT ON COLUMN shared_file.department IS '共享部门';

SELECT app.protect('shared_folder');
DO $$
DECLARE
    tbl text;
BEGIN
    FOREACH tbl IN ARRAY ARRAY['shared_folder', 'shared_file'] LOOP
        EXECUTE format('CREATE POLICY shared_read ON %I FOR SELECT TO %I USING ('
                       '(SELECT app.current_scope()) IS NOT NULL AND deleted_at IS NULL AND ('
                       '(share_subtree AND (SELECT app.current_scope()) <@ org_path)'
                       ' OR (department IS NOT NULL AND department = (SELECT app.current_department())'
                       '     AND district_code = (SELECT app.current_district()))))',
                       tbl, '{app_role}');
    END LOOP;
END $$;
-- Deleting is soft (deleted_at, deleted_by; the change history and the access log keep who and when).
REVOKE DELETE ON shared_folder, shared_file FROM {app_role};
