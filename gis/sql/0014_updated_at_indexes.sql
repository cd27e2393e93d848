-- The tables the map layers are dated by (layers/catalogue.py, Temporal.table): territory_unit (the
-- territory and grid layers), compound, building, house and person. Without an index on updated_at every
-- OGC /collections request -- which QGIS asks often -- found each layer's first and last change by
-- reading every row in the user's scope (a district's people: two million rows, per request).
--
-- GiST on (org_path, updated_at) (btree_gist), not a btree on updated_at: the first and last change are
-- asked as "ORDER BY updated_at <-> <an end of time> LIMIT 1" (gis/api/ogc.py), a nearest-neighbour walk
-- of this index whose index condition is the scope policy itself (org_path <@ scope), so it stops at the
-- scope's first row whatever the scope's size. A btree walk on updated_at alone filters the scope row by
-- row: instant for a district, but a grid worker's walk passes every row changed after (or before) their
-- grid's -- after a bulk load, most of the table (1.2 s for the people of a 2,000,000-person district).
-- territory_unit's policy (its rows and their ancestors: an OR) is no index condition; its walk tests the
-- policy row by row, over a few thousand rows.
--
-- A scope query on org_path alone is as fast on these as on the <table>_org_path_gist of 0001 (8 ms for a
-- community's 16,146 people either way), so they replace those: one GiST per table, as before, and a bulk
-- load of people or grids pays for no more index than it did (an extra GiST made a 200,000-person COPY
-- about 30 % slower).
CREATE INDEX territory_unit_org_path_updated_at ON territory_unit USING gist (org_path, updated_at);
CREATE INDEX compound_org_path_updated_at ON compound USING gist (org_path, updated_at);
CREATE INDEX building_org_path_updated_at ON building USING gist (org_path, updated_at);
CREATE INDEX house_org_path_updated_at ON house USING gist (org_path, updated_at);
CREATE INDEX person_org_path_updated_at ON person USING gist (org_path, updated_at);
DROP INDEX territory_unit_org_path_gist, compound_org_path_gist, building_org_path_gist, house_org_path_gist,
    person_org_path_gist;
