-- Undo 0002_access (run through str.format like the upgrade: no curly braces but the role names).
DROP TABLE IF EXISTS access_log, app.access_log_head, user_session, login_attempt, login_lock, users,
    change_log CASCADE;

DO $$
DECLARE
    tbl regclass;
    policy record;
BEGIN
    FOR tbl IN SELECT unnest(ARRAY['territory_unit', 'compound', 'building', 'house', 'person',
                                   'person_floating', 'person_foreign', 'residence']::regclass[]) LOOP
        FOR policy IN SELECT polname FROM pg_policy WHERE polrelid = tbl LOOP
            EXECUTE format('DROP POLICY %I ON %s', policy.polname, tbl);
        END LOOP;
        EXECUTE format('ALTER TABLE %s DISABLE ROW LEVEL SECURITY', tbl);
        EXECUTE format('DROP TRIGGER IF EXISTS change_log ON %s', tbl);
        EXECUTE format('REVOKE ALL ON %s FROM %I', tbl, '{app_role}');
    END LOOP;
END $$;

ALTER VIEW grid_figures RESET (security_invoker);
ALTER VIEW building_figures RESET (security_invoker);
REVOKE ALL ON grid_figures, building_figures, code_item FROM {app_role};

-- app.access_log_digest went with access_log (its argument is the table's row type).
DROP FUNCTION IF EXISTS app.protect(regclass, boolean), app.log_change(), app.access_log_chain(),
    app.access_log_append_only(), app.current_user_id(), app.current_scope(),
    app.mask_pii(jsonb), app.mask_id_number(text), app.mask_phone(text), app.mask_short(text),
    app.mask_keep_ends(text, integer, integer);
REVOKE USAGE ON SCHEMA app FROM {app_role};
