-- 0014 put territory_unit on a GiST of (org_path, updated_at) for the temporal extent's nearest-neighbour
-- walk. territory_unit's read policy (a unit and its ancestors: an OR) is no index condition of that walk,
-- which tests the policy row by row (0014 says so), and measured on 10,000 grids in 100 communities, as
-- the app role:
--
--   grid layer's extent        district scope   community scope   grid scope
--   (org_path, updated_at)     1.5 ms           8.9 ms            7.6 ms
--   org_path alone             19 ms            0.55 ms           0.55 ms
--
-- Grid workers (most users) ask in a grid's or community's scope; a commander's /collections pays ~20 ms
-- more. Scope queries on the units (a BitmapOr of the policy's two arms) are as fast either way (0.2 ms
-- for a community's grids). And a boundary load of 10,000 new grids keeps the one-column GiST up in about
-- 0.09 s of server time against 0.13 s, the costliest index of the load: with it, the loader's median
-- round went from 1.65-1.77x ogr2ogr's time to 1.41-1.46x (bench/bench_etl.py boundaries, interleaved).
DROP INDEX territory_unit_org_path_updated_at;
CREATE INDEX territory_unit_org_path_gist ON territory_unit USING gist (org_path);
