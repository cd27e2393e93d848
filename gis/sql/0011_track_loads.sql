-- Track files (GPX, CSV) are loads too: recorded in data_load beside boundaries and registers.
ALTER TABLE data_load DROP CONSTRAINT data_load_kind_check;
ALTER TABLE data_load ADD CONSTRAINT data_load_kind_check
    CHECK (kind IN ('boundaries', 'register', 'tracks'));
