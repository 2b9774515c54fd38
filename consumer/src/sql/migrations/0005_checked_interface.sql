-- Websentry archive, schema version 5: migrations checked by checksum, the SQL interface kept in a
-- file of its own (interface.sql) and applied when it changes, and every object described.

-- The SHA-256 of each migration's file as it was applied; the consumer refuses to start when a
-- shipped migration's file no longer matches. Filled by the consumer in this transaction, for the
-- migrations applied before this one too.
ALTER TABLE websentry_migrations ADD COLUMN checksum text;

-- The SQL interface applied last: its version and the SHA-256 of interface.sql.
CREATE TABLE websentry_interface (
    version    integer     NOT NULL,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX websentry_interface_one_row ON websentry_interface ((true));

-- Version 4 made site_summary with its optional parameter named `site`, while it was documented as
-- `url`; CREATE OR REPLACE cannot rename a parameter. interface.sql creates it again, as `url`.
DROP FUNCTION site_summary(timestamptz, timestamptz, text);

COMMENT ON TABLE websentry_migrations IS
    'The schema''s migrations as applied: version, name, when, and the SHA-256 of the file (checked at every start).';
COMMENT ON TABLE websentry_interface IS
    'The SQL interface (interface.sql) applied last: its version and SHA-256; applied again when they change.';
COMMENT ON TABLE reports IS
    'The archive: one row per report, partitioned by UTC day of checked_at (reports_pYYYYMMDD, and reports_default for a day without its partition). Read it through report_documents, log, latest_reports or site_summary.';
COMMENT ON TABLE reports_default IS
    'Reports of a day that has no partition yet (late, or far in the future); upkeep moves them into their day when it is created.';
COMMENT ON TABLE consumer_offsets IS
    'The next Kafka offset to read per consumer group, topic and partition, advanced in the transaction of each batch.';
COMMENT ON TABLE rejected_messages IS
    'Kafka records that are not reports, kept with the reason instead of being dropped.';
COMMENT ON TABLE rollup_hourly IS
    'Per (url, probe) and UTC hour: probes, successes, failures by error kind, response time sum/min/max and histogram (b0…b127) of the successes, earliest certificate expiry, last report; written with each batch.';
COMMENT ON TABLE rollup_daily IS
    'Per (url, probe) and UTC day: as rollup_hourly.';
COMMENT ON FUNCTION websentry_report_days() IS
    'Upkeep: the days that have a partition of reports, oldest first.';
COMMENT ON FUNCTION websentry_create_partitions(date, date, date) IS
    'Upkeep: creates the partition of each day from first to last, and of each day from keep_from to last that has rows waiting in reports_default (moved into it); returns the days created.';
COMMENT ON FUNCTION websentry_drop_day(date) IS
    'Upkeep, retention: drops the partition of one day, and rows of that day or older left in reports_default; true when there was a partition.';
COMMENT ON FUNCTION websentry_expire_rollups(date) IS
    'Upkeep, retention: deletes the hourly and daily rollups before a day; returns the rows deleted.';
COMMENT ON FUNCTION websentry_default_rows() IS
    'Upkeep: the number of reports waiting in reports_default.';
