-- What the consumer's database user may do with the archive, and what the read-only user (the
-- status page, Grafana, people) may read, and nothing more. Run by the schema owner after every
-- migration (`--migrate-only`), since a migration may add a table or re-create part of the interface:
--
--   psql -v consumer=websentry -v reader=websentry_reader -h db.example.com -U websentry_owner -d websentry \
--        -f deploy/postgres/grants.sql
--
-- (`-v reader=…` may be left out where there is no read-only user, and `-v consumer=…` where the
-- consumer's user is the schema owner itself, as in the local stack's demo archive: scripts/stack
-- applies this file for the reader only, since revoking would take the owner's own rights.)
-- It starts from nothing on every table, so a grant removed here is removed from the database too.
-- The roles themselves: roles.sql. What each grant is for:
--   websentry_migrations, SELECT                  the schema version, the migrations' checksums and
--   websentry_interface                           the SQL interface's version, checked at every start
--                                                 (a consumer that finds them current changes nothing)
--   reports               INSERT,                 each batch, by COPY, after looking up which of its
--                         SELECT (id, checked_at)  reports are archived already (a producer's retry);
--                                                 one archived by another writer in between sends
--                                                 the batch through a temporary table (TEMPORARY,
--                                                 roles.sql) and INSERT … ON CONFLICT (id,
--                                                 checked_at) DO NOTHING RETURNING id: no other
--                                                 column is read
--   rollup_hourly,        SELECT, INSERT, UPDATE  each batch's rollups, merged into the rows of its
--   rollup_daily                                  hours and days (INSERT … ON CONFLICT DO UPDATE);
--                                                 the hourly rollups' day partitions are written
--                                                 through rollup_hourly and need no grant of their own
--   websentry_create_partitions, websentry_create_hourly_partitions, websentry_report_days,
--   websentry_drop_day, websentry_expire_rollups, websentry_expire_hours,
--   websentry_drop_expired_hours, websentry_analyze_hourly, websentry_default_rows
--                         EXECUTE                 the upkeep: day partitions, retention (of raw days,
--                                                 of hourly rollups a day at a time, of both
--                                                 rollup levels, each recording its horizon), and the
--                                                 count of reports waiting for their day. They run
--                                                 as the schema owner (SECURITY DEFINER, fixed
--                                                 search_path), so the consumer still owns nothing
--                                                 and cannot drop a table itself
--   websentry_note_rollup_writes, websentry_keep_windows
--                         EXECUTE                 the kept window answers (schema version 14): each
--                                                 batch notes the hours its rollups wrote; the
--                                                 upkeep sums the fixed windows ahead. Both run as
--                                                 the schema owner, as above
--   consumer_offsets      SELECT, INSERT, UPDATE  read where a partition resumes; store and move it
--                                                 by compare-and-set in the batch's transaction
--   rejected_messages     INSERT                  records that are not reports, with the reason
-- Not granted: UPDATE or DELETE of reports and rejected records, DELETE of rollups, TRUNCATE,
-- REFERENCES, TRIGGER, the SQL interface (for readers, not for the consumer), creating, changing or
-- dropping anything. Partition locks and the upkeep lock are session advisory locks, which every user
-- may take.
--
-- The reader gets the SQL interface (consumer/src/sql/interface.sql) and nothing else:
--   site_summary,         EXECUTE                 run as the schema owner (SECURITY DEFINER, fixed
--   site_summary_pooled,                          search_path): the reader reads no table itself
--   site_uptime,
--   site_uptime_pooled,
--   site_timeline,
--   site_timeline_pooled,
--   site_days,
--   site_latency,
--   site_outages,
--   site_reports
--   log, report_documents, SELECT                 views, which read their tables as the owner
--   latest_reports,
--   certificates_expiring,
--   site_states,
--   rollup_horizons
--   report_document,      EXECUTE                 called by report_documents, as the caller (a view's
--   websentry_rfc3339                             functions run as whoever reads the view)
-- Not granted to the reader: any table (reports, rollups, offsets, rejected records, the schema's
-- records), any other function (the upkeep, the helpers), TEMPORARY, writing anything.
\set ON_ERROR_STOP on
BEGIN;
-- (Revoking a table's privileges revokes its columns' too.)
\if :{?consumer}
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM :"consumer";
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM :"consumer";
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA public FROM :"consumer";
GRANT SELECT ON websentry_migrations, websentry_interface TO :"consumer";
GRANT INSERT, SELECT (id, checked_at) ON reports TO :"consumer";
GRANT SELECT, INSERT, UPDATE ON rollup_hourly, rollup_daily TO :"consumer";
GRANT EXECUTE ON FUNCTION websentry_create_partitions(date, date, date),
    websentry_create_hourly_partitions(date, date, date), websentry_report_days(),
    websentry_drop_day(date), websentry_expire_rollups(date), websentry_expire_hours(date),
    websentry_drop_expired_hours(), websentry_analyze_hourly(), websentry_default_rows(),
    websentry_note_rollup_writes(timestamptz, timestamptz),
    websentry_keep_windows(interval[], interval) TO :"consumer";
GRANT SELECT, INSERT, UPDATE ON consumer_offsets TO :"consumer";
GRANT INSERT ON rejected_messages TO :"consumer";
\endif
\if :{?reader}
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM :"reader";
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM :"reader";
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA public FROM :"reader";
GRANT EXECUTE ON FUNCTION site_summary(timestamptz, timestamptz, text),
    site_summary_pooled(timestamptz, timestamptz, text),
    site_uptime(timestamptz, timestamptz, text), site_uptime_pooled(timestamptz, timestamptz, text),
    site_timeline(timestamptz, timestamptz, text, text), site_timeline_pooled(timestamptz, timestamptz, text, text),
    site_days(timestamptz, timestamptz, text),
    site_latency(timestamptz, timestamptz, text, text),
    site_outages(timestamptz, timestamptz, text), site_reports(text, integer) TO :"reader";
GRANT SELECT ON log, report_documents, latest_reports, certificates_expiring, site_states, rollup_horizons
    TO :"reader";
GRANT EXECUTE ON FUNCTION report_document(reports), websentry_rfc3339(timestamptz, smallint) TO :"reader";
\endif
COMMIT;
