-- The org_path cascades and "a new current residence moves the person" as statement-level triggers over
-- transition tables. As row-level triggers (0001) a register load of a million residences ran a plpgsql
-- call and a one-row UPDATE of person per row — the biggest cost of the load; here each statement does
-- one set-based UPDATE per table it touches, whatever its row count. What a single-row write sees is the
-- same: the same rows end with the same paths, and the cascade still runs inside the writing statement.
--
-- PostgreSQL allows transition tables on a trigger of one event only, so residence has one trigger for
-- INSERT and one for UPDATE. The path comparisons are made as text, as in 0001 (ltree's "=" lives in
-- schema public, which pg_restore's empty search_path does not see).

CREATE FUNCTION app.cascade_org_path_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'residence' THEN
        -- A new current residence, or an updated one, puts its person where it is (a person already
        -- there is not rewritten: no history row, no cascade).
        UPDATE person p SET org_path = n.org_path, district_code = n.district_code
          FROM new_rows n
         WHERE n.until IS NULL AND p.id = n.person_id AND p.org_path::text IS DISTINCT FROM n.org_path::text;
        RETURN NULL;
    END IF;
    -- The others cascade on UPDATE only, and only for the rows whose path changed.
    IF TG_TABLE_NAME = 'building' THEN
        UPDATE house h SET org_path = n.org_path, district_code = n.district_code
          FROM new_rows n JOIN old_rows o ON o.id = n.id
         WHERE h.building_id = n.id AND o.org_path::text IS DISTINCT FROM n.org_path::text;
    ELSIF TG_TABLE_NAME = 'house' THEN
        UPDATE residence r SET org_path = n.org_path, district_code = n.district_code
          FROM new_rows n JOIN old_rows o ON o.id = n.id
         WHERE r.house_id = n.id AND r.until IS NULL AND o.org_path::text IS DISTINCT FROM n.org_path::text;
    ELSIF TG_TABLE_NAME = 'person' THEN
        UPDATE person_floating f SET org_path = n.org_path, district_code = n.district_code
          FROM new_rows n JOIN old_rows o ON o.id = n.id
         WHERE f.person_id = n.id AND o.org_path::text IS DISTINCT FROM n.org_path::text;
        UPDATE person_foreign f SET org_path = n.org_path, district_code = n.district_code
          FROM new_rows n JOIN old_rows o ON o.id = n.id
         WHERE f.person_id = n.id AND o.org_path::text IS DISTINCT FROM n.org_path::text;
    END IF;
    RETURN NULL;
END $$;

DROP TRIGGER building_org_path_cascade ON building;
DROP TRIGGER house_org_path_cascade ON house;
DROP TRIGGER person_org_path_cascade ON person;
DROP TRIGGER residence_moves_person ON residence;

CREATE TRIGGER building_org_path_cascade AFTER UPDATE ON building
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION app.cascade_org_path_rows();
CREATE TRIGGER house_org_path_cascade AFTER UPDATE ON house
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION app.cascade_org_path_rows();
CREATE TRIGGER person_org_path_cascade AFTER UPDATE ON person
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION app.cascade_org_path_rows();
CREATE TRIGGER residence_moves_person AFTER INSERT ON residence
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION app.cascade_org_path_rows();
CREATE TRIGGER residence_moves_person_update AFTER UPDATE ON residence
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION app.cascade_org_path_rows();
