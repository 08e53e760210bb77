-- Story sort keys were `major*10000 + minor*10`, which runs out at minor 1000 (`1.1001` got
-- the key of `2.1`). They are now `major*100000`, plus `10*minor + 1` when the number has a
-- minor (`StoryNumber::sort_key`): unique and in numeric order for every number 0..=9999 in
-- each part. Recomputed here from the number text, which is stored in its canonical form.
UPDATE stories SET sort_key =
    CASE
        WHEN instr(number, '.') > 0 THEN
            CAST(substr(number, 1, instr(number, '.') - 1) AS INTEGER) * 100000
            + CAST(substr(number, instr(number, '.') + 1) AS INTEGER) * 10 + 1
        ELSE CAST(number AS INTEGER) * 100000
    END
WHERE number <> ''
    AND number NOT GLOB '*[^0-9.]*'
    AND number NOT GLOB '.*'
    AND number NOT GLOB '*.'
    AND number NOT GLOB '*.*.*';
