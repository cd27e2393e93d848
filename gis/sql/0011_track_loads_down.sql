DELETE FROM data_load WHERE kind = 'tracks';
ALTER TABLE data_load DROP CONSTRAINT data_load_kind_check;
ALTER TABLE data_load ADD CONSTRAINT data_load_kind_check CHECK (kind IN ('boundaries', 'register'));
