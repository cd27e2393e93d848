DROP INDEX territory_unit_level;
CREATE INDEX territory_unit_level ON territory_unit (level);

DROP TRIGGER territory_unit_path_check ON territory_unit;
DROP FUNCTION app.check_territory_unit_paths();
DROP TRIGGER territory_unit_path_insert ON territory_unit;
DROP TRIGGER territory_unit_path ON territory_unit;
CREATE TRIGGER territory_unit_path BEFORE INSERT OR UPDATE OF parent_id, code ON territory_unit
    FOR EACH ROW EXECUTE FUNCTION app.territory_unit_path();
