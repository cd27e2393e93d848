-- Masking (脱敏) inside the database, for the copies the database makes itself (the change history).
-- A port of gis/masking.py for the forms numbers are stored in (gis/validation.py canonicalises them on
-- the way in) -- keep the two in step; tests/test_audit.py compares them on the same values.

CREATE FUNCTION app.mask_keep_ends(v text, head integer, tail integer) RETURNS text
    LANGUAGE sql IMMUTABLE AS $$
    SELECT left(v, head) || repeat('*', length(v) - head - tail) || right(v, tail)
$$;

-- At most two characters at each end, and at least half hidden.
CREATE FUNCTION app.mask_short(v text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT app.mask_keep_ends(v, least(2, length(v) / 4), least(2, length(v) / 4))
$$;

CREATE FUNCTION app.mask_id_number(value text) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    v text := regexp_replace(value, '^[[:space:]]+|[[:space:]]+$', '', 'g');
BEGIN
    IF v IS NULL THEN
        RETURN NULL;
    ELSIF length(v) = 18 THEN
        RETURN app.mask_keep_ends(v, 6, 4);
    ELSIF v ~ '^[0-9*]{15}$' THEN  -- '*' too: a masked value masks to itself
        RETURN app.mask_keep_ends(v, 6, 3);
    END IF;
    RETURN app.mask_short(v);
END $$;

CREATE FUNCTION app.mask_phone(value text) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    t text := regexp_replace(value, '^[[:space:]]+|[[:space:]]+$', '', 'g');
    digits text;
    parts text[];
    local text;
BEGIN
    IF t IS NULL THEN
        RETURN NULL;
    END IF;
    digits := regexp_replace(t, '[[:space:]()（）-]', '', 'g');
    digits := regexp_replace(digits, '^(\+86|0086|86)(?=1[0-9]{10}$)', '');
    -- A mobile as gis.masking sees it: a valid one however it is written, or eleven unseparated digits
    -- (masked already, or malformed); "1000000-0000" is a landline with an extension.
    IF digits ~ '^1[3-9][0-9]{9}$' OR t ~ '^1[0-9*]{10}$' THEN
        RETURN app.mask_keep_ends(digits, 3, 4);
    END IF;
    parts := regexp_match(t, '^(?:(0[0-9]{2,3})-)?([0-9*]{5,8})(-[0-9]{1,6})?$');
    IF parts IS NOT NULL THEN
        local := parts[2];
        RETURN coalesce(parts[1] || '-', '')
            || app.mask_keep_ends(local, 0, least(4, greatest(2, length(local) - 4)))
            || coalesce(parts[3], '');
    END IF;
    RETURN app.mask_short(t);
END $$;

-- Masks every string value whose key names an identity document or a phone number
-- (id_number, owner_id_number, document_number, phone, head_phone, head_mobile, ...).
CREATE FUNCTION app.mask_pii(doc jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_object_agg(key, CASE
        WHEN jsonb_typeof(value) <> 'string' THEN value
        WHEN key ~ '(^|_)(id_number|document_number)$' THEN to_jsonb(app.mask_id_number(value #>> '{}'))
        WHEN key ~ '(^|_)(phone|mobile)$' THEN to_jsonb(app.mask_phone(value #>> '{}'))
        ELSE value
    END)
    FROM jsonb_each(doc)
$$;
