DROP TABLE IF EXISTS territory_unit_version;
DROP TABLE IF EXISTS data_load;
