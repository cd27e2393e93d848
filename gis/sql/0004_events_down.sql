-- Undo 0004_events (run through str.format like the upgrade: no curly braces but the role names).
DROP TABLE IF EXISTS event_card, event_supervision, event_attachment_data, event_attachment, event_history, event, event_number
    CASCADE;
DROP FUNCTION IF EXISTS app.current_department(), app.current_district();
