-- Undo 0007_patrol (run through str.format like the upgrade: no curly braces but the role names).
DROP TABLE IF EXISTS worker_position, worker_latest CASCADE;
DROP FUNCTION IF EXISTS app.ensure_position_days(date, date), app.grid_at(double precision, double precision);
