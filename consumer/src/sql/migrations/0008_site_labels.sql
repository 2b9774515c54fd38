-- Websentry archive, schema version 8: a site's display name and group, as the sites file gives
-- them (a status page shows the name instead of a URL that may carry a token, and filters by the
-- group). NULL when the producer gave none.

ALTER TABLE reports
    ADD COLUMN site_name  text,
    ADD COLUMN site_group text;

COMMENT ON COLUMN reports.site_name IS
    'The site''s display name from the sites file (the report''s name field); NULL when none was given.';
COMMENT ON COLUMN reports.site_group IS
    'The site''s group from the sites file (the report''s group field); NULL when none was given.';
