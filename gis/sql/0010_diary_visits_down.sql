-- Undo 0010_diary_visits (run through str.format like the upgrade: no curly braces but the role names).
DROP TABLE IF EXISTS field_photo_data, field_photo, diary_comment, diary_house, diary_person CASCADE;
DROP INDEX IF EXISTS assistance_visit_latest, assistance_visit_client_id, diary_state, diary_worker_date,
    diary_client_id;
ALTER TABLE assistance_visit DROP COLUMN IF EXISTS visitor_id, DROP COLUMN IF EXISTS client_id,
    DROP COLUMN IF EXISTS geom, DROP COLUMN IF EXISTS source_crs;
ALTER TABLE diary DROP COLUMN IF EXISTS worker_id, DROP COLUMN IF EXISTS state,
    DROP COLUMN IF EXISTS client_id, DROP COLUMN IF EXISTS source_crs, DROP COLUMN IF EXISTS submitted_at,
    DROP COLUMN IF EXISTS reviewed_at, DROP COLUMN IF EXISTS reviewed_by,
    DROP COLUMN IF EXISTS reviewed_by_name;
