-- Back to 0001's row-level cascades.
DROP TRIGGER IF EXISTS building_org_path_cascade ON building;
DROP TRIGGER IF EXISTS house_org_path_cascade ON house;
DROP TRIGGER IF EXISTS person_org_path_cascade ON person;
DROP TRIGGER IF EXISTS residence_moves_person ON residence;
DROP TRIGGER IF EXISTS residence_moves_person_update ON residence;
DROP FUNCTION IF EXISTS app.cascade_org_path_rows();

CREATE TRIGGER building_org_path_cascade AFTER UPDATE ON building FOR EACH ROW
    WHEN (OLD.org_path::text IS DISTINCT FROM NEW.org_path::text) EXECUTE FUNCTION app.cascade_org_path();
CREATE TRIGGER house_org_path_cascade AFTER UPDATE ON house FOR EACH ROW
    WHEN (OLD.org_path::text IS DISTINCT FROM NEW.org_path::text) EXECUTE FUNCTION app.cascade_org_path();
CREATE TRIGGER person_org_path_cascade AFTER UPDATE ON person FOR EACH ROW
    WHEN (OLD.org_path::text IS DISTINCT FROM NEW.org_path::text) EXECUTE FUNCTION app.cascade_org_path();
CREATE TRIGGER residence_moves_person AFTER INSERT OR UPDATE ON residence FOR EACH ROW
    WHEN (NEW.until IS NULL) EXECUTE FUNCTION app.cascade_org_path();
