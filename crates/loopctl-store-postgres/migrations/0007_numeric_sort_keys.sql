-- Story sort keys were `major*10000 + minor*10`, which runs out at minor 1000 (`1.1001` got
-- the key of `2.1`). They are now `major*100000`, plus `10*minor + 1` when the number has a
-- minor (`StoryNumber::sort_key`): unique and in numeric order for every number 0..=9999 in
-- each part. Recomputed here from the number text, which is stored in its canonical form.
UPDATE stories SET sort_key =
    split_part(number, '.', 1)::bigint * 100000
    + CASE WHEN strpos(number, '.') > 0 THEN split_part(number, '.', 2)::bigint * 10 + 1 ELSE 0 END
WHERE number ~ '^[0-9]{1,4}(\.[0-9]{1,4})?$';
