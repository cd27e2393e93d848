-- Boundary loads (etl/boundaries.py) insert thousands of grids into territory_unit in one INSERT ... SELECT
-- that computes each unit's path, org_path and district_code from its parent in the same join. Two things
-- made that statement cost about as much as ogr2ogr's whole run:
--
-- * The path trigger (0001) ran a plpgsql call and a parent lookup per row even when the row already had
--   its path. It now fires on INSERT only for rows without one (the WHEN clause is evaluated without
--   calling plpgsql), and a statement-level trigger over the inserted rows checks, in one join, that every
--   path that was supplied is the parent's path plus the code and that org_path is the path: whoever
--   supplies a path can save the work, nobody can store a wrong one. Updates of parent_id or code still
--   recompute the path row by row, as before.
-- * territory_unit_level, a btree on a column of six values, was maintained for every grid and used only
--   for the few units above the grids (a grid lookup is always better served by the GiST or the path). It
--   is now partial: grids are not in it, and "level = 'street'" (or district, community ...) still uses it.

DROP TRIGGER territory_unit_path ON territory_unit;
CREATE TRIGGER territory_unit_path BEFORE UPDATE OF parent_id, code ON territory_unit
    FOR EACH ROW EXECUTE FUNCTION app.territory_unit_path();
CREATE TRIGGER territory_unit_path_insert BEFORE INSERT ON territory_unit
    FOR EACH ROW WHEN (NEW.path IS NULL) EXECUTE FUNCTION app.territory_unit_path();

-- The paths compared as text, as in 0013 (ltree's "=" lives in schema public, which pg_restore's empty
-- search_path does not see).
CREATE FUNCTION app.check_territory_unit_paths() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bad record;
BEGIN
    SELECT n.code, n.path::text AS path INTO bad
      FROM new_rows n LEFT JOIN territory_unit p ON p.id = n.parent_id
     WHERE n.path::text IS DISTINCT FROM CASE WHEN n.parent_id IS NULL THEN n.code
                                              ELSE p.path::text || '.' || n.code END
        OR n.org_path::text IS DISTINCT FROM n.path::text
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION USING ERRCODE = '23514',
            MESSAGE = format('单元 %s 的路径 %s 与上级路径加本级编码不一致 (territory_unit.path must be the '
                             'parent''s path plus the code, and org_path the path)', bad.code, bad.path);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER territory_unit_path_check AFTER INSERT ON territory_unit
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION app.check_territory_unit_paths();

DROP INDEX territory_unit_level;
CREATE INDEX territory_unit_level ON territory_unit (level) WHERE level <> 'grid';
