-- Back to 0013: no index on updated_at; org_path's own GiST indexes as 0001 made them.
CREATE INDEX territory_unit_org_path_gist ON territory_unit USING gist (org_path);
CREATE INDEX compound_org_path_gist ON compound USING gist (org_path);
CREATE INDEX building_org_path_gist ON building USING gist (org_path);
CREATE INDEX house_org_path_gist ON house USING gist (org_path);
CREATE INDEX person_org_path_gist ON person USING gist (org_path);
DROP INDEX IF EXISTS territory_unit_org_path_updated_at, compound_org_path_updated_at,
    building_org_path_updated_at, house_org_path_updated_at, person_org_path_updated_at;
