DROP INDEX territory_unit_org_path_gist;
CREATE INDEX territory_unit_org_path_updated_at ON territory_unit USING gist (org_path, updated_at);
