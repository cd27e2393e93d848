-- Undo 0009_notices (run through str.format like the upgrade: no curly braces but the role names).
DROP POLICY IF EXISTS shared_read ON shared_file;
GRANT DELETE ON shared_file TO {app_role};
ALTER TABLE shared_file DROP COLUMN IF EXISTS folder_id, DROP COLUMN IF EXISTS content_type,
    DROP COLUMN IF EXISTS sha256, DROP COLUMN IF EXISTS uploader_id, DROP COLUMN IF EXISTS share_subtree,
    DROP COLUMN IF EXISTS department;
DROP TABLE IF EXISTS shared_folder, notice_attachment, notice_recipient CASCADE;
DROP POLICY IF EXISTS addressed ON notice;
ALTER TABLE notice DROP CONSTRAINT IF EXISTS notice_red_header_numbered;
ALTER TABLE notice DROP COLUMN IF EXISTS sender_id, DROP COLUMN IF EXISTS doc_no,
    DROP COLUMN IF EXISTS issuing_office, DROP COLUMN IF EXISTS targets;
ALTER TABLE notice ALTER COLUMN read_count DROP DEFAULT, ALTER COLUMN unread_count DROP DEFAULT;
DROP FUNCTION IF EXISTS app.notice_audience(bigint[], text[], ltree[], ltree[], text[]),
    app.notice_recipients_added(), app.notice_recipient_read(), app.is_notice_recipient(bigint),
    app.is_notice_sender(bigint), app.can_see_receipts(bigint);
