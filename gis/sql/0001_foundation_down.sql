DROP VIEW IF EXISTS building_figures, grid_figures;
DROP TABLE IF EXISTS residence, person_foreign, person_floating, person, house, building, compound,
    territory_unit, code_item CASCADE;
DROP FUNCTION IF EXISTS app.cascade_org_path(), app.inherit_org_path(), app.territory_unit_path();
